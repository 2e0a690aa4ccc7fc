"""Benchmark: build the hybrid sampler and training data for 100,000 items x 9 languages.

Prints the build time and the extra memory (peak RSS over the memory-mapped table).
Target: under 60 s and under 2 GB. Synthetic texts; the table is saved and reopened
memory-mapped, as hbnb's loaders return it.

    .venv/bin/python bench/batching_build.py [--items 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import numpy as np
from datasets import Dataset, load_from_disk

from hbnb.languages import PAPER_TRAINING_LANGUAGES
from hbnb.params import BatchingParams
from hbnb.training import HybridBatchSampler, PairIndex

LANGS = list(PAPER_TRAINING_LANGUAGES)


def make_table(n_items: int, folder: str) -> None:
    """Write n_items x 9 rows of random word salad (question ~60, sentence ~150, paragraph ~600 chars)."""
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda"])

    def texts(n: int, n_words: int) -> list[str]:
        picks = words[rng.integers(0, len(words), size=(n, n_words))]
        return [" ".join(row) for row in picks]

    n = n_items * len(LANGS)
    table = Dataset.from_dict(
        {
            "item_id": [f"item{i}" for i in range(n_items) for _ in LANGS],
            "lang": LANGS * n_items,
            "question": texts(n, 10),
            "sentence": texts(n, 25),
            "paragraph": texts(n, 100),
            "title": [""] * n,
            "negative": texts(n, 25),
        }
    )
    table.save_to_disk(folder)


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> float:
    """Reset the peak-RSS mark (Linux clear_refs 5) and return the current RSS."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return _status_mb("VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--make-table", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_table:
        make_table(args.items, args.make_table)
        return
    with tempfile.TemporaryDirectory() as folder:
        # built in another process, so its garbage does not hide this one's allocations
        subprocess.run([sys.executable, __file__, "--items", str(args.items), "--make-table", folder], check=True)
        table = load_from_disk(folder)
        base = reset_peak()
        start = time.perf_counter()
        params = BatchingParams(strategy="hybrid", languages=LANGS, batch_size=100, alpha=0.5)
        index = PairIndex(table, params)
        dataset = index.training_dataset()
        sampler = HybridBatchSampler(dataset, params.batch_size, index=index, world_size=1)
        first = next(iter(sampler))
        texts = dataset[first]
        build = time.perf_counter() - start
        epoch_start = time.perf_counter()
        n_batches = sum(1 for _ in sampler)
        epoch = time.perf_counter() - epoch_start
        extra = _status_mb("VmHWM") - base
    print(f"items x languages: {args.items} x {len(LANGS)} = {table.num_rows} rows; pair codes: {dataset.num_rows}")
    print(f"build (index + training data + sampler + first batch's texts): {build:.1f} s (target < 60 s)")
    print(f"plan of one epoch: {n_batches} batches of {params.batch_size} in {epoch:.1f} s")
    print(f"extra peak memory (RSS high-water mark over the start): {extra:.0f} MB (target < 2048 MB)")
    assert len(texts["anchor"]) == params.batch_size


if __name__ == "__main__":
    main()
