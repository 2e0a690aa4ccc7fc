"""Experiment tracking (`training.report_to`) and the training progress: real use-m runs on XQuAD (CPU), few steps."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import write_experiment
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hbnb import experiment
from hbnb.errors import ParamsError
from hbnb.experiment import pipeline
from hbnb.training import load_params, train
from hbnb.training import trainer as training
from hbnb.training.tracking import TRACKERS


def write_params(folder: Path, **overrides) -> Path:
    """A tiny use-m run: 4 steps of 8 pairs in en and de, a checkpoint every 2."""
    params = {
        "model": "use-m",
        "data": "xquad",
        "output_dir": str(folder / "run"),
        "max_steps": 4,
        "learning_rate": 1e-4,
        "save_steps": 2,
        "freeze_word_embeddings": True,
        "batching": {"strategy": "hybrid", "languages": ["en", "de"], "batch_size": 8},
    }
    params.update(overrides)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def losses(event_file: Path) -> dict[int, float]:
    """The training losses TensorBoard holds in one event file, by step."""
    events = EventAccumulator(str(event_file))
    events.Reload()
    return {e.step: e.value for e in events.Scalars("train/loss")}


def test_tensorboard_by_default_logs_the_loss_in_the_run_folder_and_a_resumed_run_adds_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    monkeypatch.setenv("HBNB_PROGRESS", "1")  # a bar, as in a terminal
    out = tmp_path / "run"
    train(load_params(write_params(tmp_path)))
    err = capfd.readouterr().err
    assert "training: 100%" in err and "4/4" in err  # the bar, not a line per step
    run = json.loads((out / "run.json").read_text())
    assert run["report_to"] == ["tensorboard"]
    assert "report_to" not in yaml.safe_load((out / "params.yaml").read_text())  # left out when not set
    (first,) = sorted((out / "logs").glob("events.out.tfevents.*"))
    curve = {int(r["step"]): float(r["loss"]) for r in csv.DictReader((out / "loss.csv").open()) if r["loss"]}
    assert losses(first) == pytest.approx(curve) and sorted(curve) == [1, 2, 3, 4]
    assert not (out / "runs").exists()  # not transformers' own <output_dir>/runs/<time>_<host>

    # cut off after step 2: the rerun resumes from checkpoint-2 and writes steps 3 and 4 beside the first file
    for gone in ("checkpoint-4", "model"):
        shutil.rmtree(out / gone)
    (out / "run.json").unlink()
    train(load_params(write_params(tmp_path)))
    assert json.loads((out / "run.json").read_text())["resumed_from"].endswith("checkpoint-2")
    files = sorted((out / "logs").glob("events.out.tfevents.*"), key=lambda f: f.stat().st_mtime)
    assert len(files) == 2 and files[0] == first
    resumed = losses(files[1])
    assert sorted(resumed) == [3, 4]
    assert resumed == pytest.approx({s: curve[s] for s in (3, 4)}, rel=1e-4)  # the same batches, the same losses


def test_none_reports_nowhere_and_a_log_gets_lines_not_a_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("HBNB_PROGRESS", raising=False)  # pytest's captured stderr is no terminal
    out = tmp_path / "run"
    train(load_params(write_params(tmp_path, report_to="none")))
    captured = capfd.readouterr()
    assert "training:" not in captured.err and "step/s" not in captured.err
    lines = [line for line in captured.out.splitlines() if line.startswith("step ")]
    assert [line.split(" (")[0].rsplit(" ", 1)[0] for line in lines] == [f"step {k}/4: loss" for k in range(1, 5)]
    assert json.loads((out / "run.json").read_text())["report_to"] == []
    assert not (out / "logs").exists() and not (out / "runs").exists()

    # the trackers are not what a run trains: the finished run is found, not retrained nor refused
    monkeypatch.setattr(training, "_run_trainer", lambda *a: pytest.fail("retrained a finished run"))
    assert train(load_params(write_params(tmp_path, report_to=["tensorboard"]))) == out / "model"
    with pytest.raises(ParamsError, match="holds a run with other parameters"):
        train(load_params(write_params(tmp_path, report_to="none", learning_rate=2e-4)))


def test_a_tracker_that_is_not_installed_is_refused_before_training(tmp_path: Path) -> None:
    absent = [name for name, package in TRACKERS.items() if importlib.util.find_spec(package) is None]
    if not absent:
        pytest.skip("every tracker is installed here")
    with pytest.raises(ParamsError, match=rf"pip install {TRACKERS[absent[0]]}") as error:
        train(load_params(write_params(tmp_path, report_to=[absent[0]])))
    assert "training.report_to" in str(error.value)
    assert not (tmp_path / "run").exists()  # refused before the run's folder was made


def test_unknown_trackers_are_refused_with_the_allowed_names(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"report_to.*'tensorboard', 'trackio', 'wandb', 'mlflow' or 'none'"):
        load_params(write_params(tmp_path, report_to=["tensorbord"]))
    with pytest.raises(ParamsError, match="'none' reports to no tracker"):
        load_params(write_params(tmp_path, report_to=["none", "tensorboard"]))
    assert load_params(write_params(tmp_path, report_to="tensorboard")).report_to == ["tensorboard"]


def test_trackers_leave_the_stage_fingerprints_and_lora_changes_the_training_ones(tmp_path: Path) -> None:
    notebooks = pipeline.notebooks_dir()

    def prints(path: Path) -> dict[str, str]:
        out: dict[str, str] = {}
        for stage in pipeline.plan(experiment.load(path), path, tmp_path):
            out[stage.key] = pipeline.fingerprint(stage, out, notebooks)
        return out

    base = prints(write_experiment(tmp_path, "fp", model="me5-small"))
    assert (
        prints(write_experiment(tmp_path, "fp", model="me5-small", **{"training.report_to": ["tensorboard"]})) == base
    )
    lora = prints(write_experiment(tmp_path, "fp", model="me5-small", **{"training.lora": {"r": 4}}))
    assert {k for k in base if base[k] != lora[k]} == {
        "train/strategy-x-x",
        "train/strategy-hybrid",
        "evaluate/strategy-x-x",
        "evaluate/strategy-hybrid",
        "report",
    }
    with pytest.raises(ParamsError, match="sweep"):
        experiment.load(write_experiment(tmp_path, "fp", sweep={"training.report_to": [["tensorboard"], "none"]}))
