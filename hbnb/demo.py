"""The end-to-end smoke job behind `make demo`, until the notebook pipeline takes its place.

It touches every layer once, on the embedded defaults: verifies the data files, counts
XQuAD-R and MLQA-R, checks both built-in encoders on Tatoeba bitext retrieval, and
fine-tunes use-m with hybrid batches for a few dozen steps on XQuAD.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

TATOEBA_LANGS = ["de", "es", "ru", "zh", "ar"]
PAPER_LANGS = ["ar", "zh", "en", "de", "hi", "ru", "es", "th", "tr"]


def _bitext_accuracy(model, src: list[str], tgt: list[str]) -> float:
    """Share of sentences whose translation is the nearest of all candidates (xx -> en)."""
    a = model.encode(src, normalize_embeddings=True, batch_size=64)
    b = model.encode(tgt, normalize_embeddings=True, batch_size=64)
    return float(np.mean((a @ b.T).argmax(axis=1) == np.arange(len(src))))


def run_smoke(out: Path | None = None) -> int:
    """Run the smoke job, printing each step; returns 0 when every check passed."""
    from hbnb import models
    from hbnb.data.bitext import load_tatoeba
    from hbnb.data.catalog import stats
    from hbnb.data.store import check
    from hbnb.params import BatchingParams
    from hbnb.training import TrainParams, ValidationParams, train

    start = time.perf_counter()
    print("hbnb demo: the end-to-end smoke job (the notebook pipeline will replace it)\n")
    statuses = check()
    bad = [s for s in statuses if s.status != "verified" and "license" not in s.detail]
    print(f"1. data: {len(statuses) - len(bad)}/{len(statuses)} files verified")
    for name in ("xquad-r", "mlqa-r"):
        s = stats(name)
        print(f"   {name}: {s['queries']['total']} queries, {s['candidates']['total']} candidates, "
              f"relevant-set sizes {s['relevant_set_sizes']}")

    print("2. encoders on Tatoeba (xx->en accuracy@1, 300 pairs per language)")
    for spec in models.BUILTIN_MODELS:
        model = models.load(spec)
        scores = []
        for lang in TATOEBA_LANGS:
            rows = load_tatoeba([lang]).select(range(300))
            scores.append(_bitext_accuracy(model, list(rows["src"]), list(rows["tgt"])))
        print(f"   {spec:<10} " + "  ".join(f"{l} {s:.2f}" for l, s in zip(TATOEBA_LANGS, scores)))

    print("3. fine-tuning use-m on XQuAD with hybrid batches (alpha 0.5, 30 steps of 32)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = out or Path(tmp) / "hybrid"
        params = TrainParams(
            model="use-m", data="xquad", output_dir=folder, max_steps=30, learning_rate=1e-4,
            save_steps=10, freeze_word_embeddings=True,
            batching=BatchingParams(strategy="hybrid", languages=PAPER_LANGS, batch_size=32),
            validation=ValidationParams(items=200, languages=["en"], every=10),
        )
        train(params)
        curve = (folder / "loss.csv").read_text().splitlines()[1:]
        evals = [float(row.split(",")[3]) for row in curve if row.split(",")[3]]
        mix = json.loads((folder / "batch_mix.json").read_text())
        print(f"   validation loss: {' -> '.join(f'{e:.3f}' for e in evals)}")
        print(f"   realised mix: {mix['mono_share']:.0%} monolingual batches, {mix['batches']} in all")
    ok = not bad and evals[-1] < evals[0]
    print(f"\nsmoke job {'passed' if ok else 'FAILED'} in {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1
