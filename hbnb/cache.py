"""Where hbnb keeps what it derives (Arrow tables, rebuilt models, embeddings).

Everything under the cache can be deleted at any time; it is rebuilt on demand.
Folders are published with `hbnb.files.atomic_dir`, under `build_lock`, so a reader
never sees a half-written folder and concurrent processes build it once. Each published
folder carries a manifest (every file's size and SHA-256), checked on every read: a
truncated, altered or partly deleted entry is rebuilt with a one-line warning, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
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


MANIFEST = "hbnb-manifest.json"
log = logging.getLogger("hbnb")


def write_manifest(folder: Path) -> None:
    """Record every file's size and SHA-256 in `folder/MANIFEST` (call before publishing the folder)."""
    files = {
        path.relative_to(folder).as_posix(): {"size": path.stat().st_size, "sha256": file_sha256(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1), encoding="utf-8")


def manifest_problem(folder: Path) -> str | None:
    """What is wrong with a cache folder against its manifest, or None when every file is intact."""
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"no readable {MANIFEST} (written by an older hbnb, or damaged)"
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST}
    missing = sorted(set(files) - present)
    if missing:
        return f"{missing[0]} is missing"
    for rel, record in files.items():
        path = folder / rel
        if path.stat().st_size != record["size"]:
            return f"{rel} has {path.stat().st_size} bytes, not {record['size']}"
    for rel, record in files.items():
        if file_sha256(folder / rel) != record["sha256"]:
            return f"{rel} differs from what was written (SHA-256)"
    return None


# folder -> every file's (path, size, mtime) when this process last found it intact
_VERIFIED: dict[Path, tuple[tuple[str, int, int], ...]] = {}


def intact(folder: Path, what: str) -> bool:
    """True when `folder` holds an intact cache entry; False when absent, or when damaged (then it
    says so in one line and removes it, so the caller rebuilds it).

    The files are hashed once per process and entry; later reads in the process hash again only
    when a file's size or modification time changed (a stat of each file).
    """
    if not folder.exists():
        return False
    stamp = _stamp(folder)
    if _VERIFIED.get(folder) == stamp:
        return True
    problem = manifest_problem(folder)
    if problem is None:
        _VERIFIED[folder] = stamp
        return True
    _VERIFIED.pop(folder, None)
    log.warning("hbnb: the cached %s %s is damaged (%s); rebuilding it", what, folder, problem)
    shutil.rmtree(folder, ignore_errors=True)
    return False


def _stamp(folder: Path) -> tuple[tuple[str, int, int], ...]:
    out = []
    for path in sorted(folder.rglob("*")):
        try:
            stat = path.stat()
        except OSError:
            continue
        if path.is_file():
            out.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(out)
