"""hbnb.evaluation: scoring encoders on the registered evaluation tasks.

- `tasks`: the registry, one object per evaluation set (`get_task`, `register`);
- `encoding`: each text encoded once per model, cached;
- `ranking`: ranks of the relevant candidates per language and in the pool (matrices);
- `metrics`: per-query metrics from ranks, and the table naming every metric;
- `tables`: the tidy per-query and metrics tables, headline figures;
- `scoring`: `evaluate(model, task)` and `evaluate_to(folder, ...)`;
- `significance`: intervals and paired tests over items; `trec`: TREC run/qrels files;
- `replicates`: intervals and paired comparisons over seed groups (seed x item bootstrap);
- `verdicts`: supported / refuted / inconclusive verdicts on claims (directional, TOST, best).

`hbnb.scoring` (the module before this package) still imports as this package. The names
below are imported on first use, so `hbnb.evaluation.tasks` (which parameter validation
reads) loads without torch or sentence-transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule that defines it
_EXPORTS = {
    **dict.fromkeys(("Evaluation", "ScoreOptions", "evaluate", "evaluate_to"), "scoring"),
    **dict.fromkeys(("METRICS", "PAIR_METRICS", "POOL_METRICS", "Metric", "metrics_from_ranks"), "metrics"),
    **dict.fromkeys(("FULL_RANKING_LIMIT", "TIE_RULE", "Ranking", "rank", "rank_topk", "score_chunks"), "ranking"),
    **dict.fromkeys(("aggregate", "per_query_frame", "top_language_share"), "tables"),
    **dict.fromkeys(("SeedComparison", "SeedInterval", "seed_compare", "seed_interval"), "replicates"),
    **dict.fromkeys(("Verdict", "best", "directional", "equivalent"), "verdicts"),
    **dict.fromkeys(("TASKS", "BitextTask", "EvalTask", "PoolTask", "RetrievalTask", "get_task", "register"), "tasks"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hbnb.evaluation' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hbnb.evaluation.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
