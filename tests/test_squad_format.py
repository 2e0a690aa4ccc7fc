"""Malformed upstream records: each error names the file, the record and what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hbnb.data.mkqa import _read as read_mkqa
from hbnb.data.squad import answer_sentence, read_squad
from hbnb.errors import MalformedDataError, UnknownNameError


def _doc(root: Path, lang: str = "en") -> dict:
    """The first article of a real XQuAD-R file, as parsed JSON."""
    doc = json.loads((root / f"xquad-r/{lang}.json").read_text(encoding="utf-8"))
    doc["data"] = doc["data"][:1]
    return doc


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_real_article_parses_with_lareqa_answer_sentences(root: Path, tmp_path: Path) -> None:
    paragraphs = read_squad(_write(tmp_path, _doc(root)), with_breaks=True)
    assert [p.number for p in paragraphs] == list(range(1, len(paragraphs) + 1))
    first = paragraphs[0]
    q = first.questions[0]
    assert q.id == "56beb4343aeaaa14008c925b" and q.sentence == 0
    assert first.relevant_sentences(q) == [0]


def test_lareqa_rule_takes_the_first_span_holding_the_start() -> None:
    breaks = [(0, 10), (11, 20), (20, 30)]
    assert answer_sentence(breaks, 0) == 0
    assert answer_sentence(breaks, 9) == 0
    assert answer_sentence(breaks, 20) == 2  # end is exclusive
    assert answer_sentence(breaks, 10) is None  # the gap between sentences


def test_missing_question_key(root: Path, tmp_path: Path) -> None:
    doc = _doc(root)
    del doc["data"][0]["paragraphs"][1]["qas"][2]["question"]
    qid = doc["data"][0]["paragraphs"][1]["qas"][2]["id"]
    with pytest.raises(MalformedDataError) as err:
        read_squad(_write(tmp_path, doc), with_breaks=True)
    assert "broken.json" in str(err.value) and "paragraph 2" in str(err.value)
    assert qid in str(err.value) and "missing key 'question'" in str(err.value)


def test_bad_sentence_break_and_answer_outside_every_sentence(root: Path, tmp_path: Path) -> None:
    doc = _doc(root)
    para = doc["data"][0]["paragraphs"][0]
    para["sentence_breaks"][0] = [5, 2]
    with pytest.raises(MalformedDataError, match=r"paragraph 1 .*sentence break \[5, 2\]"):
        read_squad(_write(tmp_path, doc), with_breaks=True)
    doc = _doc(root)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 10**6
    with pytest.raises(MalformedDataError, match="answer_start 1000000 lies in no sentence span"):
        read_squad(_write(tmp_path, doc), with_breaks=True)


def test_wrong_types_and_invalid_json(root: Path, tmp_path: Path) -> None:
    doc = _doc(root)
    doc["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "34"
    with pytest.raises(MalformedDataError, match="'answer_start' is str, expected int"):
        read_squad(_write(tmp_path, doc), with_breaks=True)
    path = tmp_path / "cut.json"
    path.write_text((root / "xquad-r/en.json").read_text(encoding="utf-8")[:5000], encoding="utf-8")
    with pytest.raises(MalformedDataError, match="cut.json: not valid JSON"):
        read_squad(path, with_breaks=True)


def test_mkqa_bad_records_name_the_line(root: Path, tmp_path: Path) -> None:
    lines = (root / "mkqa-mia-dev/mkqa-ko.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    path = tmp_path / "mkqa-ko.jsonl"
    path.write_text("\n".join(lines[:3] + ['{"id": "1_ko", "lang": "ko"'] + lines[3:]), encoding="utf-8")
    with pytest.raises(MalformedDataError, match="mkqa-ko.jsonl, line 4: not valid JSON"):
        list(read_mkqa(path))
    record = json.loads(lines[0]) | {"lang": "xx", "id": "5_xx"}
    path.write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(UnknownNameError, match="line 1: unknown language code 'xx'"):
        list(read_mkqa(path))
    assert len(list(read_mkqa(root / "mkqa-mia-dev/mkqa-ko.jsonl"))) == 1758
