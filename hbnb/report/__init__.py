"""hbnb.report: results across the runs of an experiment, as tables, figures and an explorer.

- `results`: read an experiment's evaluations; headline tables with intervals and
  significance marks, per-pair matrices and deltas, bias views, `summary.csv`;
- `plots`: the figures (heatmaps, delta heatmaps, loss curve, batch mix, bias);
- `explorer`: the ipywidgets app of `notebooks/05_explore.ipynb`.

The names of `results` are importable from here (`hbnb.report.load_results`), as they
were from the module `hbnb.report`; `hbnb.plots` and `hbnb.explorer` still import too.
"""

from __future__ import annotations

from hbnb.report.results import (
    Results,
    bias,
    cell_text,
    comparisons,
    delta_matrix,
    headline,
    language_share,
    load_results,
    pair_matrix,
    pairwise,
    paper_table,
    stratified,
    write_summary,
)

__all__ = [
    "Results",
    "bias",
    "cell_text",
    "comparisons",
    "delta_matrix",
    "headline",
    "language_share",
    "load_results",
    "pair_matrix",
    "pairwise",
    "paper_table",
    "stratified",
    "write_summary",
]
