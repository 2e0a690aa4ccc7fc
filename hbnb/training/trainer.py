"""Fine-tuning an encoder with a batch strategy, through sentence-transformers' own trainer.

`train(params)` (and `hbnb train PARAMS.yaml`) runs `SentenceTransformerTrainer` with
`MultipleNegativesRankingLoss` (or its cached form: `hbnb.training.losses`), the hbnb
sampler plugged in through the trainer's batch-sampler hook, AdamW (lr 3e-5, weight decay
0.01: the paper's values) and the model's query/passage prefixes as the trainer's prompts. It checkpoints every N
steps and resumes from the last complete checkpoint when rerun on the same folder.

Next to the model, in the output folder, it writes:
- `params.yaml`: the resolved parameters;
- `loss.csv`: the loss per step (and the validation loss where computed);
- `batches.jsonl`: every batch's kind, language and language-pair counts, per step
  and process; `batch_mix.json`: its summary; `augmentation.json` (code-switching,
  bitext): what they realised (`hbnb.training.augment`);
- `run.json`: the budget, the resolved and completed steps, the pairs trained and the
  epochs they make (pairs / active items), the design (training languages, pairs,
  active items), parameter counts, wall time, pairs per second, versions, the model,
  the trackers reported to and the LoRA adapter (`lora`: its settings, modules, base);
- `logs/`: TensorBoard's event files, when it reports there (`hbnb.training.tracking`).

With `training.lora` the model folder holds the adapter over its base model (`hbnb.training.lora`).
In the model folder, `README.md` is sentence-transformers' model card with hbnb's section
(design, batch mix, hyper-parameters: `hbnb.models.card`); `hbnb push` adds the evaluations.

`resolve(params)` validates a run against its data without loading a model and returns
its design and budget (what `hbnb run --plan` shows), with `train`'s checks and errors.
A budget in epochs resolves to `ceil(epochs * active items / (batch_size *
gradient_accumulation_steps * processes))` steps, used by warmup and the progress lines.
With `batching.hard_negatives: mined`, `train` mines before training (`hbnb.training.mining`,
`negatives.json` in the output folder) and `resolve` mines nothing: rows that mining leaves
without a negative (possible only with margins) drop out at training, not in the plan.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset

from hbnb.data.catalog import training_table
from hbnb.errors import ParamsError
from hbnb.files import atomic_dir, exclusive, write_atomic, write_text
from hbnb.params import TrainParams, load_yaml
from hbnb.training import mining
from hbnb.training.augment import augmentation
from hbnb.training.batch_log import BatchLog, RecordingCollator, augmentation_mix, merge_batch_logs, realised_mix
from hbnb.training.callbacks import StopWhenNonFinite, show_progress
from hbnb.training.distributed import process_rank, world_size
from hbnb.training.losses import build_loss
from hbnb.training.pairs import PairIndex
from hbnb.training.precision import mixed_precision, precision_name
from hbnb.training.sampler import SamplerFactory
from hbnb.training.tracking import direct_tensorboard, resolve_trackers, run_name
from hbnb.training.validation import held_out_items, validation_dataset

MODEL_DIR = "model"
TRAINER_STATE = "trainer_state.json"


def load_params(path: Path | str) -> TrainParams:
    """Read and validate a training parameter file."""
    return load_yaml(TrainParams, path)


@dataclass(frozen=True)
class _Plan:
    """A run resolved against its data: the table, the pair index (its design), the held-out items, the steps."""

    table: Dataset
    index: PairIndex
    held_out: set[str]
    steps: int
    pairs_per_step: int

    @property
    def items(self) -> int:
        return len(self.index.active)


def _plan(params: TrainParams, build: bool = True) -> _Plan:
    """Validate `params` against the data (no model) and resolve the design and the steps;
    code-switching lexicons are built, and hard negatives mined (with a model), only if `build`
    (a plan checks that they can be)."""
    resolve_trackers(params.report_to)  # a tracker named but not installed is refused before anything runs
    table = training_table(params.data)
    source = params.data if isinstance(params.data, str) else "the aligned training data"
    held_out = held_out_items(table, params)
    index = PairIndex(table, params.batching, source=source, exclude=held_out)
    index.augment(*augmentation(params, index, build))
    if params.batching.hard_negatives == "mined":
        mining.prepare(params, index, held_out, build)
    pairs_per_step = params.batching.batch_size * params.gradient_accumulation_steps * world_size()
    items = len(index.active)
    if params.budget == "steps":
        steps = params.max_steps
    else:
        steps = max(1, math.ceil(round(params.epochs * items / pairs_per_step, 9)))
        if params.save_steps > steps:
            raise ParamsError(
                f"training.save_steps = {params.save_steps} is more than the {steps} steps that training.epochs = "
                f"{params.epochs} makes ({items} items, {pairs_per_step} pairs a step); allowed 1..{steps}, "
                f"so that the run writes a checkpoint to resume from"
            )
    return _Plan(table, index, held_out, steps, pairs_per_step)


def resolve(params: TrainParams) -> dict[str, Any]:
    """The run's design and budget, validated against its data without loading a model.

    Keys: `languages` (the training languages), `pairs` (the ordered "q-p" directions; []
    for x-x and en-en), `train_items` (active items), `steps` (the resolved max_steps),
    `epochs` (steps * pairs per step / active items, to 4 decimals), `budget`. Raises the
    ParamsError training would. Pairs per step count this process's world size.
    """
    plan = _plan(params, build=False)
    return {
        "languages": list(plan.index.languages),
        "pairs": plan.index.pair_names(),
        "train_items": plan.items,
        "steps": plan.steps,
        "epochs": round(plan.steps * plan.pairs_per_step / plan.items, 4),
        "budget": params.budget,
    }


def train(params: TrainParams) -> Path:
    """Train (or resume, or find finished) the run of `params`; returns the final model folder."""
    out = Path(params.output_dir)
    plan = _plan(params)
    # the ranks of one distributed run share the folder; rank 0 holds it against other runs
    lock = exclusive(out, "being trained by another process") if process_rank() == 0 else contextlib.nullcontext()
    with lock:
        _claim_output_dir(out, params)
        if plan.index.negatives is not None and process_rank() == 0:
            plan.index.negatives.record(out)
        final = out / MODEL_DIR
        if (out / "run.json").is_file() and final.is_dir():
            return final
        eval_dataset = validation_dataset(plan.table, plan.held_out, params) if plan.held_out else None
        return _run_trainer(params, plan, eval_dataset, out)


def _claim_output_dir(out: Path, params: TrainParams) -> None:
    """Write params.yaml, or check that the folder's run has the same parameters (resume).

    A folder with nothing to resume (no checkpoint, no model) takes the new parameters.
    """
    now = json.loads(params.model_dump_json())
    resolved = yaml.safe_dump(now, sort_keys=False, allow_unicode=True)
    existing = out / "params.yaml"
    started = any(out.glob("checkpoint-*")) or (out / MODEL_DIR).exists()
    if existing.is_file() and started:
        try:
            earlier = yaml.safe_load(existing.read_text(encoding="utf-8"))
        except yaml.YAMLError:
            earlier = None
        if not same_training(earlier, now):
            raise ParamsError(
                f"{out} holds a run with other parameters ({existing}); pick another output_dir "
                f"or delete that folder to start over (`hbnb run` sets such runs aside by itself)"
            )
        if earlier != now and process_rank() == 0:  # the same run, its folder moved: record where it is now
            write_text(existing, resolved)
        return
    if process_rank() == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_text(existing, resolved)


# what a run reports to, not what it trains: a change of trackers neither retrains nor refuses a run
NOT_TRAINING = ("report_to",)


def same_training(earlier: Any, now: dict[str, Any]) -> bool:
    """Whether two runs' resolved parameters (params.yaml, as mappings) train the same model: all
    equal but `output_dir` and the trackers (`NOT_TRAINING`), so a reports folder that moved does not
    start its runs over. `training.lora` is part of the identity."""
    if not isinstance(earlier, dict):
        return False
    return without_trackers(earlier) | {"output_dir": None} == without_trackers(now) | {"output_dir": None}


def without_trackers(params: dict[str, Any]) -> dict[str, Any]:
    """A run's resolved parameters less the trackers it reports to (`NOT_TRAINING`)."""
    return {k: v for k, v in params.items() if k not in NOT_TRAINING}


def _run_trainer(params: TrainParams, plan: _Plan, eval_dataset: Dataset | None, out: Path) -> Path:
    """Build the model, loss, arguments and trainer; train or resume; write the run's records."""
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    from hbnb import models
    from hbnb.models import card
    from hbnb.progress import interactive
    from hbnb.training import lora

    index = plan.index
    model = models.load(params.model, trust_remote_code=params.trust_remote_code)
    if params.max_seq_length is not None:
        model.max_seq_length = params.max_seq_length
    if params.freeze_word_embeddings:
        models.freeze_word_embeddings(model)
    if params.lora is not None:
        lora.add_lora(model, params.lora, params.model)
    card.set_examples(model, index)
    prefixes = models.prefixes(model)
    prompts = {
        c: p
        for c, p in (("anchor", prefixes.query), ("positive", prefixes.passage), ("negative", prefixes.passage))
        if p
    }

    distributed = world_size() > 1
    precision = mixed_precision(params.bf16)
    validating = eval_dataset is not None and params.validation is not None
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        max_steps=plan.steps,
        per_device_train_batch_size=params.batching.batch_size,
        per_device_eval_batch_size=params.batching.batch_size,
        gradient_accumulation_steps=params.gradient_accumulation_steps,
        learning_rate=params.learning_rate,
        weight_decay=params.weight_decay,
        warmup_steps=int(round(params.warmup_ratio * plan.steps)),
        optim="adamw_torch",
        **precision,
        seed=params.seed,
        data_seed=params.seed,
        logging_steps=1,
        save_strategy="steps",
        save_steps=params.save_steps,
        save_total_limit=params.save_total_limit,
        eval_strategy="steps" if validating else "no",
        eval_on_start=validating,
        eval_steps=params.validation.every if validating else None,
        load_best_model_at_end=bool(validating and params.validation.keep_best),
        metric_for_best_model="eval_loss" if validating else None,
        greater_is_better=False if validating else None,
        prompts=prompts or None,
        batch_sampler=SamplerFactory(index),
        ddp_backend=("nccl" if torch.cuda.is_available() else "gloo") if distributed else None,
        dataloader_drop_last=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        report_to=resolve_trackers(params.report_to) or "none",
        run_name=run_name(out),
        disable_tqdm=not interactive(),
    )
    loss = build_loss(model, params, distributed)
    collator = RecordingCollator(preprocess_fn=model.preprocess, prompts=prompts or {}, index=index)
    log = BatchLog(out, collator, params.gradient_accumulation_steps)
    trainer_class = lora.LoraTrainer if params.lora is not None else SentenceTransformerTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=index.training_dataset(),
        eval_dataset=eval_dataset,
        loss=loss,
        data_collator=collator,
        callbacks=[log],
    )
    direct_tensorboard(trainer, out)
    show_progress(trainer)
    trainer.add_callback(StopWhenNonFinite(out, params.learning_rate))
    resume = last_complete_checkpoint(out)
    log.truncate(_checkpoint_step(resume) if resume else 0)
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.perf_counter() - start
    return _finish(trainer, params, plan, out, wall, resume)


def last_complete_checkpoint(out: Path) -> Path | None:
    """The newest checkpoint whose trainer state was written (the trainer writes it last).

    A checkpoint folder without a readable trainer state was cut off mid-save (a
    killed process); it is removed so the resumed run cannot pick it up.
    """
    if not out.is_dir():
        return None
    found = sorted(out.glob("checkpoint-*"), key=_checkpoint_step, reverse=True)
    for folder in found:
        try:
            json.loads((folder / TRAINER_STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            if process_rank() == 0:
                shutil.rmtree(folder, ignore_errors=True)
            continue
        return folder
    return None


def _checkpoint_step(folder: Path) -> int:
    try:
        return int(folder.name.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def _finish(trainer: Any, params: TrainParams, plan: _Plan, out: Path, wall: float, resumed: Path | None) -> Path:
    """Save the final model atomically and write loss curve, batch mix and run record (rank 0)."""
    import sentence_transformers
    import torch
    import transformers

    import hbnb
    from hbnb import models
    from hbnb.models import card
    from hbnb.training import lora

    final = out / MODEL_DIR
    trainer.accelerator.wait_for_everyone()  # every process has written its last batch records
    if process_rank() != 0:
        return final
    if final.exists():
        shutil.rmtree(final)
    with atomic_dir(final) as tmp:
        card.fill_card_data(trainer.model, params, plan.index.languages)
        trainer.model.save(str(tmp))
    history = trainer.state.log_history
    _write_loss_curve(out / "loss.csv", history)
    records = merge_batch_logs(out)
    write_text(out / "batch_mix.json", json.dumps(realised_mix([r for r in records if r["rank"] == 0]), indent=2))
    if plan.index.switching is not None or plan.index.bitext is not None:
        write_text(out / "augmentation.json", json.dumps(augmentation_mix(records, plan.index), indent=2))
    world = world_size()
    steps_now = trainer.state.global_step - (_checkpoint_step(resumed) if resumed else 0)
    pairs = steps_now * params.batching.batch_size * params.gradient_accumulation_steps * world
    trained_pairs = trainer.state.global_step * params.batching.batch_size * params.gradient_accumulation_steps * world
    run = {
        "budget": params.budget,
        "completed_steps": trainer.state.global_step,
        "max_steps": plan.steps,
        "epochs": round(trained_pairs / plan.items, 4),
        "trained_pairs": trained_pairs,
        "train_items": plan.items,
        "languages": list(plan.index.languages),
        "pairs": plan.index.pair_names(),
        "resumed_from": str(resumed) if resumed else None,
        "wall_time_s": round(wall, 3),
        "pairs_per_second": round(pairs / wall, 2) if wall > 0 else None,
        "processes": world,
        "precision": precision_name(mixed_precision(params.bf16)),
        "parameters": models.parameter_counts(trainer.model),
        "lora": lora.summary(trainer.model),
        "report_to": list(trainer.args.report_to),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_validation_loss": trainer.state.best_metric,
        "model": str(final),
        "versions": {
            "hbnb": hbnb.__version__,
            "torch": torch.__version__,
            "sentence-transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
    }
    write_text(out / "run.json", json.dumps(run, indent=2))
    card.write_card(final, out)  # hbnb's section of the model card; `hbnb push` adds the evaluations
    return final


def _write_loss_curve(path: Path, history: list[dict[str, Any]]) -> None:
    """One row per step: the training loss and learning rate, and the validation loss where computed."""
    rows: dict[int, dict[str, Any]] = {}
    for entry in history:
        step = entry.get("step")
        if step is None:
            continue
        row = rows.setdefault(step, {"step": step, "loss": "", "learning_rate": "", "eval_loss": ""})
        for key in ("loss", "learning_rate", "eval_loss"):
            if key in entry:
                row[key] = entry[key]

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["step", "loss", "learning_rate", "eval_loss"])
            writer.writeheader()
            writer.writerows(rows[s] for s in sorted(rows))

    write_atomic(path, write)
