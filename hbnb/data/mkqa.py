"""MKQA (the 12-language MIA 2022 dev subset): parallel open-domain questions with short answers.

One row per (item id, language): `item_id` (the MKQA example id, shared by the
translations), `lang` (canonical code; MKQA's `zh_cn` is `zh`), `question`,
`answers` (list of short answers). No passages: MKQA serves question->question
cross-lingual retrieval.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from datasets import Dataset

from hbnb.data import store
from hbnb.data.retrieval import RetrievalSet
from hbnb.data.tables import cached
from hbnb.errors import MalformedDataError, UnknownNameError
from hbnb.files import iter_jsonl
from hbnb.languages import canonical, check_subset

COLUMNS = ("item_id", "lang", "question", "answers")


def _files() -> dict[str, store.DataFile]:
    """canonical language -> file, from the checksum list (mkqa-{code}.jsonl)."""
    out = {}
    for f in store.files_of("mkqa"):
        stem = PurePosixPath(f.path).name
        if stem.startswith("mkqa-") and stem.endswith(".jsonl"):
            out[canonical(stem[len("mkqa-") : -len(".jsonl")])] = f
    return dict(sorted(out.items()))


def mkqa_languages() -> list[str]:
    """The 12 MKQA languages of the MIA subset, canonical codes."""
    return list(_files())


def load_mkqa(langs: list[str] | None = None) -> Dataset:
    """The parallel MKQA questions for some languages (all 12 by default)."""
    files = _files()
    chosen = list(files) if langs is None else check_subset(langs, files, "mkqa")
    sources = [files[lang] for lang in chosen]
    return cached("mkqa", sources, {"langs": chosen}, lambda: _build(sources))


def _build(sources: list[store.DataFile]) -> Dataset:
    rows: dict[str, list] = {c: [] for c in COLUMNS}
    for f in sources:
        for item_id, lang, question, answers in _read(store.path(f.path)):
            for column, value in zip(COLUMNS, (item_id, lang, question, answers)):
                rows[column].append(value)
    return Dataset.from_dict(rows)


def _read(path: Path):
    """Yield (item_id, lang, question, answers) from one MKQA jsonl file, checking each record."""
    for where, rec in iter_jsonl(path, ("id", "lang", "question", "answers")):
        raw_lang, rid = str(rec["lang"]), str(rec["id"])
        suffix = f"_{raw_lang}"
        if not rid.endswith(suffix) or not isinstance(rec["answers"], list):
            raise MalformedDataError(f"{where}: id {rid!r} should end with '{suffix}' and answers should be a list")
        try:
            lang = canonical(raw_lang)
        except UnknownNameError as exc:
            raise UnknownNameError(f"{where}: {exc}") from None
        yield rid[: -len(suffix)], lang, str(rec["question"]), [str(a) for a in rec["answers"]]


def mkqa_retrieval(langs: list[str] | None = None) -> RetrievalSet:
    """MKQA as a retrieval set: each question's relevant candidates are its translations."""
    table = load_mkqa(langs)
    ids = [f"{lang}_{item}" for lang, item in zip(table["lang"], table["item_id"])]
    by_item: dict[str, list[str]] = {}
    for cid, item in zip(ids, table["item_id"]):
        by_item.setdefault(item, []).append(cid)
    queries = Dataset.from_dict(
        {"id": ids, "item_id": list(table["item_id"]), "lang": list(table["lang"]), "text": list(table["question"])}
    )
    n = len(ids)
    candidates = Dataset.from_dict(
        {
            "id": ids,
            "lang": list(table["lang"]),
            "sentence": list(table["question"]),
            "paragraph": [""] * n,
            "paragraph_id": [""] * n,
            "title": [""] * n,
        }
    )
    relevant = [[c for c in by_item[item] if c != qid] for qid, item in zip(ids, table["item_id"])]
    relevance = Dataset.from_dict({"query_id": ids, "candidate_ids": relevant})
    return RetrievalSet("mkqa", queries, candidates, relevance)
