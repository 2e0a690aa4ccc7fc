"""An interactive explorer of finished experiments (ipywidgets), for `notebooks/05_explore.ipynb`.

    from hbnb.report.explorer import Explorer
    Explorer("../reports").show()

It reads only what the evaluate stages wrote under `reports/<experiment>/` (through
`hbnb.report`), so it opens any finished or half-finished experiment without encoding
anything. Controls: experiment, data set, metric, model (filters the runs), run A and
run B; factor, figure and languages (all, or a seen/unseen split) for the curve. Views:
run A's per-language-pair heatmap; B - A per pair with non-significant
cells marked (randomization test, Holm across pairs); language bias (rank distance per
run, run A's top-10 language share) where the data set has a multilingual pool; the
table behind them; a headline figure against an ordered swept factor per strategy.
Changing a control redraws only the views that depend on it.

Figures are rendered to PNG and placed in `ipywidgets.Output` areas as display data (not
captured from a live kernel), so the explorer renders the same in JupyterLab, under
papermill and in plain Python tests, and no matplotlib figure outlives its drawing.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from hbnb import report
from hbnb.errors import HbnbError
from hbnb.evaluation.metrics import METRICS
from hbnb.evaluation.tasks import for_results
from hbnb.report import curves, groups, plots

# the metrics offered first, in this order; any other per-pair metric of a data set follows
METRIC_ORDER = tuple(METRICS)
ALL_MODELS = ""  # the model filter's "every model" value
NO_FACTOR = "(none)"  # the factor control when the sweep varies no ordered factor
VIEWS = ("heatmap", "delta", "bias", "table", "curve")
# which views a control's change invalidates (experiment, data set and model change all of them)
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "experiment": VIEWS,
    "dataset": VIEWS,
    "model": VIEWS,
    "metric": ("heatmap", "delta", "table"),
    "run_a": ("heatmap", "delta", "bias", "table"),
    "run_b": ("delta", "table"),
    "factor": ("curve",),
    "figure": ("curve",),
    "split": ("curve",),
}
DisplayData = dict[str, Any]  # one nbformat display_data output, as an Output widget holds it


# ----------------------------------------------------------------------------- what is there


def find_experiments(reports_dir: Path | str) -> list[str]:
    """Folders of `reports_dir` holding at least one evaluation (others, like ci-artifacts, are not experiments)."""
    folder = Path(reports_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and next(p.glob("*/eval/*/metrics.parquet"), None))


def run_models(results: report.Results) -> dict[str, str]:
    """Run -> the model it starts from (a trained run: the model it fine-tuned)."""
    return dict(zip(results.runs.run, results.runs.model, strict=True))


def metric_options(results: report.Results, dataset: str) -> list[str]:
    """The metrics a data set has per language pair: the usual ones first, then the rest alphabetically."""
    t = results.table
    present = set(t[(t.dataset == dataset) & t.setting.isin(["pair", "bitext"])].metric)
    return [m for m in METRIC_ORDER if m in present] + sorted(present - set(METRIC_ORDER))


def has_pool(results: report.Results, dataset: str) -> bool:
    """Whether the data set is scored as one multilingual pool (the only source of bias views)."""
    return for_results(dataset).pool


def default_pair(runs: list[str], baselines: set[str]) -> tuple[str, str]:
    """Run A: the first untuned baseline (what a trained run is compared with); run B: the first other run."""
    a = next((r for r in runs if r in baselines), runs[0])
    return a, next((r for r in runs if r != a), a)


# ----------------------------------------------------------------------------- outputs


def figure_png(fig: Figure) -> bytes:
    """The figure as PNG bytes; the figure is closed, so redrawing never accumulates figures."""
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # the small heatmaps' titles overhang
        return buffer.getvalue()
    finally:
        plt.close(fig)


def png_output(png: bytes, label: str) -> DisplayData:
    """An image as display data; `label` is its text form (what a reader without images sees)."""
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"<figure: {label}>"},
    }


def frame_output(frame: pd.DataFrame, caption: str) -> DisplayData:
    """A table as display data: HTML for the notebook, text for everything else."""
    shown = frame.round(3)
    body = f"<b>{html.escape(caption)}</b>" + shown.to_html(na_rep="", classes="hbnb-table")
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"text/html": body, "text/plain": f"{caption}\n{shown.to_string(na_rep='')}"},
    }


def text_output(text: str) -> DisplayData:
    """A short note in place of a view (why it cannot be drawn for this selection)."""
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"text/html": f"<p><i>{html.escape(text)}</i></p>", "text/plain": text},
    }


# ----------------------------------------------------------------------------- views


def heatmap_view(results: report.Results, dataset: str, metric: str, run: str) -> tuple[DisplayData, ...]:
    """Run's metric per (query language, candidate language)."""
    matrix = report.pair_matrix(results.table, run, dataset, metric)
    fig = plots.heatmap(matrix, f"{dataset}, {metric}\n{run}")
    return (png_output(figure_png(fig), f"{metric} of {run} per language pair"),)


def not_significant(delta: pd.DataFrame, significant: pd.DataFrame) -> list[str]:
    """The language pairs ("x->y") whose difference is not significant: what the delta view marks n.s."""
    return [
        f"{x}->{y}"
        for x in delta.index
        for y in delta.columns
        if pd.notna(delta.loc[x, y]) and not bool(significant.loc[x, y])
    ]


def delta_view(
    delta: pd.DataFrame, significant: pd.DataFrame, dataset: str, metric: str, a: str, b: str
) -> tuple[DisplayData, ...]:
    """B - A per pair; cells whose difference is not significant are greyed and marked n.s.

    The image's text form names those pairs too, for readers (and tests) without the picture.
    """
    fig = plots.delta_heatmap(delta, significant, f"{dataset}, {metric}\n{b}\nminus {a}")
    unmarked = ", ".join(not_significant(delta, significant)) or "none"
    return (png_output(figure_png(fig), f"{metric} difference per language pair; not significant: {unmarked}"),)


def bias_view(results: report.Results, dataset: str, runs: list[str], run_a: str) -> tuple[DisplayData, ...]:
    """Rank distance per query language for the shown runs, and run A's top-10 language share."""
    if not has_pool(results, dataset):
        return (text_output(f"{dataset} has no multilingual pool, so it has no language-bias views."),)
    distance = report.bias(results, dataset)
    distance = distance[[r for r in runs if r in distance.columns]]
    share = report.language_share(results, run_a, dataset)
    figures = [plots.rank_distance(distance), plots.language_share(share, f"top-10 language share: {run_a}")]
    return tuple(
        png_output(figure_png(f), label) for f, label in zip(figures, ("rank distance", "top-10 share"), strict=True)
    )


def headline_rows(results: report.Results, dataset: str, runs: list[str]) -> pd.DataFrame:
    """Runs x headline figures as "value [low, high]" (95% intervals where the evaluation has them)."""
    rows = report.headline(results, dataset)
    rows = rows[rows.run.isin(runs)]
    digits = {h.label: h.digits for h in for_results(dataset).headlines}
    text = [
        report.cell_text(v, lo, hi, digits[f])
        for v, lo, hi, f in zip(rows.value, rows.ci_low, rows.ci_high, rows.figure, strict=True)
    ]
    table = rows.assign(text=text).pivot(index="run", columns="figure", values="text")
    return table.reindex(index=list(dict.fromkeys(runs)), columns=list(dict.fromkeys(rows.figure)))


def table_view(results: report.Results, dataset: str, metric: str, a: str, b: str) -> tuple[DisplayData, ...]:
    """The numbers behind the heatmap (run A's pair matrix) and the headline figures of A and B."""
    matrix = report.pair_matrix(results.table, a, dataset, metric)
    return (
        frame_output(matrix, f"{metric} of {a} per language pair (rows: query language, columns: candidates)"),
        frame_output(headline_rows(results, dataset, [a, b]), f"headline figures on {dataset}"),
    )


# ----------------------------------------------------------------------------- the app


class Explorer:
    """The explorer app over a reports folder; `show()` displays it, `widget` is its root widget.

    With no evaluations under `reports_dir`, `widget` is a message saying so (`message`).
    """

    def __init__(self, reports_dir: Path | str, *, n_resamples: int = 1000) -> None:
        self.reports_dir = Path(reports_dir)
        self.n_resamples = n_resamples
        self.results: report.Results | None = None
        self._deltas: dict[tuple, tuple[pd.DataFrame, pd.DataFrame]] = {}
        self._busy = False
        experiments = find_experiments(self.reports_dir)
        self.message: widgets.HTML | None = None
        if not experiments:
            self.message = widgets.HTML(
                f"<b>No evaluations under {html.escape(str(self.reports_dir.resolve()))}.</b> "
                "The explorer reads "
                "<code>&lt;experiment&gt;/&lt;run&gt;/eval/&lt;data set&gt;/metrics.parquet</code>; "
                "run an experiment first (<code>hbnb run params/demo.yaml</code>) or point it at another folder."
            ).add_class("hbnb-message")
            self.widget: widgets.Widget = self.message
            return
        self.experiment = self._dropdown("experiment", "experiment", experiments)
        self.dataset = self._dropdown("dataset", "data set")
        self.metric = self._dropdown("metric", "metric")
        self.model = self._dropdown("model", "model")
        self.run_a = self._dropdown("run_a", "run A")
        self.run_b = self._dropdown("run_b", "run B")
        self.factor = self._dropdown("factor", "factor")
        self.figure = self._dropdown("figure", "figure")
        self.split = self._dropdown("split", "languages", ["all", *groups.SPLITS])
        self.heatmap, self.delta, self.bias, self.table, self.curve = (
            widgets.Output().add_class(f"hbnb-{v}") for v in VIEWS
        )
        self.widget = self._layout()
        self.update("experiment")

    def show(self) -> None:
        """Display the app in the notebook."""
        from IPython.display import display

        display(self.widget)

    def _dropdown(self, name: str, label: str, options: list[str] | None = None) -> widgets.Dropdown:
        control = widgets.Dropdown(
            options=options or [], description=label, style={"description_width": "initial"}
        ).add_class(f"hbnb-{name.replace('_', '-')}")
        control.observe(lambda _: self.update(name), names="value")
        return control

    def _layout(self) -> widgets.Widget:
        def section(title: str, *children: widgets.Widget) -> widgets.Widget:
            return widgets.VBox([widgets.HTML(f"<h4>{title}</h4>"), *children])

        return widgets.VBox(
            [
                widgets.HBox([self.experiment, self.dataset, self.metric]),
                widgets.HBox([self.model, self.run_a, self.run_b]),
                widgets.HBox(
                    [
                        section("Run A per language pair", self.heatmap),
                        section("Run B - run A (grey, n.s.: not significant)", self.delta),
                    ]
                ),
                section("Language bias", self.bias),
                section("Table", self.table),
                section(
                    "Curve over a swept factor (mean over seeds, band: seed x item interval)",
                    widgets.HBox([self.factor, self.figure, self.split]),
                    self.curve,
                ),
            ]
        ).add_class("hbnb-explorer")

    @contextmanager
    def _quiet(self) -> Iterator[None]:
        """Set options without each change triggering its own redraw (one redraw follows)."""
        self._busy = True
        try:
            yield
        finally:
            self._busy = False

    def update(self, control: str) -> None:
        """React to `control` changing: refresh the controls below it, then redraw what depends on it."""
        if self._busy:
            return
        with self._quiet():
            if control == "experiment":
                self.results = report.load_results(self.reports_dir / self.experiment.value)
                self._deltas.clear()
                _choose(self.dataset, self.results.datasets)
            if control in ("experiment", "dataset"):
                self._sync_dataset_controls()
            if control in ("experiment", "dataset", "model"):
                self._sync_runs()
        self.redraw(DEPENDS_ON[control])

    def _sync_dataset_controls(self) -> None:
        """Metrics and models of the chosen data set; keep the current choice where it still exists."""
        assert self.results is not None
        _choose(self.metric, metric_options(self.results, self.dataset.value))
        models = run_models(self.results)
        present = sorted({models[r] for r in self.results.run_names(self.dataset.value)})
        _choose(self.model, [("all models", ALL_MODELS), *((m, m) for m in present)])
        _choose(self.factor, curves.factors(self.results) or [NO_FACTOR])
        _choose(self.figure, [h.label for h in for_results(self.dataset.value).headlines])

    def shown_runs(self) -> list[str]:
        """Runs of the chosen data set that pass the model filter."""
        assert self.results is not None
        runs = self.results.run_names(self.dataset.value)
        if self.model.value == ALL_MODELS:
            return runs
        models = run_models(self.results)
        return [r for r in runs if models[r] == self.model.value]

    def _sync_runs(self) -> None:
        assert self.results is not None
        runs = self.shown_runs()
        a, b = default_pair(runs, set(self.results.runs.run[self.results.runs.baseline]))
        _choose(self.run_a, runs, a)
        _choose(self.run_b, runs, b)

    def redraw(self, views: tuple[str, ...] = VIEWS) -> None:
        """Recompute the given views; an evaluation lacking what a view needs shows why instead."""
        for view in views:
            try:
                outputs = getattr(self, f"_{view}_outputs")()
            except HbnbError as exc:
                outputs = (text_output(str(exc)),)
            getattr(self, view).outputs = outputs

    def _heatmap_outputs(self) -> tuple[DisplayData, ...]:
        assert self.results is not None
        return heatmap_view(self.results, self.dataset.value, self.metric.value, self.run_a.value)

    def _delta_outputs(self) -> tuple[DisplayData, ...]:
        if self.run_a.value == self.run_b.value:
            return (text_output("Run A and run B are the same run: pick two runs to compare."),)
        delta, significant = self.delta_matrix()
        return delta_view(
            delta, significant, self.dataset.value, self.metric.value, self.run_a.value, self.run_b.value
        )

    def _bias_outputs(self) -> tuple[DisplayData, ...]:
        assert self.results is not None
        return bias_view(self.results, self.dataset.value, self.shown_runs(), self.run_a.value)

    def _table_outputs(self) -> tuple[DisplayData, ...]:
        assert self.results is not None
        return table_view(self.results, self.dataset.value, self.metric.value, self.run_a.value, self.run_b.value)

    def _curve_outputs(self) -> tuple[DisplayData, ...]:
        assert self.results is not None
        if self.factor.value == NO_FACTOR:
            return (text_output("This sweep varies no ordered factor (a number, or a list drawn by its length)."),)
        fig = curves.curve_figure(
            self.results, self.dataset.value, self.factor.value, self.figure.value, self.split.value, self.n_resamples
        )
        return (png_output(figure_png(fig), f"{self.figure.value} by {self.factor.value}"),)

    def delta_matrix(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(B - A, significant) of the current selection, cached: the significance test is the slow part.

        Results are read when an experiment is chosen, so they and this cache last until another
        is chosen; rerun the notebook cell to see evaluations finished since.
        """
        assert self.results is not None
        dataset, a, b = self.dataset.value, self.run_a.value, self.run_b.value
        key = (self.experiment.value, dataset, self.metric.value, a, b)
        if key not in self._deltas:
            self._deltas[key] = report.delta_matrix(self.results, a, b, dataset, self.metric.value, self.n_resamples)
        return self._deltas[key]


def _choose(control: widgets.Dropdown, options: list, default: Any = None) -> None:
    """Give a dropdown new options, keeping its value when it is still offered (else `default`, else the first)."""
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    current = control.value
    control.options = options
    control.value = current if current in values else default if default in values else values[0]
