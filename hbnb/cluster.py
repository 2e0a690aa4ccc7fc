"""The `cluster:` block of an experiment file: how `hbnb run --executor slurm` asks for its jobs.

Every key has a command-line flag of the same name that overrides it (`--partition`, ...).
The block changes where stages run, never what they compute: it is not part of any
stage's fingerprint, so moving a sweep between a laptop and a cluster redoes nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hbnb.schema import Params


class ClusterParams(Params):
    """One job per run (its training and evaluation), one for the data, each baseline and the report."""

    engine: Literal["slurm", "local", "debug"] = Field(
        "slurm",
        description="submitit's cluster: slurm (sbatch), local (each job a process on this machine, to try a "
        "setup) or debug (in this process, to step through a job)",
    )
    partition: str | None = Field(None, description="the Slurm partition (sbatch --partition)")
    time_min: int = Field(120, ge=1, le=60 * 24 * 30, description="each job's time limit in minutes")
    gpus_per_job: int = Field(
        1, ge=0, le=64, description="GPUs of each job that trains or evaluates; a run trains on all of them (torchrun)"
    )
    cpus_per_job: int | None = Field(None, ge=1, le=1024, description="CPU cores of each job")
    mem_gb: int | None = Field(None, ge=1, le=16_384, description="memory of each job in GB")
    sbatch: dict[str, str | int] = Field(
        default_factory=dict,
        description="further sbatch options without the dashes, e.g. {account: my-lab, qos: high}",
    )
    setup: list[str] = Field(
        default_factory=list,
        description="shell lines run before each job, e.g. 'module load cuda' or 'source .venv/bin/activate'",
    )
    processes_per_run: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="training processes of a run, started by torchrun (default: its GPUs, at least 1)",
    )
    max_jobs: int = Field(64, ge=1, le=10_000, description="jobs queued or running at once")
