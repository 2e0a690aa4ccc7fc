"""The data root: where hbnb finds the upstream data files, and how it trusts them.

Every file hbnb reads from outside is listed, with its SHA-256, in the checksum list
shipped inside the package (`hbnb/data/SHA256SUMS`). A file is used only after its
hash matches; a missing file is downloaded from its pinned upstream commit into a
writable data root and verified before it is kept.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path, PurePosixPath

from hbnb.cache import cache_root, file_sha256
from hbnb.errors import ChecksumError, DataFileError, UnknownNameError
from hbnb.files import write_atomic

DEFAULT_UPSTREAM = "https://raw.githubusercontent.com"

# data set -> (folder in the data root, upstream repository, full commit, folder upstream)
_UPSTREAM: dict[str, tuple[str, str, str, str]] = {
    "xquad": ("xquad", "google-deepmind/xquad", "7d30520c717524000f0d9d2f9c10a069acd9d285", ""),
    "xquad-r": (
        "xquad-r",
        "google-research-datasets/lareqa",
        "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
        "xquad-r",
    ),
    "mlqa-r": (
        "mlqa-r",
        "google-research-datasets/lareqa",
        "354d67d1cd066854cdfbf5ad0e6105528976141d",
        "mlqa-r",
    ),
    "mkqa": (
        "mkqa-mia-dev",
        "mia-workshop/MIA-Shared-Task-2022",
        "ea2491a3e3a588e270b2dd30ce7e044584c3eeb5",
        "data/eval/mkqa_dev.zip",
    ),
    "tatoeba": (
        "tatoeba-laser",
        "facebookresearch/LASER",
        "74bc6ae7ffb7cba670fe0f428d0ede9f666fb821",
        "data/tatoeba/v1",
    ),
    "wmt22": (
        "wmt22-general",
        "wmt-conference/wmt22-news-systems",
        "20240a2e96a50e823ea8cdf37fd8af52547146e3",
        "txt",
    ),
}
_ARCHIVES = {"mkqa"}  # upstream ships a zip; its members are verified one by one


@dataclass(frozen=True)
class DataFile:
    """One upstream file: where it lives in the data root and what it must hash to."""

    dataset: str
    path: str  # relative to the data root, POSIX form, e.g. "xquad-r/en.json"
    sha256: str

    @property
    def is_license(self) -> bool:
        """License texts were added by the mirror; loaders never need them."""
        return PurePosixPath(self.path).name.startswith("LICENSE")

    @property
    def url(self) -> str | None:
        """The pinned upstream address (a zip for archive data sets); None for license texts."""
        if self.is_license:
            return None
        folder, repo, commit, upstream = _UPSTREAM[self.dataset]
        base = os.environ.get("HBNB_UPSTREAM_URL", DEFAULT_UPSTREAM).rstrip("/")
        if self.dataset in _ARCHIVES:
            return f"{base}/{repo}/{commit}/{upstream}"
        rest = PurePosixPath(self.path).relative_to(folder)
        return f"{base}/{repo}/{commit}/{PurePosixPath(upstream, rest)}"


@lru_cache(maxsize=1)
def manifest() -> dict[str, DataFile]:
    """Every known file, keyed by its path in the data root, from the shipped checksum list."""
    folder_to_dataset = {folder: name for name, (folder, *_rest) in _UPSTREAM.items()}
    text = resources.files("hbnb.data").joinpath("SHA256SUMS").read_text(encoding="utf-8")
    files: dict[str, DataFile] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        digest, rel = line.split(maxsplit=1)
        rel = rel.strip().removeprefix("./")
        files[rel] = DataFile(folder_to_dataset[rel.split("/", 1)[0]], rel, digest)
    return files


def dataset_folder(dataset: str) -> str:
    """The folder a data set lives in under the data root."""
    if dataset not in _UPSTREAM:
        raise UnknownNameError(f"unknown data set {dataset!r}; known: {', '.join(_UPSTREAM)}")
    return _UPSTREAM[dataset][0]


def files_of(dataset: str) -> list[DataFile]:
    """The files of one data set, in path order."""
    folder = dataset_folder(dataset)
    return sorted((f for f in manifest().values() if f.path.startswith(folder + "/")), key=lambda f: f.path)


def _checkout_mirror() -> Path | None:
    """`../shared/data` beside the source checkout, when hbnb runs from one."""
    checkout = Path(__file__).resolve().parents[2]
    mirror = checkout.parent / "shared" / "data"
    return mirror if (mirror / "SHA256SUMS").is_file() else None


def data_root() -> Path:
    """`$HBNB_DATA` if set, else `../shared/data` next to the checkout, else `~/.cache/hbnb/data`."""
    env = os.environ.get("HBNB_DATA")
    if env:
        return Path(env).expanduser()
    mirror = _checkout_mirror()
    if mirror is not None:
        return mirror
    return cache_root() / "data"


_verified: dict[tuple[str, int, int], str] = {}


def file_hash(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so each file is hashed once."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _verified:
        _verified[key] = file_sha256(path)
    return _verified[key]


def lookup(rel: str) -> DataFile:
    """The manifest entry of a relative path, or an error naming the path."""
    try:
        return manifest()[rel]
    except KeyError:
        raise DataFileError(
            f"{rel!r} is not a file hbnb knows; the shipped checksum list "
            f"(hbnb/data/SHA256SUMS) names every file it reads"
        ) from None


def verify(path: Path, entry: DataFile) -> None:
    """Refuse a file whose hash differs from the checksum list."""
    actual = file_hash(path)
    if actual != entry.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 {actual} does not match the expected {entry.sha256} "
            f"(hbnb/data/SHA256SUMS, entry {entry.path}); the file is refused. "
            f"Delete it to have hbnb download a fresh copy from {entry.url or 'its upstream'}."
        )


def path(rel: str, root: Path | None = None) -> Path:
    """The verified local copy of one file, downloading it first when missing.

    `rel` is the path under the data root, e.g. "xquad-r/en.json".
    """
    entry = lookup(rel)
    root = data_root() if root is None else root
    local = root / entry.path
    if not local.is_file():
        _fetch(entry, root)
    verify(local, entry)
    return local


def _fetch(entry: DataFile, root: Path) -> None:
    """Download one missing file (or its archive) into `root`, keeping only verified copies."""
    if entry.url is None:
        raise DataFileError(f"{root / entry.path} is missing and has no upstream address")
    if not _writable(root):
        raise DataFileError(
            f"{root / entry.path} is missing and the data root {root} is not writable; "
            f"set HBNB_DATA to a writable folder (hbnb downloads {entry.url} there) "
            f"or restore the file"
        )
    payload = _download(entry.url, root / entry.path)
    if entry.dataset in _ARCHIVES:
        _store_archive_members(payload, entry.dataset, root)
    else:
        _store_verified(payload, entry, root)


def _writable(root: Path) -> bool:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(root, os.W_OK)


def _download(url: str, target: Path) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - pinned https URLs
            return response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise DataFileError(
            f"{target} is missing and downloading it from {url} failed ({exc}); "
            f"check the network, or point HBNB_DATA at a folder that holds the files"
        ) from exc


def _store_verified(payload: bytes, entry: DataFile, root: Path) -> None:
    """Write `payload` as `entry` only if it hashes right: a bad download is never kept."""
    actual = hashlib.sha256(payload).hexdigest()
    target = root / entry.path
    if actual != entry.sha256:
        raise ChecksumError(
            f"downloaded {entry.path} from {entry.url}: SHA-256 {actual} does not match the "
            f"expected {entry.sha256} (hbnb/data/SHA256SUMS); the download was discarded"
        )
    write_atomic(target, lambda tmp: Path(tmp).write_bytes(payload))


def _store_archive_members(payload: bytes, dataset: str, root: Path) -> None:
    """Extract the known members of a downloaded zip, verifying each (matched by file name)."""
    wanted = {PurePosixPath(f.path).name: f for f in files_of(dataset) if not f.is_license}
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile as exc:
        raise DataFileError(f"the download for {dataset} is not a zip archive: {exc}") from exc
    found = set()
    for member in archive.namelist():
        entry = wanted.get(PurePosixPath(member).name)
        if entry is not None:
            _store_verified(archive.read(member), entry, root)
            found.add(entry.path)
    missing = sorted(f.path for f in wanted.values() if f.path not in found)
    if missing:
        raise DataFileError(f"the {dataset} archive lacks {', '.join(missing)}")


@dataclass(frozen=True)
class FileStatus:
    """What `hbnb data check` reports for one file."""

    dataset: str
    path: str
    status: str  # "verified", "missing", "mismatch"
    detail: str = ""


def check(root: Path | None = None, download: bool = False) -> list[FileStatus]:
    """Hash every known file under the root (downloading missing ones if asked)."""
    root = data_root() if root is None else root
    out: list[FileStatus] = []
    for entry in sorted(manifest().values(), key=lambda f: f.path):
        local = root / entry.path
        try:
            if download and not local.is_file() and entry.url is not None:
                _fetch(entry, root)
            if not local.is_file():
                note = "license text, not needed to load" if entry.is_license else "not present"
                out.append(FileStatus(entry.dataset, entry.path, "missing", note))
                continue
            verify(local, entry)
            out.append(FileStatus(entry.dataset, entry.path, "verified"))
        except ChecksumError as exc:
            out.append(FileStatus(entry.dataset, entry.path, "mismatch", str(exc)))
        except DataFileError as exc:
            out.append(FileStatus(entry.dataset, entry.path, "missing", str(exc)))
    return out
