"""Encoding texts once per model, with the embeddings cached on disk.

Scoring reuses one encoding of every query and every candidate across all language
pairs and the multilingual pool. Embeddings are cached under
`~/.cache/hbnb/embeddings`, keyed by a fingerprint of the model (its weights, modules,
prompts and maximum length) and of the exact texts with their role (query or
passage), so re-scoring a cached model encodes nothing. Each entry stores the
SHA-256 of its array: an entry that fails the check (a torn write, a corrupted disk)
is rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from hbnb.cache import cache_dir
from hbnb.errors import NonFiniteError
from hbnb.files import write_atomic, write_text
from hbnb.models.backends import backend_of
from hbnb.progress import interactive

ROLES = ("query", "passage")


def model_fingerprint(model: SentenceTransformer) -> str:
    """A hash of everything that decides the embeddings: weights, module types, prompts, length.

    Hashing the weights takes about half a second for a few hundred MB, so the digest
    is kept on the model and reused while no tensor has changed: torch bumps a tensor's
    version on every in-place update (an optimizer step, `load_state_dict`), and a
    replaced tensor has a new storage, so either invalidates it.
    """
    state = sorted(model.state_dict().items())
    header = (
        json.dumps([type(m).__module__ + "." + type(m).__name__ for m in model]),
        json.dumps(model.prompts, sort_keys=True),
        str(model.max_seq_length),
    ) + ((backend,) if (backend := backend_of(model)) != "torch" else ())
    key = (header, tuple((name, t.data_ptr(), t._version, t.dtype, tuple(t.shape)) for name, t in state))
    memo = getattr(model, "_hbnb_fingerprint", None)
    if memo is not None and memo[0] == key:
        return memo[1]
    digest = hashlib.blake2b(digest_size=16)
    for part in header:
        digest.update(part.encode())
    for name, tensor in state:
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    model._hbnb_fingerprint = (key, digest.hexdigest())
    return digest.hexdigest()


def texts_fingerprint(texts: Sequence[str], role: str) -> str:
    """A hash of the ordered texts and their role (the role picks the model's prefix)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(role.encode())
    for text in texts:
        digest.update(len(text).to_bytes(8, "little"))
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def encode(
    model: SentenceTransformer,
    texts: Sequence[str],
    role: str,
    *,
    batch_size: int = 64,
    cache: bool = True,
    fingerprint: str | None = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings of `texts`, encoded as queries or passages (prefixes applied).

    With `cache`, a matching cache entry is returned without encoding anything.
    `fingerprint` is `model_fingerprint(model)`, when the caller already has it.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, not {role!r}")
    texts = list(texts)
    half, gpu_batch = gpu_encoding(model)
    key = (fingerprint or model_fingerprint(model)) + (f"-{half}" if half else "")
    path = cache_dir("embeddings") / f"{key}-{texts_fingerprint(texts, role)}.npy"
    if cache:
        found = _read(path, len(texts))
        if found is not None:
            return found
    fn = model.encode_query if role == "query" else model.encode_document
    dtype = torch.bfloat16 if half == "bf16" else torch.float16
    with torch.autocast("cuda", dtype=dtype) if half else contextlib.nullcontext():
        vectors = fn(
            texts,
            batch_size=max(batch_size, gpu_batch),
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=interactive(),  # a bar over the batches in a terminal or notebook
        )
    vectors = vectors.astype(np.float32, copy=False)
    bad = int((~np.isfinite(vectors).all(axis=1)).sum()) if vectors.size else 0
    if bad:
        raise NonFiniteError(
            f"the model gave NaN or infinite embeddings for {bad} of {len(texts)} {role} texts, so they cannot be "
            "scored; its weights are broken (a training run that diverged?): retrain it with a lower "
            "training.learning_rate"
        )
    if cache:
        _write(path, vectors)
    return vectors


def gpu_encoding(model: SentenceTransformer) -> tuple[str, int]:
    """("bf16" or "fp16", batch size) for a model on a GPU: half-precision autocast and batches of
    256 (sentence-transformers sorts texts by length, so padding stays small); ("", 0) elsewhere.
    Half-precision embeddings are cached apart from fp32 ones (the tag joins the cache key)."""
    if model.device.type != "cuda":
        return "", 0
    return ("bf16" if torch.cuda.is_bf16_supported() else "fp16"), 256


def _read(path: Path, n: int) -> np.ndarray | None:
    """The cached array if present, complete and intact; a bad entry is deleted."""
    meta_path = path.with_suffix(".json")
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
            raise ValueError("checksum mismatch")
        vectors = np.load(path, allow_pickle=False)
        if vectors.shape[0] != n or vectors.dtype != np.float32:
            raise ValueError("shape mismatch")
        return vectors
    except (OSError, ValueError, KeyError):
        path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
        return None


def _write(path: Path, vectors: np.ndarray) -> None:
    """Write array then its checksum record, each atomically; the record is the commit point."""
    digest: list[str] = []

    def save(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, vectors, allow_pickle=False)
        digest.append(hashlib.sha256(Path(tmp).read_bytes()).hexdigest())

    write_atomic(path, save)
    write_text(path.with_suffix(".json"), json.dumps({"sha256": digest[0], "shape": list(vectors.shape)}))
