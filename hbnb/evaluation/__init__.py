"""hbnb.evaluation: scoring encoders on the registered evaluation tasks.

- `tasks`: the registry, one object per evaluation set (`get_task`, `register`);
- `encoding`: each text encoded once per model, cached;
- `ranking`: ranks of the relevant candidates per language and in the pool (matrices);
- `metrics`: per-query metrics from ranks, and the table naming every metric;
- `tables`: the tidy per-query and metrics tables, headline figures;
- `evaluate`: `evaluate(model, task)` and `evaluate_to(folder, ...)`;
- `significance`: intervals and paired tests over items; `trec`: TREC run/qrels files.

`hbnb.scoring` (the name before this package) still imports as this package.
"""

from __future__ import annotations

from hbnb.evaluation.evaluate import Evaluation, ScoreOptions, evaluate, evaluate_to
from hbnb.evaluation.metrics import METRICS, PAIR_METRICS, POOL_METRICS, Metric, metrics_from_ranks
from hbnb.evaluation.ranking import FULL_RANKING_LIMIT, TIE_RULE, Ranking, rank, rank_topk, score_chunks
from hbnb.evaluation.tables import aggregate, per_query_frame, top_language_share
from hbnb.evaluation.tasks import TASKS, BitextTask, EvalTask, PoolTask, RetrievalTask, get_task, register

__all__ = [
    "FULL_RANKING_LIMIT",
    "METRICS",
    "PAIR_METRICS",
    "POOL_METRICS",
    "TASKS",
    "TIE_RULE",
    "BitextTask",
    "EvalTask",
    "Evaluation",
    "Metric",
    "PoolTask",
    "Ranking",
    "RetrievalTask",
    "ScoreOptions",
    "aggregate",
    "evaluate",
    "evaluate_to",
    "get_task",
    "metrics_from_ranks",
    "per_query_frame",
    "rank",
    "rank_topk",
    "register",
    "score_chunks",
    "top_language_share",
]
