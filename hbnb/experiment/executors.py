"""Where the stages of `hbnb run` execute: in this process, in local worker processes, or as
Slurm jobs, on existing engines (`concurrent.futures`, `submitit`).

The unit of work is a `Task`: a run's training and evaluation together (one job per run on a
cluster, one GPU allocation), or the data stage, a baseline evaluation, the report. The
scheduler in `hbnb.experiment.pipeline` starts a task once every stage it reads is finished;
an engine only runs the task's stages, in order, and says how it went. A stage's completion
record is still written last by the stage itself, so a killed worker or job loses only the
stage it was running, and the next `hbnb run` resumes there.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hbnb.cluster import ClusterParams
from hbnb.errors import HbnbError

if TYPE_CHECKING:
    from hbnb.experiment.pipeline import Stage

EXECUTORS = ("local", "slurm")


@dataclass(frozen=True)
class Task:
    """Stages that run one after another in one worker or job."""

    name: str
    stages: list[Stage]
    depends: frozenset[str]  # keys of stages outside the task that must be finished first

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.stages]

    @property
    def trains_or_evaluates(self) -> bool:
        return any(s.key.startswith(("train/", "evaluate/")) for s in self.stages)


def tasks(stages: Sequence[Stage]) -> list[Task]:
    """The stages grouped as they run: `train/X` with `evaluate/X`, every other stage alone."""
    groups: dict[str, list[Stage]] = {}
    for stage in stages:
        kind, _, name = stage.key.partition("/")
        groups.setdefault(name if kind in ("train", "evaluate") else stage.key, []).append(stage)
    out = []
    for name, members in groups.items():
        inside = {s.key for s in members}
        out.append(Task(name, members, frozenset(d for s in members for d in s.depends if d not in inside)))
    return out


@dataclass
class Outcome:
    """How a task went: the seconds of each stage it finished, and the error that stopped it."""

    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def run_task(
    stages: list[Stage],
    notebooks: Path,
    fingerprints: dict[str, str],
    processes: int = 1,
    echo: tuple[Callable[[Stage], None], Callable[[Stage], None]] | None = None,
) -> Outcome:
    """Execute `stages` in order in this process; stop at the first that fails (worker and job body).

    `echo`: called as each stage starts and finishes (in this process only: workers report back).
    """
    from hbnb.experiment.pipeline import execute

    outcome = Outcome()
    for stage in stages:
        if echo:
            echo[0](stage)
        began = time.perf_counter()
        try:
            execute(stage, notebooks, fingerprints[stage.key], processes=processes)
        except HbnbError as exc:
            outcome.error = str(exc)
            return outcome
        outcome.seconds[stage.key] = round(time.perf_counter() - began, 1)
        if echo:
            echo[1](stage)
    return outcome


class Handle(Protocol):
    def done(self) -> bool: ...

    def outcome(self) -> Outcome: ...


class Engine(Protocol):
    """Runs tasks; `slots` of them at once."""

    slots: int
    where: str  # for the progress lines, e.g. "2 local workers"

    def submit(self, task: Task, notebooks: Path, fingerprints: dict[str, str]) -> Handle: ...

    def wait(self, handles: Sequence[Handle]) -> None:
        """Return once at least one of `handles` is done."""

    def close(self) -> None: ...


@dataclass(eq=False)  # a handle is a dict key: hashed by identity
class _Done:
    result: Outcome

    def done(self) -> bool:
        return True

    def outcome(self) -> Outcome:
        return self.result


class Inline:
    """One stage after another in this process: `hbnb run` without an executor."""

    slots = 1
    where = "this process"

    def __init__(self, echo: tuple[Callable[[Stage], None], Callable[[Stage], None]]) -> None:
        self._echo = echo

    def submit(self, task: Task, notebooks: Path, fingerprints: dict[str, str]) -> Handle:
        return _Done(run_task(task.stages, notebooks, fingerprints, echo=self._echo))

    def wait(self, handles: Sequence[Handle]) -> None:
        return None

    def close(self) -> None:
        return None


def visible_gpus() -> list[str]:
    """This machine's GPUs as CUDA_VISIBLE_DEVICES names them (that variable if set, else torch's count)."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _claim_device(devices: Any) -> None:
    """Worker initializer: take one GPU (or none) for every stage this worker will run."""
    device = devices.get()
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device


@dataclass(eq=False)  # a handle is a dict key: hashed by identity
class _Future:
    future: Future
    task: Task

    def done(self) -> bool:
        return self.future.done()

    def outcome(self) -> Outcome:
        try:
            return self.future.result()
        except BrokenProcessPool:
            return Outcome(error=_died(self.task, "a local worker process"))
        except Exception as exc:  # raised by hbnb itself in the worker, outside any stage's notebook
            return Outcome(error=f"{', '.join(self.task.keys)} failed in a worker: {type(exc).__name__}: {exc}")


class LocalWorkers:
    """`--executor local --jobs N`: N worker processes (spawned, so no state leaks between tasks'
    parents); with GPUs, worker i sees GPU i mod G alone (CUDA_VISIBLE_DEVICES)."""

    def __init__(self, jobs: int, gpus: Sequence[str]) -> None:
        context = multiprocessing.get_context("spawn")
        devices = context.Queue()
        for i in range(jobs):
            devices.put(gpus[i % len(gpus)] if gpus else None)
        self.slots = jobs
        self.where = f"{jobs} local workers" + (f" on GPUs {','.join(gpus)}" if gpus else "")
        self._pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_claim_device, initargs=(devices,))

    def submit(self, task: Task, notebooks: Path, fingerprints: dict[str, str]) -> Handle:
        return _Future(self._pool.submit(run_task, task.stages, notebooks, fingerprints), task)

    def wait(self, handles: Sequence[Handle]) -> None:
        wait_futures([h.future for h in handles if isinstance(h, _Future)], return_when=FIRST_COMPLETED)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(eq=False)  # a handle is a dict key: hashed by identity
class _Job:
    job: Any  # submitit.Job
    task: Task

    def done(self) -> bool:
        return bool(self.job.done())

    def outcome(self) -> Outcome:
        try:
            return self.job.result()
        except Exception as exc:  # submitit's FailedJobError / UncompletedJobError: the job itself died
            first = str(exc).strip().splitlines()
            return Outcome(error=_died(self.task, f"job {self.job.job_id}", first[0] if first else type(exc).__name__))


class SubmititJobs:
    """`--executor slurm`: one submitit job per task (sbatch on Slurm; submitit's `local` engine runs
    the same jobs as processes on this machine). The `hbnb run` that submits them waits for them:
    it holds the experiment's lock and starts each task once what it reads is finished."""

    def __init__(self, cluster: ClusterParams, folder: Path) -> None:
        try:
            import submitit
        except ImportError:
            raise HbnbError("--executor slurm needs submitit: pip install submitit") from None
        self._cluster = cluster
        self._folder = folder
        self._executors: dict[int, Any] = {}
        self._submitit = submitit
        self.slots = cluster.max_jobs
        self.where = f"{cluster.engine} jobs (logs in {folder})"

    def _executor(self, gpus: int) -> Any:
        """A submitit executor asking for `gpus` GPUs (data and report jobs ask for none)."""
        if gpus not in self._executors:
            c = self._cluster
            executor = self._submitit.AutoExecutor(folder=self._folder, cluster=c.engine)
            options: dict[str, Any] = {"timeout_min": c.time_min, "gpus_per_node": gpus, "name": "hbnb"}
            if c.cpus_per_job is not None:
                options["cpus_per_task"] = c.cpus_per_job
            if c.mem_gb is not None:
                options["mem_gb"] = c.mem_gb
            if c.engine == "slurm":
                options["slurm_setup"] = list(c.setup)
                options["slurm_additional_parameters"] = dict(c.sbatch)
                if c.partition:
                    options["slurm_partition"] = c.partition
            elif c.engine == "local" and c.setup:
                options["local_setup"] = list(c.setup)
            executor.update_parameters(**options)
            self._executors[gpus] = executor
        return self._executors[gpus]

    def submit(self, task: Task, notebooks: Path, fingerprints: dict[str, str]) -> Handle:
        gpus = self._cluster.gpus_per_job if task.trains_or_evaluates else 0
        processes = self._cluster.processes_per_run or max(gpus, 1)
        executor = self._executor(gpus)
        job = executor.submit(run_task, task.stages, notebooks, fingerprints, processes)
        return _Job(job, task)

    def wait(self, handles: Sequence[Handle]) -> None:
        while not any(h.done() for h in handles):
            time.sleep(1.0)

    def close(self) -> None:
        return None


def _died(task: Task, what: str, why: str = "") -> str:
    return (
        f"{what} running {', '.join(task.keys)} ended before finishing it{f' ({why})' if why else ''}: killed, "
        f"out of memory or out of time. Finished stages are kept; run the same command again to resume."
    )


def engine(
    executor: str, jobs: int | None, cluster: ClusterParams | None, root: Path, echo: tuple[Callable, Callable]
) -> Engine:
    """The engine for `--executor` and `--jobs`: one local worker (or none given, without GPUs) is this
    process, which says when each stage starts and finishes through `echo`."""
    if executor not in EXECUTORS:
        raise HbnbError(f"--executor {executor!r} is not one of {', '.join(EXECUTORS)}")
    if executor == "slurm":
        if jobs is not None:
            cluster = (cluster or ClusterParams()).model_copy(update={"max_jobs": jobs})
        return SubmititJobs(cluster or ClusterParams(), root / ".submitit")
    gpus = visible_gpus()
    n = jobs if jobs is not None else max(len(gpus), 1)
    if n < 1:
        raise HbnbError(f"--jobs {n}: give at least 1 worker")
    return Inline(echo) if n == 1 else LocalWorkers(n, gpus)


def torchrun(params_path: Path, processes: int) -> None:
    """Train a run's parameters with `processes` DDP processes (torchrun) before its notebook shows it."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
    result = subprocess.run([*command, "-m", "hbnb", "train", str(params_path)], capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise HbnbError(f"torchrun with {processes} processes failed for {params_path}: {' | '.join(tail)}")
