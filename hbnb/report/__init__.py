"""hbnb.report: results across the runs of an experiment, as tables, figures and an explorer.

- `results`: read an experiment's evaluations (the runs of its parameter file), headline
  figures, per-pair matrices and deltas, bias views;
- `groups`: seed groups: summaries over seeds, paired strategy comparisons (Holm per
  family), claim verdicts, seen/unseen splits, curve data;
- `curves`: curves over swept factors and the mono/cross trade-off;
- `summary`: the report's files (verdicts, summary, comparisons, splits, curves);
- `plots`: the figures (heatmaps, small multiples, delta heatmaps, curves, trade-off,
  loss curve, batch mix, bias);
- `explorer`: the ipywidgets app of `notebooks/05_explore.ipynb`.

The names of `results` are importable from here (`hbnb.report.load_results`), as they
were from the module `hbnb.report`; `hbnb.plots` and `hbnb.explorer` still import too.
"""

from __future__ import annotations

import html
import re

from hbnb.report.curves import factors
from hbnb.report.groups import (
    Group,
    compare_strategies,
    group_summary,
    heatmap_pairs,
    seed_groups,
    verdicts,
)
from hbnb.report.results import (
    Results,
    bias,
    cell_text,
    delta_matrix,
    headline,
    language_share,
    load_results,
    pair_matrix,
    stratified,
)
from hbnb.report.summary import write_summary

__all__ = [
    "Group",
    "Results",
    "bias",
    "cell_text",
    "compare_strategies",
    "delta_matrix",
    "factors",
    "group_summary",
    "headline",
    "heatmap_pairs",
    "language_share",
    "load_results",
    "pair_matrix",
    "stratified",
    "seed_groups",
    "verdicts",
    "write_summary",
]


_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def plain(text: object) -> str:
    """A user string (a path, a name, a description) as literal text inside Markdown shown as HTML:
    Markdown punctuation backslash-escaped, then <, > and & as entities, so nothing in it can
    become a tag, a link or a script in a notebook's output or its exported page."""
    return html.escape(_MARKDOWN_PUNCTUATION.sub(r"\\\1", str(text)), quote=False)
