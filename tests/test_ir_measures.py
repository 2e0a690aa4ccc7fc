"""The written TREC files, re-scored by ir_measures, give hbnb's per-query and per-pair values.

ir_measures runs AP, nDCG@10 and R@100 through pytrec_eval (trec_eval's code) and RR@10
through the MS MARCO evaluator: the field's reference implementations, reading only
`run.trec`/`qrels.trec` (the multilingual pool) and `run.pairs.trec`/`qrels.pairs.trec`
(one list per query and candidate language) of a real XQuAD-R evaluation.
"""

from __future__ import annotations

from pathlib import Path

import ir_measures
import numpy as np
import pandas as pd
import pytest
from datasets import concatenate_datasets
from ir_measures import AP, RR, R, nDCG

from hbnb import models
from hbnb.data import load_retrieval
from hbnb.data.retrieval import RetrievalSet
from hbnb.evaluation import evaluate
from hbnb.evaluation.trec import distinct_scores

MEASURES = {"ap": AP, "ndcg@10": nDCG @ 10, "recall@100": R @ 100, "rr@10": RR @ 10}
LANGS = ["en", "de"]  # one table build serves both tests


@pytest.fixture(scope="module")
def use_m():
    return models.load("use-m")


def ir_measures_values(folder: Path, run: str, qrels: str) -> pd.DataFrame:
    """Per written query id, each measure as ir_measures computes it from the files alone."""
    rows = ir_measures.iter_calc(
        list(MEASURES.values()),
        list(ir_measures.read_trec_qrels(str(folder / qrels))),
        list(ir_measures.read_trec_run(str(folder / run))),
    )
    names = {str(m): column for column, m in MEASURES.items()}
    frame = pd.DataFrame([(r.query_id, names[str(r.measure)], r.value) for r in rows], columns=["qid", "m", "v"])
    return frame.pivot(index="qid", columns="m", values="v")


def assert_same(hbnb: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert set(hbnb.index) == set(theirs.index)
    for column in MEASURES:
        np.testing.assert_allclose(hbnb[column].to_numpy(), theirs.loc[hbnb.index, column].to_numpy(), atol=1e-6)


def with_twins(rs: RetrievalSet) -> RetrievalSet:
    """The set with a copy of every relevant English candidate placed first in the table.

    A copy scores exactly as its original, so hbnb ranks it (earlier in the table) above
    the relevant one; its id ("copy_...") sorts below "en_...", so trec_eval's own tie
    order (document id, descending) would put the relevant one first.
    """
    relevant = {c for ids in rs.relevance["candidate_ids"] for c in ids if c.startswith("en_")}
    copies = rs.candidates.filter(lambda row: row["id"] in relevant).map(lambda row: {"id": "copy_" + row["id"]})
    candidates = concatenate_datasets([copies, rs.candidates])
    return RetrievalSet.from_tables("xquad-r-twins", rs.queries, candidates, rs.relevance, rs.level)


def test_distinct_scores_only_part_ties_within_a_list() -> None:
    scores = np.array([0.5, 0.5, 0.5, 0.25, 0.9, 0.9, 0.1], dtype=np.float32)
    out = distinct_scores(scores, np.array([0, 4, 7]))
    assert (np.diff(out[:4]) < 0).all() and (np.diff(out[4:]) < 0).all()
    assert out[0] == 0.5 and out[4] == np.float32(0.9) and out[3] == 0.25  # untied scores are kept
    below = np.nextafter(np.float32(0.5), np.float32(0))  # trec_eval reads scores into C floats
    assert out[1] == below and out[2] == np.nextafter(below, np.float32(0)) and out[2] > 0.25
    close = np.array([0.5, 0.5, np.nextafter(np.float32(0.5), np.float32(0))], dtype=np.float32)
    assert (np.diff(distinct_scores(close, np.array([0, 3])).astype(np.float32)) < 0).all()  # pushes on


def test_run_files_give_hbnb_values_per_query_and_per_pair(use_m, tmp_path: Path) -> None:
    rs = with_twins(load_retrieval("xquad-r", LANGS).subset_items(30))
    # run_depth 5: pair lists are cut at 5 unless a relevant candidate lies deeper (then down to it)
    shallow = evaluate(use_m, rs, candidates="sentence", n_resamples=50, run_depth=5, pair_runs=True)
    shallow.save(tmp_path / "shallow")
    per_query = shallow.per_query.assign(qid=shallow.per_query.query_id + "@" + shallow.per_query.cand_lang)
    pairs = per_query[per_query.cand_lang != "pool"].set_index("qid")
    assert len(pairs) == 30 * len(LANGS) ** 2  # every (query, candidate language) row has its list
    assert_same(pairs, ir_measures_values(tmp_path / "shallow", "run.pairs.trec", "qrels.pairs.trec"))
    lengths = pd.read_csv(tmp_path / "shallow" / "run.pairs.trec", sep=" ", header=None).groupby(0).size()
    assert lengths.min() == 5 and lengths.max() > 5  # extended where a relevant lies deeper than the depth
    assert (pairs.ap < 1).any() and (pairs.ap > 0).all()

    # per pair, the mean of the file's values is the metrics table's pair value
    theirs = ir_measures_values(tmp_path / "shallow", "run.pairs.trec", "qrels.pairs.trec")
    theirs = theirs.assign(query_lang=pairs.loc[theirs.index].query_lang, cand_lang=pairs.loc[theirs.index].cand_lang)
    table = shallow.table[shallow.table.setting == "pair"].set_index(["query_lang", "cand_lang", "metric"]).value
    for (x, y), group in theirs.groupby(["query_lang", "cand_lang"]):
        for column in ("ap", "ndcg@10", "recall@100"):
            metric = "map" if column == "ap" else column
            assert abs(group[column].mean() - table[(x, y, metric)]) < 1e-6


def test_cli_pool_and_pair_files_give_hbnb_values(tmp_path: Path) -> None:
    """`hbnb evaluate --pair-runs`: the pool's run.trec (every candidate: run_depth exceeds the pool) and
    run.pairs.trec, against the per_query.parquet written beside them."""
    from hbnb.cli import main

    args = ["evaluate", "--model", "use-m", "--data", "xquad-r", "--langs", "en", "de", "--candidates", "sentence"]
    assert main([*args, "--max-items", "10", "--run-depth", "10000", "--pair-runs", "--out", str(tmp_path)]) == 0
    per_query = pd.read_parquet(tmp_path / "per_query.parquet")
    pool = per_query[per_query.cand_lang == "pool"].set_index("query_id")
    assert_same(pool, ir_measures_values(tmp_path, "run.trec", "qrels.trec"))
    pairs = per_query[per_query.cand_lang != "pool"]
    pairs = pairs.set_index(pairs.query_id + "@" + pairs.cand_lang)
    assert len(pairs) == 10 * 2 * 2
    assert_same(pairs, ir_measures_values(tmp_path, "run.pairs.trec", "qrels.pairs.trec"))
