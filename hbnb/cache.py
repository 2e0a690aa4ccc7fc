"""Where hbnb keeps what it derives (Arrow tables, rebuilt models, embeddings).

Everything under the cache can be deleted at any time; it is rebuilt on demand.
Folders are published with `hbnb.files.atomic_dir`, under `build_lock`, so a reader
never sees a half-written folder and concurrent processes build it once.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from filelock import FileLock


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


def build_lock(final: Path) -> FileLock:
    """A lock beside `final`, so concurrent processes (torchrun ranks) build it once."""
    final.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(final.parent / f".{final.name}.lock"))
