"""`training.bf16` resolved against the device: bf16, fp16 or fp32, and TF32 where a GPU has it."""

from __future__ import annotations

import pytest
import torch

from hbnb.training.precision import mixed_precision, precision_name


def _gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


def test_auto_on_this_cpu_is_fp32() -> None:
    assert not torch.cuda.is_available()  # the tests' machine; a GPU machine is covered below
    assert mixed_precision("auto") == {"bf16": False, "fp16": False, "tf32": None}
    assert precision_name(mixed_precision("auto")) == "fp32"
    # asked for: CPU autocast (the trainer wants use_cpu for it)
    assert mixed_precision(True) == {"bf16": True, "fp16": False, "tf32": None, "use_cpu": True}


@pytest.mark.parametrize(
    ("capability", "bf16", "expected"),
    [((9, 0), True, "bf16+tf32"), ((8, 0), True, "bf16+tf32"), ((7, 0), False, "fp16"), ((6, 1), False, "fp16")],
)
def test_auto_on_a_gpu_picks_what_it_has(monkeypatch, capability, bf16, expected) -> None:
    _gpu(monkeypatch, capability, bf16)
    settings = mixed_precision("auto")
    assert precision_name(settings) == expected
    assert not (settings["bf16"] and settings["fp16"])
    assert precision_name(mixed_precision(False)) == ("fp32+tf32" if capability[0] >= 8 else "fp32")


def test_encoding_is_half_precision_in_large_batches_on_a_gpu_only(monkeypatch) -> None:
    from types import SimpleNamespace

    from hbnb.evaluation.encoding import gpu_encoding

    assert gpu_encoding(SimpleNamespace(device=torch.device("cpu"))) == ("", 0)
    on_gpu = SimpleNamespace(device=torch.device("cuda", 0))
    _gpu(monkeypatch, (9, 0), True)
    assert gpu_encoding(on_gpu) == ("bf16", 256)
    _gpu(monkeypatch, (7, 0), False)
    assert gpu_encoding(on_gpu) == ("fp16", 256)


def test_bf16_asked_for_on_a_cpu_trains_with_autocast(tmp_path) -> None:
    import json

    from hbnb.params import TrainParams
    from hbnb.training import train

    params = TrainParams.model_validate(
        {
            "model": "me5-small:layers=2",
            "data": "xquad",
            "output_dir": str(tmp_path / "run"),
            "max_steps": 3,
            "save_steps": 3,
            "bf16": True,
            "batching": {"strategy": "hybrid", "languages": ["en", "de"], "batch_size": 8},
        }
    )
    train(params)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["precision"] == "bf16" and run["completed_steps"] == 3
    losses = [float(line.split(",")[1]) for line in (tmp_path / "run" / "loss.csv").read_text().splitlines()[2:]]
    assert losses and all(0 < x < 10 for x in losses)
