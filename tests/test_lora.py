"""LoRA (`training.lora`): real me5-small runs on XQuAD (CPU, a few steps), the adapter saved, reloaded and scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import write_experiment
from safetensors.torch import load_file

from hbnb import experiment, models
from hbnb.errors import ModelNotFoundError, ParamsError
from hbnb.evaluation import evaluate
from hbnb.training import load_params, train
from hbnb.training import trainer as training

TEXTS = ["query: Wer gewann den Super Bowl 50?", "passage: The Denver Broncos defeated the Carolina Panthers."]
LORA = {"r": 4, "alpha": 8, "dropout": 0.1}


def write_params(folder: Path, **overrides) -> Path:
    """A tiny me5-small LoRA run: 2 steps of 4 pairs in en and de, texts cut at 16 tokens, a checkpoint every step."""
    params = {
        "model": "me5-small",
        "data": "xquad",
        "output_dir": str(folder / "run"),
        "max_steps": 2,
        "max_seq_length": 16,
        "learning_rate": 1e-3,
        "save_steps": 1,
        "report_to": "none",
        "lora": LORA,
        "batching": {"strategy": "hybrid", "languages": ["en", "de"], "batch_size": 4},
    }
    params.update(overrides)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def train_keeping_the_model(params: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, object]:
    """Train, and keep the trained model as it was in memory when the run saved it."""
    kept = {}
    finish = training._finish

    def keep(trainer, *args):
        kept["model"] = trainer.model
        return finish(trainer, *args)

    monkeypatch.setattr(training, "_finish", keep)
    return train(load_params(params)), kept["model"]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> tuple[Path, object]:
    """One LoRA run: (its folder, the trained model in memory)."""
    folder = tmp_path_factory.mktemp("lora")
    with pytest.MonkeyPatch.context() as monkeypatch:
        final, model = train_keeping_the_model(write_params(folder), monkeypatch)
    return final.parent, model


def test_a_lora_run_saves_an_adapter_that_reloads_and_scores_as_the_trained_model(lora_run) -> None:
    out, trained = lora_run
    final = out / "model"
    # the folder holds the adapter alone (no copy of the base weights), as sentence-transformers saves it
    assert (final / "adapter_config.json").is_file() and not (final / "model.safetensors").exists()
    config = json.loads((final / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["lora_dropout"]) == (4, 8, 0.1)
    assert sorted(config["target_modules"]) == ["query", "value"]  # peft's default for BERT-like models
    assert Path(config["base_model_name_or_path"]).is_dir()
    weights = load_file(final / "adapter_model.safetensors")
    assert weights and all(".lora_A." in k or ".lora_B." in k for k in weights)
    assert len(weights) == 2 * 2 * 12  # A and B, query and value, 12 layers
    assert all(v.abs().max() > 0 for k, v in weights.items() if ".lora_B." in k)  # B starts at zero: it trained
    run = json.loads((out / "run.json").read_text())
    assert run["lora"]["target_modules"] == ["query", "value"] and run["lora"]["r"] == 4
    assert run["lora"]["trainable_parameters"] == sum(v.numel() for v in weights.values())
    assert yaml.safe_load((out / "params.yaml").read_text())["lora"] == {**LORA, "target_modules": None}

    reloaded = models.load(str(final))
    mine = trained.encode(TEXTS)
    np.testing.assert_allclose(reloaded.encode(TEXTS), mine, atol=1e-5)
    with trained[0].model.disable_adapter():  # without the adapter: me5-small as it was
        assert np.abs(trained.encode(TEXTS) - mine).max() > 1e-4
    small = {"langs": ["en", "de"], "candidates": "sentence", "max_items": 20, "n_resamples": 100, "cache": False}
    scored = evaluate(reloaded, "xquad-r", **small).summary()
    assert 0.3 < scored["mono_map"] <= 1 and 0.3 < scored["cross_map"] <= 1  # 20 candidates: chance is far lower


def test_a_resumed_lora_run_ends_where_the_uninterrupted_one_did(lora_run, tmp_path: Path) -> None:
    out, _ = lora_run
    resumed = tmp_path / "run"
    shutil.copytree(out, resumed)  # then cut it off after step 1
    for gone in ("checkpoint-2", "model"):
        shutil.rmtree(resumed / gone)
    (resumed / "run.json").unlink()
    final = train(load_params(write_params(tmp_path)))
    assert json.loads((resumed / "run.json").read_text())["resumed_from"].endswith("checkpoint-1")
    straight = load_file(out / "model" / "adapter_model.safetensors")
    again = load_file(final / "adapter_model.safetensors")
    assert again.keys() == straight.keys()
    for name, weights in straight.items():  # the adapter and optimizer state came back from checkpoint-1
        np.testing.assert_allclose(again[name].numpy(), weights.numpy(), atol=1e-6, err_msg=name)


def test_other_lora_settings_are_another_run(lora_run, tmp_path: Path) -> None:
    out, _ = lora_run
    with pytest.raises(ParamsError, match="holds a run with other parameters"):
        train(load_params(write_params(out.parent, lora={**LORA, "r": 8})))
    with pytest.raises(ParamsError, match="holds a run with other parameters"):
        train(load_params(write_params(out.parent, lora=None)))


def test_lora_is_refused_for_use_m_and_for_modules_the_model_lacks(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="use-m is hbnb's own port"):
        load_params(write_params(tmp_path, model="use-m"))
    with pytest.raises(ParamsError, match=r"run strategy-x-x.*\n  model: 'use-m': training.lora is set"):
        experiment.runs(experiment.load(write_experiment(tmp_path, "uselora", **{"training.lora": {"r": 4}})))
    with pytest.raises(ParamsError, match=r"lora\.r"):
        load_params(write_params(tmp_path, lora={"r": 0}))
    with pytest.raises(ParamsError, match=r"lora\.dropout"):
        load_params(write_params(tmp_path, lora={"dropout": 1.0}))
    with pytest.raises(ParamsError, match="layer-truncated base"):
        load_params(write_params(tmp_path, model="me5-small:layers=2"))
    with pytest.raises(ParamsError, match=r"target_modules = \['qkv'\].*linear modules are: .*query.*value"):
        train(load_params(write_params(tmp_path, lora={"target_modules": ["qkv"]})))


def test_an_adapter_whose_base_model_is_gone_is_refused_by_name(lora_run, tmp_path: Path) -> None:
    out, _ = lora_run
    moved = tmp_path / "adapter"
    shutil.copytree(out / "model", moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "no-such-base")
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelNotFoundError, match="base_model_name_or_path"):
        models.load(str(moved))
