"""Two-level (seed x item) bootstrap over seed groups and the verdicts on claims, on simulated per-query values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from hbnb import seeds
from hbnb.errors import MalformedDataError, ParamsError
from hbnb.evaluation import replicates, significance, verdicts
from hbnb.evaluation.replicates import SeedComparison, SeedInterval, seed_compare, seed_interval
from hbnb.evaluation.significance import macro, macro_ci
from hbnb.evaluation.verdicts import Verdict, best, directional, equivalent

STRATA = ["de->de", "de->en", "en->en"]
N_ITEMS = 40


def frame(values: np.ndarray) -> pd.DataFrame:
    """Per-query values from an (items x strata) array: one query per item and stratum."""
    n_items, n_strata = values.shape
    items = np.repeat([f"i{k:03d}" for k in range(n_items)], n_strata)
    stratum = np.tile(STRATA[:n_strata], n_items)
    return pd.DataFrame(
        {
            "item_id": items,
            "stratum": stratum,
            "query_id": [f"{s.split('->')[0]}_{i}" for s, i in zip(stratum, items)],
            "value": values.ravel(),
        }
    )


def simulate(
    n_seeds: int = 3,
    *,
    seed_sd: float = 0.05,
    item_sd: float = 0.15,
    noise_sd: float = 0.05,
    shift: float = 0.0,
    n_items: int = N_ITEMS,
    rng: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(seeds x items x strata) values: a seed effect, an item effect shared by all seeds and strata, noise.

    Returns the seeds' values and the item effects, so that paired groups can reuse them.
    """
    gen = np.random.default_rng(rng)
    seed_effect = gen.normal(0, seed_sd, size=(n_seeds, 1, 1))
    item_effect = gen.normal(0, item_sd, size=(1, n_items, 1))
    stratum_effect = np.array([0.0, -0.1, 0.05])[None, None, :]
    noise = gen.normal(0, noise_sd, size=(n_seeds, n_items, len(STRATA)))
    return 0.5 + shift + seed_effect + item_effect + stratum_effect + noise, item_effect


def frames(values: np.ndarray) -> list[pd.DataFrame]:
    return [frame(v) for v in values]


def ragged_group() -> list[pd.DataFrame]:
    """3 seeds; seed 1 lacks two items and seed 2 a whole stratum, so the common axes are unions."""
    group = frames(simulate()[0])
    group[1] = group[1][~group[1]["item_id"].isin(["i003", "i017"])].reset_index(drop=True)
    group[2] = group[2][group[2]["stratum"] != "en->en"].reset_index(drop=True)
    return group


# --- the independent reference: a plain loop over resamples ----------------------------


def loop_draws(group: list[pd.DataFrame], n_resamples: int, seed: int, items: str, chunk: int) -> np.ndarray:
    """The documented draw order, one resample at a time, on resampled DataFrames.

    Per chunk: seed indices (chunk x S), then item indices (chunk x n_items) or
    (chunk x S x n_items); items index the sorted union of item ids. Each drawn seed's
    figure is the macro average of its rows of the drawn items (with repeats).
    """
    rng = seeds.rng(seed, "seed-bootstrap")
    item_ids = sorted(set().union(*(set(df["item_id"]) for df in group)))
    by_item = [{item: rows for item, rows in df.groupby("item_id")} for df in group]
    n_seeds, n_items = len(group), len(item_ids)
    draws = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        seed_idx = rng.integers(0, n_seeds, size=(size, n_seeds))
        shape = (size, n_items) if items == "shared" else (size, n_seeds, n_items)
        drawn_items = rng.integers(0, n_items, size=shape)
        for r in range(size):
            figures = []
            for j in range(n_seeds):
                s = seed_idx[r, j]
                picks = drawn_items[r] if items == "shared" else drawn_items[r, j]
                parts = [by_item[s][item_ids[k]] for k in picks if item_ids[k] in by_item[s]]
                resampled = pd.concat(parts)
                figures.append(resampled.groupby("stratum")["value"].mean().mean())
            draws.append(np.mean(figures))
    return np.array(draws)


@pytest.mark.parametrize("items", ["shared", "nested"])
@pytest.mark.parametrize("chunk", [7, None])
def test_interval_reproduces_a_plain_loop_over_resamples(items: str, chunk: int | None, monkeypatch) -> None:
    group = ragged_group()
    n_resamples = 60
    if chunk is not None:  # several chunks, the last one partial
        monkeypatch.setattr(replicates, "_chunk_size", lambda *shape: chunk)
    expected = loop_draws(group, n_resamples, seed=3, items=items, chunk=chunk or n_resamples)
    result = seed_interval(group, level=0.9, n_resamples=n_resamples, seed=3, items=items)
    low, high = np.quantile(expected, [0.05, 0.95])
    assert result.low == pytest.approx(low, rel=1e-12)
    assert result.high == pytest.approx(high, rel=1e-12)
    assert (result.level, result.n_seeds, result.items) == (0.9, 3, items)


@pytest.mark.parametrize("items", ["shared", "nested"])
def test_comparison_draws_reproduce_a_plain_loop_on_the_differences(items: str, monkeypatch) -> None:
    a = ragged_group()
    b = [df.assign(value=df["value"] + 0.02 * np.sin(np.arange(len(df))) + 0.01 * i) for i, df in enumerate(a)]
    b = [df.sample(frac=1.0, random_state=i).reset_index(drop=True) for i, df in enumerate(b)]  # other row order
    monkeypatch.setattr(replicates, "_chunk_size", lambda *shape: 11)
    c = seed_compare(a, b, n_resamples=40, seed=5, items=items)
    diffs = []
    for run_a, run_b in zip(a, b):
        merged = run_a.merge(run_b, on=["item_id", "stratum", "query_id"], suffixes=("_a", "_b"))
        diffs.append(merged.assign(value=merged["value_b"] - merged["value_a"]))
    expected = loop_draws(diffs, 40, seed=5, items=items, chunk=11)
    np.testing.assert_allclose(c.draws, expected, rtol=1e-12, atol=1e-15)
    delta = np.mean([macro(run_b) - macro(run_a) for run_a, run_b in zip(a, b)])
    assert c.delta == pytest.approx(delta, rel=1e-12)
    p = (1 + np.sum(np.abs(expected - delta) >= np.abs(delta))) / (1 + len(expected))
    assert c.p_value == pytest.approx(p)
    assert (c.n_seeds, c.n_items, c.items) == (3, N_ITEMS, items)


def test_per_seed_figures_are_the_macro_figures_of_each_seed() -> None:
    group = ragged_group()
    result = seed_interval(group, n_resamples=50)
    expected = [macro(df) for df in group]
    np.testing.assert_allclose(result.per_seed, expected, rtol=1e-12)
    assert result.estimate == pytest.approx(np.mean(expected), rel=1e-12)
    assert result.low < result.estimate < result.high
    assert isinstance(result, SeedInterval)


# --- one seed, seed variance, shared against nested item draws ---------------------------


def test_one_seed_is_exactly_the_item_bootstrap_of_macro_ci_on_the_same_stream(monkeypatch) -> None:
    # seed_idx = integers(0, 1) consumes no random numbers, so with one seed the item draws
    # are those of macro_ci once macro_ci reads the seed-bootstrap stream
    df = frame(simulate(1)[0][0])
    monkeypatch.setattr(significance, "_rngs", lambda seed: (seeds.rng(seed, "seed-bootstrap"), None))
    expected = macro_ci(df, n_resamples=500, seed=9)
    for items in ("shared", "nested"):
        result = seed_interval([df], n_resamples=500, seed=9, items=items)
        assert (result.estimate, result.low, result.high) == pytest.approx(
            (expected.estimate, expected.low, expected.high), rel=1e-12
        )


def test_one_seed_matches_the_item_bootstrap_in_distribution() -> None:
    df = frame(simulate(1)[0][0])
    expected = macro_ci(df, n_resamples=20_000, seed=1)
    result = seed_interval([df], n_resamples=20_000, seed=1)
    width = expected.high - expected.low
    assert result.estimate == expected.estimate
    assert abs(result.low - expected.low) < 0.05 * width
    assert abs(result.high - expected.high) < 0.05 * width


def test_seed_variance_widens_the_interval() -> None:
    base = simulate(1, seed_sd=0.0)[0][0]
    one = seed_interval([frame(base)], n_resamples=4000)
    same = seed_interval([frame(base)] * 5, n_resamples=4000)  # five seeds, no seed variance
    spread = seed_interval([frame(base + d) for d in (-0.1, -0.05, 0.0, 0.05, 0.1)], n_resamples=4000)
    width = one.high - one.low
    assert (same.high - same.low) == pytest.approx(width, rel=0.1)
    assert spread.estimate == pytest.approx(one.estimate)
    assert spread.high - spread.low > 1.5 * width


def test_nested_item_draws_are_narrower_when_items_have_shared_effects() -> None:
    # item effects dominate and are the same for every seed: nested draws average them
    # over S independent item samples and shrink their variance by about 1/S
    group = frames(simulate(4, seed_sd=0.005, item_sd=0.2, noise_sd=0.02)[0])
    shared = seed_interval(group, n_resamples=3000, items="shared")
    nested = seed_interval(group, n_resamples=3000, items="nested")
    ratio = (nested.high - nested.low) / (shared.high - shared.low)
    assert 0.35 < ratio < 0.7  # about 1 / sqrt(4)
    one_seed = seed_interval(group[:1], n_resamples=3000)
    assert shared.high - shared.low == pytest.approx(one_seed.high - one_seed.low, rel=0.15)


def test_same_seed_gives_the_same_numbers() -> None:
    a = frames(simulate(rng=1)[0])
    b = frames(simulate(rng=1, shift=0.01)[0])
    first, again = seed_compare(a, b, n_resamples=300, seed=4), seed_compare(a, b, n_resamples=300, seed=4)
    assert first == again
    np.testing.assert_array_equal(first.draws, again.draws)
    other = seed_compare(a, b, n_resamples=300, seed=5)
    assert not np.array_equal(first.draws, other.draws)
    assert seed_interval(a, n_resamples=300, seed=4) == seed_interval(a, n_resamples=300, seed=4)


# --- verdicts ----------------------------------------------------------------------------


def paired(shift: float, *, noise_sd: float = 0.02, seed_sd: float = 0.005, rng: int = 0) -> SeedComparison:
    """Group b = group a + shift + its own seed effects and noise, on the same items; the comparison b - a."""
    a_values, _ = simulate(3, rng=rng)
    gen = np.random.default_rng(rng + 100)
    b_values = a_values + shift + gen.normal(0, seed_sd, size=(3, 1, 1)) + gen.normal(0, noise_sd, size=a_values.shape)
    return seed_compare(frames(a_values), frames(b_values), n_resamples=2000, seed=rng)


def from_draws(draws: np.ndarray, level: float = 0.95) -> SeedComparison:
    """A comparison whose draws are given, with its percentile interval."""
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return SeedComparison(
        float(np.mean(draws)), low, high, level, 1.0, 3, N_ITEMS, (0.0, 0.0, 0.0), "shared", np.asarray(draws)
    )


def test_directional_verdicts() -> None:
    up, down, flat = paired(0.05), paired(-0.05), paired(0.001, noise_sd=0.15)
    assert directional(up, ">").verdict == "supported"
    assert directional(up, "<").verdict == "refuted"
    assert directional(down, ">").verdict == "refuted"
    assert directional(down, "<").verdict == "supported"
    assert directional(flat, ">").verdict == "inconclusive"
    assert directional(flat, "<").verdict == "inconclusive"
    assert "lies above 0" in directional(up, ">").reason
    assert "contains 0" in directional(flat, ">").reason
    assert directional(up, ">").p < 0.025 < directional(up, "<").p


def test_directional_p_is_the_one_sided_count_on_the_claimed_side() -> None:
    draws = np.array([-0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05, np.nan])
    c = from_draws(draws[:-1])
    c = dataclasses.replace(c, draws=draws)  # NaN draws are ignored
    assert directional(c, ">").p == pytest.approx((1 + 3) / (1 + 8))  # -0.02, -0.01, 0.0
    assert directional(c, "<").p == pytest.approx((1 + 6) / (1 + 8))  # 0.0 and the five above
    assert directional(c, ">").verdict == "inconclusive"


def test_equivalence_verdicts() -> None:
    same, far, unclear = paired(0.0), paired(0.2), paired(0.03, noise_sd=0.3)
    assert equivalent(same, margin=0.05).verdict == "supported"
    assert equivalent(far, margin=0.05).verdict == "refuted"
    assert equivalent(unclear, margin=0.05).verdict == "inconclusive"
    assert "inside (-0.05, 0.05)" in equivalent(same, margin=0.05).reason
    assert "above +0.05" in equivalent(far, margin=0.05).reason
    assert equivalent(paired(-0.2), margin=0.05).verdict == "refuted"
    assert equivalent(far, margin=1.0).verdict == "supported"  # a difference of 0.2 is within a margin of 1


@pytest.mark.parametrize("margin", [0.01, 0.03, 0.05, 0.08])
def test_tost_p_agrees_with_a_loop_count(margin: float) -> None:
    c = paired(0.02, noise_sd=0.1)
    below = above = 0
    for d in c.draws:
        below += d <= -margin
        above += d >= margin
    p = max(1 + below, 1 + above) / (1 + len(c.draws))
    verdict = equivalent(c, margin, alpha=0.05)
    assert verdict.p == pytest.approx(p)
    assert (verdict.verdict == "supported") == (p <= 0.05)


def test_tost_agrees_with_the_interval_rule() -> None:
    draws = np.linspace(-0.04, 0.04, 999)  # the 90% interval is about [-0.036, 0.036]
    c = from_draws(draws)
    assert equivalent(c, 0.037, alpha=0.05).verdict == "supported"
    assert equivalent(c, 0.035, alpha=0.05).verdict == "inconclusive"
    assert equivalent(from_draws(draws + 0.1), 0.05).verdict == "refuted"
    assert equivalent(from_draws(draws - 0.1), 0.05).verdict == "refuted"


def test_best_verdicts() -> None:
    clear, worse, close = paired(0.05, rng=1), paired(-0.05, rng=2), paired(0.001, noise_sd=0.15, rng=3)
    supported = best({"mbert": clear, "labse": paired(0.04, rng=4)}, ">")
    assert supported.verdict == "supported"
    assert supported.p == max(directional(clear, ">").p, directional(paired(0.04, rng=4), ">").p)
    assert "all 2 others" in supported.reason
    refuted = best({"mbert": clear, "labse": worse, "xlmr": close}, ">")
    assert refuted.verdict == "refuted" and "'labse'" in refuted.reason
    inconclusive = best({"mbert": clear, "xlmr": close}, ">")
    assert inconclusive.verdict == "inconclusive" and "'xlmr'" in inconclusive.reason
    assert best({"mbert": worse}, "<").verdict == "supported"  # lower is better
    assert isinstance(inconclusive, Verdict)


# --- errors and exports -------------------------------------------------------------------


def test_unequal_seed_counts_are_rejected() -> None:
    group = frames(simulate(3)[0])
    with pytest.raises(ParamsError, match="a has 3 seeds and b has 2"):
        seed_compare(group, group[:2])


def test_different_queries_are_rejected_with_the_seed() -> None:
    group = frames(simulate(3)[0])
    other = [group[0], group[1].iloc[1:], group[2]]
    with pytest.raises(MalformedDataError, match="seed 1: the runs hold different queries"):
        seed_compare(group, other)


def test_bad_parameters_are_rejected() -> None:
    group = frames(simulate(2)[0])
    c = paired(0.0)
    with pytest.raises(ParamsError, match="margin must be > 0"):
        equivalent(c, 0.0)
    with pytest.raises(ParamsError, match="items must be"):
        seed_interval(group, items="crossed")
    with pytest.raises(ParamsError, match="no seeds"):
        seed_interval([])
    with pytest.raises(ParamsError, match="single DataFrame"):
        seed_interval(group[0])
    with pytest.raises(ParamsError, match="side"):
        directional(c, ">=")
    with pytest.raises(ParamsError, match="no comparisons"):
        best({}, ">")
    with pytest.raises(MalformedDataError, match="at least 2 items"):
        seed_interval([group[0][group[0]["item_id"] == "i000"]])


def test_names_are_exported_from_the_package() -> None:
    import hbnb.evaluation as evaluation

    for name in ("SeedInterval", "SeedComparison", "seed_interval", "seed_compare"):
        assert getattr(evaluation, name) is getattr(replicates, name)
    for name in ("Verdict", "directional", "equivalent", "best"):
        assert getattr(evaluation, name) is getattr(verdicts, name)
    assert {"equivalent", "best"} <= set(evaluation.__all__)
