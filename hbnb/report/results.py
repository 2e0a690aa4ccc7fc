"""Results across the runs of an experiment: headline tables with confidence intervals and
significance marks, per-language-pair matrices and their deltas, language-bias views.

Everything reads what the evaluate stages wrote (`<run>/eval/<data set>/metrics.parquet`
and `per_query.parquet`), so reports and the explorer work on any finished experiment
without rerunning anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hbnb.errors import HbnbError
from hbnb.evaluation.metrics import per_query_column
from hbnb.evaluation.significance import compare_strata
from hbnb.evaluation.tables import headline_figures
from hbnb.evaluation.tasks import folder_name, for_results
from hbnb.experiment.sweep import group_name
from hbnb.files import read_json

# the columns of Results.runs that describe a run; every other column is a swept value
RUN_COLUMNS = ("run", "model", "baseline", "group", "seed", "strategy", "in_file", "languages")
# a factor of its own when the sweep varies the model: each run's non-embedding parameter count
PARAMETERS = "non-embedding parameters"


@dataclass(frozen=True)
class Results:
    """All evaluations found under one experiment folder.

    `runs` has one row per run: `run`, `model`, `baseline`, `group` (the run's name
    without its seed), `seed`, `strategy`, `in_file` (the run is in the experiment's
    current parameter file), `languages` (its training languages) and the swept
    values, which keep their types (numbers stay numbers, so curves sort numerically).
    `table` holds the runs of the file; `elsewhere` names the runs on disk that are not.
    """

    folder: Path
    table: pd.DataFrame  # every run's metrics table, concatenated
    runs: pd.DataFrame  # one row per run (see above)
    elsewhere: tuple[str, ...] = ()
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # computed statistics, reused

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.table.dataset))

    def run_names(self, dataset: str | None = None) -> list[str]:
        t = self.table if dataset is None else self.table[self.table.dataset == dataset]
        return list(dict.fromkeys(t.run))

    def per_query(self, run: str, dataset: str) -> pd.DataFrame:
        """Per-query values of one run on one data set (read on demand, kept)."""
        return _read_parquet(self.folder / run / "eval" / folder_name(dataset) / "per_query.parquet")

    def info(self, run: str) -> pd.Series:
        """The row of `runs` for one run."""
        return self.runs.set_index("run").loc[run]


def load_results(folder: Path | str, everything: bool = False) -> Results:
    """Collect the evaluations of an experiment folder (`reports/<experiment>`).

    Only the runs of the folder's parameter file (`params.yaml`, written by `hbnb run`)
    are loaded; runs left on disk by earlier versions of the file are listed in
    `elsewhere` (or loaded too, with `everything`).
    """
    folder = Path(folder)
    tables, runs = [], []
    wanted = None if everything else _runs_of_file(folder)
    elsewhere = []
    found = sorted(folder.glob("*/eval/*/metrics.parquet"))
    if wanted is not None:  # in the file's order: baselines, then the sweep's runs
        found.sort(key=lambda m: wanted.index(m.parts[-4]) if m.parts[-4] in wanted else len(wanted))
    for metrics in found:
        run = metrics.parts[-4]
        if wanted is not None and run not in wanted:
            elsewhere.append(run)
            continue
        tables.append(_read_parquet(metrics))
    if not tables:
        raise HbnbError(
            f"{folder} holds no evaluations yet (looked for */eval/*/metrics.parquet); run `hbnb run` first"
        )
    table = pd.concat(tables, ignore_index=True)
    for name in dict.fromkeys(table.run):
        info = read_json(folder / name / "eval" / "info.json")
        spec = read_json(folder / name / "run_spec.json")
        raw = spec.get("values", {})
        values = _flat(raw)
        train = _train_params(folder / name)
        runs.append(
            {
                "run": name,
                "model": _base_model(train, info),
                "baseline": bool(info.get("baseline", False)),
                "group": spec.get("group") or (group_name(raw) if raw else name),
                "seed": spec.get("seed", train.get("seed")),
                "strategy": train.get("batching", {}).get("strategy"),
                "in_file": True,
                "languages": _training_languages(folder / name, train),
                **values,
                PARAMETERS: info.get("parameters", {}).get("non_embedding"),
            }
        )
    if len({r["model"] for r in runs if not r["baseline"]}) < 2:  # not a size sweep: no such factor
        for r in runs:
            del r[PARAMETERS]
    frame = pd.DataFrame(runs)
    for key in ["seed", *(c for c in frame.columns if c not in RUN_COLUMNS)]:  # their types stay (2 stays 2)
        frame[key] = pd.Series([r.get(key) for r in runs], index=frame.index, dtype=object)
    return Results(folder, table, frame, tuple(dict.fromkeys(elsewhere)))


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    """Swept values with a variant's paths as their own columns (its name is the group), so a
    factor set by variants (`batching.n_languages` of "hybrid-n4") is a factor like a swept key."""
    out = {k: v for k, v in values.items() if k != "variant"}
    variant = values.get("variant")
    if isinstance(variant, dict):
        out.update({k: v for k, v in variant.items() if k != "name"})
    return out


def _runs_of_file(folder: Path) -> list[str] | None:
    """Names of the baselines and runs of the folder's params.yaml, in order (None: no readable file)."""
    from hbnb.experiment.sweep import baselines, runs
    from hbnb.params import ExperimentParams, load_yaml

    path = folder / "params.yaml"
    if not path.is_file():
        return None
    try:
        params = load_yaml(ExperimentParams, path)
        specs = runs(params, str(path))
    except HbnbError:
        return None
    return [b.name for b in baselines(params, specs)] + [s.name for s in specs]


def _train_params(run: Path) -> dict:
    """A trained run's resolved training parameters (empty for an untuned baseline)."""
    import yaml

    path = run / "train" / "params.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _training_languages(run: Path, train: dict) -> tuple[str, ...] | None:
    """The languages a run was trained on: its run record, else its parameters; None when untuned."""
    record = read_json(run / "train" / "run.json")
    if record.get("languages"):
        return tuple(record["languages"])
    if not train:
        return None
    batching = train.get("batching", {})
    if batching.get("strategy") == "en-en":
        return ("en",)
    return tuple(batching["languages"]) if batching.get("languages") else None


def _base_model(train: dict, info: dict) -> str:
    """The model a run starts from: a trained run's training parameters name it; else its evaluation."""
    if train.get("model"):
        return str(train["model"])
    return str(info.get("model") or "(unknown)")


@lru_cache(maxsize=64)
def _read_parquet_cached(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_parquet(path: Path) -> pd.DataFrame:
    return _read_parquet_cached(str(path), path.stat().st_mtime)


def headline(results: Results, dataset: str) -> pd.DataFrame:
    """One row per run: the data set's headline figures with their 95% intervals (long format)."""
    return headline_figures(results.table[results.table.dataset == dataset], for_results(dataset).headlines)


def stratified(
    results: Results, run: str, dataset: str, setting: str, metric: str, with_langs: bool = False
) -> pd.DataFrame:
    """Per-query values as significance wants them: item_id, stratum, query_id, value
    (and query_lang, cand_lang `with_langs`); computed once per results (treat as read-only)."""
    key = ("stratified", run, dataset, setting, metric, with_langs)
    if key not in results.memo:
        results.memo[key] = _stratified(results, run, dataset, setting, metric, with_langs)
    return results.memo[key]


def _stratified(results: Results, run: str, dataset: str, setting: str, metric: str, with_langs: bool) -> pd.DataFrame:
    pq = results.per_query(run, dataset)
    column = per_query_column(metric)
    if setting == "mono":
        pq = pq[pq.query_lang == pq.cand_lang]
    elif setting in ("cross", "bitext"):
        pq = pq[(pq.query_lang != pq.cand_lang) & (pq.cand_lang != "pool")]
    elif setting == "pool":
        pq = pq[pq.cand_lang == "pool"]
    out = _values(pq, column, by_query_language=setting == "pool")
    if with_langs:
        out["query_lang"] = pq.query_lang.to_numpy()
        out["cand_lang"] = pq.cand_lang.to_numpy()
    return out


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


def cell_text(value: float, low: float, high: float, digits: int) -> str:
    """ "value [low, high]", or the value alone where there is no interval."""
    if np.isnan(low):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


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
    results: Results,
    run_a: str | Sequence[str],
    run_b: str | Sequence[str],
    dataset: str,
    metric: str = "map",
    n_resamples: int = 2000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(b - a per language pair, significant per pair: randomization test, Holm across pairs).

    `run_a` and `run_b` may be lists of replicates paired by position (seed i against
    seed i): the delta is then the mean over seeds, and the test resamples items with
    every seed's queries of an item together (seeds held fixed).
    """
    runs_a, runs_b = _as_list(run_a), _as_list(run_b)
    if len(runs_a) != len(runs_b):
        raise HbnbError(f"delta_matrix pairs replicates by position: got {len(runs_a)} and {len(runs_b)} runs")
    delta = sum(
        pair_matrix(results.table, b, dataset, metric) - pair_matrix(results.table, a, dataset, metric)
        for a, b in zip(runs_a, runs_b)
    ) / len(runs_a)
    setting = for_results(dataset).pair_setting
    a = _stacked(results, runs_a, dataset, metric, setting)
    b = _stacked(results, runs_b, dataset, metric, setting)
    tests = compare_strata(a, b, n_resamples=n_resamples)
    significant = pd.DataFrame(False, index=delta.index, columns=delta.columns)
    for stratum, sig in zip(tests.stratum, tests.significant):
        x, y = stratum.split("->")
        significant.loc[x, y] = bool(sig)
    return delta, significant


def _as_list(runs: str | Sequence[str]) -> list[str]:
    return [runs] if isinstance(runs, str) else list(runs)


def _stacked(results: Results, runs: list[str], dataset: str, metric: str, setting: str) -> pd.DataFrame:
    """The per-query values of several replicates as one table; query ids carry the replicate."""
    parts = [_all_pairs(results, run, dataset, metric, setting) for run in runs]
    if len(parts) == 1:
        return parts[0]
    return pd.concat([p.assign(query_id=f"{i}|" + p.query_id) for i, p in enumerate(parts)], ignore_index=True)


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
