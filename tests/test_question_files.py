"""Every shipped parameter file validates and plans; the research-question files have the designs
their headers promise (nested sets, three seeds, the strategies named)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from hbnb.experiment import load, runs
from hbnb.experiment.sweep import plan_json

PARAMS = Path(__file__).resolve().parents[1] / "params"
QUESTIONS = ("q1-languages", "q2-size", "q3-pairs", "q4-code-switching", "q5-train-size", "paper-claim")


@pytest.fixture(scope="module")
def plans() -> dict[str, list[dict]]:
    return {p.stem: plan_json(load(p), str(p)) for p in sorted(PARAMS.glob("*.yaml"))}


def trained(plan: list[dict]) -> list[dict]:
    return [r for r in plan if not r["baseline"]]


def seeds_per_group(plan: list[dict]) -> dict[str, set]:
    out: dict[str, set] = defaultdict(set)
    for r in trained(plan):
        out[r["group"]].add(r["seed"])
    return out


def strategies(plan: list[dict]) -> set[str]:
    return {r["params"]["batching"]["strategy"] for r in trained(plan)}


def test_every_parameter_file_plans(plans) -> None:
    expected = {f"{q}{suffix}" for q in QUESTIONS for suffix in ("", "-cpu")} | {"q2-size-hub"}
    assert expected <= set(plans)
    for name, plan in plans.items():
        specs = runs(load(PARAMS / f"{name}.yaml"))
        assert [r["name"] for r in trained(plan)] == [s.name for s in specs], name
        for r in trained(plan):
            batching = r["params"]["batching"]
            one_language = len(batching["languages"]) == 1
            assert (batching["pairs"] == []) == (batching["strategy"] in ("x-x", "en-en") or one_language)
            assert r["params"]["training"]["max_steps"] >= 1


@pytest.mark.parametrize("name", [f"{q}{s}" for q in QUESTIONS for s in ("", "-cpu")] + ["q2-size-hub"])
def test_question_files_have_three_seeds_and_a_header_that_states_the_question(plans, name: str) -> None:
    assert all(len(s) >= 3 for s in seeds_per_group(plans[name]).values())
    header = [line for line in (PARAMS / f"{name}.yaml").read_text().splitlines() if line.startswith("#")]
    text = " ".join(header)
    assert "?" in text or "claim" in text  # the question
    assert "Expected time" in text or "not run here" in text


@pytest.mark.parametrize("name", ["q1-languages", "q1-languages-cpu"])
def test_q1_trains_nested_language_sets_en_first(plans, name: str) -> None:
    plan = plans[name]
    assert strategies(plan) == {"x-x", "x-y", "hybrid", "random"}
    by_n = {}
    for r in trained(plan):
        by_n[len(r["params"]["batching"]["languages"])] = r["params"]["batching"]["languages"]
    sizes = sorted(by_n)
    assert sizes[0] == 1 and by_n[1] == ["en"]
    for a, b in zip(sizes, sizes[1:]):
        assert by_n[b][:a] == by_n[a]  # nested prefixes of one order
    hybrid_ns = {len(r["params"]["batching"]["languages"]) for r in trained(plan) if r["group"].startswith("hybrid")}
    assert min(hybrid_ns) == 2


@pytest.mark.parametrize("name", ["q2-size", "q2-size-cpu", "q2-size-hub"])
def test_q2_sweeps_models_with_hybrid_and_random(plans, name: str) -> None:
    plan = plans[name]
    assert strategies(plan) == {"hybrid", "random"}
    models = {r["params"]["model"] for r in trained(plan)}
    assert len(models) >= 3
    if name != "q2-size-hub":
        assert any(":layers=" in m for m in models)


@pytest.mark.parametrize("name", ["q3-pairs", "q3-pairs-cpu"])
def test_q3_pair_sets_are_nested(plans, name: str) -> None:
    plan = plans[name]
    by_k: dict[int, set] = {}
    for r in trained(plan):
        if r["params"]["batching"]["strategy"] == "hybrid":
            by_k[r["values"]["batching.pairs"]] = set(r["params"]["batching"]["pairs"])
    ks = sorted(by_k)
    assert ks[0] == 1 and len(ks) >= (3 if name.endswith("-cpu") else 5)
    assert all(len(by_k[k]) == 2 * k for k in ks)  # unordered pairs, both directions
    assert all(by_k[a] <= by_k[b] for a, b in zip(ks, ks[1:]))


@pytest.mark.parametrize("name", ["q4-code-switching", "q4-code-switching-cpu"])
def test_q4_adds_code_switching_at_several_rates_and_bitext(plans, name: str) -> None:
    plan = plans[name]
    training = [r["params"]["training"] for r in trained(plan)]
    rates = {t["code_switching"]["rate"] for t in training if t["code_switching"]}
    assert len(rates) >= 2 and rates <= {0.1, 0.3, 0.5}
    assert any(t["bitext"] for t in training) and any(not t["bitext"] and not t["code_switching"] for t in training)
    assert {"hybrid", "x-x"} <= strategies(plan) and (name.endswith("-cpu") or "x-y" in strategies(plan))
    assert set(trained(plan)[0]["params"]["data"]["evaluate"]) == {"mkqa", "mkqa-cs"}
    # every addition is claimed against hybrid without one: claims between two seed groups
    groups = {r["group"]: r["params"]["training"] for r in trained(plan)}
    plain = next(g for g, t in groups.items() if "hybrid" in g and not t["code_switching"] and not t["bitext"])
    added = {g for g, t in groups.items() if "hybrid" in g and (t["code_switching"] or t["bitext"])}
    claims = load(PARAMS / f"{name}.yaml").claims
    assert {f"{g} > {plain} on cross" for g in added} <= set(claims) and len(added) >= 3


@pytest.mark.parametrize("name", ["q5-train-size", "q5-train-size-cpu"])
def test_q5_item_sets_are_nested_under_both_budgets(plans, name: str) -> None:
    plan = plans[name]
    budgets = {r["params"]["training"]["budget"] for r in trained(plan)}
    assert budgets == {"steps", "epochs"}
    items = sorted({r["train_items"] for r in trained(plan)})
    assert len(items) >= (2 if name.endswith("-cpu") else 3) and items[0] == 100
    steps = {
        r["train_items"]: r["params"]["training"]["max_steps"]
        for r in trained(plan)
        if r["params"]["training"]["budget"] == "epochs"
    }
    assert [steps[n] for n in items] == sorted(steps[n] for n in items)  # fewer items, fewer steps


@pytest.mark.parametrize("name", ["paper-claim", "paper-claim-cpu"])
def test_the_paper_claim_runs_both_directions_with_four_strategies(plans, name: str) -> None:
    plan = plans[name]
    assert strategies(plan) == {"x-x", "x-y", "hybrid", "random"}
    directions = {(r["params"]["data"]["train"], tuple(r["params"]["data"]["evaluate"])) for r in trained(plan)}
    assert directions == {("xquad", ("mlqa-r",)), ("mlqa", ("xquad-r",))}
    text = (PARAMS / f"{name}.yaml").read_text()
    assert "paper" in load(PARAMS / f"{name}.yaml").claims and "margin" in text.lower()
