"""Where hbnb keeps what it derives (Arrow tables, rebuilt models), and how it publishes them.

Everything under the cache can be deleted at any time; it is rebuilt on demand. A
folder is published atomically: built under a temporary name next to its final
place, then renamed, so a reader never sees a half-written folder and an
interrupted build leaves nothing that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

_TMP_PREFIX = ".tmp-"


def cache_root() -> Path:
    """`$HBNB_CACHE` if set, else `~/.cache/hbnb`."""
    env = os.environ.get("HBNB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "hbnb"


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_dir(kind: str) -> Path:
    """A subfolder of the cache (`datasets`, `models`, ...), created if needed."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success rename it to `final`.

    On any exception (or a kill) `final` is untouched; the temporary folder is
    removed on exceptions and swept by `sweep_stale` after kills. If `final`
    appeared meanwhile (another process won the race), the new copy is dropped.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{final.name}-", dir=final.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_lock(final: Path) -> FileLock:
    """A lock beside `final`, so concurrent processes (torchrun ranks) build it once."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(final.parent / f".{final.name}.lock"))


def sweep_stale(parent: Path, name: str) -> None:
    """Remove temporary folders that a killed build of `name` left in `parent`."""
    for leftover in parent.glob(f"{_TMP_PREFIX}{name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)
