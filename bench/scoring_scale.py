"""Benchmark: how scoring grows with the work, up to a MIRACL-sized pool (1 M passages).

Synthetic 384-d normalised embeddings (me5-small's width), written once as .npy files and
read memory-mapped, as the embedding cache is; 10 languages; each query has one relevant
candidate (a noisy copy of the query). For 1,000 and 10,000 queries against 10 k, 100 k and
1 M candidates, both of hbnb's rankings:

- full ranking (`hbnb.evaluation.ranking.rank`): every candidate scored, in chunks of 256
  queries; exact ranks of the relevant candidates in their language and in the pool;
- faiss top-k (`rank_topk`, exact inner product, depth 100): what hbnb uses above
  200,000 candidates.

Each configuration runs in a fresh process, so its peak memory (VmHWM: resident set high
water mark, memory-mapped pages included) is its own. Prints time, peak and the growth
factor per 10x candidates.

    .venv/bin/python bench/scoring_scale.py [--queries 1000 10000] [--candidates 10000 100000 1000000]

Last line: `scoring 1M candidates: <s> s, peak <GB> GB` (the 10,000-query faiss top-k search,
or the largest configuration run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 384
LANGS = [f"l{i}" for i in range(10)]


def _peak_gb() -> float:
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _write(folder: Path, n_queries: int, n_candidates: int) -> None:
    """Queries and candidates as .npy; query i's relevant candidate is i * stride."""
    rng = np.random.default_rng(np.random.SeedSequence(15, spawn_key=(n_queries, n_candidates)))
    candidates = np.lib.format.open_memmap(folder / "candidates.npy", "w+", np.float32, (n_candidates, DIM))
    for start in range(0, n_candidates, 100_000):
        block = rng.standard_normal((min(100_000, n_candidates - start), DIM), dtype=np.float32)
        candidates[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    candidates.flush()
    stride = n_candidates // n_queries
    queries = candidates[::stride][:n_queries] + 0.04 * rng.standard_normal((n_queries, DIM), dtype=np.float32)
    np.save(folder / "queries.npy", queries / np.linalg.norm(queries, axis=1, keepdims=True))
    del candidates


def _one(folder: Path, method: str) -> dict[str, float]:
    """One configuration, in this (fresh) process."""
    from hbnb.evaluation.ranking import rank, rank_topk

    queries = np.load(folder / "queries.npy", mmap_mode="r")
    candidates = np.load(folder / "candidates.npy", mmap_mode="r")
    n_q, n_c = len(queries), len(candidates)
    stride = n_c // n_q
    langs = [LANGS[i % len(LANGS)] for i in range(n_c)]
    relevant = [[q * stride] for q in range(n_q)]
    query_langs = [langs[q * stride] for q in range(n_q)]
    start = time.perf_counter()
    if method == "full":
        ranking = rank(queries, candidates, langs, relevant)
    else:
        ranking = rank_topk(queries, candidates, langs, relevant, query_langs, depth=100, pool=True)
    seconds = time.perf_counter() - start
    found = float(np.mean(ranking.rank_pool[:, 0] == 1))
    return {"seconds": seconds, "peak_gb": _peak_gb(), "found_first": found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--candidates", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--methods", nargs="+", default=["full", "faiss"], choices=["full", "faiss"])
    parser.add_argument("--one", nargs=2, metavar=("FOLDER", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(Path(args.one[0]), args.one[1])))
        return
    results: dict[tuple[int, int, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="hbnb-scoring-scale-") as tmp:
        for n_q in args.queries:
            for n_c in args.candidates:
                folder = Path(tmp) / f"{n_q}x{n_c}"
                folder.mkdir()
                _write(folder, n_q, n_c)
                for method in args.methods:
                    child = [sys.executable, __file__, "--one", str(folder), method]
                    out = subprocess.run(child, capture_output=True, text=True, check=True).stdout
                    r = results[(n_q, n_c, method)] = json.loads(out.strip().splitlines()[-1])
                    smaller = results.get((n_q, n_c // 10, method))
                    growth = f", {r['seconds'] / smaller['seconds']:.1f}x the time of 10x fewer" if smaller else ""
                    print(
                        f"{n_q:>6} queries x {n_c:>9,} candidates, {method:>5}: {r['seconds']:8.2f} s, "
                        f"peak {r['peak_gb']:.2f} GB, relevant first for {r['found_first']:.0%}{growth}",
                        flush=True,
                    )
                for path in folder.iterdir():
                    path.unlink()
    key = max(results, key=lambda k: (k[1], k[0], k[2] == "faiss"))
    r = results[key]
    print(f"scoring {key[1] / 1e6:g}M candidates: {r['seconds']:.1f} s, peak {r['peak_gb']:.2f} GB")


if __name__ == "__main__":
    main()
