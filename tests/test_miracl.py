"""MIRACL from a copy in its own release layout: loading, scoring checked independently, clear errors.

The tests write a small copy (Swahili and Finnish: 20 passages and 6 topics each, two
topics without a positive judgement) exactly as MIRACL ships it: topics TSV, TREC qrels
TSV, gzip'd JSON-lines corpus files.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import ir_measures
import numpy as np
import pandas as pd
import pytest
from ir_measures import AP, RR, R, nDCG

from hbnb import models
from hbnb.cli import main
from hbnb.data.miracl import load_miracl
from hbnb.errors import DataFileError, MalformedDataError, UnknownNameError
from hbnb.evaluation import evaluate, get_task

# article id -> (title, two passages)
ARTICLES = {
    "sw": {
        "1": (
            "Nairobi",
            ["Nairobi ni mji mkuu wa Kenya.", "Nairobi ina wakazi zaidi ya milioni nne na ni kituo cha biashara."],
        ),
        "2": (
            "Kilimanjaro",
            [
                "Kilimanjaro ni mlima mrefu zaidi barani Afrika.",
                "Mlima huu uko kaskazini mwa Tanzania karibu na mpaka wa Kenya.",
            ],
        ),
        "3": (
            "Ziwa Viktoria",
            [
                "Ziwa Viktoria ni ziwa kubwa zaidi barani Afrika.",
                "Ziwa hili linashirikiwa na Tanzania, Uganda na Kenya.",
            ],
        ),
        "4": (
            "Tembo",
            ["Tembo ni mnyama mkubwa zaidi anayeishi nchi kavu.", "Tembo hula majani, matunda na magome ya miti."],
        ),
        "5": (
            "Kiswahili",
            [
                "Kiswahili ni lugha ya Kibantu inayozungumzwa Afrika Mashariki.",
                "Kiswahili ni lugha rasmi ya Tanzania na Kenya.",
            ],
        ),
        "6": (
            "Dar es Salaam",
            [
                "Dar es Salaam ni mji mkubwa zaidi wa Tanzania.",
                "Bandari ya Dar es Salaam ni muhimu kwa biashara ya Bahari ya Hindi.",
            ],
        ),
        "7": (
            "Mpira wa miguu",
            ["Mpira wa miguu ni mchezo unaopendwa sana duniani.", "Kila timu ina wachezaji kumi na mmoja uwanjani."],
        ),
        "8": (
            "Kahawa",
            [
                "Kahawa hulimwa katika nyanda za juu za Kenya na Ethiopia.",
                "Kinywaji cha kahawa hutengenezwa kwa mbegu zilizokaangwa.",
            ],
        ),
        "9": (
            "Mto Nile",
            [
                "Mto Nile ni mto mrefu zaidi duniani.",
                "Mto Nile unatiririka kuelekea kaskazini hadi Bahari ya Mediterania.",
            ],
        ),
        "10": (
            "Julius Nyerere",
            [
                "Julius Nyerere alikuwa rais wa kwanza wa Tanzania.",
                "Nyerere alijulikana kama Mwalimu na alipigania uhuru wa Tanganyika.",
            ],
        ),
    },
    "fi": {
        "1": (
            "Helsinki",
            ["Helsinki on Suomen pääkaupunki.", "Helsingissä asuu noin 660 000 ihmistä."],
        ),
        "2": (
            "Sauna",
            ["Sauna on huone, jossa on kuuma kiuas.", "Suomessa on arviolta kolme miljoonaa saunaa."],
        ),
        "3": (
            "Joulupukki",
            ["Joulupukki asuu suomalaisen perinteen mukaan Korvatunturilla.", "Rovaniemellä on Joulupukin pajakylä."],
        ),
        "4": (
            "Jean Sibelius",
            ["Jean Sibelius oli suomalainen säveltäjä.", "Sibeliuksen tunnetuin teos on Finlandia."],
        ),
        "5": (
            "Kalevala",
            ["Kalevala on Suomen kansalliseepos.", "Elias Lönnrot kokosi Kalevalan runot 1800-luvulla."],
        ),
        "6": (
            "Järvet",
            ["Suomessa on yli 180 000 järveä.", "Saimaa on Suomen suurin järvi."],
        ),
        "7": (
            "Nokia",
            ["Nokia on suomalainen teknologiayhtiö.", "Nokia oli pitkään maailman suurin matkapuhelinvalmistaja."],
        ),
        "8": (
            "Revontulet",
            [
                "Revontulet näkyvät talvella Lapin taivaalla.",
                "Revontulet syntyvät, kun aurinkotuulen hiukkaset osuvat ilmakehään.",
            ],
        ),
        "9": (
            "Karhu",
            ["Karhu on Suomen kansalliseläin.", "Karhu nukkuu talviunta pesässään."],
        ),
        "10": (
            "Tampere",
            ["Tampere on Suomen kolmanneksi suurin kaupunki.", "Tampere sijaitsee Näsijärven ja Pyhäjärven välissä."],
        ),
    },
}
# query id -> (query, {passage id: relevance}); 5 has only a negative judgement, 6 none: both left out
TOPICS = {
    "sw": {
        "1": ("Mji mkuu wa Kenya ni upi?", {"1#0": 1, "6#0": 0}),
        "2": ("Mlima mrefu zaidi Afrika ni upi?", {"2#0": 1, "2#1": 1}),
        "3": ("Rais wa kwanza wa Tanzania alikuwa nani?", {"10#0": 1, "10#1": 1, "6#0": 0}),
        "4": ("Tembo hula nini?", {"4#1": 1, "4#0": 0}),
        "5": ("Ni nani aliyevumbua simu?", {"7#0": 0}),
        "6": ("Bei ya mafuta ni kiasi gani leo?", {}),
    },
    "fi": {
        "1": ("Mikä on Suomen pääkaupunki?", {"1#0": 1, "1#1": 0}),
        "2": ("Kuka sävelsi Finlandian?", {"4#1": 1, "4#0": 1}),
        "3": ("Mikä on Suomen suurin järvi?", {"6#1": 1, "6#0": 0}),
        "4": ("Missä Joulupukki asuu?", {"3#0": 1, "3#1": 1}),
        "5": ("Kuka keksi puhelimen?", {"7#1": 0}),
        "6": ("Mikä on huomisen sääennuste?", {}),
    },
}
MEASURES = {"ap": AP, "ndcg@10": nDCG @ 10, "recall@100": R @ 100, "rr@10": RR @ 10}


def write_copy(root: Path, clones: bool = True) -> Path:
    """A MIRACL copy in the release layout; `clones`: in miracl/ and miracl-corpus/ as two hub clones."""
    topics_base = root / "miracl" if clones else root
    corpus_base = root / "miracl-corpus" if clones else root
    for lang, articles in ARTICLES.items():
        folder = topics_base / f"miracl-v1.0-{lang}"
        (folder / "topics").mkdir(parents=True)
        (folder / "qrels").mkdir(parents=True)
        topics, qrels = TOPICS[lang], []
        (folder / "topics" / f"topics.miracl-v1.0-{lang}-dev.tsv").write_text(
            "".join(f"{qid}\t{text}\n" for qid, (text, _) in topics.items()), encoding="utf-8"
        )
        qrels = [f"{qid}\tQ0\t{doc}\t{rel}\n" for qid, (_, judged) in topics.items() for doc, rel in judged.items()]
        (folder / "qrels" / f"qrels.miracl-v1.0-{lang}-dev.tsv").write_text("".join(qrels), encoding="utf-8")
        corpus = corpus_base / f"miracl-corpus-v1.0-{lang}"
        corpus.mkdir(parents=True)
        docs = [
            {"docid": f"{aid}#{i}", "title": title, "text": text}
            for aid, (title, texts) in articles.items()
            for i, text in enumerate(texts)
        ]
        parts = [docs[:10], docs[10:]] if lang == "sw" else [docs]  # sw's corpus in two files, as large ones are
        for n, part in enumerate(parts):
            with gzip.open(corpus / f"docs-{n}.jsonl.gz", "wt", encoding="utf-8") as fh:
                fh.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in part)
    return root


@pytest.fixture(scope="module")
def use_m():
    return models.load("use-m")


@pytest.fixture
def copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_cache: Path) -> Path:
    root = write_copy(tmp_path / "miracl-copy")
    monkeypatch.setenv("HBNB_MIRACL", str(root))
    return root


def judged_positive(lang: str) -> dict[str, list[str]]:
    return {
        f"{lang}_{q}": [f"{lang}_{d}" for d, rel in judged.items() if rel > 0]
        for q, (_, judged) in TOPICS[lang].items()
        if any(rel > 0 for rel in judged.values())
    }


def test_a_copy_in_the_release_layout_loads_as_per_language_pools(copy: Path) -> None:
    rs = load_miracl()
    assert rs.level == "paragraph" and rs.languages == ["fi", "sw"]  # the copy's languages, in MIRACL's order
    assert rs.queries["id"] == ["fi_1", "fi_2", "fi_3", "fi_4", "sw_1", "sw_2", "sw_3", "sw_4"]
    relevance = dict(zip(rs.relevance["query_id"], rs.relevance["candidate_ids"]))
    assert relevance == {**judged_positive("sw"), **judged_positive("fi")}  # positives only, ids by language
    passages = dict(zip(rs.candidates["id"], rs.candidate_texts()))
    assert len(passages) == 40 and passages["sw_10#1"] == "Julius Nyerere " + ARTICLES["sw"]["10"][1][1]
    assert load_miracl(["fi"]).queries["lang"] == ["fi"] * 4
    task = get_task("miracl")
    assert task.kind == "pool retrieval" and len(task.languages()) == 18
    assert [h.metric for h in task.headlines] == ["ndcg@10", "recall@100"]


def test_data_stats_reads_the_copy(copy: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "stats", "miracl", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["source"] == str(copy)
    assert stats["queries"]["per_language"] == {"fi": 4, "sw": 4}
    assert stats["candidates"]["per_language"] == {"sw": 20, "fi": 20}
    assert stats["topics_per_language"] == {"sw": 6, "fi": 6}
    assert stats["topics_without_positive_left_out"] == {"sw": 2, "fi": 2}


def test_scores_equal_an_independent_computation_and_ir_measures(copy: Path, use_m, tmp_path: Path) -> None:
    result = evaluate(use_m, "miracl", n_resamples=50)
    result.save(tmp_path / "eval")
    per_query = result.per_query.set_index("query_id")
    assert list(per_query.cand_lang) == list(per_query.query_lang)  # monolingual: each query, its own pool

    # numpy from the model's own embeddings: each language's passages ranked by cosine
    ndcg, recall = {}, {}
    for lang in ("sw", "fi"):
        ids = [f"{lang}_{a}#{i}" for a in ARTICLES[lang] for i in range(2)]
        texts = [f"{t} {x}" for t, xs in ARTICLES[lang].values() for x in xs]
        c = use_m.encode(texts, normalize_embeddings=True)
        for qid, positives in judged_positive(lang).items():
            q = use_m.encode([TOPICS[lang][qid.split("_")[1]][0]], normalize_embeddings=True)[0]
            ranked = [ids[i] for i in np.argsort(-(c @ q), kind="stable")]
            gains = sum(1 / np.log2(r + 2) for r, d in enumerate(ranked[:10]) if d in positives)
            ndcg[qid] = gains / sum(1 / np.log2(r + 2) for r in range(min(len(positives), 10)))
            recall[qid] = len(set(ranked[:100]) & set(positives)) / len(positives)
    np.testing.assert_allclose(per_query.loc[list(ndcg), "ndcg@10"], list(ndcg.values()), atol=1e-6)
    np.testing.assert_allclose(per_query.loc[list(recall), "recall@100"], list(recall.values()), atol=1e-6)
    assert 0 < np.mean(list(ndcg.values())) < 1  # neither trivial nor hopeless
    mono = result.table[result.table.setting == "mono"].set_index(["query_lang", "metric"]).value
    for lang in ("sw", "fi"):
        mine = [v for q, v in ndcg.items() if q.startswith(lang)]
        assert abs(mono[(lang, "ndcg@10")] - np.mean(mine)) < 1e-6
    assert abs(result.summary()["ndcg@10"] - np.mean([mono[("sw", "ndcg@10")], mono[("fi", "ndcg@10")]])) < 1e-9

    # ir_measures on the written run.trec, judged by MIRACL's own qrels (negatives and dropped topics included)
    original = [
        ir_measures.Qrel(f"{lang}_{q}", f"{lang}_{d}", rel)
        for lang in TOPICS
        for q, (_, judged) in TOPICS[lang].items()
        for d, rel in judged.items()
    ]
    run = list(ir_measures.read_trec_run(str(tmp_path / "eval" / "run.trec")))
    assert {r.query_id for r in run} == set(per_query.index)  # plain query ids: the set's standard run
    assert_equal_to_ir_measures(per_query, original, run)


def test_a_top_k_search_writes_the_truncated_run_its_values_come_from(copy: Path, use_m, tmp_path: Path) -> None:
    result = evaluate(use_m, "miracl", n_resamples=50, depth=3)
    assert result.meta["search"] == "faiss Flat top-3"
    result.save(tmp_path / "top3")
    run = list(ir_measures.read_trec_run(str(tmp_path / "top3" / "run.trec")))
    assert pd.Series([r.query_id for r in run]).value_counts().eq(3).all()
    qrels = list(ir_measures.read_trec_qrels(str(tmp_path / "top3" / "qrels.trec")))
    per_query = result.per_query.set_index("query_id")
    assert (per_query["recall@100"] < 1).any()  # some positive lies below the depth
    assert_equal_to_ir_measures(per_query, qrels, run)


def assert_equal_to_ir_measures(per_query: pd.DataFrame, qrels: list, run: list) -> None:
    names = {str(m): column for column, m in MEASURES.items()}
    theirs = pd.DataFrame(
        [
            (r.query_id, names[str(r.measure)], r.value)
            for r in ir_measures.iter_calc(list(MEASURES.values()), qrels, run)
        ],
        columns=["qid", "m", "v"],
    ).pivot(index="qid", columns="m", values="v")
    assert set(per_query.index) <= set(theirs.index)  # (RR@10 also lists judged queries without a run)
    for column in MEASURES:
        np.testing.assert_allclose(per_query[column], theirs.loc[per_query.index, column], atol=1e-6)


def test_without_a_copy_or_a_hub_one_error_says_where_to_put_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HBNB_MIRACL", str(tmp_path / "nothing-here"))
    assert main(["data", "stats", "miracl"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "HF_HUB_OFFLINE is set" in err
    assert str(tmp_path / "nothing-here") in err and "HBNB_MIRACL" in err
    assert "miracl-v1.0-LANG/topics/topics.miracl-v1.0-LANG-dev.tsv" in err and "docs-N.jsonl.gz" in err


def test_a_partial_or_broken_copy_is_refused_naming_the_file(tmp_path: Path, fresh_cache: Path) -> None:
    root = write_copy(tmp_path / "flat", clones=False)
    assert load_miracl(root=root).queries.num_rows == 8  # the flat layout reads alike
    with pytest.raises(DataFileError, match=r"lacks .*miracl-v1\.0-ja/topics/topics\.miracl-v1\.0-ja-dev\.tsv"):
        load_miracl(["sw", "ja"], root=root)
    with pytest.raises(UnknownNameError, match="miracl"):
        load_miracl(["it"], root=root)
    qrels = root / "miracl-v1.0-fi" / "qrels" / "qrels.miracl-v1.0-fi-dev.tsv"
    qrels.write_text(qrels.read_text() + "2\tQ0\t99#0\t1\n", encoding="utf-8")
    with pytest.raises(MalformedDataError, match=r"qrels\.miracl-v1\.0-fi-dev\.tsv: query 2 judges passage '99#0'"):
        load_miracl(["fi"], root=root)
    qrels.write_text("1\t1#0\n", encoding="utf-8")
    with pytest.raises(MalformedDataError, match=r"qrels\.miracl-v1\.0-fi-dev\.tsv, line 1: expected TREC qrels"):
        load_miracl(["fi"], root=root)


def test_an_unreachable_hub_is_one_error_too(tmp_path: Path) -> None:
    """With the hub switched on but not answering, `datasets` is asked for MIRACL's own files and fails."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "0",
        "HF_DATASETS_OFFLINE": "0",
        "HF_ENDPOINT": "http://127.0.0.1:9",  # nothing listens there: refused at once
        "NO_PROXY": "127.0.0.1,localhost",
        "HBNB_MIRACL": str(tmp_path / "empty"),
        "HBNB_CACHE": str(tmp_path / "cache"),
        "HF_HOME": str(tmp_path / "hf"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "hbnb", "data", "stats", "miracl"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "reading hf://datasets/miracl/miracl/miracl-v1.0-ar/topics/topics.miracl-v1.0-ar-dev.tsv" in done.stderr
    assert "from the hub failed" in done.stderr and str(tmp_path / "empty") in done.stderr
