"""Arrow-backed, cached tables: each builder runs once per set of verified source files.

A built table is saved with `datasets`' own `save_to_disk` under the cache, keyed by
the builder name, its parameters, the SHA-256 of every source file and a format
version, and later opened memory-mapped with `load_from_disk`. A cache folder that
does not match its manifest or does not open is rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, load_from_disk
from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

from hbnb.cache import build_lock, cache_dir, intact, write_manifest
from hbnb.data import store
from hbnb.data.store import DataFile
from hbnb.errors import MalformedDataError
from hbnb.files import atomic_dir, sweep_stale

# Bump when any builder's output changes, so old caches are not reused.
FORMAT_VERSION = 2

T = TypeVar("T", Dataset, DatasetDict)


def require_columns(have: Sequence[str], need: Sequence[str], what: str, hint: str = "") -> None:
    """Refuse a table that lacks any of `need`, naming it (`what`), the missing columns and the present ones."""
    missing = [c for c in need if c not in have]
    if missing:
        raise MalformedDataError(
            f"{what} lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, have)) or 'none'}; "
            f"expected {', '.join(need)}{hint}"
        )


def column(table: Dataset, name: str) -> list:
    """A column as a Python list, read through Arrow (iterating a `Dataset` column goes row by row)."""
    return table.with_format("arrow")[name].to_pylist()


def fingerprint(name: str, sources: Sequence[DataFile], params: Mapping[str, object]) -> str:
    """A short key naming one build: builder, parameters, source hashes, format version."""
    blob = json.dumps(
        {
            "name": name,
            "format": FORMAT_VERSION,
            "params": params,
            "sources": sorted((f.path, f.sha256) for f in sources),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached(
    name: str,
    sources: Sequence[DataFile],
    params: Mapping[str, object],
    build: Callable[[], T],
) -> T:
    """Open the cached table for this build, building and publishing it first if needed.

    The source files are verified first, every time: a cache never stands in for a
    file that is now missing or corrupt.
    """
    for source in sources:
        store.path(source.path)
    return cached_table(f"{name}-{fingerprint(name, sources, params)}", build)


def cached_table(key: str, build: Callable[[], T]) -> T:
    """The table cached under `key` (a folder name that names the build and its inputs), built once.

    For sources outside the checksum list (a user's copy of a data set), whose key the
    caller derives from what identifies them (e.g. each file's path, size and mtime).
    """
    final = cache_dir("datasets") / key
    table = _open(final)
    if table is not None:
        return table
    with build_lock(final):
        table = _open(final)
        if table is not None:
            return table
        sweep_stale(final.parent, final.name)
        built = build()
        with atomic_dir(final) as tmp, _quiet():
            built.save_to_disk(str(tmp))
            write_manifest(tmp)
    table = _open(final)
    if table is None:  # pragma: no cover - only if the disk lies to us
        raise OSError(f"the table cache {final} could not be read back after writing it")
    return table


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars for cache writes: they are fast and would clutter notebooks."""
    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def _open(folder) -> Dataset | DatasetDict | None:
    """The saved table, or None if absent, damaged or unreadable (such a folder is removed)."""
    if not intact(folder, "table"):
        return None
    try:
        return load_from_disk(str(folder))
    except Exception:  # noqa: BLE001 - any failure to open means: rebuild
        shutil.rmtree(folder, ignore_errors=True)
        return None


class ChunkedColumn:
    """A text column read a few rows at a time, chunk by chunk.

    `ChunkedArray.take` would first concatenate every chunk of a memory-mapped
    column (hundreds of MB per batch); taking from the chunks that hold the rows
    touches only those.
    """

    def __init__(self, chunked: pa.ChunkedArray) -> None:
        self.chunks = chunked.chunks
        self.starts = np.cumsum([0] + [len(c) for c in self.chunks])

    def take(self, rows: np.ndarray) -> list[Any]:
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out: list[Any] = [None] * len(rows)
        for chunk in np.unique(which):
            sel = np.nonzero(which == chunk)[0]
            values = self.chunks[chunk].take(pa.array(rows[sel] - self.starts[chunk])).to_pylist()
            for i, value in zip(sel.tolist(), values):
                out[i] = value
        return out
