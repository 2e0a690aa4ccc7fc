"""Benchmark: where the time of a training run and of an evaluation goes, by part.

Profiles (cProfile) one hbnb training run (hybrid, XQuAD, paragraph positives, batch 64,
checkpoint and validation as a short run has them) and one evaluation (MLQA-R, a language
subset), and splits their wall time into the parts that are not model compute —
tokenisation, the batch sampler, the collator (with hbnb's batch records), validation,
checkpoint writing, embedding cache I/O, ranking — and the model's forward, backward and
optimizer step. On a GPU the model parts shrink by ~100x and the rest does not: the parts
named here are what a GPU run waits on.

    .venv/bin/python bench/where_time_goes.py [--model me5-small:layers=2] [--steps 12]

Each part is the cumulative time of the functions that do it (a part inside another, e.g.
tokenisation inside the collator, is counted in both; "model" parts are exclusive of them).
Last line: `outside model compute: <x>% of training, <y>% of evaluation`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

# part -> (file suffix, function name) pairs whose cumulative time is that part
PARTS = {
    "tokenisation": [("tokenization_utils_base.py", "__call__")],
    "batch sampler": [("hbnb/training/sampler.py", "__iter__")],
    "collator (incl. tokenisation)": [("hbnb/training/batch_log.py", "__call__")],
    "validation": [("transformers/trainer.py", "evaluate")],
    "checkpoint writing": [("transformers/trainer.py", "_save_checkpoint")],
    "forward + loss": [("sentence_transformers/base/trainer.py", "compute_loss")],
    "backward": [("accelerate/accelerator.py", "backward")],
    "optimizer step": [("torch/optim/optimizer.py", "wrapper")],
    "encoding (model)": [("sentence_transformers/sentence_transformer/model.py", "encode")],
    "embedding cache I/O": [("hbnb/evaluation/encoding.py", "_read"), ("hbnb/evaluation/encoding.py", "_write")],
    "ranking and metrics": [
        ("hbnb/evaluation/ranking.py", "rank"),
        ("hbnb/evaluation/metrics.py", "metrics_from_ranks"),
    ],
}
MODEL = {"forward + loss", "backward", "optimizer step", "encoding (model)"}


def _parts(stats: pstats.Stats) -> dict[str, float]:
    found = dict.fromkeys(PARTS, 0.0)
    for (path, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        for part, places in PARTS.items():
            if any(path.endswith(suffix) and name == fn for suffix, fn in places):
                found[part] += cumulative
    return found


def _profile(label: str, fn) -> tuple[float, dict[str, float]]:
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    fn()
    profiler.disable()
    wall = time.perf_counter() - start
    parts = _parts(pstats.Stats(profiler))
    print(f"{label}: {wall:.1f} s")
    for part, seconds in parts.items():
        if seconds > 0:
            print(f"  {part:<32} {seconds:7.2f} s  {100 * seconds / wall:5.1f}%")
    return wall, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="me5-small:layers=2")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    from hbnb import models
    from hbnb.evaluation import evaluate
    from hbnb.params import TrainParams
    from hbnb.training import train

    with tempfile.TemporaryDirectory(prefix="hbnb-profile-") as tmp:
        params = TrainParams.model_validate(
            {
                "model": args.model,
                "data": "xquad",
                "output_dir": str(Path(tmp) / "run"),
                "max_steps": args.steps,
                "save_steps": args.steps // 2,
                "validation": {"items": 64, "languages": ["en"], "every": args.steps // 2},
                "batching": {"strategy": "hybrid", "batch_size": args.batch_size, "positive": "sentence+paragraph"},
            }
        )
        label = f"training {args.steps} steps of {args.batch_size} pairs"
        train_wall, train_parts = _profile(label, lambda: train(params))
    model = models.load(args.model)
    langs = ["en", "de", "es"]
    eval_wall, eval_parts = _profile(
        "evaluation (MLQA-R en/de/es, paragraph candidates, no cache)",
        lambda: evaluate(model, "mlqa-r", langs=langs, cache=False, max_items=300),
    )
    outside_train = 1 - sum(train_parts[p] for p in MODEL) / train_wall
    outside_eval = 1 - sum(eval_parts[p] for p in MODEL) / eval_wall
    print(f"outside model compute: {100 * outside_train:.0f}% of training, {100 * outside_eval:.0f}% of evaluation")


if __name__ == "__main__":
    main()
