"""The scheduler of `hbnb run`: which stages of an experiment to (re)do, started as tasks on an
engine (`hbnb.experiment.executors`) as soon as every stage they read is finished."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hbnb.cluster import ClusterParams
from hbnb.experiment.archive import set_aside_stale
from hbnb.experiment.executors import Engine, Inline, Task, engine, tasks
from hbnb.experiment.pipeline import (
    Stage,
    StageFailed,
    clock,
    fingerprint,
    finished_at,
    is_done,
    notebooks_dir,
    write_index,
)
from hbnb.files import write_text
from hbnb.params import ExperimentParams
from hbnb.progress import Steps


def drive(
    params: ExperimentParams,
    params_path: Path,
    root: Path,
    stages: list[Stage],
    executor: str,
    jobs: int | None,
    cluster: ClusterParams | None,
    echo: Callable[[str], None],
) -> Path:
    """Run the stages on the engine of `executor`/`jobs`/`cluster`; returns the index page.

    `echo` gets one line per stage (finished, skipped) and a few about the experiment; where
    someone watches (`hbnb.progress.interactive`), a bar below them names the running stage
    ("run 2/3: train/strategy-hybrid") and shows elapsed<remaining over the stages to run.
    """
    start = time.perf_counter()
    labels = {s.key: f"[{i}/{len(stages)}] {s.key}" for i, s in enumerate(stages, 1)}
    descriptions = described(stages)
    progress = Steps(len(stages), echo)
    began: dict[str, float] = {}

    def running(stage: Stage) -> None:
        began[stage.key] = time.perf_counter()
        progress.start(stage.key, descriptions[stage.key])

    def finished(stage: Stage) -> None:
        took = time.perf_counter() - began.pop(stage.key, time.perf_counter())
        progress.finish(stage.key, _finished_line(labels[stage.key], took, start))

    runner = engine(executor, jobs, cluster, root, (running, finished))
    try:
        return _drive(params, params_path, root, stages, runner, progress, start, labels, descriptions)
    finally:
        runner.close()
        progress.close()


def _finished_line(label: str, seconds: float, start: float) -> str:
    """The one line a finished stage gets: how long it took, and how long the experiment has run."""
    return f"{label}: finished in {clock(seconds)} ({clock(time.perf_counter() - start)} elapsed)"


def described(stages: list[Stage]) -> dict[str, str]:
    """What the progress bar says while each stage runs: which run of how many, and the stage."""
    runs = {s.key.partition("/")[2]: i for i, s in enumerate([s for s in stages if s.key.startswith("train/")], 1)}
    out = {}
    for stage in stages:
        i = runs.get(stage.key.partition("/")[2])
        out[stage.key] = f"run {i}/{len(runs)}: {stage.key}" if i else stage.key
    return out


def _drive(
    params: ExperimentParams,
    params_path: Path,
    root: Path,
    stages: list[Stage],
    runner: Engine,
    progress: Steps,
    start: float,
    labels: dict[str, str],
    descriptions: dict[str, str],
) -> Path:
    """Start each task once what it reads is finished; after a failure start nothing new, let the
    running tasks finish, then raise the first failure."""
    notebooks = notebooks_dir()
    write_text(root / "params.yaml", params_path.read_text(encoding="utf-8"))
    fingerprints: dict[str, str] = {}
    for stage in stages:
        fingerprints[stage.key] = fingerprint(stage, fingerprints, notebooks)
    finished: dict[str, str] = {}  # when each stage's outputs were made: a stage redone makes its readers stale
    complete: set[str] = set()
    pending = tasks(stages)
    running: dict[Any, Task] = {}
    failures: list[str] = []
    if not isinstance(runner, Inline):
        progress.say(f"experiment {params.experiment}: {len(pending)} tasks on {runner.where}")
    try:
        while pending or running:
            for task in [t for t in pending if t.depends <= complete]:
                if failures or len(running) >= runner.slots:
                    break
                pending.remove(task)
                todo = _to_run(task, fingerprints, finished, labels, root, progress)
                if not todo:
                    complete.update(task.keys)
                    continue
                if not isinstance(runner, Inline):  # in this process, run_task says when each stage starts
                    progress.start(todo[0].key, descriptions[todo[0].key])
                work = Task(task.name, todo, task.depends)
                running[runner.submit(work, notebooks, fingerprints)] = task
                if isinstance(runner, Inline):
                    break  # it ran already: look again at what is ready
            if not running:
                if any(t.depends <= complete for t in pending) and not failures:
                    continue
                break
            runner.wait(list(running))
            for handle in [h for h in running if h.done()]:
                task = running.pop(handle)
                outcome = handle.outcome()
                for stage in task.stages:
                    if stage.key in outcome.seconds:
                        finished[stage.key] = finished_at(stage)
                        if not isinstance(runner, Inline):
                            line = _finished_line(labels[stage.key], outcome.seconds[stage.key], start)
                            progress.finish(stage.key, line)
                    progress.stop(stage.key)  # a stage the failure stopped leaves the bar
                if outcome.error is not None:
                    failures.append(outcome.error)
                else:
                    complete.update(task.keys)
    finally:
        index = write_index(root, stages)
    if failures:
        more = f" ({len(failures) - 1} more tasks failed; see {index})" if len(failures) > 1 else ""
        raise StageFailed(failures[0] + more)
    progress.say(f"experiment {params.experiment}: {index}")
    return index


def _to_run(
    task: Task,
    fingerprints: dict[str, str],
    finished: dict[str, str],
    labels: dict[str, str],
    root: Path,
    progress: Steps,
) -> list[Stage]:
    """The stages of `task` to (re)do: not done, or made before a stage they read was redone, or
    reading a stage of the task that runs. The others are skipped, with one line each."""
    todo: list[Stage] = []
    for stage in task.stages:
        fp = fingerprints[stage.key]
        made, done = finished_at(stage), is_done(stage, fp)
        redone = [d for d in stage.depends if finished.get(d, "") > made]
        label = labels[stage.key]
        if done and not redone and not any(d in {s.key for s in todo} for d in stage.depends):
            finished[stage.key] = made
            progress.skip(f"{label}: done earlier, skipped")
            continue
        if done and redone:
            progress.say(
                f"{label}: redoing it: {', '.join(redone)} {'was' if len(redone) == 1 else 'were'} redone since"
            )
        moved = set_aside_stale(stage, root)
        if moved is not None:
            progress.say(
                f"{label}: the earlier {stage.key} was made with other parameters; moved to "
                f"{moved.relative_to(root).as_posix()} (kept, not in the report)"
            )
        todo.append(stage)
    return todo
