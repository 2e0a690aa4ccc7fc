"""Shared fixtures: the real data root, and an isolated cache for tests that break things."""

from __future__ import annotations

import os
import time
from pathlib import Path

# no hub here (nor in CI): a hub path fails at once instead of retrying for a minute
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from hbnb.data.store import data_root  # noqa: E402

TINY = Path(__file__).resolve().parent / "params" / "tiny.yaml"


def write_experiment(folder: Path, name: str, **changes) -> Path:
    """The tiny experiment with some keys replaced (dotted keys reach into blocks; None removes one)."""
    import yaml

    params = yaml.safe_load(TINY.read_text())
    params["experiment"] = name
    for key, value in changes.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def xquad():
    """XQuAD as a parallel QA table (training data)."""
    from hbnb.data import load_parallel_qa

    return load_parallel_qa("xquad")


@pytest.fixture(scope="session")
def mlqa():
    """MLQA dev as a parallel QA table (training data)."""
    from hbnb.data import load_parallel_qa

    return load_parallel_qa("mlqa")


@pytest.fixture(scope="session")
def root() -> Path:
    """The real data root (the offline mirror here, a verified download elsewhere)."""
    return data_root()


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HBNB_CACHE, so a test's builds and breakages touch nothing shared."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("HBNB_CACHE", str(cache))
    return cache


@pytest.fixture
def data_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: Path, fresh_cache: Path):
    """A writable data root holding copies of chosen real files: `data_copy(["xquad-r/en.json"])`."""
    import shutil

    target = tmp_path / "data"

    def make(files: list[str]) -> Path:
        for rel in files:
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, target / rel)
        monkeypatch.setenv("HBNB_DATA", str(target))
        return target

    return make


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, list[str], float]:
    """The tiny experiment (tests/params/tiny.yaml) run once through `hbnb run`:
    (its folder under reports/, the progress lines, wall seconds). Slow tests share it."""
    from hbnb.experiment import pipeline

    folder = tmp_path_factory.mktemp("tiny")
    lines: list[str] = []
    start = time.perf_counter()
    index = pipeline.run(TINY, folder / "reports", echo=lines.append)
    return index.parent, lines, time.perf_counter() - start
