"""MTEB both ways: hbnb's sets scored by mteb's evaluator equal hbnb's own scores, results in MTEB's format load
with mteb, mteb's results become hbnb's rows, and mteb tasks by name (CLI, parameter files) without a hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hbnb import models
from hbnb.cli import main
from hbnb.data import bitext
from hbnb.evaluation import BitextTask, aggregate, evaluate, mteb_results
from hbnb.evaluation.mteb_run import MtebTask, run_task
from hbnb.evaluation.tasks import for_results, get_task
from hbnb.params import DataParams

# two languages and 30 items of each set, candidates as sentences: every pair pool stays far below
# 1000 candidates, so MTEB's map_at_1000 is the AP of the whole ranking, hbnb's map
SETS = {"xquad-r": ["en", "de"], "mlqa-r": ["en", "es"], "mkqa": ["en", "ja"]}
ITEMS = 30
# hbnb metric -> the key of mteb's own score (pytrec_eval's, and mteb's MRR)
CHECKED = {
    "ndcg@10": "ndcg_at_10",
    "recall@100": "recall_at_100",
    "map": "map_at_1000",
    "mrr@10": "mrr_at_10",
    "recall@1": "recall_at_1",
    "recall@10": "recall_at_10",
}


@pytest.fixture(scope="module")
def use_m():
    return models.load("use-m")


@pytest.fixture(scope="module", params=list(SETS))
def scored(request, use_m):
    """(hbnb's evaluation, mteb's evaluation) of the same model on the same data."""
    name, langs = request.param, SETS[request.param]
    hbnb = evaluate(use_m, name, langs=langs, max_items=ITEMS, candidates="sentence", n_resamples=100, run="use-m")
    ran = run_task(use_m, name, run="use-m", langs=langs, max_items=ITEMS, candidates="sentence")
    return hbnb, ran


def _pairs(table):
    return table[table.setting == "pair"].set_index(["query_lang", "cand_lang", "metric"])


def test_mteb_evaluator_scores_hbnb_sets_as_hbnb_does(scored) -> None:
    hbnb, ran = scored
    assert hbnb.meta["pool_size"] < 1000  # every pair pool too: map_at_1000 is the full-ranking AP here
    pairs = _pairs(hbnb.table)
    entries = ran.mteb_result.scores["test"]
    assert {e["hf_subset"] for e in entries} == {f"{x}-{y}" for x, y, _ in pairs.index}
    if hbnb.dataset == "mkqa":  # question -> question across languages only
        assert all(e["hf_subset"].split("-")[0] != e["hf_subset"].split("-")[1] for e in entries)
    for entry in entries:
        x, y = entry["hf_subset"].split("-")
        for metric, key in CHECKED.items():
            assert entry[key] == pytest.approx(pairs.loc[(x, y, metric), "value"], abs=1e-4), (entry["hf_subset"], key)
    # per query too: pytrec_eval's values as mteb computed them, hbnb's item ids
    theirs = ran.per_query.set_index(["query_id", "cand_lang"])
    ours = hbnb.per_query[hbnb.per_query.cand_lang != "pool"].set_index(["query_id", "cand_lang"])
    assert sorted(theirs.index) == sorted(ours.index)
    ours = ours.loc[theirs.index]
    for column in ("ndcg@10", "recall@100", "ap", "rr@10", "recall@1", "recall@10"):
        np.testing.assert_allclose(theirs[column], ours[column], rtol=0, atol=1e-6, err_msg=column)
    assert theirs.item_id.tolist() == ours.item_id.tolist()
    mine = _pairs(ran.table)
    counts = pairs.xs("ndcg@10", level="metric").n_queries
    assert mine.xs("ndcg@10", level="metric").n_queries.to_dict() == counts.to_dict()
    assert ran.meta["n_queries"] == counts.sum()


def test_mteb_results_become_hbnb_rows(scored) -> None:
    hbnb, ran = scored
    result = ran.mteb_result
    table = mteb_results.table_from_result(result, "use-m", "mteb:x", split="test")
    assert list(table.columns) == list(hbnb.table.columns)
    pairs = _pairs(table)
    for entry in result.scores["test"]:
        x, y = entry["hf_subset"].split("-")
        for metric, key in CHECKED.items():
            assert pairs.loc[(x, y, metric), "value"] == entry[key]
    values = pairs.xs("ndcg@10", level="metric").value
    same = [x == y for x, y in values.index]
    overall = table[(table.query_lang == "all") & (table.metric == "ndcg@10")].set_index("setting").value
    assert overall["mteb"] == pytest.approx(result.get_score())  # mteb's own task score: the mean over subsets
    assert overall["cross"] == pytest.approx(values[[not s for s in same]].mean())
    if any(same):
        assert overall["mono"] == pytest.approx(values[same].mean())
    assert ran.summary() == {"ndcg@10": pytest.approx(result.get_score())}
    # its per-query values average to the same pair figures (mteb rounds its figures to 5 digits)
    again = _pairs(aggregate(ran.per_query, None, "use-m", "mteb:x", n_resamples=100))
    np.testing.assert_allclose(again.value, pairs.loc[again.index].value, rtol=0, atol=1e-5)
    # hbnb's own result file read back gives hbnb's pair rows, its full-ranking map included
    back = _pairs(mteb_results.table_from_result(mteb_results.task_result(hbnb), "use-m", hbnb.dataset))
    theirs = _pairs(hbnb.table).loc[back.index]
    np.testing.assert_allclose(back.value, theirs.value, rtol=0, atol=1e-12)


def test_every_evaluation_writes_mteb_results_that_mteb_loads(scored, tmp_path: Path) -> None:
    hbnb, ran = scored
    from mteb.models import ModelMeta

    from_hbnb = mteb_results.load(hbnb.save(tmp_path / "hbnb"))
    (model,) = from_hbnb.model_results
    assert (model.model_name, model.model_revision) == ("use-m", hbnb.meta["model_fingerprint"])
    assert model.model_meta.embed_dim == 512 and model.model_meta.n_parameters > 0
    (result,) = model.task_results
    assert result.task_name == hbnb.dataset and result.dataset_revision.startswith("hbnb-")
    pairs = _pairs(hbnb.table)
    for entry in result.scores["test"]:
        x, y = entry["hf_subset"].split("-")
        assert entry["languages"] == [mteb_results.mteb_language(x), mteb_results.mteb_language(y)]
        for metric, key in mteb_results.MTEB_KEYS.items():
            if (x, y, metric) in pairs.index:
                assert entry[key] == pytest.approx(pairs.loc[(x, y, metric), "value"], abs=1e-6)
    assert result.get_score() == pytest.approx(pairs.xs("ndcg@10", level="metric").value.mean(), abs=1e-6)
    meta_file = next((tmp_path / "hbnb" / "mteb" / "results").glob("*/*/model_meta.json"))
    assert set(json.loads(meta_file.read_text())) <= set(ModelMeta.model_fields)
    # mteb's own result of the same data, written and read back the same way, agrees with hbnb's file
    (theirs,) = mteb_results.load(ran.save(tmp_path / "mteb")).model_results[0].task_results
    assert theirs.task_name == hbnb.dataset
    ours = {e["hf_subset"]: e["ndcg_at_10"] for e in result.scores["test"]}
    assert {e["hf_subset"]: e["ndcg_at_10"] for e in theirs.scores["test"]} == pytest.approx(ours, abs=1e-4)


def test_bitext_results_are_written_as_mteb_accuracy(use_m, tmp_path: Path) -> None:
    lines = bitext.load_tatoeba(["de"]).select(range(60))
    task = BitextTask(name="tatoeba-60", description="60 lines of Tatoeba deu-eng", loader=lambda _: lines)
    ev = evaluate(use_m, task, run="use-m")
    (result,) = mteb_results.load(ev.save(tmp_path)).model_results[0].task_results
    accuracy = ev.table.set_index(["query_lang", "cand_lang"]).value
    got = {e["hf_subset"]: (e["main_score"], e["accuracy"]) for e in result.scores["test"]}
    assert got == {f"{x}-{y}": (pytest.approx(v), pytest.approx(v)) for (x, y), v in accuracy.items()}


def test_cli_runs_an_mteb_task_of_hbnb_data(tmp_path: Path, capsys) -> None:
    args = ["--mteb", "mkqa", "--langs", "en", "ja", "--max-items", "40", "--out", str(tmp_path)]
    assert main(["evaluate", "--model", "use-m", *args]) == 0
    out = capsys.readouterr().out
    assert "ndcg@10: 0." in out and str(tmp_path / "mkqa") in out
    import pandas as pd

    table = pd.read_parquet(tmp_path / "mkqa" / "metrics.parquet")
    assert set(table.dataset) == {"mteb:mkqa"} and set(table.setting) == {"pair", "cross", "mteb"}
    assert {(x, y) for x, y, _ in _pairs(table).index} == {("en", "ja"), ("ja", "en")}
    (result,) = mteb_results.load(tmp_path / "mkqa").model_results[0].task_results
    assert result.task_name == "mkqa" and sorted(result.hf_subsets) == ["en-ja", "ja-en"]


def test_cli_says_in_one_line_that_no_hub_is_reachable(tmp_path: Path, capsys) -> None:
    assert main(["evaluate", "--model", "use-m", "--mteb", "SciFact", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "SciFact" in err and "Hugging Face hub" in err and "HF_HUB_OFFLINE=1" in err
    assert main(["evaluate", "--model", "use-m", "--mteb", "Scifact", "--out", str(tmp_path)]) == 2
    assert "Did you mean: 'SciFact'" in capsys.readouterr().err
    for both_or_neither in (["--data", "mkqa", "--mteb", "mkqa"], []):
        with pytest.raises(SystemExit):
            main(["evaluate", "--model", "use-m", *both_or_neither, "--out", str(tmp_path)])


def test_parameter_files_name_mteb_tasks() -> None:
    assert DataParams(evaluate=["mlqa-r", "mteb:SciFact", "mteb:xquad-r"]).evaluate[1] == "mteb:SciFact"
    task = get_task("mteb:SciFact")
    assert isinstance(task, MtebTask) and isinstance(for_results("mteb:SciFact"), MtebTask)
    assert [h.metric for h in task.headlines] == ["ndcg@10"] and task.stats()["mteb_task"] == "SciFact"
    for bad, message in (
        (["mteb:Scifact"], "Did you mean: 'SciFact'"),
        (["mteb:tatoeba"], "bitext set, not retrieval"),
        (["mteb:Banking77Classification"], "Classification task"),
    ):
        with pytest.raises(ValueError, match=message):
            DataParams(evaluate=bad)
    with pytest.raises(ValueError, match="pair-matrix retrieval sets only"):
        DataParams(evaluate=["mteb:SciFact"], max_items={"mteb:SciFact": 10})
    assert DataParams(evaluate=["mteb:xquad-r"], max_items={"mteb:xquad-r": 10}).max_items == {"mteb:xquad-r": 10}


def test_an_experiments_mteb_results_sit_in_a_portable_folder_that_the_report_reads(tmp_path: Path) -> None:
    from hbnb.evaluation.scoring import evaluate_to
    from hbnb.report.results import load_results

    sets = ["mteb:mkqa"]
    evaluate_to(
        tmp_path / "r1" / "eval", "use-m", "r1", sets, langs={sets[0]: ["en", "ja"]}, max_items={sets[0]: 20},
        n_resamples=200, baseline=True,
    )  # fmt: skip
    assert (tmp_path / "r1" / "eval" / "mteb-mkqa" / "metrics.parquet").is_file()  # no ":" in a folder name
    results = load_results(tmp_path, everything=True)
    assert results.datasets == sets
    per_query = results.per_query("r1", sets[0])
    assert set(per_query.dataset) == set(sets) and set(per_query.query_lang) == {"en", "ja"} and len(per_query) == 40
