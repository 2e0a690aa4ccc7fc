"""Training through sentence-transformers with hbnb's sampler: real runs of use-m on XQuAD (CPU)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from hbnb.errors import ParamsError
from hbnb.languages import PAPER_TRAINING_LANGUAGES
from hbnb.training import TrainParams, load_params, train
from hbnb.training import trainer as training

PAPER_LANGS = list(PAPER_TRAINING_LANGUAGES)


def write_params(folder: Path, name: str = "params.yaml", **overrides) -> Path:
    """A small use-m hybrid run on XQuAD; `overrides` replace top-level keys."""
    params = {
        "model": "use-m",
        "data": "xquad",
        "output_dir": str(folder / "run"),
        "max_steps": 12,
        "learning_rate": 1e-4,
        "save_steps": 4,
        "freeze_word_embeddings": True,
        "batching": {"strategy": "hybrid", "languages": ["en", "de", "es", "ru"], "batch_size": 8},
    }
    params.update(overrides)
    path = folder / name
    path.write_text(yaml.safe_dump(params))
    return path


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hbnb", *args], capture_output=True, text=True, timeout=timeout)


def batch_log(out: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    return [(r["step"], r["rank"], r["kind"], r["lang"], tuple(sorted(r["pairs"].items()))) for r in rows]


def test_a_short_hybrid_run_lowers_the_validation_loss_and_records_everything(tmp_path: Path) -> None:
    params = load_params(
        write_params(
            tmp_path,
            max_steps=30,
            save_steps=10,
            batching={"strategy": "hybrid", "languages": PAPER_LANGS, "batch_size": 32},
            validation={"items": 200, "languages": ["en"], "every": 10},
        )
    )
    model_dir = train(params)
    out = tmp_path / "run"
    curve = list(csv.DictReader((out / "loss.csv").open()))
    assert [int(r["step"]) for r in curve] == list(range(31))
    evals = [float(r["eval_loss"]) for r in curve if r["eval_loss"]]
    assert len(evals) == 4  # before training, then every 10 steps
    assert min(evals[1:]) < evals[0] - 0.01, evals
    run = json.loads((out / "run.json").read_text())
    assert run["completed_steps"] == 30 and run["pairs_per_second"] > 0
    assert set(run["versions"]) == {"hbnb", "torch", "sentence-transformers", "transformers"}
    assert run["best_validation_loss"] == pytest.approx(min(evals[1:]))
    assert yaml.safe_load((out / "params.yaml").read_text())["batching"]["languages"] == PAPER_LANGS
    log = batch_log(out)
    assert [s for s, *_ in log] == list(range(1, 31))
    rows = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    times = [r["time"] for r in rows]  # when each step ended: the benchmarks' steady-state throughput
    assert times == sorted(times) and times[-1] - times[0] < run["wall_time_s"]
    # the tokens each batch put through the encoder: at least one per text, at most its padded length
    assert all(2 * r["size"] <= r["tokens"] <= 2 * r["size"] * 512 for r in rows)
    mix = json.loads((out / "batch_mix.json").read_text())
    assert mix["batches"] == 30 and 0 < mix["mono_share"] < 1
    assert sum(mix["examples_per_pair"].values()) == 30 * 32
    from hbnb.models import load

    reloaded = load(str(model_dir))
    assert reloaded.encode(["Wer gewann den Super Bowl?"]).shape == (1, 512)


def test_rerun_of_a_finished_run_returns_it_and_other_params_are_refused(tmp_path: Path, monkeypatch) -> None:
    first = train(load_params(write_params(tmp_path, max_steps=2, save_steps=2)))
    monkeypatch.setattr(training, "_run_trainer", lambda *a: pytest.fail("retrained a finished run"))
    assert train(load_params(write_params(tmp_path, max_steps=2, save_steps=2))) == first
    with pytest.raises(ParamsError, match="holds a run with other parameters"):
        train(load_params(write_params(tmp_path, name="other.yaml", max_steps=3, save_steps=3)))


def test_killed_run_resumes_to_the_configured_steps_with_the_same_batches(tmp_path: Path) -> None:
    params = write_params(tmp_path, max_steps=12, save_steps=4)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hbnb", "train", str(params)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not (out / "checkpoint-8").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "run.json").exists(), "the run finished before it could be killed"
    done = run_cli("train", str(params))
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["completed_steps"] == 12 and run["resumed_from"] is not None
    from hbnb.models import load

    assert load(str(out / "model")).encode(["hello"]).shape == (1, 512)
    # the same run, never interrupted, saw exactly the same batches
    straight = tmp_path / "straight"
    straight.mkdir()
    train(load_params(write_params(straight, max_steps=12, save_steps=4, output_dir=str(straight / "run"))))
    assert batch_log(out) == batch_log(straight / "run")


def test_two_processes_share_the_batch_kind_and_language_of_each_step(tmp_path: Path) -> None:
    # with code-switching and bitext on (en and de: WMT22 covers the pair), which DDP must carry too
    params = write_params(
        tmp_path,
        max_steps=8,
        save_steps=8,
        batching={"strategy": "hybrid", "languages": ["en", "de"], "batch_size": 8},
        code_switching={"sources": ["wmt22"], "rate": 0.5, "share": 0.5},
        bitext={"sources": ["wmt22"], "share": 0.3},
    )
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "hbnb", "train", str(params)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "run"
    assert json.loads((out / "run.json").read_text())["processes"] == 2
    log = batch_log(out)
    assert len(log) == 16
    by_step: dict[int, list[tuple]] = {}
    for step, rank, kind, lang, _ in log:
        by_step.setdefault(step, []).append((rank, kind, lang))
    assert sorted(by_step) == list(range(1, 9))
    for step, entries in by_step.items():
        assert sorted(r for r, _, _ in entries) == [0, 1]
        assert len({(kind, lang) for _, kind, lang in entries}) == 1, (step, entries)
    assert {"mono", "cross"} <= {kind for _, _, kind, _, _ in log} <= {"mono", "cross", "bitext"}
    mix = json.loads((out / "augmentation.json").read_text())
    assert mix["examples"] == 2 * 8 * 8 and mix["code_switching"]["examples_switched"] > 0
    assert mix["bitext"]["batches_with_a_repeated_sentence"] == 0


@pytest.mark.parametrize(
    ("batching", "message"),
    [
        (
            {"strategy": "mixed"},
            "batching.strategy: 'mixed' is not allowed; allowed: 'x-x', 'x-y', 'hybrid', 'en-en' or 'random'",
        ),
        ({"alpha": 1.5}, "batching.alpha: 1.5: Input should be less than or equal to 1"),
        ({"languages": ["en", "ro"]}, "batching.languages has 'ro', absent from xquad; allowed: ar, de"),
        (
            {"languages": ["en", "de"], "pairs": ["en-fr"]},
            "batching.pairs names 'en-fr', but 'fr' is not a training language",
        ),
        ({"batch_size": 5000}, "batching.batch_size = 5000 is larger than the 1190 usable items of xquad"),
        ({"strategy": "x-y", "languages": ["de"]}, "'x-y' needs at least 2 training languages"),
    ],
)
def test_bad_parameters_are_refused_before_any_model_is_loaded(tmp_path: Path, monkeypatch, batching, message) -> None:
    import hbnb.models

    monkeypatch.setattr(hbnb.models, "load", lambda *a, **k: pytest.fail("loaded a model for bad parameters"))
    path = write_params(tmp_path, batching={"languages": ["en", "de"], **batching})
    with pytest.raises(ParamsError) as err:
        train(load_params(path))
    assert message in str(err.value)
    assert not (tmp_path / "run" / "checkpoint-4").exists()


def test_cli_reports_bad_parameter_files_in_one_line(tmp_path: Path) -> None:
    path = write_params(tmp_path, learning_rate=-1, max_step=10)
    result = run_cli("train", str(path))
    assert result.returncode == 2
    assert f"{path}: 2 invalid parameter(s)" in result.stderr
    assert "learning_rate: -1" in result.stderr and "max_step: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_save_steps_must_fit_the_validation_interval(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"save_steps \(5\) must be a multiple of validation.every \(2\)"):
        load_params(write_params(tmp_path, save_steps=5, validation={"every": 2}))
    assert isinstance(load_params(write_params(tmp_path, save_steps=4, validation={"every": 2})), TrainParams)


def test_same_parameters_give_the_same_model(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    weights = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        train(load_params(write_params(folder, max_steps=6, save_steps=6)))
        weights.append(load_file(folder / "run" / "model" / "model.safetensors"))
        assert (folder / "run" / "loss.csv").read_text() == (tmp_path / "a" / "run" / "loss.csv").read_text()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])
