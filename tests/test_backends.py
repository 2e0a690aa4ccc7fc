"""The OpenVINO encoding backend: me5-small's transformer converted once, cached, the same
embeddings and the same retrieval figures as torch; models it cannot run stay on torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hbnb import models
from hbnb.errors import UnknownNameError
from hbnb.evaluation import evaluate
from hbnb.evaluation.encoding import model_fingerprint
from hbnb.models.backends import OpenVINOForward, backend_of, with_backend

SPEC = "me5-small:layers=2"  # converts and encodes in seconds; the same graph as the full model
TEXTS = [
    "Wer hat die Relativitätstheorie entwickelt?",
    "Albert Einstein developed the theory of relativity in the early twentieth century.",
    "¿Cuál es la capital de Australia?",
    "Canberra est la capitale de l'Australie, pas Sydney.",
    "短い文",
    "A much longer passage " * 40,
]


def test_openvino_gives_torchs_embeddings_and_converts_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = models.load(SPEC)
    queries = reference.encode_query(TEXTS, normalize_embeddings=True)
    passages = reference.encode_document(TEXTS, normalize_embeddings=True)
    torch_key = model_fingerprint(reference)
    fast = with_backend(models.load(SPEC), "openvino", SPEC)
    assert isinstance(fast[0].auto_model, OpenVINOForward) and backend_of(fast) == "openvino-fp32"
    q = fast.encode_query(TEXTS, normalize_embeddings=True)
    p = fast.encode_document(TEXTS, normalize_embeddings=True)
    assert np.min(np.sum(q * queries, axis=1)) > 0.99999 and np.min(np.sum(p * passages, axis=1)) > 0.99999
    assert np.abs(q - queries).max() < 1e-4
    for text in (TEXTS[0], TEXTS[-1]):  # a batch of one: no padding, unlike the example it was traced with
        alone = fast.encode_query([text], normalize_embeddings=True)
        assert np.abs(alone - reference.encode_query([text], normalize_embeddings=True)).max() < 1e-4
    assert model_fingerprint(fast) != torch_key  # its embeddings are cached apart from torch's
    assert models.parameter_counts(fast) == models.parameter_counts(reference)

    import openvino

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again instead of reading the cache")

    monkeypatch.setattr(openvino, "convert_model", no_conversion)
    again = with_backend(models.load(SPEC), "openvino", SPEC)
    assert np.abs(again.encode_query(TEXTS, normalize_embeddings=True) - q).max() == 0


def test_the_same_retrieval_figures_as_torch() -> None:
    torch_result = evaluate(models.load(SPEC), "tatoeba", langs=["de"], cache=False, n_resamples=100)
    fast = with_backend(models.load(SPEC), "openvino", SPEC)
    ov_result = evaluate(fast, "tatoeba", langs=["de"], cache=False, n_resamples=100)
    assert ov_result.meta["backend"] == "openvino-fp32" and "backend" not in torch_result.meta
    for key, value in torch_result.summary().items():
        assert abs(ov_result.summary()[key] - value) <= 0.002, key


def test_use_m_stays_on_torch_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    model = with_backend(models.load("use-m"), "openvino", "use-m")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hbnb: backend openvino unavailable for use-m (")
    assert err[0].endswith("; encoding with torch") and backend_of(model) == "torch"
    with pytest.raises(UnknownNameError, match="backend 'onnx' is not one of torch, openvino, openvino-bf16"):
        with_backend(model, "onnx")


def test_hbnb_evaluate_takes_the_backend(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    command = [sys.executable, "-m", "hbnb", "evaluate", "--model", SPEC, "--data", "tatoeba", "--langs", "de"]
    result = subprocess.run([*command, "--out", str(out), "--backend", "openvino"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert '"backend": "openvino-fp32"' in (out / "meta.json").read_text()
    bad = subprocess.run([*command, "--out", str(out), "--backend", "tensorrt"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'tensorrt'" in bad.stderr
