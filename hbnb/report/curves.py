"""Curves over swept factors: a headline figure against an ordered factor (number of training
languages, language pairs, training items, alpha, a rate...) per strategy, and the
monolingual vs cross-lingual trade-off, from the seed-group summary (`groups.group_summary`).

A factor is a swept key whose values are numbers (a list is drawn against its length,
e.g. `batching.languages` lists), with at least two distinct values. Swept values keep
their types in `Results.runs`, so the axis sorts numerically.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from hbnb.files import write_atomic
from hbnb.report import plots
from hbnb.report.groups import _MEMBERS, _present, swept
from hbnb.report.results import PARAMETERS, Results


def factors(results: Results) -> list[str]:
    """Swept keys with ordered values (numbers, or lists drawn against their length), >= 2 distinct."""
    out = []
    for key in swept(results):
        if key in _MEMBERS:
            continue
        xs = {factor_value(v) for v in results.runs[key] if _present(v)}
        if len(xs) >= 2 and None not in xs:
            out.append(key)
    return out


def factor_value(value: Any) -> float | None:
    """A swept value on a numeric axis: a number itself, a list its length; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return float(len(value))
    return None


def curve_frame(summary_table: pd.DataFrame, factor: str) -> pd.DataFrame:
    """The summary rows with a numeric `x` for one factor (trained groups; baselines keep x NaN)."""
    if factor not in summary_table.columns:
        return summary_table.iloc[0:0].assign(x=[])
    x = summary_table[factor].map(lambda v: factor_value(v) if _present(v) else None)
    return summary_table.assign(x=pd.to_numeric(x, errors="coerce"))


def line_label(row: pd.Series, factor: str, several_models: bool) -> str:
    """A curve's legend: strategy (and model), plus other swept values that vary."""
    if factor == PARAMETERS:  # one line per strategy across the models (sizes)
        label = "untuned" if row.baseline else str(row.strategy)
    else:
        label = str(row.strategy) if not row.baseline else f"untuned {row.model}"
    if several_models and not row.baseline and factor != PARAMETERS:
        label = f"{row.model}: {label}"
    context = {k: v for k, v in json.loads(row.context).items() if k != factor and v is not None}
    if context:
        label += " (" + ", ".join(f"{k.rsplit('.', 1)[-1]}={short(v)}" for k, v in context.items()) + ")"
    return label


def short(v: Any) -> str:
    if isinstance(v, dict):
        return str(v.get("name") or "+".join(map(str, v)))
    if isinstance(v, list):
        return "+".join(map(str, v))
    return str(v)


def write_curves(results: Results, summary: pd.DataFrame, folder: Path) -> list[Path]:
    """Per data set, headline figure and ordered factor: the curve over the factor, and the trade-off
    plot; without an ordered factor, the groups' mono/cross trade-off per data set."""
    written: list[Path] = []
    several = results.runs.model.nunique() > 1
    for factor in factors(results):
        for dataset in results.datasets:
            part = curve_frame(summary[summary.dataset == dataset], factor)
            if part.empty or part.x.nunique() < 2:  # one value on this data set: no curve
                continue
            part = part.assign(line=[line_label(r, factor, several) for _, r in part.iterrows()])
            for figure in dict.fromkeys(part.figure):
                fig = plots.curve(part[part.figure == figure], factor, figure, f"{dataset}: {figure} by {factor}")
                written.append(_save(fig, folder / f"{_slug(dataset)}_{_slug(figure)}_{_slug(factor)}.png"))
            mono, cross = part[part.key == "mono_map"], part[part.key == "cross_map"]
            if len(mono) and len(cross):
                fig = plots.tradeoff(mono, cross, factor, f"{dataset}: mono vs cross by {factor}")
                written.append(_save(fig, folder / f"{_slug(dataset)}_tradeoff_{_slug(factor)}.png"))
    if not written:  # no ordered factor (strategies, named variants): each figure by group, the mono/cross plane
        for dataset in results.datasets:
            part = summary[summary.dataset == dataset]
            for figure in dict.fromkeys(part.figure):
                rows = part[part.figure == figure]
                if rows.group.nunique() >= 2:
                    fig = plots.group_intervals(rows, figure, f"{dataset}: {figure} by group")
                    written.append(_save(fig, folder / f"{_slug(dataset)}_{_slug(figure)}_groups.png"))
            mono, cross = part[part.key == "mono_map"], part[part.key == "cross_map"]
            if mono.group.nunique() >= 2 and len(cross):
                fig = plots.group_tradeoff(mono, cross, f"{dataset}: mono vs cross by group")
                written.append(_save(fig, folder / f"{_slug(dataset)}_tradeoff.png"))
    return written


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(text)).strip("-") or "x"


def curve_figure(
    results: Results, dataset: str, factor: str, figure: str, split: str = "all", n_resamples: int = 1000
):
    """One curve (a headline figure against a factor, per strategy) as the explorer draws it.

    `split`: "all", or a seen/unseen split of the pair-matrix figures. The group summary
    behind it is computed once per results, data set and split.
    """
    from hbnb.errors import HbnbError
    from hbnb.report.groups import group_summary

    if factor not in factors(results):
        raise HbnbError(
            f"the sweep varies no ordered factor {factor!r}; ordered factors: {factors(results) or 'none'}"
        )
    key = ("curve-summary", dataset, split, n_resamples)
    if key not in results.memo:
        chosen = None if split == "all" else split
        results.memo[key] = group_summary(results, dataset, split=chosen, n_resamples=n_resamples, marks=False)
    part = curve_frame(results.memo[key], factor)
    part = part[part.figure == figure] if len(part) else part
    if part.empty or part.x.nunique() < 2:
        raise HbnbError(f"{dataset} has no {figure} values for the split {split!r} to draw against {factor}")
    several = results.runs.model.nunique() > 1
    part = part.assign(line=[line_label(r, factor, several) for _, r in part.iterrows()])
    return plots.curve(part, factor, figure, f"{dataset}: {figure} by {factor} ({split})")
