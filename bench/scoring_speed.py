"""Benchmark: scoring XQuAD-R is matrix work, and nearly free next to encoding.

1. From cached embeddings (use-m, candidates with their paragraphs as LAReQA): all of
   XQuAD-R (121 language pairs + the multilingual pool + rank distance) scored by hbnb,
   against a per-question loop of scikit-learn's `average_precision_score` (the LAReQA
   reference) on the same embeddings. Prints both times, the ratio (target >= 50x) and
   the peak memory of hbnb's scoring.
2. The total wall time of `hbnb.evaluation.evaluate` for use-m on XQuAD-R with an empty
   embedding cache, against the time to encode its unique texts once (target: within
   1.15x: scoring is nearly free).

    .venv/bin/python bench/scoring_speed.py [--skip-sklearn] [--skip-total]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from sklearn.metrics import average_precision_score

from hbnb import models
from hbnb.data import load_retrieval
from hbnb.data.tables import column
from hbnb.evaluation import evaluate
from hbnb.evaluation.encoding import encode, model_fingerprint
from hbnb.evaluation.ranking import twins


def _status_mb(field: str) -> float:
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def _reset_peak() -> float:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
        fh.write("5")
    return _status_mb("VmRSS")


def sklearn_loop(rs, q: np.ndarray, c: np.ndarray) -> float:
    """Per question: AP for every language pair and for the pool, plus the pool rank distance."""
    cand_langs = np.array(column(rs.candidates, "lang"))
    cand_ids = np.array(column(rs.candidates, "id"))
    relevant = dict(zip(column(rs.relevance, "query_id"), column(rs.relevance, "candidate_ids")))
    by_lang = {lang: np.nonzero(cand_langs == lang)[0] for lang in dict.fromkeys(cand_langs)}
    start = time.perf_counter()
    for i, qid in enumerate(column(rs.queries, "id")):
        scores = c @ q[i]
        truth = np.isin(cand_ids, relevant[qid])
        for sel in by_lang.values():
            if truth[sel].any():
                average_precision_score(truth[sel], scores[sel])
        average_precision_score(truth, scores)
        order = np.argsort(-scores, kind="stable")
        ranks = np.nonzero(truth[order])[0]
        _ = ranks[-1] - ranks[0]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-sklearn", action="store_true", help="skip the (slow) sklearn loop")
    parser.add_argument("--skip-total", action="store_true", help="skip the cold-cache total")
    args = parser.parse_args()
    model = models.load("use-m")
    rs = load_retrieval("xquad-r")
    fp = model_fingerprint(model)
    q_texts, c_texts = column(rs.queries, "text"), rs.candidate_texts("paragraph")
    q = encode(model, q_texts, "query", fingerprint=fp)
    c = encode(model, c_texts, "passage", fingerprint=fp)
    evaluate(model, rs, candidates="paragraph", n_resamples=100)  # warm: imports, first-call costs

    base = _reset_peak()
    start = time.perf_counter()
    result = evaluate(model, rs, candidates="paragraph", run_depth=10)
    hbnb_s = time.perf_counter() - start
    peak = _status_mb("VmHWM") - base
    start = time.perf_counter()
    evaluate(model, rs, candidates="paragraph", run_depth=1000)
    with_run_s = time.perf_counter() - start
    print(
        f"XQuAD-R: {result.meta['n_queries']} queries x {result.meta['pool_size']} candidates, "
        f"121 pairs + pool + rank distance + 95% intervals"
    )
    print(
        f"hbnb, from cached embeddings: {hbnb_s:.2f} s (encoding {result.meta['encode_s']:.2f} s of it, "
        f"ranking and tables {result.meta['score_s']:.2f} s); peak extra memory {peak:.0f} MB"
    )
    print(f"the same plus the pool's top-1000 run.trec ranking (not in the loop below): {with_run_s:.2f} s")
    start = time.perf_counter()
    copies, _ = twins(c)
    twins_s = time.perf_counter() - start
    print(
        f"of the ranking, finding identical candidate vectors (tie rule): {twins_s:.3f} s "
        f"({twins_s / result.meta['score_s']:.1%} of ranking and tables; {len(copies)} copies)"
    )
    if not args.skip_sklearn:
        loop_s = sklearn_loop(rs, q, c)
        print(f"per-question sklearn loop on the same embeddings: {loop_s:.1f} s")
        print(f"speed-up: {loop_s / hbnb_s:.0f}x (target >= 50x)")
    if not args.skip_total:
        with tempfile.TemporaryDirectory() as cache:
            os.environ["HBNB_CACHE"] = cache  # empty embedding cache: everything is encoded
            start = time.perf_counter()
            unique = list(dict.fromkeys(q_texts))
            encode(model, unique, "query", fingerprint=fp, cache=False)
            encode(model, list(dict.fromkeys(c_texts)), "passage", fingerprint=fp, cache=False)
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            evaluate(model, "xquad-r", candidates="paragraph")
            total_s = time.perf_counter() - start
        print(f"encoding the unique texts once: {encode_s:.1f} s; whole evaluation, cold cache: {total_s:.1f} s")
        print(f"evaluation / encoding: {total_s / encode_s:.3f} (target <= 1.15)")


if __name__ == "__main__":
    main()
