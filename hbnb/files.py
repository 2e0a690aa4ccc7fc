"""Writing results atomically: a reader sees the old file or the new one, never half of one.

Every result hbnb writes (metrics, logs, models, reports) goes through here, so a run
that is killed mid-write leaves nothing a later stage could mistake for a result, a full
disk leaves no temporary file and one error naming the path, and what is written gets the
permissions the user's umask gives (reports are meant to be shared), not a temporary
file's private 0600.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hbnb.errors import FolderBusyError, HbnbError, MalformedDataError, WriteError

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def exclusive(folder: Path, busy: str, error: type[HbnbError] = FolderBusyError) -> Iterator[None]:
    """Hold `folder`'s lock file (.lock) while the block runs; if another process holds it, raise
    `error` at once. The lock goes with the holding process, so a killed run never leaves it stuck."""
    from filelock import FileLock, Timeout

    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise error(
            f"{folder} is {busy} (lock {folder / '.lock'}); wait for it to finish. "
            "The lock is released when that process ends."
        ) from None
    try:
        yield
    finally:
        lock.release()


def umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shared_mode(path: Path | str, folder: bool = False) -> None:
    """Give a file (0666) or folder (0777) the permissions the umask allows, as open() and mkdir() would;
    mkstemp and mkdtemp make them private (0600, 0700)."""
    os.chmod(path, (0o777 if folder else 0o666) & ~umask())


def write_failed(path: Path | str, exc: OSError) -> WriteError:
    """One error naming what could not be written and why (e.g. No space left on device)."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    return WriteError(
        f"could not write {path}: {cause}; what was written before is kept: free space (or fix the "
        "permissions) and run the command again to continue"
    )


def write_atomic(path: Path | str, writer: Callable[[str], object]) -> Path:
    """Call `writer(temporary_path)`, then rename the temporary file to `path`.

    On any error the temporary file is removed and `path` is untouched; an OSError (a full
    disk, a read-only folder) becomes one WriteError naming `path` and the cause.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent)
        os.close(fd)
        shared_mode(tmp)
        writer(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, HbnbError):
            raise write_failed(path, exc) from exc
        raise
    return path


def write_text(path: Path | str, text: str) -> Path:
    """Atomically write a UTF-8 text file."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success rename it to `final`.

    On any exception (or a kill) `final` is untouched; the temporary folder is
    removed on exceptions and swept by `sweep_stale` after kills. If `final`
    appeared meanwhile (another process won the race), the new copy is dropped.
    """
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{final.name}-", dir=final.parent))
        shared_mode(tmp, folder=True)
    except OSError as exc:
        raise write_failed(final, exc) from exc
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, HbnbError):
            raise write_failed(final, exc) from exc
        raise


def sweep_stale(parent: Path, name: str) -> None:
    """Remove temporary folders that a killed build of `name` left in `parent` (call under its lock)."""
    for leftover in parent.glob(f"{TMP_PREFIX}{name}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def iter_jsonl(path: Path | str, required: tuple[str, ...] = ()) -> Iterator[tuple[str, dict]]:
    """(where, record) for each non-blank line of a JSON-lines file (gzip'd if it ends in .gz);
    `where` is "FILE, line N".

    A line that is not a JSON object, or lacks a `required` key, is refused naming the file and line.
    """
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rt", encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MalformedDataError(
                    f"{where}: not valid JSON ({exc}); expected one JSON object per line"
                ) from exc
            missing = [k for k in required if k not in record] if isinstance(record, dict) else list(required)
            if not isinstance(record, dict) or missing:
                raise MalformedDataError(
                    f"{where}: missing {', '.join(missing) or 'an object'}; "
                    f"expected an object with keys {', '.join(required)}"
                )
            yield where, record


def read_json(path: Path | str) -> Any:
    """A JSON file's contents, {} where the file is absent (a record a run may not have written)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_jsonl(path: Path | str) -> list[dict]:
    """Every record of a JSON-lines file (hbnb's own logs)."""
    return [record for _, record in iter_jsonl(path)]
