"""Research machinery without training: claims, seed groups, `hbnb run --plan`, cross-field checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_experiment as write

from hbnb import experiment
from hbnb.errors import ParamsError
from hbnb.experiment import claims
from hbnb.experiment.sweep import group_name

ROOT = Path(__file__).resolve().parents[1]
# through the command line: the general files and one research-question file (the others plan
# in-process in test_question_files.py, which checks their designs)
SHIPPED = sorted(p for p in (ROOT / "params").glob("*.yaml") if not p.stem.startswith(("q", "paper-claim"))) + [
    ROOT / "params" / "q1-languages-cpu.yaml"
]


def plan(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # no hub here: fail fast instead of retrying
    return subprocess.run(
        [sys.executable, "-m", "hbnb", "run", str(path), "--plan"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.parametrize(
    ("text", "relation", "other", "figure", "margin"),
    [
        ("hybrid > x-x on cross", ">", "x-x", "cross", None),
        ("hybrid < x-x on rank_distance", "<", "x-x", "rank_distance", None),
        ("hybrid ~ x-x on mono within 0.01", "~", "x-x", "mono", 0.01),
        ("  hybrid best on multilingual ", "best", None, "multilingual", None),
        ("hybrid > acs-0.5+bitext on cross", ">", "acs-0.5+bitext", "cross", None),
    ],
)
def test_claims_parse(text: str, relation: str, other: str | None, figure: str, margin: float | None) -> None:
    claim = claims.parse(text)
    assert (claim.subject, claim.relation, claim.other, claim.figure, claim.margin) == (
        "hybrid",
        relation,
        other,
        figure,
        margin,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hybrid beats x-x", "is not a claim; write 'A > B on FIGURE'"),
        ("hybrid ~ x-x on mono", "needs a margin > 0"),
        ("hybrid > x-x on cross within 0.1", "'within' belongs to equivalence claims"),
        ("x-x > x-x on cross", "two different strategies"),
    ],
)
def test_bad_claims_are_refused_with_the_grammar(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        claims.parse(text)


def test_the_paper_block_expands_to_its_four_claims() -> None:
    expanded = claims.expand(["paper", "hybrid > x-y on cross"])
    assert [c.text for c in expanded] == [*claims.PAPER_CLAIMS, "hybrid > x-y on cross"]
    assert [c.relation for c in expanded[:4]] == ["~", "~", "best", "best"]


def test_claims_must_name_trained_strategies_and_reported_figures(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"claims\[1\] \('hybrid > x-y on cross'\) names 'x-y', which is neither"):
        experiment.load(write(tmp_path, "c1", claims=["hybrid > x-x on cross", "hybrid > x-y on cross"]))
    # two seed groups (run names without the seed) may be compared; a strategy with a group may not
    assert experiment.load(write(tmp_path, "c5", claims=["strategy-hybrid > strategy-x-x on cross"])).claims
    with pytest.raises(ParamsError, match=r"compares a strategy with a seed group; .*strategy-x-x, strategy-hybrid"):
        experiment.load(write(tmp_path, "c6", claims=["hybrid > strategy-x-x on cross"]))
    with pytest.raises(ParamsError, match=r"'best' ranks strategies only"):
        experiment.load(write(tmp_path, "c7", claims=["strategy-hybrid best on cross"]))
    with pytest.raises(ParamsError, match=r"names figure 'nope', which no evaluation set"):
        experiment.load(write(tmp_path, "c2", claims=["hybrid > x-x on nope"]))
    with pytest.raises(ParamsError, match=r"claims.0: 'hybrid >> x-x on cross': .* is not a claim"):
        experiment.load(write(tmp_path, "c3", claims=["hybrid >> x-x on cross"]))
    assert experiment.load(write(tmp_path, "c4", claims=["hybrid > x-x on cross"])).claims


def test_runs_that_differ_only_in_seed_form_one_group(tmp_path: Path) -> None:
    params = experiment.load(
        write(tmp_path, "g", **{"sweep": {"batching.strategy": ["x-x", "hybrid"], "seed": [3, 4]}})
    )
    specs = experiment.runs(params)
    assert [(s.name, s.group, s.seed) for s in specs] == [
        ("strategy-x-x_seed-3", "strategy-x-x", 3),
        ("strategy-x-x_seed-4", "strategy-x-x", 4),
        ("strategy-hybrid_seed-3", "strategy-hybrid", 3),
        ("strategy-hybrid_seed-4", "strategy-hybrid", 4),
    ]
    assert {s.train.batching.seed for s in specs} == {3, 4} and {s.train.batching.design_seed for s in specs} == {0}
    assert group_name({"seed": 1}) == "run"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_plan_prints_every_run_of_every_shipped_file(path: Path) -> None:
    result = plan(path)
    assert result.returncode == 0, result.stderr
    planned = json.loads(result.stdout)
    specs = experiment.runs(experiment.load(path))
    trained = [p for p in planned if not p["baseline"]]
    assert [p["name"] for p in trained] == [s.name for s in specs]
    for entry, spec in zip(trained, specs):
        assert entry["group"] == spec.group and entry["seed"] == spec.seed
        batching = entry["params"]["batching"]
        assert isinstance(batching["languages"], list) and batching["languages"]
        assert isinstance(batching["pairs"], list)
        one_language = len(batching["languages"]) == 1
        assert (batching["pairs"] == []) == (batching["strategy"] in ("x-x", "en-en") or one_language)
        assert entry["params"]["training"]["max_steps"] >= 1
        if entry["data_checked"]:
            assert entry["params"]["training"]["epochs"] > 0 and entry["train_items"] > 0
        else:  # the hub example: its data are not reachable here, and the plan says so
            assert path.name == "hub-example.yaml" and "not checked against the data" in entry["note"]


def test_plan_spells_out_nested_languages_and_pairs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nested",
        **{
            "batching.languages": ["en", "de", "es", "ar", "zh"],
            "batching.languages_first": ["en"],
            "batching.pairs": 1,
            "sweep": {"batching.strategy": ["hybrid"], "batching.n_languages": [2, 3, 5]},
        },
    )
    result = plan(path)
    assert result.returncode == 0, result.stderr
    runs = [p for p in json.loads(result.stdout) if not p["baseline"]]
    langs = [p["params"]["batching"]["languages"] for p in runs]
    assert [len(x) for x in langs] == [2, 3, 5] and all(x[0] == "en" for x in langs)
    assert langs[0] == langs[1][:2] and langs[1] == langs[2][:3]
    pairs = [p["params"]["batching"]["pairs"] for p in runs]
    assert all(len(p) == 2 and p[0].split("-")[::-1] == p[1].split("-") for p in pairs)  # one pair, both ways


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sweep": {"batching.strategy": ["hybrid"], "batching.n_languages": [1, 2]}}, "batching.n_languages"),
        ({"sweep": {"batching.strategy": ["x-y"], "batching.pairs": [1, 2]}}, "batching.pairs"),
        ({"sweep": {"batching.strategy": ["x-x"], "batching.train_items": [10, 100000]}}, "batching.train_items"),
    ],
)
def test_impossible_designs_exit_2_naming_the_key_before_anything_runs(tmp_path: Path, changes, message) -> None:
    path = write(tmp_path, "bad", **changes)
    run_too = message == "batching.n_languages"  # `hbnb run` validates the same way; once is enough
    for args in (["--plan"], ["--reports", str(tmp_path / "reports")])[: 2 if run_too else 1]:
        result = subprocess.run(
            [sys.executable, "-m", "hbnb", "run", str(path), *args], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 2, result.stdout
        assert result.stderr.count("hbnb: error:") == 1 and "Traceback" not in result.stderr
        assert str(path) in result.stderr and message in result.stderr and "allowed" in result.stderr
    assert not (tmp_path / "reports").exists()


def test_max_items_is_for_evaluated_pair_matrix_sets(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"max_items.tatoeba = 5: give 2 to 100,000,000 items, for pair-matrix"):
        experiment.load(write(tmp_path, "m1", **{"data.max_items": {"tatoeba": 5}}))
    with pytest.raises(ParamsError, match=r"max_items names xquad-r, which is not in evaluate"):
        experiment.load(write(tmp_path, "m2", **{"data.max_items": {"xquad-r": 5}}))
    params = experiment.load(write(tmp_path, "m3", **{"data.max_items": {"mlqa-r": 50}}))
    from hbnb.experiment import pipeline

    stages = {s.key: s for s in pipeline.plan(params, tmp_path / "m3.yaml", tmp_path / "reports")}
    assert stages["evaluate/baseline-use-m"].parameters["max_items"] == {"mlqa-r": 50}
    plain = pipeline.plan(experiment.load(write(tmp_path, "m4")), tmp_path / "m4.yaml", tmp_path / "reports")
    assert "max_items" not in plain[1].inputs  # unchanged fingerprints for files without it
