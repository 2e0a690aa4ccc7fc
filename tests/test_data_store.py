"""The data root: checksums, refusal of bad files, download on demand, `hbnb data check`."""

from __future__ import annotations

import functools
import http.server
import io
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from hbnb.data import store
from hbnb.data.mkqa import load_mkqa
from hbnb.data.retrieval import load_retrieval
from hbnb.errors import ChecksumError, DataFileError, UnknownNameError

ALL_SETS = ["mkqa", "mlqa-r", "tatoeba", "wmt22", "xquad-r", "xquad"]


def test_shipped_checksums_cover_the_mirror(root: Path) -> None:
    listed = {f.path for f in store.manifest().values()}
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name not in {"SHA256SUMS", "DATA.md"}
    }
    assert present == listed
    assert len(listed) == 319
    assert sorted({f.dataset for f in store.manifest().values()}) == sorted(ALL_SETS)


def test_every_mirrored_file_verifies(root: Path) -> None:
    statuses = store.check(root)
    assert {s.status for s in statuses} == {"verified"}
    assert len(statuses) == len(store.manifest())


def test_cli_data_check_reports_every_set_verified() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hbnb", "data", "check"], capture_output=True, text=True, check=True
    ).stdout
    for name, n in [("mkqa", 13), ("mlqa-r", 8), ("tatoeba", 224), ("wmt22", 49), ("xquad-r", 12), ("xquad", 13)]:
        assert any(line.split()[:2] == [name, f"{n}/{n}"] for line in out.splitlines()), (name, out)


def test_upstream_urls_are_pinned() -> None:
    m = store.manifest()
    assert m["xquad-r/en.json"].url == (
        "https://raw.githubusercontent.com/google-research-datasets/lareqa/"
        "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c/xquad-r/en.json"
    )
    assert m["tatoeba-laser/tatoeba.deu-eng.deu"].url.endswith(
        "facebookresearch/LASER/74bc6ae7ffb7cba670fe0f428d0ede9f666fb821/data/tatoeba/v1/tatoeba.deu-eng.deu"
    )
    assert m["wmt22-general/sources/generaltest2022.en-de.src.en"].url.endswith(
        "20240a2e96a50e823ea8cdf37fd8af52547146e3/txt/sources/generaltest2022.en-de.src.en"
    )
    assert m["mkqa-mia-dev/mkqa-ja.jsonl"].url.endswith(
        "ea2491a3e3a588e270b2dd30ce7e044584c3eeb5/data/eval/mkqa_dev.zip"
    )
    assert m["xquad/LICENSE.CC-BY-SA-4.0.txt"].url is None


def test_a_corrupt_file_is_refused_naming_file_and_both_hashes(data_copy) -> None:
    files = [f"mlqa-r/{lang}.json" for lang in ("de", "en")]
    target = data_copy(files)
    bad = target / "mlqa-r/de.json"
    bad.write_bytes(bad.read_bytes() + b" ")  # one trailing byte: still valid JSON, wrong hash
    expected = store.manifest()["mlqa-r/de.json"].sha256
    with pytest.raises(ChecksumError) as err:
        load_retrieval("mlqa-r", langs=["en", "de"])
    message = str(err.value)
    assert str(bad) in message and expected in message
    assert store.file_hash(bad) in message
    # the good language alone still loads, and the bad file was not used for it
    assert load_retrieval("mlqa-r", langs=["en"]).queries.num_rows == 1148


def test_a_missing_file_in_a_read_only_root_names_the_file(tmp_path: Path, monkeypatch, fresh_cache) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    monkeypatch.setenv("HBNB_DATA", str(ro))
    if os.access(ro, os.W_OK):  # running as root: permissions do not bind
        monkeypatch.setenv("HBNB_UPSTREAM_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(DataFileError) as err:
        store.path("xquad-r/th.json")
    assert "xquad-r/th.json" in str(err.value)


def test_unknown_file_and_data_set_names() -> None:
    with pytest.raises(DataFileError, match="not a file hbnb knows"):
        store.lookup("xquad-r/xx.json")
    with pytest.raises(UnknownNameError, match="known: xquad"):
        store.dataset_folder("squad")


class _Upstream:
    """A local stand-in for raw.githubusercontent.com serving the mirror's bytes."""

    def __init__(self, tree: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(tree))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def upstream(tmp_path: Path, root: Path, monkeypatch):
    """Serve the upstream layout (<repo>/<commit>/<path>) for MLQA-R en/de and the MKQA zip."""
    tree = tmp_path / "upstream"
    for lang in ("en", "de"):
        f = store.manifest()[f"mlqa-r/{lang}.json"]
        url_path = f.url.split("://", 1)[1].split("/", 1)[1]
        (tree / url_path).parent.mkdir(parents=True, exist_ok=True)
        (tree / url_path).write_bytes((root / f.path).read_bytes())
    zip_rel = store.manifest()["mkqa-mia-dev/mkqa-en.jsonl"].url.split("://", 1)[1].split("/", 1)[1]
    (tree / zip_rel).parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in store.files_of("mkqa"):
            if not f.is_license:
                z.writestr(f"mkqa_dev/{Path(f.path).name}", (root / f.path).read_bytes())
    (tree / zip_rel).write_bytes(buf.getvalue())
    server = _Upstream(tree)
    monkeypatch.setenv("HBNB_UPSTREAM_URL", server.url)
    yield tree
    server.server.shutdown()


def test_missing_files_are_downloaded_verified_and_kept(
    upstream: Path, tmp_path: Path, monkeypatch, fresh_cache
) -> None:
    empty = tmp_path / "fresh-root"
    monkeypatch.setenv("HBNB_DATA", str(empty))
    rs = load_retrieval("mlqa-r", langs=["en", "de"])
    assert rs.queries.num_rows == 1148 + 512
    assert (empty / "mlqa-r/en.json").is_file()
    assert load_mkqa(["ja", "en"]).num_rows == 2 * 1758
    assert len(list((empty / "mkqa-mia-dev").glob("*.jsonl"))) == 12
    statuses = {s.path: s.status for s in store.check(empty)}
    assert statuses["mlqa-r/en.json"] == "verified" and statuses["xquad-r/en.json"] == "missing"


def test_a_bad_download_is_discarded(upstream: Path, tmp_path: Path, monkeypatch, fresh_cache) -> None:
    f = store.manifest()["mlqa-r/de.json"]
    served = upstream / f.url.split("://", 1)[1].split("/", 1)[1]
    served.write_bytes(served.read_bytes()[:-10])
    empty = tmp_path / "fresh-root"
    monkeypatch.setenv("HBNB_DATA", str(empty))
    with pytest.raises(ChecksumError, match="download was discarded"):
        store.path("mlqa-r/de.json")
    assert not (empty / "mlqa-r/de.json").exists()
    assert not list((empty / "mlqa-r").glob(".part-*"))
