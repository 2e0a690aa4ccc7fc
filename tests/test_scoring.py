"""Scoring: exact against sklearn and pytrec_eval on real embeddings, tie rule pinned, bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytrec_eval
import torch
from sklearn.metrics import average_precision_score

from hbnb import models
from hbnb.data import load_retrieval
from hbnb.data.retrieval import RetrievalSet
from hbnb.data.tables import column
from hbnb.errors import MalformedDataError, ParamsError
from hbnb.evaluation import evaluate, metrics_from_ranks, rank, score_chunks
from hbnb.evaluation.encoding import encode, model_fingerprint
from hbnb.evaluation.trec import PoolRun


@pytest.fixture(scope="module")
def use_m():
    return models.load("use-m")


# four languages of each set: every check below needs at least four, and encoding all of both sets
# (50 k texts) took CI minutes; the counts of the whole sets are checked without a model
SUBSET = {"xquad-r": ["en", "de", "zh", "th"], "mlqa-r": ["de", "es", "zh", "ar"]}


@pytest.fixture(scope="module", params=["xquad-r", "mlqa-r"])
def scored(request, use_m):
    """A real evaluation (use-m, candidates encoded as sentences) and the very scores it ranked."""
    rs = load_retrieval(request.param, SUBSET[request.param])
    fp = model_fingerprint(use_m)
    q = encode(use_m, column(rs.queries, "text"), "query", fingerprint=fp)
    c = encode(use_m, rs.candidate_texts("sentence"), "passage", fingerprint=fp)
    ev = evaluate(use_m, rs, run="use-m", candidates="sentence", n_resamples=200)
    scores = np.concatenate([block.numpy() for _, block in score_chunks(q, c)])
    return rs, scores, ev


def _relevance(rs: RetrievalSet) -> dict[str, list[str]]:
    return dict(zip(column(rs.relevance, "query_id"), column(rs.relevance, "candidate_ids")))


def _stable_order(scores: np.ndarray) -> np.ndarray:
    """The documented tie rule, independently: by score, then by candidate position."""
    return np.argsort(-scores, kind="stable")


def test_metrics_from_ranks_by_hand() -> None:
    m = metrics_from_ranks(np.array([[1, 0], [3, 0], [2, 5], [12, 40]]))
    np.testing.assert_allclose(m["ap"], [1.0, 1 / 3, (1 / 2 + 2 / 5) / 2, (1 / 12 + 2 / 40) / 2])
    np.testing.assert_allclose(m["recall@1"], [1, 0, 0, 0])
    np.testing.assert_allclose(m["recall@10"], [1, 1, 1, 0])
    np.testing.assert_allclose(m["rr@10"], [1, 1 / 3, 1 / 2, 0])
    np.testing.assert_allclose(m["ndcg@10"], [1, 0.5, (1 / np.log2(3) + 1 / np.log2(6)) / (1 + 1 / np.log2(3)), 0])
    np.testing.assert_allclose(m["rank_distance"], [0, 0, 3, 28])


def test_tie_rule_earlier_candidate_first() -> None:
    """Candidates 0 and 1 are identical; 2 is in another language and identical too."""
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    c = np.array([[0.6, 0.8], [0.6, 0.8], [0.6, 0.8], [1.0, 0.0]], dtype=np.float32)
    langs = ["de", "de", "en", "en"]
    r = rank(q, c, langs, [[1]])
    assert r.rank_lang[0, 0] == 2  # behind its tied twin 0 within German
    assert r.rank_pool[0, 0] == 3  # behind candidate 3 (higher) and candidate 0 (tied, earlier)
    r = rank(q, c, langs, [[0, 2]])
    assert r.rank_lang[0].tolist() == [1, 2] and r.rank_pool[0].tolist() == [2, 4]
    assert r.top[0].tolist() == [3, 0, 1, 2]


def test_rank_matches_a_stable_sort_on_random_data_with_ties() -> None:
    rng = np.random.default_rng(0)
    c = rng.normal(size=(300, 8)).astype(np.float32)
    c[100:110] = c[0]  # ten exact copies: ties
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    q = c[rng.integers(0, 300, size=50)] + 0.1 * rng.normal(size=(50, 8)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    langs = [["x", "y", "z"][i % 3] for i in range(300)]
    relevant = [sorted(rng.choice(300, size=3, replace=False).tolist()) for _ in range(50)]
    r = rank(q, c, langs, relevant, top_k=20, chunk=7)
    # the reference scores each distinct vector once, so the copies tie exactly on every machine
    # (a matrix product may round one column differently from its copy, depending on blocking)
    unique, inverse = np.unique(c, axis=0, return_inverse=True)
    scores = (q @ unique.T)[:, inverse.reshape(-1)]
    for i, rel in enumerate(relevant):
        order = _stable_order(scores[i])
        pos = np.empty(300, dtype=int)
        pos[order] = np.arange(1, 301)
        assert r.rank_pool[i, : len(rel)].tolist() == pos[rel].tolist()
        for k, cid in enumerate(rel):
            same = [j for j in order if langs[j] == langs[cid]]
            assert r.rank_lang[i, k] == same.index(cid) + 1
        assert r.top[i].tolist() == order[:20].tolist()


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_identical_candidates_get_bit_identical_scores(chunk: int) -> None:
    rng = np.random.default_rng(3)
    c = rng.normal(size=(1100, 64)).astype(np.float32)
    copies = [1, 63, 64, 511, 512, 513, 1099]  # on both sides of common block edges
    c[copies] = c[0]
    q = rng.normal(size=(40, 64)).astype(np.float32)
    for _, block in score_chunks(q, c, chunk=chunk):
        block = block.numpy()
        assert (block[:, copies] == block[:, [0]]).all()
    different = np.ones(1100, dtype=bool)
    different[[0, *copies]] = False
    assert len(np.unique(c[different], axis=0)) == different.sum()  # the others stay distinct vectors


def test_average_precision_equals_sklearn_per_question(scored) -> None:
    rs, all_scores, ev = scored
    relevance = _relevance(rs)
    cand_ids = np.array(column(rs.candidates, "id"))
    cand_langs = np.array(column(rs.candidates, "lang"))
    queries = pd.DataFrame({"query_id": column(rs.queries, "id"), "lang": column(rs.queries, "lang")})
    per_query = ev.per_query.set_index(["query_id", "cand_lang"])["ap"]
    langs = list(dict.fromkeys(cand_langs))
    rng = np.random.default_rng(1)
    checked = tied = 0
    for x, y in [(langs[0], langs[0]), (langs[1], langs[2]), (langs[3], langs[-1]), (langs[-1], langs[1])]:
        rows = np.nonzero(queries.lang.to_numpy() == x)[0]
        sel = np.nonzero(cand_langs == y)[0]
        for i in rows:
            qid = queries.query_id[i]
            truth = np.isin(cand_ids[sel], relevance[qid])
            if not truth.any():
                continue
            scores = all_scores[i, sel]
            mine = per_query[(qid, y)]
            if _has_boundary_tie(scores, truth):
                tied += 1  # sklearn ranks a tied block together; hbnb orders it by position
                order = _stable_order(scores)
                hits = np.cumsum(truth[order])
                expected = (hits[truth[order]] / (np.nonzero(truth[order])[0] + 1)).mean()
                assert abs(mine - expected) < 1e-9
            else:
                assert abs(mine - average_precision_score(truth, scores)) < 1e-9, (qid, y)
            checked += 1
    for i in rng.choice(len(queries), size=150, replace=False):
        qid = queries.query_id[i]
        truth = np.isin(cand_ids, relevance[qid])
        scores = all_scores[i]
        if not _has_boundary_tie(scores, truth):
            assert abs(per_query[(qid, "pool")] - average_precision_score(truth, scores)) < 1e-9
            checked += 1
    assert checked > 1000 and tied < 10


def _has_boundary_tie(scores: np.ndarray, truth: np.ndarray) -> bool:
    """A relevant candidate shares its exact score with another candidate: sklearn ranks the tied block
    together, which changes AP also when two relevant candidates tie (identical texts do, in MLQA-R)."""
    relevant = scores[truth]
    return bool(np.isin(relevant, scores[~truth]).any() or len(np.unique(relevant)) < len(relevant))


def test_trec_measures_equal_pytrec_eval_on_full_run_files(scored, tmp_path: Path) -> None:
    """Write untruncated runs (our order made explicit in the scores) for 3 pairs and 100 pool queries."""
    rs, all_scores, ev = scored
    relevance = _relevance(rs)
    cand_ids = np.array(column(rs.candidates, "id"))
    cand_langs = np.array(column(rs.candidates, "lang"))
    qids = np.array(column(rs.queries, "id"))
    q_langs = np.array(column(rs.queries, "lang"))
    langs = list(dict.fromkeys(cand_langs))
    per_query = ev.per_query.set_index(["query_id", "cand_lang"])
    measures = {"map", "ndcg_cut_10", "recall_1", "recall_10", "recall_100"}
    rng = np.random.default_rng(2)
    cases = [(langs[0], langs[1]), (langs[2], langs[2]), (langs[-1], langs[0]), (None, "pool")]
    for x, y in cases:
        rows = rng.choice(len(qids), 100, replace=False) if x is None else np.nonzero(q_langs == x)[0][:300]
        sel = np.arange(len(cand_ids)) if y == "pool" else np.nonzero(cand_langs == y)[0]
        rows = [i for i in rows if np.isin(cand_ids[sel], relevance[qids[i]]).any()]
        order = np.stack([sel[_stable_order(all_scores[i, sel])] for i in rows])
        depth = order.shape[1]
        forced = np.tile(np.arange(depth, 0, -1, dtype=np.float32), (len(rows), 1))  # trec_eval sorts by score
        run = PoolRun(
            list(qids[rows]),
            order,
            forced,
            list(cand_ids),
            [[r for r in relevance[qids[i]] if r in set(cand_ids[sel])] for i in rows],
            "t",
        )
        run.write_run(str(tmp_path / "run.trec"))
        run.write_qrels(str(tmp_path / "qrels.trec"))
        qrels = read_qrels((tmp_path / "qrels.trec").read_text())
        results = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(
            read_run((tmp_path / "run.trec").read_text())
        )
        for i in rows:
            mine = per_query.loc[(qids[i], y)]
            theirs = results[qids[i]]
            assert abs(mine["ap"] - theirs["map"]) < 1e-9
            assert abs(mine["ndcg@10"] - theirs["ndcg_cut_10"]) < 1e-9
            for k in (1, 10, 100):
                assert abs(mine[f"recall@{k}"] - theirs[f"recall_{k}"]) < 1e-9


@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r"])
def test_counts_of_data_md_are_the_loaded_sets(name: str) -> None:
    rs = load_retrieval(name)
    queries, candidates = len(rs.queries), len(rs.candidates)
    assert (queries, candidates) == ({"xquad-r": (13_090, 13_014), "mlqa-r": (4_199, 20_534)}[name])
    if name == "mlqa-r":
        langs = dict(zip(column(rs.candidates, "id"), column(rs.candidates, "lang")))
        en = [q for q, lang in zip(column(rs.queries, "id"), column(rs.queries, "lang")) if lang == "en"]
        relevant = _relevance(rs)
        assert sum(any(langs[c] == "en" for c in relevant[q]) for q in en) == 1148


def test_the_output_counts_every_pair_query_and_candidate(scored) -> None:
    rs, _, ev = scored
    t = ev.table
    pairs = t[(t.setting == "pair") & (t.metric == "map")]
    langs = SUBSET[rs.name]
    assert len(pairs) == len(langs) ** 2
    cand_lang = dict(zip(column(rs.candidates, "id"), column(rs.candidates, "lang")))
    relevance = _relevance(rs)
    q_langs = column(rs.queries, "lang")
    for (x, y), n in pairs.set_index(["query_lang", "cand_lang"]).n_queries.items():
        expected = sum(
            lang == x and any(cand_lang[c] == y for c in relevance[q])
            for q, lang in zip(column(rs.queries, "id"), q_langs)
        )
        assert n == expected, (x, y)
    if rs.name == "xquad-r":
        assert set(pairs.n_queries) == {1190}
        assert len(t[(t.setting == "cross") & (t.query_lang == "all") & (t.metric == "map")]) == 1
    assert ev.meta["pool_size"] == len(rs.candidates) and ev.meta["n_queries"] == len(rs.queries)
    pool = t[(t.setting == "pool") & (t.query_lang == "all") & (t.metric == "map")]
    assert pool.n_queries.item() == ev.meta["n_queries"]
    shares = t[(t.setting == "top10_share")].groupby("query_lang").value.sum()
    np.testing.assert_allclose(shares.to_numpy(), 1.0)


def test_macro_figures_follow_their_definitions(scored) -> None:
    _, _, ev = scored
    t = ev.table
    pairs = t[(t.setting == "pair") & (t.metric == "map")]
    mono = pairs[pairs.query_lang == pairs.cand_lang].value.mean()
    cross = pairs[pairs.query_lang != pairs.cand_lang].value.mean()
    summary = ev.summary()
    assert summary["mono_map"] == pytest.approx(mono) and summary["cross_map"] == pytest.approx(cross)
    pool = ev.per_query[ev.per_query.cand_lang == "pool"]
    assert summary["rank_distance"] == pytest.approx(pool.groupby("query_lang").rank_distance.mean().mean())
    row = t[(t.setting == "mono") & (t.query_lang == "all") & (t.metric == "map")].iloc[0]
    assert row.ci_low < row.value < row.ci_high


def test_scored_cache_means_no_encoding(use_m, monkeypatch) -> None:
    rs = load_retrieval("mlqa-r", ["en", "de"])
    first = evaluate(use_m, rs, candidates="sentence", n_resamples=50, max_items=150)
    monkeypatch.setattr(type(use_m), "encode", lambda *a, **k: pytest.fail("encoded although cached"))
    again = evaluate(use_m, rs, candidates="sentence", n_resamples=50, max_items=150)
    pd.testing.assert_frame_equal(first.table, again.table)


def test_model_fingerprint_follows_in_place_weight_updates() -> None:
    """The fingerprint is memoised on the model; a training step must still change it."""
    model = models.load("use-m")
    before = model_fingerprint(model)
    assert model_fingerprint(model) == before
    weight = next(p for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        weight.add_(1e-3)
    changed = model_fingerprint(model)
    assert changed != before
    assert model_fingerprint(models.load("use-m")) == before  # a fresh copy of the weights: the original digest


def test_corrupt_embedding_cache_is_rebuilt(use_m, fresh_cache) -> None:
    texts = ["Wer hat den Super Bowl gewonnen?", "Who won the Super Bowl?"]
    good = encode(use_m, texts, "query")
    (entry,) = list((fresh_cache / "embeddings").glob("*.npy"))
    raw = bytearray(entry.read_bytes())
    raw[-4:] = b"\x00\x00\x80\x7f"  # the last float becomes inf: same size, wrong checksum
    entry.write_bytes(bytes(raw))
    again = encode(use_m, texts, "query")
    np.testing.assert_array_equal(again, good)
    meta = json.loads(entry.with_suffix(".json").read_text())
    assert meta["shape"] == [2, 512]


def test_bad_input_is_refused_with_clear_errors() -> None:
    q = np.eye(3, dtype=np.float32)
    with pytest.raises(MalformedDataError, match="2 query embeddings for 3 queries"):
        rank(q[:2], q, ["a", "b", "c"], [[0], [1], [2]])
    with pytest.raises(MalformedDataError, match="3 candidate embeddings for 2 candidates"):
        rank(q, q, ["a", "b"], [[0], [1], [1]])
    bad = q.copy()
    bad[1, 1] = np.nan
    with pytest.raises(MalformedDataError, match="1 candidate embeddings hold NaN"):
        rank(q, bad, ["a", "b", "c"], [[0], [1], [2]])
    with pytest.raises(MalformedDataError, match="1 queries .* have no relevant candidate"):
        rank(q, q, ["a", "b", "c"], [[0], [], [2]])


def test_paragraph_pools_give_ndcg_and_recall_at_100(use_m) -> None:
    ev = evaluate(use_m, "mlqa-r-paragraphs", langs=["en", "de"], n_resamples=50)
    t = ev.table
    assert set(t.dataset) == set(ev.per_query.dataset) == {"mlqa-r-paragraphs"}  # not mlqa-r's results
    assert set(t.setting) == {"pair", "mono"}
    assert set(zip(t[t.setting == "pair"].query_lang, t[t.setting == "pair"].cand_lang)) == {
        ("en", "en"),
        ("de", "de"),
    }
    ndcg = t[(t.setting == "pair") & (t.metric == "ndcg@10")].value
    assert ((ndcg > 0.2) & (ndcg <= 1)).all()
    assert ev.meta["candidates"] == "paragraph level"


def test_bitext_and_mkqa(use_m) -> None:
    ev = evaluate(use_m, "tatoeba", langs=["de", "zh"])
    acc = ev.table.set_index(["query_lang", "cand_lang"]).value
    assert acc[("de", "en")] > 0.9 and acc[("en", "de")] > 0.9 and acc[("zh", "en")] > 0.8
    assert len(ev.per_query) == 4 * 1000
    mk = evaluate(use_m, "mkqa", langs=["en", "es", "ja"], n_resamples=50)
    pairs = mk.table[(mk.table.setting == "pair") & (mk.table.metric == "map")]
    assert len(pairs) == 6 and (pairs.query_lang != pairs.cand_lang).all()
    assert set(pairs.n_queries) == {1758} and (pairs.value > 0.5).all()


def test_cli_evaluate_writes_every_output(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "eval"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hbnb",
            "evaluate",
            "--model",
            "use-m",
            "--data",
            "mlqa-r",
            "--langs",
            "en",
            "de",
            "--candidates",
            "sentence",
            "--out",
            str(out),
            "--run-depth",
            "20",
            "--max-items",
            "300",  # 300 of its items: every output is written the same way for the whole set
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mono_map:" in result.stdout and "multilingual_map:" in result.stdout
    table = pd.read_parquet(out / "metrics.parquet")
    csv_table = pd.read_csv(out / "metrics.csv")
    assert len(csv_table) == len(table) and np.allclose(csv_table["value"], table["value"])
    assert {"run", "dataset", "setting", "query_lang", "cand_lang", "metric", "value", "n_queries"} <= set(
        table.columns
    )
    per_query = pd.read_parquet(out / "per_query.parquet")
    pool = table[(table.setting == "pool") & (table.query_lang == "all") & (table.metric == "map")]
    n = int(pool.n_queries.item())
    assert 300 <= n <= 600 and len(per_query[per_query.cand_lang == "pool"]) == n  # each item: en, maybe de
    assert set(per_query[per_query.cand_lang == "pool"].query_lang) == {"en", "de"}
    run_lines = (out / "run.trec").read_text().splitlines()
    assert len(run_lines) == n * 20
    qid, q0, doc, r, score, tag = run_lines[0].split()
    assert q0 == "Q0" and r == "1" and tag == "use-m" and float(score) > 0
    qrels = [line.split() for line in (out / "qrels.trec").read_text().splitlines()]
    assert {q for q, *_ in qrels} == set(per_query[per_query.cand_lang == "pool"].query_id) and len(qrels) >= n
    relevant = dict(zip(*(load_retrieval("mlqa-r", ["en", "de"]).relevance[c] for c in ("query_id", "candidate_ids"))))
    assert all(doc in relevant[q] for q, _, doc, _ in qrels)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["candidates"] == "sentence" and "tie_rule" in meta
    bad = subprocess.run(
        [sys.executable, "-m", "hbnb", "evaluate", "--model", "no/such-model", "--data", "mlqa-r", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert bad.returncode == 2 and "no/such-model" in bad.stderr and "Traceback" not in bad.stderr


def test_faiss_top_k_agrees_with_the_full_ranking_within_the_depth(use_m) -> None:
    rs = load_retrieval("mlqa-r", ["en", "de"], level="paragraph")
    full = evaluate(use_m, rs, n_resamples=50)
    top = evaluate(use_m, rs, n_resamples=50, depth=20)
    assert top.meta["search"] == "faiss Flat top-20" and full.meta["search"] == "full ranking"
    a = full.per_query.set_index(["query_id", "cand_lang"]).sort_index()
    b = top.per_query.set_index(["query_id", "cand_lang"]).sort_index()
    assert set(b.index) == {i for i in a.index if i[1] != "pool" and i[0].split("_")[0] == i[1]} | {
        i for i in a.index if i[1] == "pool"
    }
    common = b.index
    for metric in ("recall@1", "recall@10", "rr@10", "ndcg@10"):
        np.testing.assert_allclose(b.loc[common, metric], a.loc[common, metric], atol=1e-9)
    assert (b.loc[common, "ap"] <= a.loc[common, "ap"] + 1e-9).all()  # AP truncated at the depth
    deep = a.loc[common, "recall@10"] == 1  # every relevant inside the depth: identical AP
    np.testing.assert_allclose(b.loc[common][deep]["ap"], a.loc[common][deep]["ap"], atol=1e-9)


def test_beir_folders_load_as_per_language_pools(use_m, tmp_path: Path) -> None:
    rs = load_retrieval("xquad-r", ["en", "de"], level="paragraph")
    folders = {}
    for lang in ("en", "de"):
        folder = tmp_path / lang
        (folder / "qrels").mkdir(parents=True)
        cands = [r for r in rs.candidates.to_list() if r["lang"] == lang]
        (folder / "corpus.jsonl").write_text(
            "".join(
                json.dumps({"_id": r["id"].split("_", 1)[1], "title": r["title"], "text": r["paragraph"]}) + "\n"
                for r in cands
            )
        )
        queries = [r for r in rs.queries.to_list() if r["lang"] == lang]
        (folder / "queries.jsonl").write_text(
            "".join(json.dumps({"_id": r["item_id"], "text": r["text"]}) + "\n" for r in queries)
        )
        rel = _relevance(rs)
        lines = ["query-id\tcorpus-id\tscore"] + [
            f"{r['item_id']}\t{c.split('_', 1)[1]}\t1"
            for r in queries
            for c in rel[r["id"]]
            if c.startswith(lang + "_")
        ]
        (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
        folders[lang] = folder
    from hbnb.data.beir import load_beir

    beir = load_beir(folders, name="xquad-beir")
    assert beir.stats()["candidates"]["per_language"] == {"en": 240, "de": 240}
    assert beir.stats()["queries"]["total"] == 2 * 1190
    mine = evaluate(use_m, beir, n_resamples=50)
    direct = evaluate(use_m, "xquad-r-paragraphs", langs=["en", "de"], n_resamples=50)
    got = mine.table[(mine.table.setting == "pair") & (mine.table.metric == "ndcg@10")].set_index("query_lang").value
    want = (
        direct.table[(direct.table.setting == "pair") & (direct.table.metric == "ndcg@10")]
        .set_index("query_lang")
        .value
    )
    np.testing.assert_allclose(got.sort_index(), want.sort_index(), atol=1e-9)


def read_run(text: str) -> dict[str, dict[str, float]]:
    """Parse run lines into {qid: {docid: score}} (the shape pytrec_eval takes)."""
    run: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        qid, _, docid, _, score, *_ = line.split()
        run.setdefault(qid, {})[docid] = float(score)
    return run


def read_qrels(text: str) -> dict[str, dict[str, int]]:
    """Parse qrels lines into {qid: {docid: relevance}}."""
    qrels: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        qid, _, docid, rel = line.split()
        qrels.setdefault(qid, {})[docid] = int(rel)
    return qrels


def test_max_items_evaluates_a_subset_of_items_with_their_paragraphs(use_m) -> None:
    full = load_retrieval("xquad-r", ["en", "vi"])
    small = full.subset_items(40)
    assert small.queries.num_rows == 80 and len(set(small.queries["item_id"])) == 40
    assert full.subset_items(40).queries["id"] == small.queries["id"]  # fixed draw
    relevant = {c for ids in small.relevance["candidate_ids"] for c in ids}
    pool = set(small.candidates["id"])
    assert relevant <= pool
    paragraphs = {p for c, p in zip(full.candidates["id"], full.candidates["paragraph_id"]) if c in relevant}
    assert pool == {c for c, p in zip(full.candidates["id"], full.candidates["paragraph_id"]) if p in paragraphs}
    result = evaluate(use_m, "xquad-r", langs=["en", "vi"], candidates="sentence", max_items=40, n_resamples=100)
    assert result.meta["n_queries"] == 80 and result.meta["max_items"] == 40
    assert result.meta["pool_size"] == len(pool)
    with pytest.raises(ParamsError, match="max_items = 5 for tatoeba, a bitext set"):
        evaluate(use_m, "tatoeba", langs=["de"], max_items=5)
