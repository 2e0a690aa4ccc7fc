"""The real data sets: every count in DATA.md, the LAReQA construction, and the loaders' errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from datasets import Dataset

from hbnb.data import from_dataset, load_parallel_qa, load_retrieval
from hbnb.data.bitext import (
    load_tatoeba,
    load_wmt22,
    load_wmt22_multiway,
    tatoeba_languages,
    wmt22_pairs,
)
from hbnb.data.catalog import parallel_qa_stats
from hbnb.data.mkqa import load_mkqa, mkqa_languages
from hbnb.data.retrieval import RetrievalSet
from hbnb.data.squad import load_squad
from hbnb.errors import MalformedDataError, UnknownNameError

XQUAD_CANDIDATES = {
    "ar": 1222,
    "de": 1276,
    "el": 1234,
    "en": 1180,
    "es": 1215,
    "hi": 1244,
    "ru": 1219,
    "th": 852,
    "tr": 1167,
    "vi": 1209,
    "zh": 1196,
}
MLQA_CANDIDATES = {"ar": 2545, "de": 2362, "en": 6264, "es": 1787, "hi": 2426, "vi": 2828, "zh": 2322}
MLQA_QUESTIONS = {"en": 1148, "de": 512, "es": 500, "ar": 517, "hi": 507, "vi": 511, "zh": 504}


@pytest.fixture(scope="module")
def xquad_r() -> RetrievalSet:
    return load_retrieval("xquad-r")


@pytest.fixture(scope="module")
def mlqa_r() -> RetrievalSet:
    return load_retrieval("mlqa-r")


def test_xquad_r_counts(xquad_r: RetrievalSet) -> None:
    s = xquad_r.stats()
    assert s["queries"]["total"] == 13_090
    assert s["queries"]["per_language"] == {lang: 1190 for lang in XQUAD_CANDIDATES}
    assert s["candidates"]["total"] == 13_014
    assert s["candidates"]["per_language"] == XQUAD_CANDIDATES
    assert s["relevant_set_sizes"] == {"11": 13_090}
    assert s["language_pairs"] == 121


def test_mlqa_r_counts(mlqa_r: RetrievalSet) -> None:
    s = mlqa_r.stats()
    assert s["queries"]["total"] == 4_199
    assert s["queries"]["per_language"] == {k: MLQA_QUESTIONS[k] for k in MLQA_CANDIDATES}
    assert s["candidates"]["total"] == 20_534
    assert s["candidates"]["per_language"] == MLQA_CANDIDATES
    assert s["relevant_set_sizes"] == {"2": 130, "3": 789, "4": 3_280}
    assert s["language_pairs"] == 49


def test_relevant_set_is_the_answer_sentence_in_every_language(xquad_r: RetrievalSet) -> None:
    relevant = dict(zip(xquad_r.relevance["query_id"], xquad_r.relevance["candidate_ids"]))
    sentence = dict(zip(xquad_r.candidates["id"], xquad_r.candidates["sentence"]))
    ids = relevant["de_56beb4343aeaaa14008c925b"]
    assert ids == relevant["en_56beb4343aeaaa14008c925b"]
    assert sorted(cid.split("_")[0] for cid in ids) == sorted(XQUAD_CANDIDATES)
    english = [sentence[c] for c in ids if c.startswith("en_")]
    assert english == [
        "The Panthers defense gave up just 308 points, ranking sixth in the league, while also "
        "leading the NFL in interceptions with 24 and boasting four Pro Bowl selections."
    ]


def test_mlqa_relevant_sets_follow_the_languages_a_question_exists_in(mlqa_r: RetrievalSet) -> None:
    langs_of_item: dict[str, set[str]] = {}
    for item, lang in zip(mlqa_r.queries["item_id"], mlqa_r.queries["lang"]):
        langs_of_item.setdefault(item, set()).add(lang)
    for qid, item, cids in zip(mlqa_r.queries["id"], mlqa_r.queries["item_id"], mlqa_r.relevance["candidate_ids"]):
        assert {c.split("_")[0] for c in cids} == langs_of_item[item], qid
    assert 2 <= min(map(len, langs_of_item.values())) and max(map(len, langs_of_item.values())) <= 4


def test_answer_sentences_hold_the_answer_but_for_the_few_that_run_past(root: Path) -> None:
    for name, qa_name, low, high in (("xquad-r", "xquad", 2, 20), ("mlqa-r", "mlqa", 1, 8)):
        qa = load_parallel_qa(qa_name)
        raw = load_squad(name)
        answer = {(i, lang): a for i, lang, a in zip(raw["item_id"], raw["lang"], raw["answer_text"])}
        past = Counter(
            lang
            for item, lang, sent in zip(qa["item_id"], qa["lang"], qa["sentence"])
            if answer[(item, lang)] not in sent
        )
        assert set(past) == set(qa["lang"])
        assert min(past.values()) == low and max(past.values()) == high, (name, past)


def test_parallel_qa_tables() -> None:
    xq = load_parallel_qa("xquad")
    assert xq.column_names == ["item_id", "lang", "question", "sentence", "paragraph", "title", "negative"]
    assert xq.num_rows == 13_090 and len(set(xq["item_id"])) == 1190
    assert len(set(zip(xq["item_id"], xq["lang"]))) == xq.num_rows
    assert all(s in p for s, p in zip(xq["sentence"][:500], xq["paragraph"][:500]))
    # the hard negative is another sentence of the same paragraph
    assert all(
        n in p and n != s for s, p, n in zip(xq["sentence"][:500], xq["paragraph"][:500], xq["negative"][:500]) if n
    )
    assert sum(1 for n in xq["negative"] if not n) < 0.05 * xq.num_rows  # single-sentence paragraphs
    ml = load_parallel_qa("mlqa")
    assert ml.num_rows == 4_199 and len(set(ml["item_id"])) == 1148
    assert parallel_qa_stats("mlqa")["items_by_number_of_languages"] == {"2": 65, "3": 263, "4": 820}
    sub = load_parallel_qa("xquad", ["deu", "en"])
    assert sub.num_rows == 2380 and set(sub["lang"]) == {"de", "en"}


def test_xquad_questions_agree_with_the_raw_xquad_files() -> None:
    raw = load_squad("xquad")
    assert sorted(set(raw["lang"])) == sorted([*XQUAD_CANDIDATES, "ro"])
    assert raw.num_rows == 12 * 1190
    qa = load_parallel_qa("xquad", ["en", "th"])
    raw_q = {(i, lang): q for i, lang, q in zip(raw["item_id"], raw["lang"], raw["question"])}
    assert all(raw_q[(i, lang)] == q for i, lang, q in zip(qa["item_id"], qa["lang"], qa["question"]))


def test_language_subsets_of_retrieval_sets() -> None:
    rs = load_retrieval("xquad-r", ["en", "de"])
    assert rs.stats()["candidates"]["per_language"] == {"de": 1276, "en": 1180}
    assert set(map(len, rs.relevance["candidate_ids"])) == {2}


def test_cli_stats_json_prints_the_counts() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hbnb", "data", "stats", "mlqa-r", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = json.loads(out)
    assert counts["candidates"]["total"] == 20_534
    assert counts["relevant_set_sizes"] == {"2": 130, "3": 789, "4": 3280}


def test_mkqa() -> None:
    table = load_mkqa()
    assert mkqa_languages() == ["ar", "en", "es", "fi", "ja", "km", "ko", "ms", "ru", "sv", "tr", "zh"]
    assert table.num_rows == 12 * 1758
    per_item = Counter(table["item_id"])
    assert len(per_item) == 1758 and set(per_item.values()) == {12}
    row = table.filter(lambda r: r["item_id"] == "563260143484355911" and r["lang"] == "zh")[0]
    assert row["question"].startswith("《i hear you knocking") and row["answers"]


def test_tatoeba() -> None:
    langs = tatoeba_languages()
    assert len(langs) == 112 and len(set(langs)) == 112
    assert {"de", "zh", "ar", "arq", "fa", "ms", "kw"} <= set(langs)
    table = load_tatoeba(["de", "cmn"])
    assert table.num_rows == 2000
    first = table[0]
    assert (first["pair"], first["src"], first["tgt"]) == (
        "de-en",
        "Maria sagte, sie wisse nicht, wo Tom sei.",
        "Mary said she didn't know where Tom was.",
    )
    assert load_tatoeba().num_rows == 88_877


def test_wmt22_pairs_and_multiway(root: Path) -> None:
    assert "en-de" in wmt22_pairs() and len(wmt22_pairs()) == 21
    with pytest.raises(UnknownNameError, match="en-cs has no reference 'A'; available: B, C"):
        load_wmt22(["en-cs"], ref="A")
    de = load_wmt22(["en-de"])
    assert de.num_rows == 2037
    multi = load_wmt22_multiway()
    assert multi.column_names == ["line", "en", "cs", "de", "ja", "ru", "uk", "zh"]
    assert multi.num_rows == 2037
    ja_src = (root / "wmt22-general/sources/generaltest2022.en-ja.src.en").read_text(encoding="utf-8").splitlines()
    assert multi["en"] == ja_src
    # every (en, de) row of the six-way table is a real line pair of the en-de files
    pairs = set(zip(de["src"], de["tgt"]))
    assert all((e, d) in pairs for e, d in zip(multi["en"], multi["de"]))
    assert set(zip(multi["en"], multi["ru"])) <= set(zip(*[load_wmt22(["en-ru"])[c] for c in ("src", "tgt")]))


def test_unknown_names_and_languages_name_the_value_and_the_choices() -> None:
    with pytest.raises(UnknownNameError, match=r"'xx'.*available: ar, de"):
        load_parallel_qa("xquad", ["en", "xx"])
    with pytest.raises(UnknownNameError, match="'ro' is not in xquad-r"):
        load_retrieval("xquad-r", ["ro"])
    with pytest.raises(UnknownNameError, match="built in: xquad-r, mlqa-r"):
        load_retrieval("squad-r")
    with pytest.raises(UnknownNameError, match="for your own data use"):
        load_parallel_qa("mmarco")
    with pytest.raises(UnknownNameError, match="no reference 'Z'"):
        load_wmt22(["en-de"], ref="Z")
    with pytest.raises(UnknownNameError, match="'kl' is not in mkqa"):
        load_mkqa(["kl"])


def _user_rows() -> dict[str, list[str]]:
    qa = load_parallel_qa("xquad", ["en", "de"]).select(range(0, 2380, 40))
    return {
        "id": list(qa["item_id"]),
        "lang": list(qa["lang"]),
        "question": list(qa["question"]),
        "passage": list(qa["paragraph"]),
    }


def test_user_parallel_qa_from_a_saved_dataset(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    Dataset.from_dict(_user_rows()).save_to_disk(str(folder))
    table = from_dataset(folder)
    assert table.column_names == ["item_id", "lang", "question", "sentence", "paragraph", "title", "negative"]
    assert table.num_rows == 60
    assert table["sentence"] == _user_rows()["passage"]
    jsonl = tmp_path / "mine.jsonl"
    Dataset.from_dict(_user_rows()).to_json(str(jsonl))
    assert from_dataset(jsonl)["question"] == table["question"]


def test_user_parallel_qa_errors(tmp_path: Path) -> None:
    rows = _user_rows()
    renamed = Dataset.from_dict({("qid" if k == "id" else k): v for k, v in rows.items()})
    with pytest.raises(MalformedDataError, match="lacks column.*id.*it has qid"):
        from_dataset(renamed)
    assert from_dataset(renamed, columns={"qid": "id"}).num_rows == 60
    with pytest.raises(UnknownNameError, match="row 3: unknown language code 'german'"):
        from_dataset(Dataset.from_dict({**rows, "lang": rows["lang"][:3] + ["german"] + rows["lang"][4:]}))
    with pytest.raises(MalformedDataError, match="appears 2 times in language"):
        from_dataset(Dataset.from_dict({k: v + v[:1] for k, v in rows.items()}))
    with pytest.raises(MalformedDataError, match="row 0: column 'passage'"):
        from_dataset(Dataset.from_dict({**rows, "passage": [""] + rows["passage"][1:]}))
    with pytest.raises(MalformedDataError, match="no local folder or file"):
        from_dataset(str(tmp_path / "nowhere"))


def test_retrieval_set_validation_names_the_bad_entry(mlqa_r: RetrievalSet) -> None:
    q, c, r = mlqa_r.queries.select(range(20)), mlqa_r.candidates, mlqa_r.relevance.select(range(20))
    assert RetrievalSet.from_tables("mine", q, c, r).queries.num_rows == 20
    broken = Dataset.from_dict(
        {"query_id": list(r["query_id"]), "candidate_ids": [["en_9999_0"]] + list(r["candidate_ids"])[1:]}
    )
    with pytest.raises(MalformedDataError, match="names candidate 'en_9999_0'"):
        RetrievalSet.from_tables("mine", q, c, broken)
    empty = Dataset.from_dict({**q.to_dict(), "text": [""] + list(q["text"])[1:]})
    with pytest.raises(MalformedDataError, match=r"1 queries have an empty text \(e.g. row 0; by language"):
        RetrievalSet.from_tables("mine", empty, c, r)
    with pytest.raises(MalformedDataError, match="1 query has no relevance row"):
        RetrievalSet.from_tables("mine", q, c, r.select(range(19)))
