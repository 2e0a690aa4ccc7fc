"""Retrieval sets: queries, candidates and relevance, as three `datasets.Dataset`s.

`load_retrieval("xquad-r")` and `load_retrieval("mlqa-r")` follow the LAReQA
construction of DATA.md exactly; `RetrievalSet.from_tables` validates any other
queries/candidates/relevance triple (a user's own).

- queries:    id (unique, `{lang}_{question id}`), item_id (the question id, shared by
              its translations), lang, text
- candidates: id (`{lang}_{paragraph}_{sentence}`), lang, sentence, paragraph,
              paragraph_id (`{lang}_{paragraph}`), title
- relevance:  query_id, candidate_ids (every language's tagged answer sentence)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from datasets import Dataset, DatasetDict

from hbnb.data.squad import Paragraph, read_squad_set, squad_files
from hbnb.data.tables import cached, column, require_columns
from hbnb.errors import MalformedDataError, UnknownNameError
from hbnb.languages import canonical

RETRIEVAL_SETS = ("xquad-r", "mlqa-r")
QUERY_COLUMNS = ("id", "item_id", "lang", "text")
CANDIDATE_COLUMNS = ("id", "lang", "sentence", "paragraph", "paragraph_id", "title")
RELEVANCE_COLUMNS = ("query_id", "candidate_ids")


def answer_text(sentence: str, paragraph: str, with_paragraph: bool) -> str:
    """How an answer is shown to an encoder: the sentence, or (LAReQA) the sentence with its paragraph.

    The sentence comes first, so truncation to the model's length cuts the paragraph
    and never the answer. Training positives and scored candidates both use this.
    """
    if with_paragraph and paragraph:
        return f"{sentence}\n{paragraph}"
    return sentence


@dataclass(frozen=True)
class RetrievalSet:
    """A retrieval benchmark over several languages."""

    name: str
    queries: Dataset
    candidates: Dataset
    relevance: Dataset
    level: str = "sentence"  # "paragraph": candidates are whole paragraphs (MIRACL-style pools)

    @property
    def languages(self) -> list[str]:
        """Languages in first-seen order of the candidates, then of the queries."""
        seen = dict.fromkeys(self.candidates["lang"])
        seen.update(dict.fromkeys(self.queries["lang"]))
        return list(seen)

    @classmethod
    def from_tables(
        cls, name: str, queries: Dataset, candidates: Dataset, relevance: Dataset, level: str = "sentence"
    ) -> RetrievalSet:
        """Validate a queries/candidates/relevance triple; errors name the table, row and id."""
        for table, columns, label in (
            (queries, QUERY_COLUMNS, "queries"),
            (candidates, CANDIDATE_COLUMNS, "candidates"),
            (relevance, RELEVANCE_COLUMNS, "relevance"),
        ):
            require_columns(table.column_names, columns, f"{name}: the {label} table")
        query_ids = _unique_ids(queries["id"], name, "queries")
        candidate_ids = _unique_ids(candidates["id"], name, "candidates")
        for label, table in (("queries", queries), ("candidates", candidates)):
            for row, lang in enumerate(table["lang"]):
                if canonical(lang) != lang:
                    raise UnknownNameError(
                        f"{name}: {label} row {row} has language {lang!r}; use the canonical code {canonical(lang)!r}"
                    )
        _check_texts(column(queries, "text"), column(queries, "lang"), name, "queries", "text")
        cand_texts = [s or p for s, p in zip(column(candidates, "sentence"), column(candidates, "paragraph"))]
        _check_texts(cand_texts, column(candidates, "lang"), name, "candidates", "sentence/paragraph")
        _check_relevance(relevance, query_ids, candidate_ids, name)
        return cls(name, queries, candidates, relevance, level)

    def candidate_texts(self, mode: str = "paragraph", role: str = "passage") -> list[str]:
        """What the encoder sees of each candidate: LAReQA's sentence with its paragraph, or the sentence.

        Paragraph-level sets always show the paragraph; candidates encoded as queries (`role`
        "query": question->question sets such as MKQA) show their text (the `sentence` column) as is.
        """
        if role == "query":
            return column(self.candidates, "sentence")
        if mode not in ("paragraph", "sentence"):
            raise UnknownNameError(f"unknown candidate encoding {mode!r}; use 'paragraph' (LAReQA) or 'sentence'")
        paragraphs = column(self.candidates, "paragraph")
        if self.level == "paragraph":
            return paragraphs
        sentences = column(self.candidates, "sentence")
        return [answer_text(s, p, mode == "paragraph") for s, p in zip(sentences, paragraphs)]

    def subset_items(self, n: int, seed: int = 0) -> RetrievalSet:
        """The set restricted to n items (drawn with the seed's "evaluation-items" stream): their
        queries in every language, and as candidates the paragraphs that hold their answers
        (every sentence of those paragraphs; for sets without paragraphs, the relevant
        candidates). A smaller pool is easier: figures are a quick look, not comparable with
        the full set's.
        """
        from hbnb import seeds

        items = sorted(set(self.queries["item_id"]))
        if n >= len(items):
            return self
        rng = seeds.rng(seed, "evaluation-items")
        keep = {items[i] for i in rng.choice(len(items), size=n, replace=False)}
        queries = self.queries.select([r for r, i in enumerate(column(self.queries, "item_id")) if i in keep])
        query_ids = set(column(queries, "id"))
        relevance = self.relevance.select(
            [r for r, q in enumerate(column(self.relevance, "query_id")) if q in query_ids]
        )
        relevant = {c for ids in relevance["candidate_ids"] for c in ids}
        cand_ids, paragraph_ids = column(self.candidates, "id"), column(self.candidates, "paragraph_id")
        paragraphs = {p for c, p in zip(cand_ids, paragraph_ids) if c in relevant and p}
        rows = [i for i, (c, p) in enumerate(zip(cand_ids, paragraph_ids)) if c in relevant or (p and p in paragraphs)]
        return RetrievalSet(self.name, queries, self.candidates.select(rows), relevance, self.level)

    def stats(self) -> dict[str, Any]:
        """The counts DATA.md states: per-language queries and candidates, relevant-set sizes."""
        sizes = Counter(len(ids) for ids in self.relevance["candidate_ids"])
        langs = self.languages
        return {
            "name": self.name,
            "languages": langs,
            "queries": {"total": self.queries.num_rows, "per_language": _count(self.queries["lang"], langs)},
            "candidates": {
                "total": self.candidates.num_rows,
                "per_language": _count(self.candidates["lang"], langs),
            },
            "relevant_set_sizes": {str(k): sizes[k] for k in sorted(sizes)},
            "language_pairs": len(set(self.queries["lang"])) * len(set(self.candidates["lang"])),
        }


LEVELS = ("sentence", "paragraph")


def load_retrieval(name: str, langs: list[str] | None = None, level: str = "sentence") -> RetrievalSet:
    """XQuAD-R or MLQA-R as built by LAReQA, optionally restricted to some languages.

    Restricting languages drops the other languages' queries and candidates, and
    their candidates from every relevant set. With `level="paragraph"` the candidates
    are the paragraphs (id `{lang}_{paragraph}`, `sentence` empty) and a question's
    relevant set is its paragraph in every language: the pools for nDCG and recall@100.
    """
    if name not in RETRIEVAL_SETS:
        raise UnknownNameError(f"unknown retrieval set {name!r}; built in: {', '.join(RETRIEVAL_SETS)}")
    if level not in LEVELS:
        raise UnknownNameError(f"unknown candidate level {level!r}; use one of {', '.join(LEVELS)}")
    files = squad_files(name, langs)
    tables = cached(
        f"retrieval-{name}-{level}",
        list(files.values()),
        {"langs": list(files), "level": level},
        lambda: _build(name, list(files), level),
    )
    return RetrievalSet(name, tables["queries"], tables["candidates"], tables["relevance"], level)


def _build(name: str, langs: list[str], level: str) -> DatasetDict:
    parsed = read_squad_set(name, langs)
    queries: dict[str, list[str]] = {c: [] for c in QUERY_COLUMNS}
    candidates: dict[str, list[str]] = {c: [] for c in CANDIDATE_COLUMNS}
    relevant: dict[str, list[str]] = {}  # question id -> candidate ids, all languages
    for lang, paragraphs in parsed.items():
        for p in paragraphs:
            if level == "sentence":
                _add_paragraph(lang, p, candidates)
            else:
                _append(candidates, (f"{lang}_{p.number}", lang, "", p.context, f"{lang}_{p.number}", p.title))
            for q in p.questions:
                _append(queries, (f"{lang}_{q.id}", q.id, lang, q.text))
                relevant.setdefault(q.id, []).extend(
                    [f"{lang}_{p.number}_{i}" for i in p.relevant_sentences(q)]
                    if level == "sentence"
                    else [f"{lang}_{p.number}"]
                )
    relevance = {
        "query_id": list(queries["id"]),
        "candidate_ids": [relevant[item] for item in queries["item_id"]],
    }
    return DatasetDict(
        queries=Dataset.from_dict(queries),
        candidates=Dataset.from_dict(candidates),
        relevance=Dataset.from_dict(relevance),
    )


def _add_paragraph(lang: str, p: Paragraph, candidates: dict[str, list[str]]) -> None:
    """Every sentence is a candidate; equal sentences in different paragraphs stay separate."""
    for i, sentence in enumerate(p.sentences):
        _append(candidates, (f"{lang}_{p.number}_{i}", lang, sentence, p.context, f"{lang}_{p.number}", p.title))


def _append(columns: dict[str, list[str]], values: tuple[str, ...]) -> None:
    for name, value in zip(columns, values):
        columns[name].append(value)


def _check_texts(texts: list[str], langs: list[str], name: str, label: str, what: str) -> None:
    """No empty text: an empty query or candidate would be encoded as noise and scored."""
    empty = [i for i, t in enumerate(texts) if not (t or "").strip()]
    if empty:
        counts = Counter(langs[i] for i in empty)
        raise MalformedDataError(
            f"{name}: {len(empty)} {label} have an empty {what} (e.g. row {empty[0]}; by language: "
            f"{dict(counts)}); remove them or fill them in"
        )


def _unique_ids(ids: list[str], name: str, label: str) -> set[str]:
    seen: set[str] = set()
    for row, value in enumerate(ids):
        if value in seen:
            raise MalformedDataError(f"{name}: {label} id {value!r} (row {row}) is not unique; ids must be")
        seen.add(value)
    return seen


def _check_relevance(relevance: Dataset, query_ids: set[str], candidate_ids: set[str], name: str) -> None:
    covered: set[str] = set()
    for row, (qid, cids) in enumerate(zip(relevance["query_id"], relevance["candidate_ids"])):
        if qid not in query_ids:
            raise MalformedDataError(f"{name}: relevance row {row} names query {qid!r}, which is not in the queries")
        if not cids:
            raise MalformedDataError(f"{name}: relevance row {row} gives query {qid!r} no relevant candidate")
        for cid in cids:
            if cid not in candidate_ids:
                raise MalformedDataError(
                    f"{name}: relevance row {row} (query {qid!r}) names candidate {cid!r}, "
                    f"which is not in the candidates"
                )
        covered.add(qid)
    missing = query_ids - covered
    if missing:
        raise MalformedDataError(
            f"{name}: {len(missing)} {'query has' if len(missing) == 1 else 'queries have'} no relevance "
            f"row (e.g. {sorted(missing)[0]!r}); "
            f"every query needs at least one relevant candidate"
        )


def _count(values: list[str], order: list[str]) -> dict[str, int]:
    counts = Counter(values)
    return {lang: counts[lang] for lang in order if counts[lang]}
