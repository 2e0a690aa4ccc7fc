"""Typed, validated parameters: one object per experiment stage, loaded from YAML.

Every model forbids unknown keys. `load_yaml` turns pydantic's validation errors into
one `ParamsError` that names the file, the key, the bad value and what is allowed.
This module holds the experiment file (`ExperimentParams`); a training run's blocks are
`hbnb.params.training` (with `mining` and `lora`), re-exported here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from hbnb.cluster import ClusterParams
from hbnb.codeswitch.params import BitextParams, CodeSwitchingParams, TextSource
from hbnb.data.aligned import AlignedData
from hbnb.evaluation import tasks
from hbnb.params.lora import LoraParams
from hbnb.params.mining import MiningParams
from hbnb.params.training import (
    BatchingParams,
    TrainingParams,
    TrainParams,
    ValidationParams,
)
from hbnb.schema import (
    MAX_COUNT,
    MAX_SEED,
    Params,
    check_sweep,
    drop_false,
    format_errors,
    load_yaml,
    validate,
)

__all__ = [  # the schema every stage reads; the base and the YAML reader re-exported from hbnb.schema
    "AlignedData",
    "BatchingParams",
    "BitextParams",
    "CodeSwitchingParams",
    "DataParams",
    "ExperimentParams",
    "LoraParams",
    "MiningParams",
    "Params",
    "ReportParams",
    "TextSource",
    "TrainParams",
    "TrainingParams",
    "ValidationParams",
    "format_errors",
    "load_yaml",
    "validate",
]


# ----------------------------------------------------------------------------- experiments


class DataParams(Params):
    """What an experiment trains on and evaluates on."""

    train: str | AlignedData = Field(
        "xquad", description="xquad, mlqa, a path to your parallel QA data, or aligned data"
    )
    evaluate: list[str] = Field(
        default_factory=lambda: list(tasks.DEFAULT_EVALUATION),
        description="registered evaluation sets (hbnb.evaluation.tasks), or mteb:<Task>: an mteb retrieval task "
        "scored by mteb's evaluator, e.g. mteb:SciFact, mteb:xquad-r (hbnb.evaluation.mteb_run)",
    )
    langs: dict[str, list[str]] = Field(default_factory=dict, description="per evaluation set: restrict to languages")
    candidates: Literal["paragraph", "sentence"] = Field("paragraph", description="LAReQA candidate encoding")
    max_items: dict[str, int] = Field(
        default_factory=dict,
        description="per pair-matrix retrieval set: evaluate on N of its items (a quick look: a smaller pool is "
        "easier, so the figures are not comparable with the full set's)",
    )

    @field_validator("evaluate")
    @classmethod
    def _known_sets(cls, v: list[str]) -> list[str]:
        unknown = [x for x in v if x not in tasks.TASKS and not x.startswith(tasks.MTEB_PREFIX)]
        if unknown or not v:
            raise ValueError(
                f"{unknown or 'an empty list'}: allowed evaluation sets are {', '.join(tasks.names())}, "
                f"or {tasks.MTEB_PREFIX}<Task> for an mteb retrieval task"
            )
        mteb_names = [x for x in v if x.startswith(tasks.MTEB_PREFIX)]
        if mteb_names:  # checked against mteb's task list (imports mteb: only for such names)
            from hbnb.evaluation.mteb_run import name_problem

            if problem := next((p for p in map(name_problem, mteb_names) if p), None):
                raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _langs_name_evaluated_sets(self) -> DataParams:
        for key in ("langs", "max_items"):
            stray = [k for k in getattr(self, key) if k not in self.evaluate]
            if stray:
                raise ValueError(
                    f"{key} names {', '.join(stray)}, which is not in evaluate ({', '.join(self.evaluate)})"
                )
        for name, n in self.max_items.items():
            task = tasks.get_task(name)
            if not isinstance(getattr(task, "source", task), tasks.RetrievalTask) or not 2 <= n <= MAX_COUNT:
                raise ValueError(
                    f"max_items.{name} = {n}: give 2 to {MAX_COUNT:,} items, for pair-matrix retrieval sets only "
                    f"({', '.join(t for t in tasks.names() if isinstance(tasks.get_task(t), tasks.RetrievalTask))})"
                )
        return self


class ReportParams(Params):
    """How results are compared and stored."""

    n_resamples: int = Field(
        2000, ge=100, le=100_000, description="bootstrap / randomization resamples (at most 100,000)"
    )
    run_depth: int = Field(100, ge=1, le=100_000, description="candidates per query in each pool run.trec")
    backend: Literal["torch", "openvino", "openvino-bf16"] = Field(
        "torch", description="what runs the encoder at evaluation (hbnb.models.backends)"
    )


# keys a `sweep:` block may vary; "seed" sets training.seed and batching.seed together
SWEEPABLE = (
    ("model", "seed", "data")
    + tuple(f"data.{k}" for k in DataParams.model_fields)
    + tuple(f"batching.{k}" for k in BatchingParams.model_fields)
    + tuple(f"training.{k}" for k in TrainingParams.model_fields if k not in ("seed", "report_to"))
)


def _claim(text: str) -> str:
    """A claim that parses, or a named block of claims (hbnb.experiment.claims)."""
    from hbnb.experiment.claims import expand

    expand([text])
    return text


class ExperimentParams(Params):
    """One experiment file under params/: runs = the grid of the `sweep:` block over the base values."""

    experiment: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100, description="the folder name under reports/"
    )
    description: str = ""
    model: str = "use-m"
    trust_remote_code: bool = Field(
        False,
        description="let model folders run their own Python (custom module classes, a config's auto_map); "
        "only for models you trust",
    )
    baseline: bool = Field(True, description="also evaluate each untuned model")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    data: DataParams = Field(default_factory=DataParams)
    training: TrainingParams = Field(default_factory=TrainingParams)
    batching: BatchingParams = Field(default_factory=BatchingParams)
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="parameter path -> list of values (a grid); `variant:` lists mappings of paths set together",
    )
    report: ReportParams = Field(default_factory=ReportParams)
    keep_checkpoints: bool = Field(False, description="keep training checkpoints after a run finishes")
    cluster: ClusterParams | None = Field(None, description="the jobs of `hbnb run --executor slurm` (hbnb.cluster)")
    claims: list[Annotated[str, AfterValidator(_claim)]] = Field(
        default_factory=list,
        description="claims about the strategies, e.g. 'hybrid > x-x on cross' or 'paper' (hbnb.experiment.claims)",
    )

    @model_serializer(mode="wrap")
    def _without_default_trust(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = drop_false(handler(self), "trust_remote_code")
        return out if out.get("cluster") is not None else {k: v for k, v in out.items() if k != "cluster"}

    @field_validator("experiment")
    @classmethod
    def _experiment_name(cls, v: str) -> str:
        if v.lower() == "findings":
            raise ValueError("is reserved: reports/findings holds the committed findings; pick another name")
        return v

    @field_validator("sweep")
    @classmethod
    def _sweepable(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return check_sweep(v, SWEEPABLE)
