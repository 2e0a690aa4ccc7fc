"""Per-query retrieval metrics from ranks, and the one table that names every metric.

From the ranks r_1 < ... < r_m of a query's m relevant candidates:
- average precision (LAReQA mAP): (1/m) * sum_i i / r_i, over the full candidate list;
- recall@k: #{r_i <= k} / m;  mrr@10: 1 / r_1 if r_1 <= 10 else 0;
- ndcg@10 with binary gains; rank distance (pool only): r_m - r_1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    """One metric: its name in tables, its per-query column, which way is better, its digits in tables."""

    name: str
    column: str
    higher_is_better: bool = True
    digits: int = 3


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("map", "ap"),  # trec_eval / ir_measures AP over the full list
        Metric("recall@1", "recall@1"),
        Metric("recall@10", "recall@10"),
        Metric("mrr@10", "rr@10"),
        Metric("ndcg@10", "ndcg@10"),
        Metric("recall@100", "recall@100"),
        Metric("rank_distance", "rank_distance", higher_is_better=False, digits=1),  # hbnb's own: r_m - r_1
        Metric("accuracy@1", "accuracy@1"),
    )
}
PAIR_METRICS = ("map", "recall@1", "recall@10", "mrr@10", "ndcg@10", "recall@100")
POOL_METRICS = ("map", "recall@1", "recall@10", "rank_distance")


def per_query_column(metric: str) -> str:
    """The per-query column that holds a metric (per_query.parquet)."""
    return METRICS[metric].column if metric in METRICS else metric


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query metrics from relevant ranks (queries x K).

    A slot holds the rank of a relevant candidate (> 0), 0 when the query has no
    relevant candidate in that slot, or -1 for a relevant candidate ranked below the
    retrieved depth (top-k search): it counts as relevant but never found, so AP is
    truncated at the depth and rank distance is undefined (NaN).
    """
    m = (ranks != 0).sum(1)
    if (m == 0).any():
        raise ValueError("every query needs at least one relevant rank")
    r = np.where(ranks > 0, ranks, np.inf)
    r.sort(axis=1)
    valid = np.isfinite(r)
    hits = np.arange(1, r.shape[1] + 1)[None, :]
    ap = np.where(valid, hits / np.where(valid, r, 1), 0).sum(1) / m
    first = r[:, 0]
    gains = np.where(valid & (r <= 10), 1 / np.log2(np.where(valid, r, 1) + 1), 0).sum(1)
    ideal = np.concatenate([[0.0], np.cumsum(1 / np.log2(np.arange(2, 12)))])[np.minimum(m, 10)]
    last = np.where(valid, r, -np.inf).max(1)
    return {
        "ap": ap,
        "recall@1": (valid & (r <= 1)).sum(1) / m,
        "recall@10": (valid & (r <= 10)).sum(1) / m,
        "recall@100": (valid & (r <= 100)).sum(1) / m,
        "rr@10": np.where(first <= 10, 1 / first, 0.0),
        "ndcg@10": gains / ideal,
        "rank_distance": np.where((ranks < 0).any(1), np.nan, last - first),
    }
