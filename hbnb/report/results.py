"""Results across the runs of an experiment: headline tables with confidence intervals and
significance marks, per-language-pair matrices and their deltas, language-bias views.

Everything reads what the evaluate stages wrote (`<run>/eval/<data set>/metrics.parquet`
and `per_query.parquet`), so reports and the explorer work on any finished experiment
without rerunning anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from hbnb.errors import HbnbError
from hbnb.evaluation.metrics import per_query_column
from hbnb.evaluation.significance import compare, compare_strata, holm
from hbnb.evaluation.tables import headline_figures
from hbnb.evaluation.tasks import for_results


@dataclass(frozen=True)
class Results:
    """All evaluations found under one experiment folder."""

    folder: Path
    table: pd.DataFrame  # every run's metrics table, concatenated
    runs: pd.DataFrame  # one row per run: run, model, baseline, swept values

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.table.dataset))

    def run_names(self, dataset: str | None = None) -> list[str]:
        t = self.table if dataset is None else self.table[self.table.dataset == dataset]
        return list(dict.fromkeys(t.run))

    def per_query(self, run: str, dataset: str) -> pd.DataFrame:
        """Per-query values of one run on one data set (read on demand, kept)."""
        return _read_parquet(self.folder / run / "eval" / dataset / "per_query.parquet")


def load_results(folder: Path | str) -> Results:
    """Collect the evaluations of an experiment folder (`reports/<experiment>`)."""
    folder = Path(folder)
    tables, runs = [], []
    for metrics in sorted(folder.glob("*/eval/*/metrics.parquet")):
        tables.append(_read_parquet(metrics))
    if not tables:
        raise HbnbError(
            f"{folder} holds no evaluations yet (looked for */eval/*/metrics.parquet); run `hbnb run` first"
        )
    table = pd.concat(tables, ignore_index=True)
    for name in dict.fromkeys(table.run):
        info = _json(folder / name / "eval" / "info.json")
        values = _json(folder / name / "run_spec.json").get("values", {})
        runs.append(
            {
                "run": name,
                "model": _base_model(folder / name, info),
                "baseline": bool(info.get("baseline", False)),
                **{k: str(v) for k, v in values.items()},
            }
        )
    return Results(folder, table, pd.DataFrame(runs))


def _base_model(run: Path, info: dict) -> str:
    """The model a run starts from: a trained run's training parameters name it; else its evaluation."""
    import yaml

    params = run / "train" / "params.yaml"
    if params.is_file():
        return str(yaml.safe_load(params.read_text(encoding="utf-8"))["model"])
    return str(info.get("model") or "(unknown)")


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@lru_cache(maxsize=64)
def _read_parquet_cached(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_parquet(path: Path) -> pd.DataFrame:
    return _read_parquet_cached(str(path), path.stat().st_mtime)


def headline(results: Results, dataset: str) -> pd.DataFrame:
    """One row per run: the data set's headline figures with their 95% intervals (long format)."""
    return headline_figures(results.table[results.table.dataset == dataset], for_results(dataset).headlines)


def stratified(results: Results, run: str, dataset: str, setting: str, metric: str) -> pd.DataFrame:
    """Per-query values as significance wants them: item_id, stratum, query_id, value."""
    pq = results.per_query(run, dataset)
    column = per_query_column(metric)
    if setting == "mono":
        pq = pq[pq.query_lang == pq.cand_lang]
    elif setting in ("cross", "bitext"):
        pq = pq[(pq.query_lang != pq.cand_lang) & (pq.cand_lang != "pool")]
    elif setting == "pool":
        pq = pq[pq.cand_lang == "pool"]
    return _values(pq, column, by_query_language=setting == "pool")


def _values(pq: pd.DataFrame, column: str, by_query_language: bool = False) -> pd.DataFrame:
    """item_id, stratum (the language pair, or the query language), query_id, value."""
    stratum = pq.query_lang if by_query_language else pq.query_lang + "->" + pq.cand_lang
    return pd.DataFrame(
        {
            "item_id": pq.item_id.to_numpy(),
            "stratum": stratum.to_numpy(),
            "query_id": (pq.query_id + "|" + pq.cand_lang).to_numpy(),
            "value": pq[column].to_numpy(dtype=float),
        }
    )


def paper_table(results: Results, dataset: str, n_resamples: int = 2000) -> pd.DataFrame:
    """The paper-style table: runs x headline figures, "value [low, high]", with significance marks.

    In each column the best run is marked "▲"; a run marked "†" differs from it
    significantly (paired randomization test over items, Holm-corrected across the
    column's runs, alpha 0.05). Unmarked runs are not distinguishable from the best.
    """
    heads = headline(results, dataset)
    runs = results.run_names(dataset)
    cells = pd.DataFrame(index=runs)
    for h in for_results(dataset).headlines:
        setting, metric, label = h.setting, h.metric, h.label
        col = heads[heads.figure == label].set_index("run")
        if col.empty:
            continue
        best = col.value.idxmax() if h.higher_is_better else col.value.idxmin()
        others = [r for r in runs if r != best and r in col.index]
        p = [
            compare(
                stratified(results, best, dataset, setting, metric),
                stratified(results, r, dataset, setting, metric),
                n_resamples=n_resamples,
            ).p_randomization
            for r in others
        ]
        _, reject = holm(p) if p else ([], [])
        marks = {best: " ▲", **{r: (" †" if rej else "") for r, rej in zip(others, reject)}}
        cells[label] = [_cell(col.loc[r], h.digits) + marks.get(r, "") if r in col.index else "" for r in runs]
    return cells


def _cell(row: pd.Series, digits: int) -> str:
    return cell_text(row.value, row.ci_low, row.ci_high, digits)


def cell_text(value: float, low: float, high: float, digits: int) -> str:
    """ "value [low, high]", or the value alone where there is no interval."""
    if np.isnan(low):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def pairwise(results: Results, dataset: str, n_resamples: int = 2000) -> pd.DataFrame:
    """Every pair of runs on every headline figure: delta (b - a), interval, p-values, Holm per figure."""
    rows = []
    runs = results.run_names(dataset)
    for h in for_results(dataset).headlines:
        setting, metric, label = h.setting, h.metric, h.label
        block = []
        for i, a in enumerate(runs):
            for b in runs[i + 1 :]:
                c = compare(
                    stratified(results, a, dataset, setting, metric),
                    stratified(results, b, dataset, setting, metric),
                    n_resamples=n_resamples,
                )
                block.append(
                    {
                        "figure": label,
                        "run_a": a,
                        "run_b": b,
                        "delta": c.delta,
                        "low": c.low,
                        "high": c.high,
                        "p_randomization": c.p_randomization,
                        "p_bootstrap": c.p_bootstrap,
                    }
                )
        if block:
            adjusted, reject = holm([r["p_randomization"] for r in block])
            for r, p, rej in zip(block, adjusted, reject):
                rows.append({**r, "p_holm": p, "significant": bool(rej)})
    return pd.DataFrame(rows)


def pair_matrix(table: pd.DataFrame, run: str, dataset: str, metric: str = "map") -> pd.DataFrame:
    """query language x candidate language matrix of one run's metric (the heatmap's data).

    `table` is a metrics table: `Results.table`, or one `Evaluation.table`.
    """
    t = table
    part = t[(t.run == run) & (t.dataset == dataset) & (t.setting.isin(["pair", "bitext"])) & (t.metric == metric)]
    if part.empty:
        raise HbnbError(f"run {run!r} has no {metric} per language pair on {dataset}")
    langs = list(dict.fromkeys([*part.query_lang, *part.cand_lang]))
    return part.pivot(index="query_lang", columns="cand_lang", values="value").reindex(index=langs, columns=langs)


def delta_matrix(
    results: Results, run_a: str, run_b: str, dataset: str, metric: str = "map", n_resamples: int = 2000
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(b - a per language pair, significant per pair: randomization test, Holm across pairs)."""
    delta = pair_matrix(results.table, run_b, dataset, metric) - pair_matrix(results.table, run_a, dataset, metric)
    setting = for_results(dataset).pair_setting
    a = _all_pairs(results, run_a, dataset, metric, setting)
    b = _all_pairs(results, run_b, dataset, metric, setting)
    tests = compare_strata(a, b, n_resamples=n_resamples)
    significant = pd.DataFrame(False, index=delta.index, columns=delta.columns)
    for stratum, sig in zip(tests.stratum, tests.significant):
        x, y = stratum.split("->")
        significant.loc[x, y] = bool(sig)
    return delta, significant


def _all_pairs(results: Results, run: str, dataset: str, metric: str, setting: str) -> pd.DataFrame:
    if setting == "bitext":
        return stratified(results, run, dataset, "bitext", metric)
    pq = results.per_query(run, dataset)
    return _values(pq[pq.cand_lang != "pool"], per_query_column(metric))


def bias(results: Results, dataset: str) -> pd.DataFrame:
    """Rank distance per query language and run (lower: less language bias)."""
    t = results.table
    part = t[(t.dataset == dataset) & (t.setting == "pool") & (t.metric == "rank_distance") & (t.query_lang != "all")]
    return part.pivot(index="query_lang", columns="run", values="value").reindex(
        index=list(dict.fromkeys(part.query_lang))
    )


def language_share(results: Results, run: str, dataset: str) -> pd.DataFrame:
    """Share of each candidate language among the pool's top 10, per query language (rows sum to 1)."""
    t = results.table
    part = t[(t.run == run) & (t.dataset == dataset) & (t.setting == "top10_share")]
    langs = list(dict.fromkeys(part.query_lang))
    return part.pivot(index="query_lang", columns="cand_lang", values="value").reindex(index=langs)


def comparisons(results: Results) -> list[tuple[str, str]]:
    """Which runs the report sets against each other in delta heatmaps, as (a, b): b - a.

    Runs that differ only in their batch strategy: hybrid against each other strategy;
    otherwise every trained run against the untuned baseline of its model.
    """
    runs = results.runs
    trained = runs[~runs.baseline]
    pairs: list[tuple[str, str]] = []
    if "batching.strategy" in runs.columns:
        others = [c for c in runs.columns if c not in ("run", "model", "baseline", "batching.strategy")]
        for _, group in trained.groupby(others, dropna=False) if others else [(None, trained)]:
            by_strategy = dict(zip(group["batching.strategy"], group.run))
            if "hybrid" in by_strategy:
                pairs += [(by_strategy[s], by_strategy["hybrid"]) for s in by_strategy if s != "hybrid"]
    if not pairs:
        base = dict(zip(runs[runs.baseline].model, runs[runs.baseline].run))
        pairs = [(base[m], r) for m, r in zip(trained.model, trained.run) if m in base]
    return pairs


def write_summary(results: Results, folder: Path | str, n_resamples: int = 2000) -> dict[str, pd.DataFrame]:
    """The paper tables of every data set: summary.csv (long, with intervals) and summary.html (for index.html)."""
    from hbnb.files import write_atomic, write_text

    folder = Path(folder)
    tables = {d: paper_table(results, d, n_resamples) for d in results.datasets}
    long = pd.concat([headline(results, d).assign(dataset=d) for d in results.datasets], ignore_index=True)
    write_atomic(folder / "summary.csv", lambda p: long.to_csv(p, index=False))
    parts = [f"<h3>{d}</h3>" + t.to_html(classes="summary", border=0) for d, t in tables.items()]
    note = (
        "<p>value [95% interval]; ▲ best in the column; † significantly different from the best "
        "(paired randomization test over items, Holm-corrected, α = 0.05).</p>"
    )
    write_text(folder / "summary.html", "\n".join(parts) + note)
    return tables
