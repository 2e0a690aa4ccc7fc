"""`hbnb run`: parameter files, stage plan, papermill execution, resume, failure, lock, kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import TINY, write_experiment
from filelock import FileLock

from hbnb import experiment
from hbnb.experiment import pipeline
from hbnb.languages import PAPER_TRAINING_LANGUAGES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["demo.yaml", "paper-offline.yaml", "hub-example.yaml"])
def test_shipped_parameter_files_validate(name: str) -> None:
    params = experiment.load(ROOT / "params" / name)
    specs = experiment.runs(params)
    assert specs and all(s.train.batching.strategy in ("x-x", "x-y", "hybrid", "en-en") for s in specs)


def test_demo_plan() -> None:
    params = experiment.load(ROOT / "params" / "demo.yaml")
    stages = pipeline.plan(params, ROOT / "params" / "demo.yaml", Path("/tmp/reports"))
    keys = [s.key for s in stages]
    assert keys == [
        "data",
        "evaluate/baseline-use-m",
        "train/strategy-x-x",
        "evaluate/strategy-x-x",
        "train/strategy-x-y",
        "evaluate/strategy-x-y",
        "train/strategy-hybrid",
        "evaluate/strategy-hybrid",
        "report",
    ]
    langs = params.batching.languages
    assert set(PAPER_TRAINING_LANGUAGES) - set(langs) == {"hi"}  # the paper's languages that use-m covers


def test_paper_offline_grid() -> None:
    params = experiment.load(ROOT / "params" / "paper-offline.yaml")
    specs = experiment.runs(params)
    assert len(specs) == 2 * 2 * 3 * 3  # models x directions x strategies x seeds
    directions = {(s.data.train, tuple(s.data.evaluate)) for s in specs}
    assert directions == {("xquad", ("mlqa-r", "mlqa-r-paragraphs")), ("mlqa", ("xquad-r", "xquad-r-paragraphs"))}
    assert {s.name.split("_")[0] for s in specs} == {"xquad-to-mlqa", "mlqa-to-xquad"}
    assert len(experiment.baselines(params, specs)) == 4


def test_fingerprints_change_only_downstream_of_a_change(tmp_path: Path) -> None:
    notebooks = pipeline.notebooks_dir()

    def prints(path: Path) -> dict[str, str]:
        params = experiment.load(path)
        out: dict[str, str] = {}
        for stage in pipeline.plan(params, path, tmp_path):
            out[stage.key] = pipeline.fingerprint(stage, out, notebooks)
        return out

    base = prints(write_experiment(tmp_path, "fp"))
    report_only = prints(write_experiment(tmp_path, "fp", **{"report.n_resamples": 300}))
    changed = {k for k in base if base[k] != report_only[k]}
    assert changed == {"evaluate/baseline-use-m", "evaluate/strategy-x-x", "evaluate/strategy-hybrid", "report"}
    longer = prints(write_experiment(tmp_path, "fp", **{"training.max_steps": 7}))
    changed = {k for k in base if base[k] != longer[k]}
    assert changed == {
        "train/strategy-x-x",
        "evaluate/strategy-x-x",
        "train/strategy-hybrid",
        "evaluate/strategy-hybrid",
        "report",
    }


def test_malformed_parameter_file_gives_one_error_and_runs_nothing(tmp_path: Path) -> None:
    path = write_experiment(
        tmp_path,
        "bad",
        **{"batching.alpha": 3, "training.max_stepz": 5, "sweep": {"batching.strategy": ["x-x", "zigzag"]}},
    )
    reports = tmp_path / "reports"
    result = subprocess.run(
        [sys.executable, "-m", "hbnb", "run", str(path), "--reports", str(reports)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.count("hbnb: error:") == 1 and "Traceback" not in result.stderr
    assert str(path) in result.stderr and "training.max_stepz: unknown key" in result.stderr
    assert "batching.alpha: 3" in result.stderr
    assert not reports.exists()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hbnb",
            "run",
            str(write_experiment(tmp_path, "bad2", **{"sweep": {"batching.strategy": ["x-x", "zigzag"]}})),
            "--reports",
            str(reports),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (
        result.returncode == 2
        and "run strategy-zigzag" in result.stderr
        and "'zigzag' is not allowed" in result.stderr
    )
    assert not reports.exists()


def test_a_second_run_on_a_locked_folder_is_refused(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, "locked")
    folder = tmp_path / "reports" / "locked"
    folder.mkdir(parents=True)
    with FileLock(str(folder / ".lock")):
        with pytest.raises(pipeline.RunLockedError, match="being run by another `hbnb run`"):
            pipeline.run(path, tmp_path / "reports", echo=lambda line: None)
    assert not (folder / "data").exists()


@pytest.mark.slow
def test_every_stage_runs_and_the_report_compares_the_runs(tiny) -> None:
    root, lines, _ = tiny
    assert [line.split(":")[0] for line in lines if "finished" in line] == [
        "[1/7] data",
        "[2/7] evaluate/baseline-use-m",
        "[3/7] train/strategy-x-x",
        "[4/7] evaluate/strategy-x-x",
        "[5/7] train/strategy-hybrid",
        "[6/7] evaluate/strategy-hybrid",
        "[7/7] report",
    ]
    for page in (
        "data/01_data.html",
        "strategy-hybrid/02_train.html",
        "strategy-hybrid/03_evaluate.html",
        "baseline-use-m/03_evaluate.html",
        "report/04_report.html",
        "index.html",
    ):
        assert (root / page).stat().st_size > 1000, page
    summary = pd.read_csv(root / "report" / "summary.csv")
    assert set(summary.group) == {"baseline-use-m", "strategy-x-x", "strategy-hybrid"}
    assert set(summary.dataset) == {"mlqa-r", "tatoeba"} and (summary.n_seeds == 1).all()
    mono = summary[(summary.dataset == "mlqa-r") & (summary.figure == "monolingual mAP")]
    assert ((mono["mean"] > 0.3) & (mono.low < mono["mean"]) & (mono["mean"] < mono.high)).all()
    assert not list((root / "strategy-hybrid" / "train").glob("checkpoint-*"))  # cleaned after success
    assert json.loads((root / "strategy-hybrid" / "eval" / "info.json").read_text())["model"] == "use-m"
    report = (root / "report" / "04_report.html").read_text()
    assert report.count("data:image/png;base64,") >= 5 and "Traceback" not in report


@pytest.mark.slow
def test_rerun_skips_every_finished_stage(tiny) -> None:
    root, _, first = tiny
    lines: list[str] = []
    start = time.perf_counter()
    pipeline.run(TINY, root.parent, echo=lines.append)
    assert sum("done earlier, skipped" in line for line in lines) == 7
    assert time.perf_counter() - start < first / 3


@pytest.mark.slow
def test_a_stage_made_again_makes_the_stages_that_read_it_run_again(tiny) -> None:
    """Same parameters, new outputs (a run moved aside and retrained after a fix): its readers are stale."""
    root, _, _ = tiny
    record = root / "strategy-hybrid" / ".03_evaluate.done.json"
    done = json.loads(record.read_text())
    time.sleep(1)
    record.write_text(json.dumps({**done, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}))
    lines: list[str] = []
    pipeline.run(TINY, root.parent, echo=lines.append)
    assert sum("done earlier, skipped" in line for line in lines) == 6
    assert "[7/7] report: redoing it: evaluate/strategy-hybrid was redone since" in lines
    assert "[7/7] report: finished" in " ".join(lines)
    lines.clear()
    pipeline.run(TINY, root.parent, echo=lines.append)
    assert sum("done earlier, skipped" in line for line in lines) == 7


@pytest.mark.slow
def test_a_failing_stage_keeps_earlier_outputs_and_the_next_run_continues(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    broken = write_experiment(
        tmp_path,
        "fails",
        model="./no-such-model",
        **{"sweep": None, "data.evaluate": ["tatoeba"], "data.langs": {"tatoeba": ["de"]}},
    )
    lines: list[str] = []
    with pytest.raises(pipeline.StageFailed, match="stage evaluate/baseline-no-such-model failed: ModelNotFoundError"):
        pipeline.run(broken, reports, echo=lines.append)
    root = reports / "fails"
    assert (root / "data" / ".01_data.done.json").is_file()
    failed = root / "baseline-no-such-model" / "03_evaluate.html"
    assert "ModelNotFoundError" in failed.read_text()
    assert "failed" in (root / "index.html").read_text()
    fixed = write_experiment(
        tmp_path, "fails", **{"sweep": None, "data.evaluate": ["tatoeba"], "data.langs": {"tatoeba": ["de"]}}
    )
    lines.clear()
    pipeline.run(fixed, reports, echo=lines.append)
    assert lines[0] == "[1/5] data: done earlier, skipped"
    assert (root / "report" / "summary.csv").is_file()


@pytest.mark.slow
def test_killing_hbnb_run_during_training_then_rerunning_redoes_nothing_finished(tmp_path: Path) -> None:
    path = write_experiment(
        tmp_path,
        "killed",
        baseline=False,
        **{
            "sweep": None,
            "data.evaluate": ["tatoeba"],
            "data.langs": {"tatoeba": ["de"]},
            "training.max_steps": 40,
            "training.save_steps": 5,
        },
    )
    reports = tmp_path / "reports"
    train = reports / "killed" / "run" / "train"
    proc = subprocess.Popen(
        [sys.executable, "-m", "hbnb", "run", str(path), "--reports", str(reports)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while (
        not (train / "checkpoint-10" / "trainer_state.json").exists()
        and time.time() < deadline
        and proc.poll() is None
    ):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # hbnb run and its notebook kernel
    proc.wait()
    assert not (train / "run.json").exists(), "training finished before the kill"
    time.sleep(2)
    result = subprocess.run(
        [sys.executable, "-m", "hbnb", "run", str(path), "--reports", str(reports)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[1/4] data: done earlier, skipped" in result.stdout
    run = json.loads((train / "run.json").read_text())
    assert run["completed_steps"] == 40 and run["resumed_from"] is not None
    assert (reports / "killed" / "report" / "summary.csv").is_file()
