"""Faster CPU encoding: the transformer of a `SentenceTransformer` run by OpenVINO.

sentence-transformers' own `backend="openvino"` goes through optimum-intel, which does not
install beside transformers 5; OpenVINO's own converter (`openvino.convert_model`) takes the
torch module directly. Only the transformer's forward pass moves: tokenisation, pooling,
normalisation and the model's prompts stay sentence-transformers' own, so the model is still
a `SentenceTransformer` and `encode_query`/`encode_document` work as before.

Backends: `torch` (unchanged); `openvino` (fp32 inference: the same embeddings within float
rounding); `openvino-bf16` (bf16 inference where the CPU has it, e.g. AVX512-BF16 or AMX;
elsewhere OpenVINO runs fp32 and the model says so). The converted model is cached under
`~/.cache/hbnb/openvino/<model fingerprint>/`, so a model converts once. Models without a
Hugging Face transformer (use-m: its own numpy/torch graph) stay on torch, with one line
saying so.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import torch
from sentence_transformers import SentenceTransformer
from torch import nn

from hbnb.errors import UnknownNameError

BACKENDS = ("torch", "openvino", "openvino-bf16")
_PRECISION = {"openvino": "f32", "openvino-bf16": "bf16"}


class OpenVINOForward(nn.Module):
    """Stands in for a Hugging Face encoder inside sentence-transformers' `Transformer` module:
    same inputs, a `last_hidden_state` out, computed by a compiled OpenVINO model. The torch
    encoder stays registered (its weights still name the model: the embedding cache key)."""

    def __init__(self, compiled: Any, torch_model: nn.Module, precision: str) -> None:
        super().__init__()
        self.torch_model = torch_model
        self.config = torch_model.config
        self.precision = precision
        self._compiled = compiled
        self._inputs = [i.get_any_name() for i in compiled.inputs]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **features: Any) -> Any:
        from transformers.modeling_outputs import BaseModelOutput

        given = {"input_ids": input_ids, "attention_mask": attention_mask, **features}  # return_dict & co. unused
        feed = {name: given[name].cpu().numpy() for name in self._inputs}
        hidden = self._compiled(feed)[self._compiled.outputs[0]]
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden.copy()))


def with_backend(model: SentenceTransformer, backend: str, spec: str = "") -> SentenceTransformer:
    """`model` with its transformer run by `backend` (in place; returned for chaining).

    Falls back to torch with one line on stderr where the backend cannot run the model.
    """
    if backend not in BACKENDS:
        raise UnknownNameError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    if backend == "torch":
        return model
    transformer = model[0]
    encoder = getattr(transformer, "model", None)  # sentence-transformers' Transformer: its HF model
    if encoder is None or not hasattr(encoder, "config"):
        return _fallback(model, backend, spec, f"{type(transformer).__name__} is not a Hugging Face transformer")
    if isinstance(encoder, OpenVINOForward):
        encoder = encoder.torch_model
    try:
        import openvino as ov
    except ImportError:
        return _fallback(model, backend, spec, "openvino is not installed (pip install openvino)")
    compiled = ov.Core().compile_model(
        str(_converted(model, encoder, ov)), "CPU", {"INFERENCE_PRECISION_HINT": _PRECISION[backend]}
    )
    used = str(compiled.get_property("INFERENCE_PRECISION_HINT")).lower()
    transformer.model = OpenVINOForward(compiled, encoder, "bf16" if "bf16" in used else "fp32")
    model._hbnb_backend = f"openvino-{transformer.model.precision}"
    return model


def backend_of(model: SentenceTransformer) -> str:
    """What encodes with `model`: "torch", "openvino-fp32" or "openvino-bf16"."""
    return getattr(model, "_hbnb_backend", "torch")


def _converted(model: SentenceTransformer, encoder: nn.Module, ov: Any) -> Path:
    """The OpenVINO IR of `encoder`, converted once per model (keyed by its torch fingerprint)."""
    from hbnb.cache import cache_dir
    from hbnb.evaluation.encoding import model_fingerprint
    from hbnb.files import atomic_dir

    folder = cache_dir("openvino") / model_fingerprint(model)
    xml = folder / "model.xml"
    if xml.is_file() and (folder / "model.bin").is_file():
        return xml
    shutil.rmtree(folder, ignore_errors=True)  # a conversion left incomplete by hand: made again
    features = model.preprocess(["a short text", "a second, longer text"])
    example = {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}  # not the texts themselves
    with torch.no_grad():
        converted = ov.convert_model(encoder.eval(), example_input=example)
    with atomic_dir(folder) as tmp:
        ov.save_model(converted, str(Path(tmp) / "model.xml"), compress_to_fp16=False)
    return xml


def _fallback(model: SentenceTransformer, backend: str, spec: str, why: str) -> SentenceTransformer:
    name = spec or "this model"
    print(f"hbnb: backend {backend} unavailable for {name} ({why}); encoding with torch", file=sys.stderr)
    return model
