"""Arrow table cache: built once, reopened memory-mapped, rebuilt when corrupt, never half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from hbnb.data import load_retrieval
from hbnb.data import retrieval as retrieval_module


def _cache_folders(cache: Path) -> list[Path]:
    return sorted((cache / "datasets").glob("retrieval-mlqa-r-*"))


def test_second_load_reuses_the_cache(fresh_cache: Path, monkeypatch) -> None:
    first = load_retrieval("mlqa-r", ["en", "es"])
    assert len(_cache_folders(fresh_cache)) == 1
    monkeypatch.setattr(retrieval_module, "_build", lambda *a: pytest.fail("rebuilt a cached table"))
    again = load_retrieval("mlqa-r", ["en", "es"])
    assert again.queries["id"] == first.queries["id"]
    assert again.candidates.cache_files  # memory-mapped Arrow, not an in-memory copy


def test_a_corrupt_cache_is_rebuilt_not_used(fresh_cache: Path) -> None:
    good = load_retrieval("mlqa-r", ["en", "es"]).stats()
    (folder,) = _cache_folders(fresh_cache)
    for arrow in folder.rglob("*.arrow"):
        arrow.write_bytes(b"garbage")
    assert load_retrieval("mlqa-r", ["en", "es"]).stats() == good


def test_a_failed_build_leaves_no_cache_folder(fresh_cache: Path, monkeypatch) -> None:
    def explode(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(retrieval_module, "_build", explode)
    with pytest.raises(RuntimeError):
        load_retrieval("mlqa-r", ["en", "es"])
    assert _cache_folders(fresh_cache) == []
    assert not list((fresh_cache / "datasets").glob(".tmp-*"))


def test_different_language_subsets_are_cached_apart(fresh_cache: Path) -> None:
    load_retrieval("mlqa-r", ["en", "es"])
    load_retrieval("mlqa-r", ["en", "de"])
    assert len(_cache_folders(fresh_cache)) == 2
