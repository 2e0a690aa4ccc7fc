"""Cluster-bootstrap intervals, paired tests and Holm's correction on simulated per-query values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hbnb.errors import HbnbError, MalformedDataError, ParamsError
from hbnb.evaluation.significance import (
    Comparison,
    Interval,
    compare,
    compare_strata,
    holm,
    macro,
    macro_ci,
    macro_cis,
)

STRATA = ["de->de", "de->en", "en->de", "en->en"]


def frame(values: np.ndarray, strata: list[str] | None = None) -> pd.DataFrame:
    """Per-query values from an (items x strata) array: one query per item and stratum."""
    n_items, n_strata = values.shape
    strata = strata or [f"s{j}" for j in range(n_strata)]
    items = np.repeat(np.arange(n_items), n_strata).astype(str)
    stratum = np.tile(strata, n_items)
    return pd.DataFrame(
        {
            "item_id": items,
            "stratum": stratum,
            "query_id": [f"{s.split('->')[0]}_{i}" for s, i in zip(stratum, items)],
            "value": values.ravel(),
        }
    )


def with_values(df: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
    """The same queries as `df`, with other values (in `frame`'s row order)."""
    return df.assign(value=values.ravel())


# --- holm ---------------------------------------------------------------------------


def test_holm_matches_a_hand_computed_example() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06
    adjusted, reject = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert reject.tolist() == [True, False, False, True]


def textbook_holm(p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm (1979) by the book: step down the sorted p-values against alpha / (m - k)."""
    m = len(p)
    order = np.argsort(p)
    reject = np.zeros(m, dtype=bool)
    for k, i in enumerate(order):
        if p[i] > alpha / (m - k):
            break
        reject[i] = True
    adjusted = np.empty(m)
    for k, i in enumerate(order):
        adjusted[i] = min(1.0, max((m - j) * p[order[j]] for j in range(k + 1)))
    return adjusted, reject


@pytest.mark.parametrize("seed", range(20))
def test_holm_agrees_with_the_textbook_step_down(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 30))
    p = np.where(rng.random(m) < 0.4, rng.random(m) * 0.01, rng.random(m))
    adjusted, reject = holm(p, alpha=0.05)
    expected_adjusted, expected_reject = textbook_holm(p, 0.05)
    np.testing.assert_allclose(adjusted, expected_adjusted)
    assert reject.tolist() == expected_reject.tolist()
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p) and np.all(adjusted <= 1)


def test_holm_rejects_bad_p_values() -> None:
    with pytest.raises(ParamsError, match="NaN or outside"):
        holm([0.1, float("nan")])
    with pytest.raises(ParamsError, match="outside"):
        holm([0.1, 1.5])
    with pytest.raises(ParamsError, match="one-dimensional"):
        holm(np.zeros((2, 2)))
    with pytest.raises(ParamsError, match="alpha"):
        holm([0.1], alpha=0)


# --- macro and macro_ci --------------------------------------------------------------


def test_macro_averages_stratum_means_not_queries() -> None:
    df = pd.DataFrame(
        {
            "item_id": ["1", "2", "3", "4", "1"],
            "stratum": ["a", "a", "a", "a", "b"],
            "value": [1.0, 0.0, 0.0, 0.0, 1.0],
        }
    )
    assert macro(df) == pytest.approx((0.25 + 1.0) / 2)
    assert macro(df.rename(columns={"value": "ap"}), value="ap") == pytest.approx(0.625)


def test_macro_ci_matches_scipy_percentile_bootstrap_on_one_stratum() -> None:
    x = np.random.default_rng(0).beta(2, 5, size=200)
    ci = macro_ci(frame(x[:, None]), n_resamples=10_000, seed=1)
    ref = stats.bootstrap((x,), np.mean, n_resamples=10_000, method="percentile", rng=np.random.default_rng(2))
    assert isinstance(ci, Interval) and ci.level == 0.95
    assert ci.estimate == pytest.approx(x.mean())
    assert ci.low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ci.high == pytest.approx(ref.confidence_interval.high, abs=0.01)
    assert ci.low < ci.estimate < ci.high


def test_macro_ci_narrows_with_more_items_and_lower_level() -> None:
    rng = np.random.default_rng(3)
    small = macro_ci(frame(rng.random((50, 4))), n_resamples=2000)
    large = macro_ci(frame(rng.random((800, 4))), n_resamples=2000)
    assert large.high - large.low < 0.5 * (small.high - small.low)
    narrow = macro_ci(frame(rng.random((50, 4))), level=0.5, n_resamples=2000)
    assert narrow.high - narrow.low < 0.6 * (small.high - small.low)


def test_cluster_bootstrap_is_wider_than_an_iid_bootstrap_when_items_are_correlated() -> None:
    rng = np.random.default_rng(4)
    n_items, n_strata, n_resamples = 200, 4, 2000
    values = np.repeat(rng.random((n_items, 1)), n_strata, axis=1)  # one value per item, in every stratum
    cluster = macro_ci(frame(values), n_resamples=n_resamples)
    # i.i.d. bootstrap: each stratum's queries resampled on their own, ignoring the items
    picks = rng.integers(0, n_items, size=(n_resamples, n_strata, n_items))
    iid = values[picks, np.arange(n_strata)[None, :, None]].mean(axis=2).mean(axis=1)
    iid_low, iid_high = np.quantile(iid, [0.025, 0.975])
    # perfectly correlated strata: the cluster interval is about sqrt(4) = 2 times wider
    assert cluster.high - cluster.low > 1.6 * (iid_high - iid_low)


def test_strata_left_empty_by_a_resample_are_dropped_not_nan() -> None:
    df = frame(np.random.default_rng(5).random((100, 2)))
    lone = pd.DataFrame({"item_id": ["0"], "stratum": ["rare"], "query_id": ["x_0"], "value": [1.0]})
    ci = macro_ci(pd.concat([df, lone]), n_resamples=2000)
    assert np.isfinite([ci.low, ci.high]).all()
    assert ci.low <= ci.estimate <= ci.high
    # the rare stratum (value 1) is absent from ~37% of the resamples: those average the other two
    # strata only, so the low bound is theirs (counting the absent stratum as 0 would give ~1/3)
    assert ci.low == pytest.approx(macro_ci(df, n_resamples=2000).low, abs=0.03)
    assert ci.high > 0.6


def test_macro_ci_is_deterministic_given_the_seed_and_row_order_free() -> None:
    df = frame(np.random.default_rng(6).random((100, 4)))
    assert macro_ci(df, n_resamples=500, seed=3) == macro_ci(df, n_resamples=500, seed=3)
    assert macro_ci(df.sample(frac=1, random_state=0), n_resamples=500, seed=3) == macro_ci(
        df, n_resamples=500, seed=3
    )
    assert macro_ci(df, n_resamples=500, seed=4).low != macro_ci(df, n_resamples=500, seed=3).low


# --- compare ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_a() -> pd.DataFrame:
    return frame(np.random.default_rng(7).random((200, 4)) * 0.8, STRATA)


def test_identical_runs_differ_by_nothing(run_a: pd.DataFrame) -> None:
    result = compare(run_a, run_a.copy(), n_resamples=1000)
    assert isinstance(result, Comparison)
    assert result.delta == 0 and result.low == 0 and result.high == 0
    assert result.p_bootstrap == 1 and result.p_randomization == 1
    assert (result.n_items, result.n_queries) == (200, 800)


def test_a_clearly_better_run_is_significant(run_a: pd.DataFrame) -> None:
    n = 1000
    b = run_a.assign(value=run_a["value"] + 0.1 + np.random.default_rng(8).random(len(run_a)) * 0.05)
    result = compare(run_a, b, n_resamples=n)
    assert result.delta == pytest.approx(macro(b) - macro(run_a))
    assert 0 < result.low < result.delta < result.high
    assert result.p_randomization <= 2 / (n + 1)
    assert result.p_bootstrap <= 2 / (n + 1)
    assert compare(b, run_a, n_resamples=n).delta == pytest.approx(-result.delta)


def test_symmetric_noise_is_not_significant(run_a: pd.DataFrame) -> None:
    b = run_a.assign(value=run_a["value"] + np.random.default_rng(9).normal(0, 0.1, len(run_a)))
    result = compare(run_a, b, n_resamples=2000)
    assert result.p_randomization > 0.05 and result.p_bootstrap > 0.05
    assert result.low < 0 < result.high


def test_compare_interval_is_the_cluster_bootstrap_of_the_differences(run_a: pd.DataFrame) -> None:
    b = run_a.assign(value=run_a["value"] + np.random.default_rng(10).normal(0.02, 0.1, len(run_a)))
    result = compare(run_a, b, n_resamples=1000, seed=5)
    ci = macro_ci(b.assign(value=b["value"] - run_a["value"]), n_resamples=1000, seed=5)
    assert (result.delta, result.low, result.high) == pytest.approx((ci.estimate, ci.low, ci.high))


def test_randomization_test_holds_its_size_under_correlated_null_data() -> None:
    """Deltas share an item effect across strata, so swapping per query instead of per item would over-reject."""
    rng = np.random.default_rng(11)
    n_sims, n_items, n_strata = 200, 30, 3
    rejections = 0
    for _ in range(n_sims):
        a_values = rng.random((n_items, n_strata))
        item_effect = rng.normal(0, 0.2, (n_items, 1))
        a = frame(a_values)
        b = with_values(a, a_values + item_effect + rng.normal(0, 0.02, (n_items, n_strata)))
        rejections += compare(a, b, n_resamples=500, seed=int(rng.integers(1 << 31))).p_randomization <= 0.05
    low, high = stats.binom.interval(0.999, n_sims, 0.05)
    assert low <= rejections <= high


# --- compare_strata --------------------------------------------------------------------


def test_compare_strata_finds_the_one_improved_stratum(run_a: pd.DataFrame) -> None:
    noise = np.random.default_rng(12).normal(0, 0.05, len(run_a))
    b = run_a.assign(value=run_a["value"] + noise + np.where(run_a["stratum"] == "en->de", 0.1, 0.0))
    table = compare_strata(run_a, b, n_resamples=2000)
    assert table["stratum"].tolist() == sorted(STRATA)
    expected = (b["value"] - run_a["value"]).groupby(run_a["stratum"]).mean()
    np.testing.assert_allclose(table["delta"], expected.loc[table["stratum"]].to_numpy())
    np.testing.assert_allclose(table["p_holm"], holm(table["p_randomization"].to_numpy())[0])
    assert table["significant"].tolist() == (table["p_holm"] <= 0.05).tolist()
    assert table.set_index("stratum")["significant"].to_dict() == {s: s == "en->de" for s in STRATA}
    assert (table["low"] < table["delta"]).all() and (table["delta"] < table["high"]).all()
    assert table["n_queries"].tolist() == [200] * 4 and table["n_items"].tolist() == [200] * 4
    assert table["delta"].mean() == pytest.approx(compare(run_a, b, n_resamples=10).delta)


def test_compare_strata_is_deterministic_given_the_seed(run_a: pd.DataFrame) -> None:
    b = run_a.assign(value=run_a["value"] + np.random.default_rng(13).normal(0, 0.1, len(run_a)))
    pd.testing.assert_frame_equal(compare_strata(run_a, b, n_resamples=300), compare_strata(run_a, b, n_resamples=300))


# --- errors ----------------------------------------------------------------------------


def test_runs_with_different_queries_are_refused(run_a: pd.DataFrame) -> None:
    b = run_a.drop(index=[0, 1, 2])
    extra = pd.DataFrame({"item_id": ["999"], "stratum": ["de->en"], "query_id": ["de_999"], "value": [0.5]})
    b = pd.concat([b, extra])
    with pytest.raises(MalformedDataError) as info:
        compare(run_a, b, n_resamples=10)
    message = str(info.value)
    assert "3 of run a's queries are missing from run b" in message
    assert "1 of run b's queries are missing from run a" in message
    assert "'de_999'" in message and "'de_0'" in message
    with pytest.raises(MalformedDataError, match="different queries"):
        compare_strata(run_a, b, n_resamples=10)


def test_repeated_queries_are_refused(run_a: pd.DataFrame) -> None:
    with pytest.raises(MalformedDataError, match="run b: 1 rows repeat a query"):
        compare(run_a, pd.concat([run_a, run_a.iloc[[5]]]), n_resamples=10)


def test_nan_values_are_refused_with_column_and_count(run_a: pd.DataFrame) -> None:
    bad = run_a.rename(columns={"value": "ap"})
    bad.loc[[3, 7], "ap"] = np.nan
    with pytest.raises(MalformedDataError, match="column 'ap' has 2 NaN or infinite values of 800"):
        macro(bad, value="ap")
    with pytest.raises(MalformedDataError, match="'ap' has 2 NaN"):
        compare(run_a.rename(columns={"value": "ap"}), bad, value="ap", n_resamples=10)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda df: macro(df.iloc[:0]), MalformedDataError, "no rows"),
        (lambda df: macro(df.drop(columns="stratum")), MalformedDataError, "lacks column"),
        (lambda df: macro(df.assign(item_id=None)), MalformedDataError, "'item_id' has 800 missing"),
        (lambda df: macro(df.assign(value="x")), MalformedDataError, "expected numbers"),
        (lambda df: macro_ci(df, level=0), ParamsError, "level"),
        (lambda df: macro_ci(df, level=1.0), ParamsError, "level"),
        (lambda df: macro_ci(df, n_resamples=0), ParamsError, "n_resamples"),
        (lambda df: macro_ci(df[df["item_id"] == "0"]), MalformedDataError, "at least 2 items"),
        (lambda df: compare(df, df, level=1.5), ParamsError, "level"),
        (lambda df: compare(df, df.drop(columns="query_id")), MalformedDataError, "run b lacks column"),
    ],
)
def test_bad_input_is_refused_clearly(run_a: pd.DataFrame, call, error: type[HbnbError], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        call(run_a)


def test_macro_cis_gives_each_column_its_own_macro_ci(run_a: pd.DataFrame) -> None:
    """Several metrics share one set of item draws; each interval equals macro_ci's."""
    rng = np.random.default_rng(3)
    df = run_a.assign(other=rng.random(len(run_a)), third=run_a["value"] ** 2)
    shared = macro_cis(df, ["value", "other", "third"], n_resamples=500, seed=4)
    for column in ("value", "other", "third"):
        alone = macro_ci(df.rename(columns={column: "v"}), "v", n_resamples=500, seed=4)
        assert shared[column] == alone
