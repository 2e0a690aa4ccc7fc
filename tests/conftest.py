"""Shared fixtures: the real data root, and an isolated cache for tests that break things."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbnb.data.store import data_root


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
