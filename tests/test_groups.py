"""Seed groups on a synthetic experiment folder: families, Holm per family, marks, verdicts, splits.

The folder is written the way the evaluate stages write theirs (per-query values and a
metrics table per run and data set), with effects chosen so the answers are known.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from hbnb.evaluation.significance import holm
from hbnb.experiment.claims import expand
from hbnb.report import curves, groups, load_results, write_summary

LANGS = ["en", "de", "vi"]
TRAINED_ON = ["en", "de"]
N_ITEMS = 60
# strategy -> (shift of every AP, shift of the cross-lingual APs only)
EFFECTS = {"x-x": (0.0, 0.0), "hybrid": (0.0, 0.08), "random": (-0.10, -0.05)}


def _per_query(run: str, shift: float, cross_shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, len(run)])
    item_effect = np.random.default_rng(7).normal(0, 0.15, N_ITEMS)  # shared by every run: crossed items
    rows = []
    for q in LANGS:
        for c in [*LANGS, "pool"]:
            base = 0.5 + item_effect + shift + (cross_shift if c not in (q, "pool") else 0.0)
            ap = np.clip(base + rng.normal(0, 0.03, N_ITEMS) + rng.normal(0, 0.003), 0, 1)
            rows.append(
                pd.DataFrame(
                    {
                        "run": run,
                        "dataset": "xquad-r",
                        "query_id": [f"{q}_{i}" for i in range(N_ITEMS)],
                        "item_id": [str(i) for i in range(N_ITEMS)],
                        "query_lang": q,
                        "cand_lang": c,
                        "ap": ap,
                        "rank_distance": 100 * (1 - ap) if c == "pool" else np.nan,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def _write_run(root: Path, name: str, pq: pd.DataFrame, values: dict | None, seed: int | None) -> None:
    folder = root / name / "eval" / "xquad-r"
    folder.mkdir(parents=True)
    pq.to_parquet(folder / "per_query.parquet")
    metrics = pd.DataFrame(
        [
            {
                "run": name,
                "dataset": "xquad-r",
                "setting": "pair",
                "query_lang": "en",
                "cand_lang": "en",
                "metric": "map",
                "value": 0.5,
                "n_queries": N_ITEMS,
                "ci_low": np.nan,
                "ci_high": np.nan,
            }
        ]  # fmt: skip
    )
    metrics.to_parquet(folder / "metrics.parquet")
    info = {"run": name, "model": "use-m", "baseline": values is None}
    (root / name / "eval" / "info.json").write_text(json.dumps(info))
    if values is not None:
        (root / name / "train").mkdir()
        train = {"model": "use-m", "seed": seed, "batching": {"strategy": values["batching.strategy"], "seed": seed}}
        (root / name / "train" / "params.yaml").write_text(yaml.safe_dump(train))
        (root / name / "train" / "run.json").write_text(json.dumps({"languages": TRAINED_ON}))
        (root / name / "run_spec.json").write_text(json.dumps({"name": name, "values": values}))


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reports") / "synthetic"
    params = {
        "experiment": "synthetic",
        "data": {"evaluate": ["xquad-r"]},
        "sweep": {"batching.strategy": list(EFFECTS), "seed": [0, 1, 2]},
    }
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for strategy, (shift, cross) in EFFECTS.items():
        for seed in (0, 1, 2):
            name = f"strategy-{strategy}_seed-{seed}"
            values = {"batching.strategy": strategy, "seed": seed}
            _write_run(root, name, _per_query(name, shift, cross, seed), values, seed)
    _write_run(root, "baseline-use-m", _per_query("baseline-use-m", -0.2, 0.0, 9), None, None)
    _write_run(root, "strategy-en-en_seed-0", _per_query("old", 0, 0, 0), {"batching.strategy": "en-en"}, 0)
    return root


def test_groups_collect_replicates_and_keep_runs_of_other_files_out(experiment: Path) -> None:
    results = load_results(experiment)
    assert results.elsewhere == ("strategy-en-en_seed-0",)
    found = {g.name: g for g in groups.seed_groups(results)}
    assert set(found) == {"strategy-x-x", "strategy-hybrid", "strategy-random", "baseline-use-m"}
    assert found["strategy-hybrid"].seeds == (0, 1, 2) and found["strategy-hybrid"].languages == ("en", "de")
    assert found["baseline-use-m"].baseline and found["baseline-use-m"].runs == ("baseline-use-m",)
    assert results.runs.set_index("run").loc["strategy-x-x_seed-2", "seed"] == 2  # typed, not "2"


def test_summary_marks_the_best_strategy_and_those_that_differ_within_the_model(experiment: Path) -> None:
    results = load_results(experiment)
    table = groups.group_summary(results, "xquad-r", n_resamples=400)
    cross = table[table.key == "cross_map"].set_index("group")
    assert cross.loc["strategy-hybrid", "mark"] == "▲"
    assert cross.loc["strategy-random", "mark"] == "†" and cross.loc["strategy-x-x", "mark"] == "†"
    assert cross.loc["baseline-use-m", "mark"] == ""  # shown beside, never marked
    assert (cross.loc[["strategy-x-x", "strategy-hybrid", "strategy-random"], "n_seeds"] == 3).all()
    row = cross.loc["strategy-hybrid"]
    assert np.isclose(np.mean(row.per_seed), row["mean"]) and row.low < row["mean"] < row.high
    rank = table[table.key == "rank_distance"].set_index("group")
    assert rank.loc["strategy-random", "mark"] == "†" and rank.loc["strategy-random", "mean"] > rank["mean"].min()


def test_holm_runs_over_the_strategy_pairs_of_one_family(experiment: Path) -> None:
    results = load_results(experiment)
    tests = groups.compare_strategies(results, "xquad-r", n_resamples=400)
    for _, family in tests.groupby("figure"):
        assert len(family) == 3  # x-x/hybrid, x-x/random, hybrid/random
        adjusted, reject = holm(family.p.to_numpy())
        assert np.allclose(adjusted, family.p_holm) and (reject == family.significant).all()
    row = tests[(tests.figure == "cross-lingual mAP") & (tests.a == "x-x") & (tests.b == "hybrid")].iloc[0]
    assert 0.06 < row.delta < 0.10 and row.low > 0 and row.n_seeds == 3


def test_verdicts_of_the_paper_claims_and_an_inconclusive_one(experiment: Path) -> None:
    results = load_results(experiment)
    claims = expand(["paper", "hybrid > x-x on mono", "random < x-x on cross"])
    table = groups.verdicts(results, claims, n_resamples=400).set_index("claim")
    assert table.loc["hybrid ~ x-x on mono within 0.01", "verdict"] == "supported"  # no mono effect
    assert table.loc["hybrid best on multilingual", "verdict"] == "inconclusive"  # x-x equal on the pool
    assert table.loc["hybrid > x-x on mono", "verdict"] == "inconclusive"
    assert table.loc["random < x-x on cross", "verdict"] == "supported"
    assert "hybrid ~ x-y on cross within 0.01" not in table.index  # no x-y runs: not applicable


def test_a_claim_between_two_seed_groups_compares_them_directly(experiment: Path) -> None:
    results = load_results(experiment)
    claims = expand(
        ["strategy-hybrid > strategy-x-x on cross", "hybrid > x-x on cross", "strategy-x-x > strategy-hybrid on cross"]
    )
    table = groups.verdicts(results, claims, n_resamples=400).set_index("claim")
    by_group, by_strategy = table.loc["strategy-hybrid > strategy-x-x on cross"], table.loc["hybrid > x-x on cross"]
    assert by_group.verdict == "supported" and by_group.context == "{}" and by_group.model == "use-m"
    assert by_group.against == "strategy-x-x" and by_group.n_seeds == 3
    assert np.allclose(
        by_group[["effect", "low", "high", "p"]].astype(float),
        by_strategy[["effect", "low", "high", "p"]].astype(float),
    )
    assert table.loc["strategy-x-x > strategy-hybrid on cross", "verdict"] == "refuted"


def test_seen_unseen_splits_and_the_written_report_files(experiment: Path, tmp_path: Path) -> None:
    results = load_results(experiment)
    split = groups.group_summary(results, "xquad-r", split="seen->unseen", n_resamples=300, marks=False)
    assert set(split.key) == {"cross_map"} and set(split.group) == {f"strategy-{s}" for s in EFFECTS}
    assert groups.group_summary(results, "xquad-r", split="unseen->unseen", n_resamples=300, marks=False).key.tolist()
    out = write_summary(results, tmp_path, expand(["paper"]), n_resamples=300)
    assert {p.name for p in tmp_path.glob("*.csv")} == {
        "verdicts.csv",
        "summary.csv",
        "comparisons.csv",
        "seen_unseen.csv",
    }
    assert set(pd.read_csv(tmp_path / "seen_unseen.csv").split) == set(groups.SPLITS)
    assert curves.factors(results) == []  # no ordered factor in this sweep: each figure by group instead
    figures = set(out.summary[out.summary.dataset == "xquad-r"].figure)
    assert {p.name for p in out.curves} == {f"xquad-r_{f.replace(' ', '-')}_groups.png" for f in figures} | {
        "xquad-r_tradeoff.png"
    }
    assert all(p.stat().st_size > 5000 for p in out.curves)
    html = (tmp_path / "summary.html").read_text()
    assert html.index("<h3>Claims</h3>") < html.index("<h3>xquad-r</h3>") and "▲" in html


def test_the_findings_index_answers_each_claim_with_its_tally_and_clearest_effect(tmp_path: Path) -> None:
    from hbnb.report.summary import findings_index

    finding = tmp_path / "q9-thing"
    finding.mkdir()
    header = "# q9-thing\n\nQ9 (CPU budget): a thing\n\nQ9 on a CPU budget (2 cores): does <b>x</b> help? More.\n"
    (finding / "summary.md").write_text(header)
    rows = [
        (2, -0.001, -0.002, -0.0005, 1.0, "refuted"),
        (4, 0.003, 0.001, 0.005, 0.001, "supported"),
        (8, 0.004, -0.001, 0.009, 0.06, "inconclusive"),
    ]
    pd.DataFrame(
        [
            {"model": "use-m", "dataset": "mkqa", "context": json.dumps({"batching.n_languages": n}),
             "claim": "hybrid > x-x on cross", "figure": "cross-lingual mAP", "effect": e, "low": lo, "high": hi,
             "against": "x-x", "p": p, "verdict": v, "reason": "", "n_seeds": 3}
            for n, e, lo, hi, p, v in rows
        ]
    ).to_csv(finding / "verdicts.csv", index=False)  # fmt: skip
    (tmp_path / "q8-none").mkdir()
    (tmp_path / "q8-none" / "summary.md").write_text("# q8-none\n\nQ8: tables only\n\nHow big is it? Tables.\n")
    text = findings_index(tmp_path).read_text()
    assert text.index("## Answers") < text.index("## [q8-none]")
    assert "| [q8-none](q8-none/summary.md) | How big is it? |  | no claims |  |" in text
    assert (
        "| [q9-thing](q9-thing/summary.md) | Does &lt;b>x&lt;/b> help? | hybrid > x-x on cross | "
        "1 supported, 1 refuted, 1 inconclusive (of 3) | +0.0030 [+0.0010, +0.0050] (use-m, mkqa, n_languages=4) |"
    ) in text


def test_best_is_not_judged_in_a_family_with_one_strategy(tmp_path: Path) -> None:
    root = tmp_path / "alone"
    root.mkdir()
    params = {"experiment": "alone", "data": {"evaluate": ["xquad-r"]}, "sweep": {"seed": [0, 1]}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for seed in (0, 1):
        name = f"seed-{seed}"
        _write_run(root, name, _per_query(name, 0.0, 0.0, seed), {"batching.strategy": "hybrid", "seed": seed}, seed)
    results = load_results(root)
    assert groups.verdicts(results, expand(["hybrid best on cross"]), n_resamples=100).empty


def test_curve_ticks_read_as_people_write_them() -> None:
    from hbnb.report.plots import tick

    assert [tick(v) for v in (3386112, 5472000, 10795392, 40, 1190, 0.5)] == [
        "3.39 M",
        "5.47 M",
        "10.8 M",
        "40",
        "1,190",
        "0.5",
    ]
