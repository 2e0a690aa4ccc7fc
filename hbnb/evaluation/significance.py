"""Confidence intervals and significance tests for macro-averaged per-query metrics.

Per-query values (e.g. average precision) come as a DataFrame with the columns
`item_id` (the resampling unit), `stratum` (e.g. the language pair "de->en") and a
value column. The *macro* figure is the mean over strata of the mean value within each
stratum, as the paper's monolingual and cross-lingual mAP.

Queries are translations of each other: `de_123` and `en_123` share item `123`, so
their values are correlated across strata. Every resampling here is therefore done by
item (cluster bootstrap, per-item sign flips), jointly across all strata.

The data are reduced once to a (stratum x item) matrix of value sums and of query
counts; a chunk of resamples is then a (resamples x items) weight matrix, and its
per-stratum figures are two matrix products. Chunks bound memory; no Python loop runs
over single resamples.

p-value definitions (both two-sided, both with the +1 correction that keeps them valid
and never zero):

- `p_bootstrap`: the bootstrap distribution of the delta shifted to the null,
  p = (1 + #{|delta* - delta| >= |delta|}) / (1 + R).
- `p_randomization`: paired approximate randomization; per item, the two runs' values
  are swapped in all strata at once with probability 1/2 (which flips the sign of the
  item's per-query deltas), p = (1 + #{|delta*| >= |delta|}) / (1 + R).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hbnb import seeds
from hbnb.data.tables import require_columns
from hbnb.errors import MalformedDataError, ParamsError

ITEM = "item_id"
STRATUM = "stratum"
ALPHA = 0.05

_CHUNK_ELEMENTS = 1 << 22  # ~32 MB per float64 (resamples x items) weight chunk
_TIE_RTOL = 1e-9  # draws this close to the observed statistic count as ties (float noise)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval at `level`."""

    estimate: float
    low: float
    high: float
    level: float


@dataclass(frozen=True)
class Comparison:
    """Run b against run a on the same queries: `delta` = macro(b) - macro(a)."""

    delta: float
    low: float
    high: float
    level: float
    p_bootstrap: float
    p_randomization: float
    n_items: int
    n_queries: int


@dataclass(frozen=True)
class _Table:
    """Per-query values reduced to (stratum x item) sums and query counts."""

    strata: np.ndarray
    sums: np.ndarray
    counts: np.ndarray

    @property
    def n_items(self) -> int:
        return self.sums.shape[1]

    def stratum_means(self) -> np.ndarray:
        """The observed mean value of each stratum."""
        return self.sums.sum(axis=1) / self.counts.sum(axis=1)


def macro(df: pd.DataFrame, value: str = "value") -> float:
    """The mean over strata of the mean `value` within each stratum."""
    return float(_table(df, value).stratum_means().mean())


def macro_ci(
    df: pd.DataFrame,
    value: str = "value",
    *,
    level: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> Interval:
    """Cluster (item) bootstrap percentile interval of the macro figure.

    A stratum that a resample happens to leave without queries (all its items drawn
    zero times) is dropped from that resample's average over strata.
    """
    return macro_cis(df, [value], level=level, n_resamples=n_resamples, seed=seed)[value]


def macro_cis(
    df: pd.DataFrame,
    values: Sequence[str],
    *,
    level: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict[str, Interval]:
    """`macro_ci` of several value columns of the same queries, from one set of item draws.

    Each column gets exactly the interval it would get alone with this seed; the
    resampling weights are drawn once and shared, which is what makes a table of many
    metrics cheap.
    """
    _check_level(level)
    _check_resamples(n_resamples)
    tables = _tables(df, values)
    _check_items(tables[0])
    n_strata = len(tables[0].strata)
    stacked = _Table(
        np.concatenate([t.strata for t in tables]),
        np.concatenate([t.sums for t in tables]),
        np.concatenate([t.counts for t in tables]),
    )
    boot_rng, _ = _rngs(seed)
    chunks = _bootstrap_means(stacked, n_resamples, boot_rng, width=max(tables[0].n_items, n_strata))
    draws = np.concatenate([np.nanmean(m.reshape(len(m), len(values), n_strata), axis=2) for m in chunks])
    low, high = _percentile_interval(draws, level)
    return {
        value: Interval(float(t.stratum_means().mean()), float(low[i]), float(high[i]), level)
        for i, (value, t) in enumerate(zip(values, tables))
    }


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame,
    value: str = "value",
    *,
    level: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    key: str = "query_id",
) -> Comparison:
    """Paired comparison of two runs' macro figures on the same queries.

    The interval and `p_bootstrap` come from the paired cluster bootstrap of the macro
    delta (the same draws as `macro_ci` of the per-query differences with this seed);
    `p_randomization` from per-item swaps of the two runs (see the module docstring).
    """
    _check_level(level)
    _check_resamples(n_resamples)
    table = _table(_differences(a, b, value, key), value)
    _check_items(table)
    boot_rng, flip_rng = _rngs(seed)
    delta = float(table.stratum_means().mean())
    boot = np.concatenate([np.nanmean(m, axis=1) for m in _bootstrap_means(table, n_resamples, boot_rng)])
    flips = np.concatenate([m.mean(axis=1) for m in _flipped_means(table, n_resamples, flip_rng)])
    low, high = _percentile_interval(boot, level)
    return Comparison(
        delta=delta,
        low=float(low),
        high=float(high),
        level=level,
        p_bootstrap=float(_p_shifted(boot, delta)),
        p_randomization=float(_p_flipped(flips, delta)),
        n_items=table.n_items,
        n_queries=int(table.counts.sum()),
    )


def compare_strata(
    a: pd.DataFrame,
    b: pd.DataFrame,
    value: str = "value",
    *,
    level: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    key: str = "query_id",
    alpha: float = ALPHA,
) -> pd.DataFrame:
    """Per-stratum paired comparison of two runs, one row per stratum, sorted by stratum.

    Columns: `stratum`, `delta` (mean of b minus mean of a), `low`, `high`,
    `p_bootstrap`, `p_randomization`, `p_holm` and `significant`, `n_items`,
    `n_queries`. All strata share the same item draws (the draws of `compare` with this
    seed). Resamples that leave a stratum without queries are dropped for that stratum.
    `p_holm` is the Holm adjustment of `p_randomization` across the strata and
    `significant` is `p_holm <= alpha`: the randomization test is exact under the null
    of exchangeable runs, while the bootstrap p is only asymptotically valid.
    """
    _check_level(level)
    _check_resamples(n_resamples)
    table = _table(_differences(a, b, value, key), value)
    _check_items(table)
    boot_rng, flip_rng = _rngs(seed)
    delta = table.stratum_means()
    boot = np.concatenate(list(_bootstrap_means(table, n_resamples, boot_rng)))
    flips = np.concatenate(list(_flipped_means(table, n_resamples, flip_rng)))
    low, high = _percentile_interval(boot, level)
    p_randomization = _p_flipped(flips, delta)
    p_holm, significant = holm(p_randomization, alpha)
    return pd.DataFrame(
        {
            STRATUM: table.strata,
            "delta": delta,
            "low": low,
            "high": high,
            "p_bootstrap": _p_shifted(boot, delta),
            "p_randomization": p_randomization,
            "p_holm": p_holm,
            "significant": significant,
            "n_items": (table.counts > 0).sum(axis=1),
            "n_queries": table.counts.sum(axis=1).astype(np.int64),
        }
    )


def holm(p_values: Sequence[float] | np.ndarray, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm-Bonferroni step-down: adjusted p-values (monotone, capped at 1) and reject flags.

    The i-th smallest p is scaled by (m - i + 1), made non-decreasing along the sorted
    order, and capped at 1; a hypothesis is rejected when its adjusted p is <= alpha,
    which is exactly Holm's step-down rule.
    """
    _check_level(alpha, "alpha")
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ParamsError(f"holm: expected a one-dimensional sequence of p-values, got shape {p.shape}")
    bad = ~((p >= 0) & (p <= 1))
    if bad.any():
        raise ParamsError(f"holm: {int(bad.sum())} p-values are NaN or outside [0, 1], e.g. {p[bad][0]}")
    order = np.argsort(p, kind="stable")
    scaled = (p.size - np.arange(p.size)) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted, adjusted <= alpha


def _rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent streams for bootstrap and randomization, so each is the same in every caller."""
    return seeds.rng(seed, "bootstrap"), seeds.rng(seed, "randomization")


def _chunk_sizes(n_resamples: int, width: int) -> Iterator[int]:
    """Resamples per chunk so that a (chunk x width) float64 matrix stays near 32 MB."""
    step = max(1, _CHUNK_ELEMENTS // width)
    for start in range(0, n_resamples, step):
        yield min(step, n_resamples - start)


def _bootstrap_means(
    table: _Table, n_resamples: int, rng: np.random.Generator, width: int | None = None
) -> Iterator[np.ndarray]:
    """Per-stratum means under item resampling with replacement, as (chunk x strata) blocks.

    A stratum with no query in a resample is NaN there. `width` (default: the larger
    of items and strata) sizes the chunks; callers that stack tables pass the width of one.
    """
    n = table.n_items
    for size in _chunk_sizes(n_resamples, width or max(n, len(table.strata))):
        drawn = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        weights = np.bincount(drawn.ravel(), minlength=size * n).reshape(size, n).astype(float)
        sums = weights @ table.sums.T
        counts = weights @ table.counts.T
        yield np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)


def _flipped_means(table: _Table, n_resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Per-stratum mean differences with each item's sign flipped at random, as (chunk x strata) blocks."""
    per_item = (table.sums / table.counts.sum(axis=1, keepdims=True)).T
    for size in _chunk_sizes(n_resamples, max(table.n_items, len(table.strata))):
        signs = rng.integers(0, 2, size=(size, table.n_items)).astype(float) * 2 - 1
        yield signs @ per_item


def _percentile_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The (1 - level)/2 and (1 + level)/2 quantiles along axis 0, ignoring NaN draws."""
    low, high = np.nanquantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return low, high


def _p_shifted(draws: np.ndarray, observed: float | np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value: the draws recentred on the null, NaN draws ignored."""
    valid = ~np.isnan(draws)
    extreme = np.abs(draws - observed) >= np.abs(observed) * (1 - _TIE_RTOL)
    return (1 + (extreme & valid).sum(axis=0)) / (1 + valid.sum(axis=0))


def _p_flipped(draws: np.ndarray, observed: float | np.ndarray) -> np.ndarray:
    """Two-sided randomization p-value from sign-flipped draws."""
    extreme = np.abs(draws) >= np.abs(observed) * (1 - _TIE_RTOL)
    return (1 + extreme.sum(axis=0)) / (1 + draws.shape[0])


def _differences(a: pd.DataFrame, b: pd.DataFrame, value: str, key: str) -> pd.DataFrame:
    """Per-query b minus a, aligned on (item, stratum, key); the two runs must hold the same queries."""
    keys = [ITEM, STRATUM, key]
    for name, run in (("a", a), ("b", b)):
        _check_frame(run, [*keys, value], f"run {name}")
        duplicated = run.duplicated(keys)
        if duplicated.any():
            example = _describe(run.loc[duplicated, keys].iloc[0])
            raise MalformedDataError(
                f"run {name}: {int(duplicated.sum())} rows repeat a query ({', '.join(keys)}), e.g. {example}; "
                "each query must appear once"
            )
    merged = a[[*keys, value]].merge(b[[*keys, value]], on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
    only_a = merged[merged["_merge"] == "left_only"]
    only_b = merged[merged["_merge"] == "right_only"]
    if len(only_a) or len(only_b):
        raise MalformedDataError(
            f"the runs hold different queries: {_missing(only_a, keys, 'a', 'b')}; "
            f"{_missing(only_b, keys, 'b', 'a')}; "
            "compare runs on the same queries"
        )
    merged[value] = merged[f"{value}_b"] - merged[f"{value}_a"]
    return merged[[ITEM, STRATUM, value]]


def _missing(rows: pd.DataFrame, keys: list[str], present: str, absent: str) -> str:
    """'N of run x's queries are missing from run y (e.g. ...)'."""
    text = f"{len(rows)} of run {present}'s queries are missing from run {absent}"
    return f"{text} (e.g. {_describe(rows[keys].iloc[0])})" if len(rows) else text


def _describe(row: pd.Series) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in row.items())


def _table(df: pd.DataFrame, value: str) -> _Table:
    """Validate per-query values and sum them per (stratum, item); items and strata in sorted order."""
    return _tables(df, [value])[0]


def _tables(df: pd.DataFrame, values: Sequence[str]) -> list[_Table]:
    """`_table` of several value columns of one frame: items and strata are factorised once."""
    for value in values:
        _check_frame(df, [ITEM, STRATUM, value], "the per-query table")
    items, _ = pd.factorize(df[ITEM], sort=True)
    strata_codes, strata = pd.factorize(df[STRATUM], sort=True)
    n_items = int(items.max()) + 1
    cells = strata_codes * n_items + items
    shape = (len(strata), n_items)
    counts = np.bincount(cells, minlength=shape[0] * shape[1]).reshape(shape).astype(float)
    return [
        _Table(
            np.asarray(strata),
            np.bincount(cells, weights=df[value].to_numpy(dtype=float), minlength=shape[0] * shape[1]).reshape(shape),
            counts,
        )
        for value in values
    ]


def _check_frame(df: pd.DataFrame, columns: list[str], what: str) -> None:
    """Columns present, rows present, no missing keys, finite numeric values (the last column)."""
    require_columns(list(df.columns), columns, what)
    if df.empty:
        raise MalformedDataError(f"{what}: no rows")
    *keys, value = columns
    for column in keys:
        n_null = int(df[column].isna().sum())
        if n_null:
            raise MalformedDataError(f"{what}: column {column!r} has {n_null} missing values of {len(df)}")
    if not pd.api.types.is_numeric_dtype(df[value]):
        raise MalformedDataError(f"{what}: column {value!r} is {df[value].dtype}, expected numbers")
    n_bad = int((~np.isfinite(df[value].to_numpy(dtype=float))).sum())
    if n_bad:
        raise MalformedDataError(f"{what}: column {value!r} has {n_bad} NaN or infinite values of {len(df)}")


def _check_items(table: _Table) -> None:
    if table.n_items < 2:
        raise MalformedDataError(f"resampling needs at least 2 items ({ITEM!r} values), got {table.n_items}")


def _check_level(level: float, name: str = "level") -> None:
    if not 0 < level < 1:
        raise ParamsError(f"{name} must lie strictly between 0 and 1, got {level}")


def _check_resamples(n_resamples: int) -> None:
    if n_resamples < 1:
        raise ParamsError(f"n_resamples must be at least 1, got {n_resamples}")
