"""Tidy tables of an evaluation: per-query values, and the metrics table with its intervals.

Settings of the metrics table: "pair" (X->Y), "mono"/"cross" (macro over pairs,
overall when query_lang is "all", else per query language), "pool" (multilingual),
"top10_share" (share of each candidate language among the pool's top 10), "bitext".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hbnb.evaluation.metrics import PAIR_METRICS, POOL_METRICS, metrics_from_ranks, per_query_column
from hbnb.evaluation.ranking import Ranking
from hbnb.evaluation.significance import Interval, macro_cis
from hbnb.evaluation.tasks import Headline

TOP_SHARE_K = 10


def tidy_row(
    run: str,
    dataset: str,
    setting: str,
    query_lang: str,
    cand_lang: str,
    metric: str,
    value: float,
    n: int,
    ci: Interval | None = None,
) -> dict[str, Any]:
    """One row of a metrics table (metrics.parquet)."""
    return {
        "run": run,
        "dataset": dataset,
        "setting": setting,
        "query_lang": query_lang,
        "cand_lang": cand_lang,
        "metric": metric,
        "value": float(value),
        "n_queries": int(n),
        "ci_low": ci.low if ci else np.nan,
        "ci_high": ci.high if ci else np.nan,
    }


def per_query_frame(
    ranking: Ranking, query_ids: list[str], item_ids: list[str], query_langs: list[str], pairs: str, pool: bool
) -> pd.DataFrame:
    """One row per (query, candidate language) and, with `pool`, per (query, "pool"): every metric.

    `pairs`: "all" language pairs, "same" (X->X only) or "cross" (X->Y, Y != X only).
    """
    frames = []
    base = pd.DataFrame({"query_id": query_ids, "item_id": item_ids, "query_lang": query_langs})
    for y, lang in enumerate(ranking.languages):
        mask = ranking.rel_lang == y
        rows = np.nonzero(mask.any(axis=1))[0]
        keep = base.query_lang.to_numpy()[rows]
        rows = rows[(keep == lang) if pairs == "same" else (keep != lang) if pairs == "cross" else slice(None)]
        if len(rows) == 0:
            continue
        values = metrics_from_ranks(np.where(mask, ranking.rank_lang, 0)[rows])
        values.pop("rank_distance")
        frames.append(base.iloc[rows].assign(cand_lang=lang, **values))
    if pool:
        frames.append(base.assign(cand_lang="pool", **metrics_from_ranks(ranking.rank_pool)))
    return pd.concat(frames, ignore_index=True)


def aggregate(
    per_query: pd.DataFrame, ranking: Ranking | None, run: str, dataset: str, *, n_resamples: int = 2000
) -> pd.DataFrame:
    """The tidy table: pairs, mono/cross macro-averages, pool, top-10 language shares (module docstring)."""
    rows: list[dict[str, Any]] = []

    def add(setting: str, query_lang: str, cand_lang: str, metric: str, value: float, n: int, ci=None) -> None:
        rows.append(tidy_row(run, dataset, setting, query_lang, cand_lang, metric, value, n, ci))

    pairs = per_query[per_query.cand_lang != "pool"]
    means = pairs.groupby(["query_lang", "cand_lang"], sort=False)
    pair_columns = [per_query_column(m) for m in PAIR_METRICS]
    pair_table = means[pair_columns].mean()
    counts = means.size()
    for (x, y), values in pair_table.iterrows():
        for metric in PAIR_METRICS:
            add("pair", x, y, metric, values[per_query_column(metric)], counts[(x, y)])
    for setting, same in (("mono", True), ("cross", False)):
        chosen = pairs[(pairs.query_lang == pairs.cand_lang) == same]
        if chosen.empty:
            continue
        keyed = chosen.assign(stratum=chosen.query_lang + "->" + chosen.cand_lang)
        pair_means = keyed.groupby("stratum")[pair_columns].mean()
        first_lang = keyed.groupby("stratum").query_lang.first()
        other = "same" if same else "others"
        cis = macro_cis(keyed[["item_id", "stratum", *pair_columns]], pair_columns, n_resamples=n_resamples)
        for metric in PAIR_METRICS:
            name = per_query_column(metric)
            add(setting, "all", other, metric, pair_means[name].mean(), len(keyed), cis[name])
            for x, values in pair_means[name].groupby(first_lang):
                add(setting, x, other, metric, values.mean(), int((keyed.query_lang == x).sum()))
    pool = per_query[per_query.cand_lang == "pool"]
    if not pool.empty:
        by_lang = pool.groupby("query_lang", sort=False)
        # rank distance after a top-k search is NaN (not every relevant was ranked): not reported
        metrics = [m for m in POOL_METRICS if not pool[per_query_column(m)].isna().any()]
        columns = [per_query_column(m) for m in metrics]
        cis = macro_cis(
            pool.assign(stratum=pool.query_lang)[["item_id", "stratum", *columns]], columns, n_resamples=n_resamples
        )
        for metric, name in zip(metrics, columns):
            for x, values in by_lang[name]:
                add("pool", x, "pool", metric, values.mean(), len(values))
            add("pool", "all", "pool", metric, by_lang[name].mean().mean(), len(pool), cis[name])
        if ranking is not None:
            for x, share in top_language_share(ranking, list(pool.query_lang), TOP_SHARE_K).items():
                for y, value in share.items():
                    add("top10_share", x, y, "share", value, int((pool.query_lang == x).sum()))
    return pd.DataFrame(rows)


def top_language_share(ranking: Ranking, query_langs: list[str], k: int = TOP_SHARE_K) -> dict[str, dict[str, float]]:
    """Per query language, the mean share of each candidate language among the top k (a view of bias)."""
    langs = np.array(query_langs)
    lang_index = {lang: i for i, lang in enumerate(ranking.languages)}
    out: dict[str, dict[str, float]] = {}
    top_lang = ranking.cand_lang_of_top[:, :k]
    for x in dict.fromkeys(query_langs):
        rows = top_lang[langs == x]
        counts = np.stack([(rows == lang_index[y]).sum(1) for y in ranking.languages], 1) / rows.shape[1]
        out[x] = dict(zip(ranking.languages, counts.mean(0).tolist()))
    return out


def headline_figures(table: pd.DataFrame, headlines: Sequence[Headline]) -> pd.DataFrame:
    """Per run, each headline figure with its 95% interval (long: run, value, ci_low, ci_high, figure).

    A figure is the overall row (query_lang "all") of its setting; bitext has none, so
    its figure is the mean over every direction of every pair, without an interval.
    """
    rows = []
    for h in headlines:
        part = table[(table.setting == h.setting) & (table.metric == h.metric)]
        if h.setting == "bitext":
            part = part.groupby("run", sort=False).agg(value=("value", "mean")).reset_index()
            part["ci_low"] = part["ci_high"] = np.nan
        else:
            part = part[part.query_lang == "all"][["run", "value", "ci_low", "ci_high"]]
        rows.append(part.assign(figure=h.label))
    return pd.concat(rows, ignore_index=True)
