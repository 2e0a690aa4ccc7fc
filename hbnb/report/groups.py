"""Results over seed groups: summary tables, paired strategy comparisons, claim verdicts, curves.

Runs of a sweep that differ only in `seed` form one *group* (their replicates). Every
figure here is a group's mean over its seeds with a 95% interval of the two-level
seed x item bootstrap (`hbnb.evaluation.replicates`; items are drawn once per resample
and shared by the drawn seeds, because every seed is scored on the same items). An
untuned baseline is a group of one: its interval covers items only.

Comparisons pair on seed and item: seed i of one strategy against seed i of another
(the seeds both have), query by query. A *family* is what one question asks: the
strategies of one model on one evaluation set, for one headline figure, with every
other swept value equal (the *context*). Holm's correction runs over the pairs of
strategies of a family, never over every pair of runs of the experiment. ▲ (best) and
† (differs from the best, Holm-adjusted p <= 0.05) compare the strategies of one
family; the untuned baseline is shown beside them, unmarked.

Seen/unseen: pair-matrix figures can be restricted to the language pairs whose query
and candidate languages were, or were not, training languages of the run (`SPLITS`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hbnb.errors import HbnbError
from hbnb.evaluation import replicates
from hbnb.evaluation.significance import holm
from hbnb.evaluation.tasks import Headline, for_results
from hbnb.evaluation.verdicts import best, directional, equivalent
from hbnb.experiment.claims import Claim
from hbnb.report.results import RUN_COLUMNS, Results, stratified

SPLITS = ("seen->seen", "seen->unseen", "unseen->seen", "unseen->unseen")
# swept keys that identify a family's members or replicates, not its context
_MEMBERS = ("seed", "batching.strategy", "model")


@dataclass(frozen=True)
class Group:
    """The replicates of one configuration: its runs in seed order."""

    name: str
    model: str
    strategy: str | None  # None: the untuned baseline
    runs: tuple[str, ...]
    seeds: tuple[Any, ...]
    context: str  # the other swept values, as JSON (equal within a family)
    values: dict[str, Any]  # the swept values (without seed)
    languages: tuple[str, ...] | None

    @property
    def baseline(self) -> bool:
        return self.strategy is None


def swept(results: Results) -> list[str]:
    """The swept parameter paths of the experiment (columns of `Results.runs`)."""
    return [c for c in results.runs.columns if c not in RUN_COLUMNS]


def seed_groups(results: Results, dataset: str | None = None) -> list[Group]:
    """The seed groups of the runs (of one data set's runs), in the order of the runs."""
    runs = results.runs
    if dataset is not None:
        runs = runs[runs.run.isin(results.run_names(dataset))]
    keys = [c for c in swept(results) if c not in _MEMBERS]
    out = []
    for name, part in runs.groupby("group", sort=False):
        part = part.sort_values("seed", na_position="first")
        first = part.iloc[0]
        values = {k: _plain(first[k]) for k in swept(results) if k != "seed" and _present(first[k])}
        strategy = None if first.baseline else first.strategy
        context = json.dumps({k: values.get(k) for k in keys}, sort_keys=True, default=str)
        languages = first.languages if isinstance(first.languages, tuple) else None
        out.append(
            Group(str(name), str(first.model), strategy, tuple(part.run), tuple(part.seed), context, values, languages)
        )
    return out


def split_of(query_lang: pd.Series, cand_lang: pd.Series, languages: tuple[str, ...]) -> pd.Series:
    """Per row: "seen->unseen" etc., by whether each language was a training language."""
    seen = set(languages)
    side = {True: "seen", False: "unseen"}
    return query_lang.isin(seen).map(side) + "->" + cand_lang.isin(seen).map(side)


def frames(
    results: Results, group: Group, dataset: str, headline: Headline, split: str | None = None
) -> list[pd.DataFrame] | None:
    """Per seed, the per-query values of one headline figure (None: not defined for this split)."""
    if split is not None and (group.languages is None or headline.setting not in ("mono", "cross")):
        return None
    out = []
    for run in group.runs:
        df = stratified(results, run, dataset, headline.setting, headline.metric, with_langs=split is not None)
        if split is not None:
            df = df[split_of(df.query_lang, df.cand_lang, group.languages) == split]
            if df.item_id.nunique() < 2:
                return None
        out.append(df)
    return out


def group_summary(
    results: Results,
    dataset: str,
    *,
    split: str | None = None,
    n_resamples: int = 2000,
    tests: pd.DataFrame | None = None,
    marks: bool = True,
) -> pd.DataFrame:
    """One row per group and headline figure: mean over seeds, n, per-seed values, interval, marks.

    `tests`: the `compare_strategies` table the ▲/† marks come from (computed when not
    given); `marks=False` leaves the marks out.
    """
    rows = []
    for group in seed_groups(results, dataset):
        for h in for_results(dataset).headlines:
            per_seed = frames(results, group, dataset, h, split)
            if per_seed is None:
                continue
            iv = replicates.seed_interval(per_seed, n_resamples=n_resamples)
            rows.append(
                {
                    "dataset": dataset,
                    "split": split or "all",
                    "group": group.name,
                    "model": group.model,
                    "strategy": group.strategy,
                    "baseline": group.baseline,
                    "context": group.context,
                    **group.values,
                    "figure": h.label,
                    "key": h.key,
                    "mean": iv.estimate,
                    "low": iv.low,
                    "high": iv.high,
                    "n_seeds": iv.n_seeds,
                    "seeds": list(group.seeds) if not group.baseline else [],
                    "per_seed": list(iv.per_seed),
                    "min": min(iv.per_seed),
                    "max": max(iv.per_seed),
                }
            )
    table = pd.DataFrame(rows)
    for key in {k for r in rows for k in r} & set(swept(results)):  # 2 stays 2 beside a baseline without it
        table[key] = pd.Series([r.get(key) for r in rows], index=table.index, dtype=object)
    if table.empty or not marks:
        return table.assign(mark="")
    if tests is None:
        tests = compare_strategies(results, dataset, split=split, n_resamples=n_resamples)
    return _mark(table, tests)


def families(results: Results, dataset: str) -> dict[tuple[str, str], dict[str, Group]]:
    """(model, context) -> strategy -> group, for the trained groups of one data set."""
    out: dict[tuple[str, str], dict[str, Group]] = {}
    for group in seed_groups(results, dataset):
        if not group.baseline:
            out.setdefault((group.model, group.context), {})[str(group.strategy)] = group
    return out


def paired(
    results: Results, a: Group, b: Group, dataset: str, headline: Headline, split: str | None, n_resamples: int
) -> replicates.SeedComparison | None:
    """b - a on the seeds both groups have, paired on seed and query (computed once per results)."""
    memo_key = ("paired", a.name, b.name, dataset, headline.key, split, n_resamples)
    if memo_key not in results.memo:
        results.memo[memo_key] = _paired(results, a, b, dataset, headline, split, n_resamples)
    return results.memo[memo_key]


def _paired(
    results: Results, a: Group, b: Group, dataset: str, headline: Headline, split: str | None, n_resamples: int
) -> replicates.SeedComparison | None:
    common = [s for s in a.seeds if s in b.seeds]
    if not common:
        return None
    runs_a, runs_b = dict(zip(a.seeds, a.runs)), dict(zip(b.seeds, b.runs))
    pick_a = dataclasses.replace(a, runs=tuple(runs_a[s] for s in common), seeds=tuple(common))
    pick_b = dataclasses.replace(b, runs=tuple(runs_b[s] for s in common), seeds=tuple(common))
    fa = frames(results, pick_a, dataset, headline, split)
    fb = frames(results, pick_b, dataset, headline, split)
    if fa is None or fb is None:
        return None
    keep = ["item_id", "stratum", "query_id", "value"]
    return replicates.seed_compare([f[keep] for f in fa], [f[keep] for f in fb], n_resamples=n_resamples)


def compare_strategies(
    results: Results, dataset: str, *, split: str | None = None, n_resamples: int = 2000
) -> pd.DataFrame:
    """Every pair of strategies of every family: b - a, interval, p, Holm within the family."""
    rows = []
    for (model, context), members in families(results, dataset).items():
        for h in for_results(dataset).headlines:
            block = []
            for sa, sb in itertools.combinations(members, 2):
                c = paired(results, members[sa], members[sb], dataset, h, split, n_resamples)
                if c is None:
                    continue
                block.append(
                    {
                        "dataset": dataset,
                        "split": split or "all",
                        "model": model,
                        "context": context,
                        "figure": h.label,
                        "a": sa,
                        "b": sb,
                        "group_a": members[sa].name,
                        "group_b": members[sb].name,
                        "delta": c.delta,
                        "low": c.low,
                        "high": c.high,
                        "p": c.p_value,
                        "n_seeds": c.n_seeds,
                    }
                )
            if block:
                adjusted, reject = holm([r["p"] for r in block])
                rows += [{**r, "p_holm": p, "significant": bool(x)} for r, p, x in zip(block, adjusted, reject)]
    return pd.DataFrame(rows)


def _mark(table: pd.DataFrame, tests: pd.DataFrame) -> pd.DataFrame:
    """`mark`: ▲ for the best strategy of each family and figure, † for those that differ from it."""
    table = table.assign(mark="")
    trained = table[~table.baseline]
    if tests.empty:
        return table
    for (_, _, figure), part in trained.groupby(["model", "context", "figure"], sort=False):
        if len(part) < 2:
            continue
        key = part.key.iloc[0]
        higher = _higher(key, table.dataset.iloc[0])
        best = part["mean"].idxmax() if higher else part["mean"].idxmin()
        table.loc[best, "mark"] = "▲"
        best_strategy = part.loc[best, "strategy"]
        for i in part.index.drop(best):
            s = part.loc[i, "strategy"]
            hit = tests[
                (tests.figure == figure)
                & (tests.model == part.loc[i, "model"])
                & (tests.context == part.loc[i, "context"])
                & (((tests.a == s) & (tests.b == best_strategy)) | ((tests.b == s) & (tests.a == best_strategy)))
            ]
            if len(hit) and bool(hit.significant.iloc[0]):
                table.loc[i, "mark"] = "†"
    return table


def _higher(key: str, dataset: str) -> bool:
    return next(h for h in for_results(dataset).headlines if h.key == key).higher_is_better


def heatmap_pairs(results: Results, dataset: str) -> list[tuple[Group, Group]]:
    """The groups the report sets against each other in delta heatmaps, as (a, b): b - a.

    Within a family: hybrid against each other strategy; where no family has hybrid,
    every trained group against the untuned baseline of its model.
    """
    pairs = [
        (members[s], members["hybrid"])
        for members in families(results, dataset).values()
        if "hybrid" in members
        for s in members
        if s != "hybrid"
    ]
    if pairs:
        return pairs
    every = seed_groups(results, dataset)
    base = {g.model: g for g in every if g.baseline}
    return [(base[g.model], g) for g in every if not g.baseline and g.model in base]


def paired_runs(a: Group, b: Group) -> tuple[list[str], list[str]]:
    """The runs of two groups paired by seed (the seeds both have); a group of one (an untuned
    baseline) is paired with every run of the other."""
    if len(a.runs) == 1 or len(b.runs) == 1:
        n = max(len(a.runs), len(b.runs))
        return [a.runs[i % len(a.runs)] for i in range(n)], [b.runs[i % len(b.runs)] for i in range(n)]
    common = [s for s in a.seeds if s in b.seeds]
    if not common:
        raise HbnbError(f"groups {a.name} and {b.name} share no seed; pair replicates of the same seeds")
    pick = dict(zip(a.seeds, a.runs)), dict(zip(b.seeds, b.runs))
    return [pick[0][s] for s in common], [pick[1][s] for s in common]


def group_mean(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The cell-wise mean of replicates' tables (e.g. pair matrices of a group's seeds)."""
    return sum(frames[1:], frames[0]) / len(frames)


def headline_for(dataset: str, figure: str) -> Headline | None:
    """The headline a claim's figure names on a data set (key, or key without `_map`)."""
    for h in for_results(dataset).headlines:
        if figure in (h.key, h.key.removesuffix("_map")):
            return h
    return None


def verdicts(results: Results, claims: list[Claim], *, n_resamples: int = 2000) -> pd.DataFrame:
    """One row per claim, model, evaluation set and context: effect, interval, p, verdict. A claim
    between two seed groups (not strategies) is one row per evaluation set, context `{}`."""
    rows = []
    for dataset in results.datasets:
        found = families(results, dataset)
        strategies = {s for members in found.values() for s in members}
        named = {g.name: g for g in seed_groups(results, dataset) if not g.baseline}
        for claim in claims:
            h = headline_for(dataset, claim.figure)
            if h is None:
                continue
            if claim.relation != "best" and not set(claim.strategies) <= strategies:
                if set(claim.strategies) <= set(named):  # two seed groups, compared directly
                    a, b = named[claim.subject], named[str(claim.other)]
                    model = a.model if a.model == b.model else f"{a.model} vs {b.model}"
                    pair = {claim.subject: a, str(claim.other): b}
                    judged = _judge(results, claim, h, pair, dataset, n_resamples)
                    rows.append({"model": model, "dataset": dataset, "context": "{}", **judged})
                continue
            for (model, context), members in found.items():
                if any(s not in members for s in claim.strategies) or len(members) < 2:
                    continue  # a strategy the claim names is not in this family, or it has none to compare
                rows.append(
                    {
                        "model": model,
                        "dataset": dataset,
                        "context": context,
                        **_judge(results, claim, h, members, dataset, n_resamples),
                    }
                )
    return pd.DataFrame(rows)


def _judge(
    results: Results, claim: Claim, h: Headline, members: dict[str, Group], dataset: str, n_resamples: int
) -> dict[str, Any]:
    subject = members[claim.subject]
    row: dict[str, Any] = {"claim": claim.text, "figure": h.label}
    if claim.relation == "best":
        side = ">" if h.higher_is_better else "<"
        others = {s: g for s, g in members.items() if s != claim.subject}
        tests = {s: paired(results, g, subject, dataset, h, None, n_resamples) for s, g in others.items()}
        tests = {s: c for s, c in tests.items() if c is not None}
        if not tests:
            return {**row, "verdict": "inconclusive", "reason": "no paired seeds"}
        v = best(tests, side)
        # the comparison that decides the verdict: one that refutes it, else the least separated
        parts = {s: directional(c, side) for s, c in tests.items()}
        rank = {"refuted": 0, "inconclusive": 1, "supported": 2}
        against = min(parts, key=lambda s: (rank[parts[s].verdict], -parts[s].p))
        shown = tests[against]
        effect = {"effect": shown.delta, "low": shown.low, "high": shown.high, "against": against}
        n = min(c.n_seeds for c in tests.values())
    else:
        c = paired(results, members[str(claim.other)], subject, dataset, h, None, n_resamples)
        if c is None:
            return {**row, "verdict": "inconclusive", "reason": "no paired seeds"}
        v = equivalent(c, float(claim.margin)) if claim.relation == "~" else directional(c, claim.relation)
        effect = {"effect": c.delta, "low": c.low, "high": c.high, "against": claim.other}
        n = c.n_seeds
    return {**row, **effect, "p": v.p, "verdict": v.verdict, "reason": v.reason, "n_seeds": n}


def _present(value: Any) -> bool:
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return True
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def _plain(value: Any) -> Any:
    """numpy scalars to Python, for JSON and for the tables."""
    return value.item() if isinstance(value, np.generic) else value
