"""The schema of one training run: how batches are drawn (`batching:`), validation, the
trainer's hyper-parameters (`training:`), and `TrainParams`, what `hbnb train` reads.

Re-exported by `hbnb.params`, the schema every stage reads; the `batching.mining:` and
`training.lora:` blocks are `hbnb.params.mining` and `hbnb.params.lora`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from hbnb import designs
from hbnb.codeswitch.params import BitextParams, CodeSwitchingParams
from hbnb.data.aligned import AlignedData
from hbnb.params.lora import LoraParams
from hbnb.params.mining import MiningParams
from hbnb.schema import (
    MAX_BATCH,
    MAX_COUNT,
    MAX_SEED,
    MAX_STEPS,
    Params,
    canon,
    canonical_list,
    canonical_pair,
    drop_false,
)


class BatchingParams(Params):
    """How training batches are drawn (the method's X-X, X-Y and hybrid strategies, en-en, and
    uncontrolled `random` batches), and the nested design they are drawn from.

    The design (which languages, pairs and items a run trains on) is fixed by `design_seed`:
    `n_languages`, `pairs: k` and `train_items` take the first n, k and N of fixed random
    orders, so smaller designs are nested in larger ones. `seed` draws the batches; an
    experiment's `seed` sets it (a replicate) and never `design_seed`, so the replicates of a
    design train on the same languages, pairs and items.
    """

    strategy: Literal["x-x", "x-y", "hybrid", "en-en", "random"] = Field(
        "hybrid",
        description="x-x, x-y, hybrid, en-en (English only), or random: sentence-transformers' "
        "NoDuplicatesBatchSampler over every valid pair, no control of batch languages",
    )
    languages: list[str] | None = Field(
        None, description="the candidate training languages; default: all in the data (en-en: English)"
    )
    n_languages: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="train on the first n of a fixed order of the candidate languages (languages_first, then "
        "the rest in a random order of design_seed), so n=1, 2, 4 are nested; default: all candidates",
    )
    languages_first: list[str] = Field(
        default_factory=list, description="languages that head the order of n_languages, in this order"
    )
    pair_count: Literal["unordered", "ordered"] = Field(
        "unordered",
        description="what `pairs: k` counts: unordered pairs {a, b}, each trained in both directions "
        "(k at most L(L-1)/2), or ordered directions a-b (k at most L(L-1))",
    )
    pairs: Literal["all"] | int | list[str] = Field(
        "all",
        description="cross-lingual pairs: 'all' ordered pairs; k: the first k of a fixed random order "
        "(design_seed) of the training languages' pairs, counted as pair_count says, so k=1, 2, 4 are "
        "nested; or a list of directions like ['en-de']",
    )
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="share of monolingual batches in hybrid")
    batch_size: int = Field(32, ge=2, le=MAX_BATCH, description=f"pairs per batch (at most {MAX_BATCH:,})")
    train_items: int | None = Field(
        None,
        ge=1,
        le=MAX_COUNT,
        description="train on the first N usable items of a fixed random order of all the table's items "
        "(design_seed), so N=100, 300, 1000 are nested and every strategy gets the same items",
    )
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="draws the batches: a replicate (an experiment's seed sets it)"
    )
    design_seed: int = Field(
        0, ge=0, le=MAX_SEED, description="fixes the design: the orders behind n_languages, pairs: k and train_items"
    )
    positive: Literal["sentence", "sentence+paragraph"] = "sentence"
    language_weights: dict[str, float] | None = Field(None, description="X-X language weights; default uniform")
    incomplete: Literal["drop", "refill"] = Field(
        "drop", description="when items left cannot fill a batch: drop them, or refill from other items"
    )
    hard_negatives: bool | Literal["paragraph", "mined"] = Field(
        False,
        description="a hard negative per example: true (or paragraph): the data's negative column (another sentence "
        "of the answer's paragraph); mined: mined with a model (batching.mining, hbnb.training.mining)",
    )
    mining: MiningParams | None = Field(None, description="with hard_negatives: mined, how (defaults when left out)")

    @field_validator("hard_negatives")
    @classmethod
    def _hard_negatives(cls, v: bool | str) -> bool | str:
        return True if v == "paragraph" else v  # true is the paragraph negative, as before "mined" existed

    @model_validator(mode="after")
    def _mining_only_when_mined(self) -> BatchingParams:
        if self.mining is not None and self.hard_negatives != "mined":
            raise ValueError("batching.mining is for hard_negatives: mined; set that, or leave mining out")
        return self

    def mining_(self) -> MiningParams:
        """The mining parameters of `hard_negatives: mined`: the block, or its defaults when left out."""
        return self.mining if self.mining is not None else MiningParams()

    @model_serializer(mode="wrap")
    def _without_mining(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)  # mining left out when unused, so runs recorded before it existed match
        if data.get("mining") is None:
            data.pop("mining", None)
        return data

    @field_validator("languages")
    @classmethod
    def _languages(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and len(v) == 0:
            raise ValueError("give at least one language, or leave it out for all")
        return canonical_list(v)

    @field_validator("n_languages")
    @classmethod
    def _n_languages(cls, v: int | None, info: ValidationInfo) -> int | None:
        strategy, languages = info.data.get("strategy"), info.data.get("languages")
        if v is None or strategy is None or strategy == "en-en":
            return v
        problem = designs.n_languages_problem(v, strategy, len(languages) if languages else None, "batching.languages")
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("languages_first")
    @classmethod
    def _languages_first(cls, v: list[str], info: ValidationInfo) -> list[str]:
        out = [canon(c) for c in v]
        if len(set(out)) != len(out):
            raise ValueError(f"names a language twice ({', '.join(out)})")
        languages = info.data.get("languages")
        stray = [c for c in out if languages is not None and c not in languages]
        if stray and info.data.get("strategy") != "en-en":
            raise ValueError(f"names {', '.join(stray)}, not in batching.languages; allowed: {', '.join(languages)}")
        return out

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, v: Any, info: ValidationInfo) -> Any:
        if isinstance(v, int) and v < 1:
            raise ValueError("k must be at least 1")
        if isinstance(v, int) and info.data.get("strategy") in ("x-y", "hybrid", "random"):
            n, languages = info.data.get("n_languages"), info.data.get("languages")
            n = n if n is not None else len(languages) if languages else None
            problem = designs.pairs_problem(v, n, info.data.get("pair_count", "unordered")) if n is not None else None
            if problem:
                raise ValueError(problem)
        if isinstance(v, list):
            return [canonical_pair(pair) for pair in v]
        return v

    @field_validator("language_weights")
    @classmethod
    def _weights(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return None
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError("weights must be >= 0 and not all 0")
        return {canon(k): float(w) for k, w in v.items()}


class ValidationParams(Params):
    """A held-out slice of items whose loss picks the checkpoint (the paper: English validation loss)."""

    items: float = Field(0.1, gt=0, le=MAX_COUNT, description="held-out items: a fraction (<1) or a count (>=1)")
    languages: list[str] = Field(default_factory=lambda: ["en"], description="validation pairs are X-X in these")
    every: int = Field(50, ge=1, le=MAX_STEPS, description="compute the validation loss every N steps")
    keep_best: bool = Field(True, description="end with the checkpoint of lowest validation loss")


Tracker = Literal["tensorboard", "trackio", "wandb", "mlflow", "none"]  # hbnb.training.tracking.TRACKERS, and none


class TrainingParams(Params):
    """The optimisation side of a run (an experiment file's `training:` block)."""

    budget: Literal["steps", "epochs"] = Field(
        "steps", description="what fixes the run's length: max_steps, or epochs over the active training items"
    )
    max_steps: int = Field(
        100,
        ge=1,
        le=MAX_STEPS,
        description=f"optimizer steps with budget 'steps' (ignored with 'epochs'; at most {MAX_STEPS:,})",
    )
    epochs: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="with budget 'epochs': pairs trained / active items; max_steps = ceil(epochs * items / "
        "(batch_size * gradient_accumulation_steps * processes))",
    )
    learning_rate: float = Field(3e-5, gt=0, le=1.0)
    weight_decay: float = Field(0.01, ge=0, le=1.0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    scale: float = Field(20.0, gt=0, le=1000, description="MNRL scale, 1/temperature")
    loss: Literal["mnrl", "cached-mnrl"] = Field(
        "mnrl",
        description="mnrl: MultipleNegativesRankingLoss; cached-mnrl: the same loss and gradients computed in "
        "mini-batches (GradCache), so a large batch fits the memory of a mini-batch",
    )
    mini_batch_size: int = Field(32, ge=1, le=MAX_BATCH, description="with cached-mnrl: texts encoded at once")
    max_seq_length: int | None = Field(None, ge=8, le=32768)
    gradient_accumulation_steps: int = Field(1, ge=1, le=4096)
    bf16: Literal["auto"] | bool = Field(
        "auto", description="auto: bf16 on a GPU that has it, fp16 on older GPUs, fp32 on CPU (training.precision)"
    )
    freeze_word_embeddings: bool = False
    save_steps: int = Field(50, ge=1, le=MAX_STEPS)
    save_total_limit: int = Field(2, ge=1, le=1000)
    validation: ValidationParams | None = None
    code_switching: CodeSwitchingParams | None = Field(
        None, description="code-switch a share of the training examples (hbnb.codeswitch)"
    )
    bitext: BitextParams | None = Field(None, description="mix translation pairs into the training stream")
    lora: LoraParams | None = Field(None, description="train LoRA adapters instead of every weight (not use-m)")
    report_to: list[Tracker] | None = Field(
        None,
        description="experiment trackers the trainer logs to: tensorboard, trackio, wandb, mlflow, or none; default: "
        "tensorboard when installed (its logs in <output_dir>/logs), else none. Not part of what a run trains",
    )
    seed: int = Field(0, ge=0, le=MAX_SEED)

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_tracker(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("report_to")
    @classmethod
    def _trackers(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        if "none" in v and len(v) > 1:
            raise ValueError(f"{v}: 'none' reports to no tracker; give it alone, or name trackers without it")
        return list(dict.fromkeys(name for name in v if name != "none"))

    @model_validator(mode="after")
    def _steps_fit(self) -> TrainingParams:
        # for either budget; with 'epochs', save_steps is checked against the resolved steps with the data
        # (hbnb.training.trainer.resolve), which this block cannot know
        if self.validation is not None and self.validation.keep_best and self.save_steps % self.validation.every:
            raise ValueError(
                f"save_steps ({self.save_steps}) must be a multiple of validation.every "
                f"({self.validation.every}) to keep the best checkpoint"
            )
        if self.loss == "mnrl" and "mini_batch_size" in self.model_fields_set:
            raise ValueError("mini_batch_size is for loss: cached-mnrl; set that loss, or leave mini_batch_size out")
        return self

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_unset(_plain_loss(handler(self)))


class TrainParams(TrainingParams):
    """Everything one training run needs; `hbnb train` reads it from YAML (one flat mapping)."""

    model: str = Field("use-m", validate_default=True)  # checked against training.lora, given or not
    trust_remote_code: bool = Field(
        False, description="let the model folder run its own Python (only for a model you trust)"
    )
    data: str | AlignedData = Field(
        "xquad", description="xquad, mlqa, a path to your parallel QA data, or aligned data"
    )
    output_dir: Path
    batching: BatchingParams = Field(default_factory=BatchingParams)

    @field_validator("model")
    @classmethod
    def _lora_needs_a_transformer(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("lora") is not None and (v == "use-m" or ":layers=" in v):
            why = (
                "use-m is hbnb's own port of the encoder, not a Hugging Face transformer that peft can adapt"
                if v == "use-m"
                else "an adapter reloads onto its base model by name, and a layer-truncated base has no folder of its "
                "own; save the truncated model (model.save(FOLDER)) and train from that folder"
            )
            raise ValueError(f"training.lora is set: {why}; train without lora, or pick another model")
        return v

    @model_serializer(mode="wrap")
    def _without_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a permission, not a result's parameter: left out when off, so runs recorded before it existed match
        return drop_false(_without_unset(_plain_loss(handler(self))), "trust_remote_code")


def _without_unset(data: dict[str, Any]) -> dict[str, Any]:
    """LoRA and the trackers left out when not set, so runs recorded before they existed match."""
    for key in ("lora", "report_to"):
        if data.get(key, 0) is None:
            data.pop(key)
    return data


def _plain_loss(data: dict[str, Any]) -> dict[str, Any]:
    """The loss keys left out for plain MNRL (equal results), so runs recorded before they existed match."""
    if data.get("loss") == "mnrl":
        data.pop("loss")
        data.pop("mini_batch_size", None)
    return data
