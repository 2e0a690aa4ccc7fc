"""Reading SQuAD-format files, with the sentence breaks of XQuAD-R / MLQA-R when present.

This is the one place that knows the file format; every loader of XQuAD, XQuAD-R and
MLQA-R goes through `read_squad`. Bad records raise `MalformedDataError` naming the
file, the paragraph and the question, and saying what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hbnb.data import store
from hbnb.errors import MalformedDataError, UnknownNameError
from hbnb.languages import check_subset


@dataclass(frozen=True)
class Question:
    """One question of a paragraph, with its first answer (XQuAD and MLQA have one)."""

    id: str
    text: str
    answer_text: str
    answer_start: int
    sentence: int | None  # index of the answer sentence (LAReQA rule); None without breaks


@dataclass(frozen=True)
class Paragraph:
    """One paragraph, numbered 1, 2, ... in file order (the LAReQA candidate numbering)."""

    number: int
    title: str
    context: str
    sentences: list[str] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)

    def relevant_sentences(self, question: Question) -> list[int]:
        """Every sentence of this paragraph equal to the answer sentence (LAReQA tags them all)."""
        if question.sentence is None:
            return []
        answer = self.sentences[question.sentence]
        return [i for i, s in enumerate(self.sentences) if s == answer]


def answer_sentence(breaks: list[tuple[int, int]], answer_start: int) -> int | None:
    """The LAReQA rule: the first sentence whose span holds the answer start (s <= a < e)."""
    for i, (start, end) in enumerate(breaks):
        if start <= answer_start < end:
            return i
    return None


def read_squad(path: Path, *, with_breaks: bool) -> list[Paragraph]:
    """Parse a SQuAD-format file into numbered paragraphs.

    With `with_breaks`, every paragraph must carry `sentence_breaks` ([start, end]
    character spans) and every answer start must fall inside one of them.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise MalformedDataError(f"{path}: not valid JSON ({exc}); expected a SQuAD-format file") from exc
    articles = _require(doc, "data", list, path, "the top level")
    paragraphs: list[Paragraph] = []
    for a, article in enumerate(articles):
        where = f"article {a}"
        title = _require(article, "title", str, path, where)
        for raw in _require(article, "paragraphs", list, path, f"{where} ({title!r})"):
            number = len(paragraphs) + 1
            paragraphs.append(_paragraph(raw, number, title, path, with_breaks))
    return paragraphs


def _paragraph(raw: Any, number: int, title: str, path: Path, with_breaks: bool) -> Paragraph:
    where = f"paragraph {number} (article {title!r})"
    context = _require(raw, "context", str, path, where)
    breaks: list[tuple[int, int]] = []
    if with_breaks:
        spans = _require(raw, "sentence_breaks", list, path, where)
        breaks = [_span(s, len(context), path, where) for s in spans]
    questions = [_question(q, breaks, path, where, with_breaks) for q in _require(raw, "qas", list, path, where)]
    sentences = [context[s:e] for s, e in breaks]
    return Paragraph(number, title, context, sentences, questions)


def _span(span: Any, length: int, path: Path, where: str) -> tuple[int, int]:
    ok = (
        isinstance(span, list)
        and len(span) == 2
        and all(isinstance(x, int) for x in span)
        and 0 <= span[0] < span[1] <= length
    )
    if not ok:
        raise MalformedDataError(
            f"{path}: {where}: sentence break {span!r} is not a [start, end] pair of "
            f"character offsets with 0 <= start < end <= {length} (the context length)"
        )
    return span[0], span[1]


def _question(raw: Any, breaks: list[tuple[int, int]], path: Path, where: str, with_breaks: bool) -> Question:
    qid = _require(raw, "id", str, path, where)
    here = f"{where}, question {qid}"
    text = _require(raw, "question", str, path, here)
    answers = _require(raw, "answers", list, path, here)
    if not answers:
        raise MalformedDataError(f"{path}: {here}: 'answers' is empty; expected at least one answer")
    start = _require(answers[0], "answer_start", int, path, f"{here}, answer 0")
    answer = _require(answers[0], "text", str, path, f"{here}, answer 0")
    sentence = answer_sentence(breaks, start) if with_breaks else None
    if with_breaks and sentence is None:
        raise MalformedDataError(
            f"{path}: {here}: answer_start {start} lies in no sentence span of the paragraph; "
            f"expected sentence_breaks to cover every answer start"
        )
    return Question(qid, text, answer, start, sentence)


def _require(obj: Any, key: str, kind: type, path: Path, where: str) -> Any:
    """obj[key], checked to be of `kind`; the error says where and what was expected."""
    if not isinstance(obj, dict) or key not in obj:
        raise MalformedDataError(f"{path}: {where}: missing key {key!r} (SQuAD format expected)")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedDataError(f"{path}: {where}: {key!r} is {type(value).__name__}, expected {kind.__name__}")
    return value


# SQuAD-format data sets: name -> (file pattern under the data root, has sentence breaks)
SQUAD_SETS: dict[str, tuple[str, bool]] = {
    "xquad": ("xquad/xquad.{lang}.json", False),
    "xquad-r": ("xquad-r/{lang}.json", True),
    "mlqa-r": ("mlqa-r/{lang}.json", True),
}


def squad_languages(name: str) -> list[str]:
    """The languages a SQuAD-format data set has files for, from the checksum list."""
    pattern, _ = _squad_set(name)
    prefix, suffix = pattern.split("{lang}")
    return sorted(
        rel[len(prefix) : -len(suffix)] for rel in store.manifest() if rel.startswith(prefix) and rel.endswith(suffix)
    )


def squad_files(name: str, langs: list[str] | None = None) -> dict[str, store.DataFile]:
    """The files of a SQuAD-format set for some languages (all by default), in language order."""
    pattern, _ = _squad_set(name)
    available = squad_languages(name)
    chosen = available if langs is None else check_subset(langs, available, f"{name} (languages with files)")
    return {lang: store.lookup(pattern.format(lang=lang)) for lang in chosen}


def read_squad_set(name: str, langs: list[str] | None = None) -> dict[str, list[Paragraph]]:
    """Verified, parsed files of one SQuAD-format set: {lang: paragraphs}."""
    _, with_breaks = _squad_set(name)
    return {
        lang: read_squad(store.path(f.path), with_breaks=with_breaks) for lang, f in squad_files(name, langs).items()
    }


def _squad_set(name: str) -> tuple[str, bool]:
    if name not in SQUAD_SETS:
        raise UnknownNameError(f"unknown SQuAD-format data set {name!r}; known: {', '.join(SQUAD_SETS)}")
    return SQUAD_SETS[name]


SQUAD_COLUMNS = ("item_id", "lang", "question", "answer_text", "answer_start", "context", "title")


def load_squad(name: str = "xquad", langs: list[str] | None = None):
    """A SQuAD-format set as one table of questions (raw XQuAD has 12 languages, Romanian included).

    Columns: item_id, lang, question, answer_text, answer_start, context, title.
    """
    from datasets import Dataset

    from hbnb.data.tables import cached

    files = squad_files(name, langs)

    def build() -> Dataset:
        rows: dict[str, list] = {c: [] for c in SQUAD_COLUMNS}
        for lang, paragraphs in read_squad_set(name, list(files)).items():
            for p in paragraphs:
                for q in p.questions:
                    values = (q.id, lang, q.text, q.answer_text, q.answer_start, p.context, p.title)
                    for column, value in zip(SQUAD_COLUMNS, values):
                        rows[column].append(value)
        return Dataset.from_dict(rows)

    return cached(f"squad-{name}", list(files.values()), {"langs": list(files)}, build)
