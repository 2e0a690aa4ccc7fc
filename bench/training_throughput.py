"""Benchmark: training throughput (pairs/s) of hbnb's hybrid sampler vs sentence-transformers' own.

Same model (use-m, word table frozen), same XQuAD pairs, same batch size, same trainer:
arm A draws hybrid batches through hbnb's batch-sampler hook, pair codes and recording
collator; arm B trains on the same pairs, materialised as a plain data set, with
sentence-transformers' NO_DUPLICATES sampler. Rounds alternate A and B so machine noise
hits both; steps are timed after a warm-up. Prints pairs/s per round, the medians and
their ratio (target: at least 0.97).

    .venv/bin/python bench/training_throughput.py [--rounds 3] [--steps 30] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from transformers import TrainerCallback

from hbnb import models
from hbnb.data import load_parallel_qa
from hbnb.languages import PAPER_TRAINING_LANGUAGES
from hbnb.params import BatchingParams
from hbnb.training import HybridBatchSampler, PairIndex, RecordingCollator, SamplerFactory

LANGS = list(PAPER_TRAINING_LANGUAGES)


class StepClock(TrainerCallback):
    """Wall time from the end of step `warmup` to the end of the last step."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start = self.end = 0.0

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.warmup:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def timed_run(model, train_dataset, sampler, collator, batch_size: int, warmup: int, steps: int, folder: str) -> float:
    """Pairs per second over `steps` steps after `warmup` steps."""
    args = SentenceTransformerTrainingArguments(
        output_dir=folder,
        max_steps=warmup + steps,
        per_device_train_batch_size=batch_size,
        learning_rate=3e-5,
        batch_sampler=sampler,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_strategy="no",
        dataloader_pin_memory=False,
        seed=0,
    )
    clock = StepClock(warmup)
    kwargs = {"data_collator": collator} if collator is not None else {}
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        loss=MultipleNegativesRankingLoss(model),
        callbacks=[clock],
        **kwargs,
    )
    trainer.train()
    return steps * batch_size / (clock.end - clock.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    model = models.load("use-m")
    models.freeze_word_embeddings(model)
    table = load_parallel_qa("xquad")
    params = BatchingParams(strategy="hybrid", languages=LANGS, batch_size=args.batch_size)
    index = PairIndex(table, params)
    hybrid_data = index.training_dataset()
    # arm B's data: the very pairs the hybrid sampler plans, as plain text rows
    planner = HybridBatchSampler(hybrid_data, args.batch_size, index=index, world_size=1)
    codes = [c for epoch in range(3) for batch in planner.batches(epoch) for c in index.codes(batch)]
    plain = index.texts({"pair": codes})
    plain_data = Dataset.from_dict({"anchor": plain["anchor"], "positive": plain["positive"]})

    results: dict[str, list[float]] = {"hbnb hybrid": [], "ST no-duplicates": []}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            collator = RecordingCollator(preprocess_fn=model.preprocess, index=index)
            a = timed_run(
                model, hybrid_data, SamplerFactory(index), collator, args.batch_size, args.warmup, args.steps, folder
            )
            b = timed_run(
                model, plain_data, BatchSamplers.NO_DUPLICATES, None, args.batch_size, args.warmup, args.steps, folder
            )
            results["hbnb hybrid"].append(a)
            results["ST no-duplicates"].append(b)
            print(f"round {r + 1}: hbnb hybrid {a:.1f} pairs/s, ST no-duplicates {b:.1f} pairs/s")
    med_a = statistics.median(results["hbnb hybrid"])
    med_b = statistics.median(results["ST no-duplicates"])
    print(f"median: hbnb hybrid {med_a:.1f} pairs/s, ST no-duplicates {med_b:.1f} pairs/s")
    print(f"throughput ratio hybrid / no-duplicates: {med_a / med_b:.3f} (target >= 0.97)")


if __name__ == "__main__":
    main()
