"""Retrieval sets in the BEIR file layout, the format MIRACL and many others ship in.

A folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`)
and `qrels/<split>.tsv` (`query-id`, `corpus-id`, `score`, with a header). Give one
folder per language (MIRACL: one per language) to get per-language paragraph pools
for nDCG@10 and recall@100; large corpora are then searched with faiss
(`hbnb.evaluation.evaluate(..., depth=...)`).
"""

from __future__ import annotations

import csv
from pathlib import Path

from datasets import Dataset

from hbnb.data.retrieval import RetrievalSet
from hbnb.errors import DataFileError, MalformedDataError
from hbnb.files import iter_jsonl
from hbnb.languages import canonical


def load_beir(folders: dict[str, Path | str], split: str = "test", name: str = "beir") -> RetrievalSet:
    """One paragraph-level RetrievalSet from BEIR folders, `{language: folder}`.

    Ids are prefixed with the language so folders never collide; queries without a
    positive judgement in the qrels are left out (as trec_eval would skip them).
    """
    queries = {c: [] for c in ("id", "item_id", "lang", "text")}
    candidates = {c: [] for c in ("id", "lang", "sentence", "paragraph", "paragraph_id", "title")}
    relevance: dict[str, list[str]] = {}
    for lang, folder in folders.items():
        lang, folder = canonical(lang), Path(folder)
        qrels = _qrels(folder / "qrels" / f"{split}.tsv")
        for doc in _jsonl(folder / "corpus.jsonl", ("_id", "text")):
            cid = f"{lang}_{doc['_id']}"
            for column, value in zip(candidates, (cid, lang, "", doc["text"], cid, doc.get("title", ""))):
                candidates[column].append(value)
        for query in _jsonl(folder / "queries.jsonl", ("_id", "text")):
            judged = qrels.get(str(query["_id"]))
            if not judged:
                continue
            qid = f"{lang}_{query['_id']}"
            for column, value in zip(queries, (qid, str(query["_id"]), lang, query["text"])):
                queries[column].append(value)
            relevance[qid] = [f"{lang}_{doc}" for doc in judged]
    relevance_table = Dataset.from_dict({"query_id": list(relevance), "candidate_ids": list(relevance.values())})
    return RetrievalSet.from_tables(
        name, Dataset.from_dict(queries), Dataset.from_dict(candidates), relevance_table, level="paragraph"
    )


def _jsonl(path: Path, required: tuple[str, ...]):
    if not path.is_file():
        raise DataFileError(
            f"{path} is missing; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv"
        )
    for _, record in iter_jsonl(path, required):
        yield record


def _qrels(path: Path) -> dict[str, list[str]]:
    """query id -> corpus ids judged relevant (score > 0)."""
    if not path.is_file():
        raise DataFileError(f"{path} is missing; give the split whose qrels exist (e.g. dev or test)")
    out: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for row_no, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
            if row_no == 1 and row and row[0] == "query-id":
                continue
            if len(row) != 3:
                raise MalformedDataError(f"{path}, line {row_no}: expected query-id, corpus-id, score (tab-separated)")
            if float(row[2]) > 0:
                out.setdefault(row[0], []).append(row[1])
    return out
