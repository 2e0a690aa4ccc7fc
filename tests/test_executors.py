"""`hbnb run --executor local --jobs N` and `--executor slurm` (submitit): real worker processes
and jobs, real papermill kernels. Most tests swap the stage notebooks (HBNB_NOTEBOOKS) for
notebooks that only write a stage's outputs and a trace line (when, which process, which GPU),
so the scheduling is tested in seconds; the slow test runs the real tiny experiment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import TINY, write_experiment

from hbnb.errors import HbnbError, ParamsError
from hbnb.experiment import pipeline
from hbnb.experiment.executors import engine, tasks

# what each stand-in notebook writes: the outputs `hbnb run` checks for each kind of stage
OUTPUTS = {
    "01_data.ipynb": "Path(out_dir, 'data.json').write_text('{}')",
    "02_train.ipynb": "train = Path(params_path).parent / 'train'\n"
    "(train / 'model').mkdir(parents=True, exist_ok=True)\n"
    "(train / 'model' / 'modules.json').write_text('[]')\n"
    "(train / 'run.json').write_text('{}')",
    "03_evaluate.ipynb": "for d in datasets:\n"
    "    Path(out_dir, d).mkdir(parents=True, exist_ok=True)\n"
    "    Path(out_dir, d, 'metrics.parquet').write_text('')",
    "04_report.ipynb": "Path('summary.csv').write_text('')",
}
PARAMETERS = {
    "01_data.ipynb": "params_path = ''\nout_dir = ''",
    "02_train.ipynb": "params_path = ''\nkeep_checkpoints = False",
    "03_evaluate.ipynb": "out_dir = ''\ndatasets = []",
    "04_report.ipynb": "experiment_dir = ''",
}


def _stand_ins(folder: Path) -> Path:
    """Stage notebooks that sleep $HBNB_TEST_SLEEP_<KIND> seconds, write their outputs and a trace line."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, outputs in OUTPUTS.items():
        kind = name[3:-6]
        body = (
            "import json, os, time\nfrom pathlib import Path\n"
            f"kind = {kind!r}\nwhere = os.getcwd()\n"
            "def trace(event):\n"
            "    line = dict(kind=kind, folder=Path(where).name, event=event, time=time.time(), pid=os.getpid(),\n"
            "                worker=os.getppid(), gpu=os.environ.get('CUDA_VISIBLE_DEVICES'))\n"
            "    with open(os.environ['HBNB_TEST_TRACE'], 'a') as f:\n"
            "        f.write(json.dumps(line) + '\\n')\n"
            "trace('start')\n"
            f"time.sleep(float(os.environ.get('HBNB_TEST_SLEEP_{kind.upper()}', '0.3')))\n"
            f"{outputs}\n"
            "trace('end')\n"
        )
        parameters = nbformat.v4.new_code_cell(PARAMETERS[name], metadata={"tags": ["parameters"]})
        notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(body)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, folder / name)
    return folder


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The trace file the stand-in notebooks append to (they and every worker see the variables)."""
    monkeypatch.setenv("HBNB_NOTEBOOKS", str(_stand_ins(tmp_path / "notebooks")))
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("HBNB_TEST_TRACE", str(trace))
    return trace


def _trace(path: Path) -> pd.DataFrame:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    frame = pd.DataFrame(lines)
    return frame.pivot_table(index=["kind", "folder"], columns="event", values="time", aggfunc="max").join(
        frame[frame.event == "start"].set_index(["kind", "folder"])[["pid", "worker", "gpu"]]
    )


def _experiment(tmp_path: Path, name: str, **changes) -> Path:
    # two runs (x-x, hybrid) and the baseline: 7 stages in 5 tasks
    return write_experiment(tmp_path, name, **changes)


def test_stages_are_grouped_one_task_per_run() -> None:
    from hbnb import experiment

    params = experiment.load(TINY)
    stages = pipeline.plan(params, TINY, Path("/tmp/reports"))
    grouped = {t.name: (t.keys, sorted(t.depends)) for t in tasks(stages)}
    assert grouped == {
        "data": (["data"], []),
        "baseline-use-m": (["evaluate/baseline-use-m"], ["data"]),
        "strategy-x-x": (["train/strategy-x-x", "evaluate/strategy-x-x"], ["data"]),
        "strategy-hybrid": (["train/strategy-hybrid", "evaluate/strategy-hybrid"], ["data"]),
        "report": (["report"], ["evaluate/baseline-use-m", "evaluate/strategy-hybrid", "evaluate/strategy-x-x"]),
    }


def test_local_workers_run_independent_runs_at_once_one_gpu_each(stand_ins: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # two GPUs by name: each worker must see one
    monkeypatch.setenv("HBNB_TEST_SLEEP_TRAIN", "4")
    lines: list[str] = []
    index = pipeline.run(_experiment(tmp_path, "pool"), tmp_path / "reports", echo=lines.append, jobs=None)
    assert index.is_file() and lines[0] == "experiment pool: 5 tasks on 2 local workers on GPUs 3,5"
    t = _trace(stand_ins)
    assert len(t) == 7
    data_end = t.loc[("data", "data"), "end"]
    assert (t.drop(("data", "data")).start > data_end).all()  # everything reads the data
    report_start = t.loc[("report", "report"), "start"]
    assert (t[t.index.get_level_values(0) == "evaluate"].end < report_start).all()  # the report reads them all
    xx, hybrid = t.loc[("train", "strategy-x-x")], t.loc[("train", "strategy-hybrid")]
    assert xx.start < hybrid.end and hybrid.start < xx.end  # the two runs trained at the same time
    assert xx.worker != hybrid.worker and {xx.gpu, hybrid.gpu} == {"3", "5"}
    for run in ("strategy-x-x", "strategy-hybrid"):  # a run's evaluation follows its training in its worker
        assert t.loc[("evaluate", run), "worker"] == t.loc[("train", run), "worker"]
        assert t.loc[("evaluate", run), "start"] > t.loc[("train", run), "end"]
    assert t.loc[("evaluate", "baseline-use-m"), "gpu"] in {"3", "5"}
    lines.clear()
    pipeline.run(_experiment(tmp_path, "pool"), tmp_path / "reports", echo=lines.append, jobs=2)
    assert sum("done earlier, skipped" in line for line in lines) == 7


def test_one_worker_is_this_process_with_one_line_per_stage(stand_ins: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    lines: list[str] = []
    pipeline.run(_experiment(tmp_path, "inline"), tmp_path / "reports", echo=lines.append)
    assert [line.split(" in ")[0] for line in lines[:2]] == [
        "[1/7] data: finished",
        "[2/7] evaluate/baseline-use-m: finished",
    ]
    t = _trace(stand_ins)
    assert t.worker.nunique() == 1 and t.worker.iloc[0] == os.getpid()


def test_a_killed_worker_fails_the_sweep_and_the_rerun_resumes(stand_ins: Path, tmp_path: Path) -> None:
    path = _experiment(tmp_path, "killed")
    reports = tmp_path / "reports"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HBNB_TEST_SLEEP_TRAIN": "60"}
    command = [sys.executable, "-m", "hbnb", "run", str(path), "--reports", str(reports), "--jobs", "2"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        starts = stand_ins.read_text().count('"kind": "train", ') if stand_ins.exists() else 0
        if starts >= 2:
            break
        time.sleep(0.2)
    victim = json.loads([line for line in stand_ins.read_text().splitlines() if '"train"' in line][0])
    os.kill(victim["worker"], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "a local worker process running train/" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    t = _trace(stand_ins)
    assert "end" not in t.columns or pd.isna(t.loc[("train", victim["folder"]), "end"])
    env["HBNB_TEST_SLEEP_TRAIN"] = "0.3"
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "[1/7] data: done earlier, skipped" in again.stdout
    assert "[2/7] evaluate/baseline-use-m: done earlier, skipped" in again.stdout
    assert (reports / "killed" / "report" / "summary.csv").is_file()
    assert (reports / "killed" / victim["folder"] / "train" / "run.json").is_file()


def test_slurm_executor_submits_one_submitit_job_per_run(stand_ins: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    # submitit's local engine stands in for Slurm: the same jobs, as processes on this machine
    path = _experiment(tmp_path, "jobs", cluster={"engine": "local", "gpus_per_job": 0, "time_min": 10})
    lines: list[str] = []
    pipeline.run(path, tmp_path / "reports", echo=lines.append, executor="slurm")
    assert lines[0].startswith("experiment jobs: 5 tasks on local jobs (logs in ")
    t = _trace(stand_ins)
    assert t.worker.nunique() == 5 and os.getpid() not in set(t.worker)  # one job per task, none here
    for run in ("strategy-x-x", "strategy-hybrid"):
        assert t.loc[("evaluate", run), "worker"] == t.loc[("train", run), "worker"]
    assert (t.drop(("data", "data")).start > t.loc[("data", "data"), "end"]).all()
    assert (t[t.index.get_level_values(0) == "evaluate"].end < t.loc[("report", "report"), "start"]).all()
    logs = list((tmp_path / "reports" / "jobs" / ".submitit").glob("*_log.out"))
    assert len(logs) == 5


def test_a_failing_job_names_its_stage_and_the_other_runs_finish(stand_ins: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    notebooks = Path(os.environ["HBNB_NOTEBOOKS"])
    train = nbformat.read(notebooks / "02_train.ipynb", as_version=4)
    train.cells[1].source = "import os\nif 'hybrid' in os.getcwd():\n    raise ValueError('no hybrid today')\n" + (
        train.cells[1].source
    )
    nbformat.write(train, notebooks / "02_train.ipynb")
    monkeypatch.setenv("HBNB_TEST_SLEEP_TRAIN", "2")
    path = _experiment(tmp_path, "fails")
    with pytest.raises(pipeline.StageFailed, match="stage train/strategy-hybrid failed: ValueError: no hybrid today"):
        pipeline.run(path, tmp_path / "reports", echo=lambda line: None, jobs=2)
    root = tmp_path / "reports" / "fails"
    assert (root / "strategy-x-x" / ".03_evaluate.done.json").is_file()  # the run started beside it finished
    assert not (root / "report" / ".04_report.done.json").exists()


def test_bad_executor_settings_give_one_error(tmp_path: Path) -> None:
    with pytest.raises(HbnbError, match="--jobs 0: give at least 1 worker"):
        engine("local", 0, None, tmp_path, (print, print))
    path = _experiment(tmp_path, "badcluster", cluster={"engine": "slurm", "time_min": 0})
    with pytest.raises(ParamsError, match=r"cluster.time_min: 0"):
        pipeline.run(path, tmp_path / "reports", executor="slurm")
    path = _experiment(tmp_path, "badflag")
    with pytest.raises(ParamsError, match=r"(?s)cluster: with the command's flags.*gpus_per_job: -1"):
        pipeline.run(path, tmp_path / "reports", executor="slurm", cluster={"gpus_per_job": -1})
    result = subprocess.run(
        [sys.executable, "-m", "hbnb", "run", str(path), "--executor", "pbs"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "invalid choice: 'pbs'" in result.stderr


@pytest.mark.slow
def test_two_workers_give_the_numbers_of_one(tiny, tmp_path: Path) -> None:
    """The real tiny experiment with two local workers: the same summary as in this process."""
    root, _, _ = tiny
    lines: list[str] = []
    index = pipeline.run(TINY, tmp_path / "reports", echo=lines.append, jobs=2)
    assert sum("finished in" in line for line in lines) == 7
    one = pd.read_csv(root / "report" / "summary.csv")
    two = pd.read_csv(index.parent / "report" / "summary.csv")
    pd.testing.assert_frame_equal(one, two)


@pytest.mark.slow
def test_a_job_with_two_processes_trains_its_run_with_torchrun(tmp_path: Path, monkeypatch) -> None:
    """`processes_per_run: 2` (on a cluster: `gpus_per_job: 2`): the job trains through torchrun (gloo on CPU)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    path = write_experiment(
        tmp_path,
        "ddp",
        baseline=False,
        cluster={"engine": "local", "gpus_per_job": 0, "processes_per_run": 2},
        **{"sweep": None, "data.evaluate": ["tatoeba"], "data.langs": {"tatoeba": ["de"]}, "training.max_steps": 4},
    )
    pipeline.run(path, tmp_path / "reports", echo=lambda line: None, executor="slurm")
    run = json.loads((tmp_path / "reports" / "ddp" / "run" / "train" / "run.json").read_text())
    assert run["processes"] == 2 and run["completed_steps"] == 4
    assert (tmp_path / "reports" / "ddp" / "report" / "summary.csv").is_file()
