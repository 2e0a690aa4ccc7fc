"""Statistics of results over seed groups: intervals, paired comparisons and verdicts on claims.

Runs that differ only in their training seed are *replicates*. Each seed's per-query
values come as a DataFrame in the format of `significance` (`item_id`, `stratum`, a
query key and a value column); the figure of one seed is its macro average
(`significance.macro`: the mean over strata of the mean within each stratum) and the
group figure is the mean over seeds of the per-seed figures.

What the intervals cover. A group figure is uncertain for two reasons: another set of
seeds would have trained other models (seed variance), and another sample of test items
would have scored them differently (item variance). `seed_interval` and `seed_compare`
use a two-level percentile bootstrap that covers both: each resample draws S seeds with
replacement from the S seeds, then resamples item clusters (items with replacement,
jointly across all strata, as `significance` does), and takes the mean over the drawn
seeds of their macro figures.

Shared item draws (the default, `items="shared"`). Items are *crossed* with seeds:
every seed is evaluated on the same test items, and an item's difficulty is largely the
same for every seed. One item resample per bootstrap replicate is therefore applied to
every drawn seed. Drawing items independently per seed (`items="nested"`, the textbook
hierarchical bootstrap: seeds, then items within each seed) would treat the one test set
as S independent samples, average the item noise away and shrink the item part of the
variance by about 1/S: intervals too narrow. Use "nested" only when the seeds really
saw different test samples.

Few seeds. The seed level of the bootstrap has few distinct outcomes with few seeds
(3 seeds give 10 distinct multisets) and, like every plug-in bootstrap of a mean,
underestimates the seed variance by the factor (S - 1) / S (two thirds with 3 seeds).
Every result carries `n_seeds`; report it next to the interval.

Draw order (fixed, so the numbers are reproducible and a plain loop can recompute them).
The generator is `hbnb.seeds.rng(seed, "seed-bootstrap")`. Resamples are made in chunks
of `_chunk_size(S, n_items, n_strata)` resamples (all of them in one chunk unless the
table is large); per chunk of c resamples:

1. `seed_idx = rng.integers(0, S, size=(c, S))`: the seeds drawn into the S slots of
   each resample;
2. `rng.integers(0, n_items, size=(c, n_items))` with "shared" (the items of each
   resample, for all its slots) or `size=(c, S, n_items)` with "nested" (per slot).

Items are the sorted union of the `item_id`s of all seeds, strata the sorted union of
the strata; a seed without queries on an item or in a stratum has count 0 there. A
drawn item's weight is the number of times it was drawn. A stratum left without queries
in a resample is dropped from that seed's average over strata (as in
`significance.macro_ci`); a resample whose drawn seed has no query left at all is NaN
and ignored by the interval and the p-values. With one seed, the interval is exactly
the item bootstrap of `significance.macro_ci` (the same algorithm, on another stream).

p-values (R: the number of valid resamples; all with the +1 correction that keeps them
valid and never zero):

- `SeedComparison.p_value`: two-sided, the two-level bootstrap shifted to the null,
  p = (1 + #{|d* - d| >= |d|}) / (1 + R), as `significance.compare`'s `p_bootstrap`;
  it covers seed and item variance, as the interval does.
- `directional`: the one-sided bootstrap p on the claimed side, for "b > a"
  p = (1 + #{d* <= 0}) / (1 + R).
- `equivalent`: two one-sided tests, p = max((1 + #{d* <= -margin}), (1 + #{d* >= margin})) / (1 + R).

Multiplicity. Each function answers one claim; when one question asks for several
comparisons (several pairs of strategies, several metrics), the caller applies Holm's
correction (`significance.holm`) over their p-values. `best` is an intersection-union
test and needs no correction for its "supported" verdict.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from hbnb import seeds
from hbnb.errors import MalformedDataError, ParamsError
from hbnb.evaluation.significance import (
    ITEM,
    STRATUM,
    _check_frame,
    _check_level,
    _check_resamples,
    _differences,
    _p_shifted,
    _percentile_interval,
)

ItemDraws = Literal["shared", "nested"]
Side = Literal[">", "<"]
STREAM = "seed-bootstrap"

_CHUNK_ELEMENTS = 1 << 22  # ~32 MB per float64 block of one chunk (weights or per-stratum sums)


@dataclass(frozen=True)
class SeedInterval:
    """The group figure (mean over seeds of the macro figures) with its two-level bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float
    n_seeds: int
    per_seed: tuple[float, ...]
    items: ItemDraws


@dataclass(frozen=True)
class SeedComparison:
    """Seed group b against seed group a, paired on seed and query: `delta` = mean_i macro(b_i) - macro(a_i).

    `draws` are the R two-level bootstrap draws of the delta (NaN where a resample
    left a drawn seed without queries); `directional`, `equivalent` and `best` read them.
    """

    delta: float
    low: float
    high: float
    level: float
    p_value: float
    n_seeds: int
    n_items: int
    per_seed: tuple[float, ...]
    items: ItemDraws
    draws: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class _SeedTable:
    """Per-query values of S seeds as (seed x stratum x item) sums and counts on common axes."""

    strata: np.ndarray
    sums: np.ndarray
    counts: np.ndarray

    @property
    def n_seeds(self) -> int:
        return self.sums.shape[0]

    @property
    def n_items(self) -> int:
        return self.sums.shape[2]

    def per_seed(self) -> np.ndarray:
        """Each seed's observed macro figure (over the strata in which it has queries)."""
        return _macro(self.sums.sum(axis=2), self.counts.sum(axis=2))


def seed_interval(
    frames: Sequence[pd.DataFrame],
    value: str = "value",
    *,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    items: ItemDraws = "shared",
) -> SeedInterval:
    """Two-level percentile bootstrap interval of the mean over seeds of the macro figure.

    `frames`: one per-query table per seed. Each resample draws S seeds with replacement,
    then item clusters with replacement (jointly across strata), and averages the drawn
    seeds' macro figures; the draw order is in the module docstring.

    `items="shared"` (default) applies one item resample to all drawn seeds of a
    replicate: items are crossed with seeds (every seed is scored on the same test items,
    whose difficulty is shared), so independent item draws per seed would count the one
    test set S times and shrink the item variance by about 1/S. `items="nested"` draws
    items independently for each drawn seed (resample seeds, then items within each
    seed), for seeds that were evaluated on different test samples.

    With one seed the interval is the item bootstrap of `significance.macro_ci`. With
    few seeds (e.g. 3) the seed level has few distinct outcomes and underestimates the
    seed variance by about (S - 1) / S; report `n_seeds` next to the interval.
    """
    _check_options(level, n_resamples, items)
    table = _seed_table(_check_frames(frames, "frames"), value)
    draws = _draws(table, n_resamples, seeds.rng(seed, STREAM), items)
    low, high = _percentile_interval(draws, level)
    per_seed = table.per_seed()
    return SeedInterval(
        estimate=float(per_seed.mean()),
        low=float(low),
        high=float(high),
        level=level,
        n_seeds=table.n_seeds,
        per_seed=tuple(float(x) for x in per_seed),
        items=items,
    )


def seed_compare(
    a: Sequence[pd.DataFrame],
    b: Sequence[pd.DataFrame],
    value: str = "value",
    *,
    key: str = "query_id",
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    items: ItemDraws = "shared",
) -> SeedComparison:
    """Paired two-level bootstrap of b minus a over seeds and items.

    Seed i of `a` is paired with seed i of `b` (same length required) and their per-query
    values with each other (`significance._differences`: same queries, matched on item,
    stratum and `key`); the per-query differences of all seeds then go through the
    bootstrap of `seed_interval` (same draws for this seed, `items` and table shape).
    `p_value` is two-sided, from the same draws shifted to the null (module docstring).
    """
    _check_options(level, n_resamples, items)
    a = _check_frames(a, "a")
    b = _check_frames(b, "b")
    if len(a) != len(b):
        raise ParamsError(
            f"seed_compare pairs seed i of a with seed i of b, but a has {len(a)} seeds and b has {len(b)}; "
            "pass the two groups' runs in the same seed order, one per seed"
        )
    differences = []
    for i, (run_a, run_b) in enumerate(zip(a, b)):
        try:
            differences.append(_differences(run_a, run_b, value, key))
        except MalformedDataError as error:
            raise MalformedDataError(f"seed {i}: {error}") from error
    table = _seed_table(differences, value)
    draws = _draws(table, n_resamples, seeds.rng(seed, STREAM), items)
    low, high = _percentile_interval(draws, level)
    per_seed = table.per_seed()
    delta = float(per_seed.mean())
    return SeedComparison(
        delta=delta,
        low=float(low),
        high=float(high),
        level=level,
        p_value=float(_p_shifted(draws, delta)),
        n_seeds=table.n_seeds,
        n_items=table.n_items,
        per_seed=tuple(float(x) for x in per_seed),
        items=items,
        draws=draws,
    )


# --- the two-level bootstrap ----------------------------------------------------------


def _draws(table: _SeedTable, n_resamples: int, rng: np.random.Generator, items: ItemDraws) -> np.ndarray:
    """The R bootstrap draws of the mean over drawn seeds of their macro figures (draw order: module docstring)."""
    n_seeds, n_strata, n_items = table.sums.shape
    step = _chunk_size(n_seeds, n_items, n_strata)
    # (items x seed*stratum): one matrix product gives every seed's per-stratum sums
    sums = table.sums.reshape(n_seeds * n_strata, n_items).T
    counts = table.counts.reshape(n_seeds * n_strata, n_items).T
    out = []
    for size in _chunk_sizes(n_resamples, step):
        seed_idx = rng.integers(0, n_seeds, size=(size, n_seeds))
        if items == "shared":
            weights = _weights(rng.integers(0, n_items, size=(size, n_items)), n_items)
            figures = _macro(
                (weights @ sums).reshape(size, n_seeds, n_strata),
                (weights @ counts).reshape(size, n_seeds, n_strata),
            )  # (chunk x seed): every seed's figure under this resample's items
            slots = np.take_along_axis(figures, seed_idx, axis=1)
        else:
            weights = _weights(rng.integers(0, n_items, size=(size, n_seeds, n_items)), n_items)
            slots = np.empty((size, n_seeds))
            for j in range(n_seeds):
                for s in range(n_seeds):
                    rows = seed_idx[:, j] == s
                    w = weights[rows, j]
                    slots[rows, j] = _macro(w @ table.sums[s].T, w @ table.counts[s].T)
        out.append(slots.mean(axis=1))
    return np.concatenate(out)


def _weights(drawn: np.ndarray, n_items: int) -> np.ndarray:
    """How often each item was drawn, per row of `drawn` (any leading shape, last axis: the draws)."""
    rows = drawn.reshape(-1, drawn.shape[-1])
    offsets = n_items * np.arange(len(rows))[:, None]
    counts = np.bincount((rows + offsets).ravel(), minlength=len(rows) * n_items)
    return counts.reshape(*drawn.shape[:-1], n_items).astype(float)


def _macro(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean over the last axis (strata) of sums / counts, skipping strata with count 0; NaN if none has queries."""
    present = counts > 0
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=present)
    n = present.sum(axis=-1)
    return np.divide(means.sum(axis=-1), n, out=np.full(n.shape, np.nan), where=n > 0)


def _chunk_size(n_seeds: int, n_items: int, n_strata: int) -> int:
    """Resamples per chunk, so that a chunk's weights and per-stratum sums stay near 32 MB each."""
    return max(1, _CHUNK_ELEMENTS // (n_seeds * max(n_items, n_strata)))


def _chunk_sizes(n_resamples: int, step: int) -> Iterator[int]:
    for start in range(0, n_resamples, step):
        yield min(step, n_resamples - start)


def _seed_table(frames: Sequence[pd.DataFrame], value: str) -> _SeedTable:
    """Validate each seed's per-query values and sum them per (seed, stratum, item) on common sorted axes."""
    for i, df in enumerate(frames):
        _check_frame(df, [ITEM, STRATUM, value], f"seed {i}'s per-query table")
    item_codes, item_ids = pd.factorize(pd.concat([df[ITEM] for df in frames], ignore_index=True), sort=True)
    strata_codes, strata = pd.factorize(pd.concat([df[STRATUM] for df in frames], ignore_index=True), sort=True)
    if len(item_ids) < 2:
        raise MalformedDataError(f"resampling needs at least 2 items ({ITEM!r} values), got {len(item_ids)}")
    seed_codes = np.repeat(np.arange(len(frames)), [len(df) for df in frames])
    shape = (len(frames), len(strata), len(item_ids))
    cells = (seed_codes * shape[1] + strata_codes) * shape[2] + item_codes
    size = int(np.prod(shape))
    values = np.concatenate([df[value].to_numpy(dtype=float) for df in frames])
    return _SeedTable(
        np.asarray(strata),
        np.bincount(cells, weights=values, minlength=size).reshape(shape),
        np.bincount(cells, minlength=size).reshape(shape).astype(float),
    )


# --- checks and formatting ------------------------------------------------------------


def _check_frames(frames: Sequence[pd.DataFrame], name: str) -> list[pd.DataFrame]:
    if isinstance(frames, pd.DataFrame):
        raise ParamsError(f"{name}: expected a sequence of per-query tables, one per seed, got a single DataFrame")
    frames = list(frames)
    if not frames:
        raise ParamsError(f"{name}: no seeds; pass one per-query table per seed")
    return frames


def _check_options(level: float, n_resamples: int, items: str) -> None:
    _check_level(level)
    _check_resamples(n_resamples)
    if items not in ("shared", "nested"):
        raise ParamsError(f"items must be 'shared' or 'nested', got {items!r}")
