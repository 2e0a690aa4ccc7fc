"""Parallel QA tables for training: one row per (item id, language).

Columns: `item_id` (shared by the translations of one question), `lang`,
`question`, `sentence` (the positive: for XQuAD and MLQA the LAReQA answer
sentence), `paragraph` (the paragraph the sentence comes from, "" when the data has
none), `title`, and `negative` (a hard negative: for XQuAD and MLQA another sentence
of the same paragraph, the next one or else the previous; "" when there is none).
The batching samplers index into this table.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import datasets
from datasets import Dataset

from hbnb.data.squad import Paragraph, Question, read_squad_set, squad_files, squad_languages
from hbnb.data.tables import cached, require_columns
from hbnb.errors import DataFileError, MalformedDataError, UnknownNameError
from hbnb.files import iter_jsonl
from hbnb.languages import canonical

COLUMNS = ("item_id", "lang", "question", "sentence", "paragraph", "title", "negative")
USER_COLUMNS = ("id", "lang", "question", "passage")

# parallel QA name -> the SQuAD-format files with sentence breaks it is built from
QA_SETS = {"xquad": "xquad-r", "mlqa": "mlqa-r"}


def qa_languages(name: str) -> list[str]:
    """Languages of a built-in parallel QA set."""
    return squad_languages(_files_of(name))


def load_parallel_qa(name: str = "xquad", langs: list[str] | None = None) -> Dataset:
    """The parallel QA table of XQuAD (11 languages) or MLQA dev (7), from the sentence-break files.

    XQuAD's Romanian has no sentence-break file upstream, so it is not a training
    language here; `load_squad("xquad")` gives the raw 12-language XQuAD.
    """
    files = squad_files(_files_of(name), langs)
    return cached(
        f"parallel-qa-{name}",
        list(files.values()),
        {"langs": list(files)},
        lambda: _build(_files_of(name), list(files)),
    )


def _files_of(name: str) -> str:
    if name not in QA_SETS:
        raise UnknownNameError(
            f"unknown parallel QA set {name!r}; built in: {', '.join(QA_SETS)}; "
            f"for your own data use hbnb.data.from_dataset(...)"
        )
    return QA_SETS[name]


def _build(files_name: str, langs: list[str]) -> Dataset:
    parsed = read_squad_set(files_name, langs)
    rows: dict[str, list[str]] = {c: [] for c in COLUMNS}
    for lang, paragraphs in parsed.items():
        for p in paragraphs:
            for q in p.questions:
                values = (q.id, lang, q.text, p.sentences[q.sentence], p.context, p.title, _hard_negative(p, q))
                for column, value in zip(COLUMNS, values):
                    rows[column].append(value)
    table = Dataset.from_dict(rows)
    _check_unique(table, f"{files_name} files")
    return table


def _hard_negative(p: Paragraph, q: Question) -> str:
    """Another sentence of the answer's paragraph: the next one, else the previous, never an equal one."""
    answer = p.sentences[q.sentence]
    for i in (q.sentence + 1, q.sentence - 1):
        if 0 <= i < len(p.sentences) and p.sentences[i] != answer:
            return p.sentences[i]
    return ""


def from_dataset(
    source: Dataset | str | Path,
    *,
    split: str = "train",
    columns: dict[str, str] | None = None,
) -> Dataset:
    """Adapt a user's parallel QA data to hbnb's table.

    `source` is a `datasets.Dataset`, a folder written by `Dataset.save_to_disk`, a
    data file (.json/.jsonl/.csv/.parquet), or a hub data set name (when a hub is
    reachable). It needs columns id, lang, question, passage (rename others with
    `columns={"their_name": "id", ...}`), and may have `negative` (a hard negative
    passage); rows sharing an id are translations of one item. The passage becomes
    the positive (`sentence`); `paragraph` is empty.
    """
    table = _open_user(source, split)
    if columns:
        table = table.rename_columns(columns)
    require_columns(
        table.column_names, USER_COLUMNS, _describe(source), " (map yours with columns={'their_name': 'id', ...})"
    )
    ids = [str(x) for x in table["id"]]
    langs = [_user_lang(code, i, source) for i, code in enumerate(table["lang"])]
    questions = _texts(table["question"], "question", source)
    passages = _texts(table["passage"], "passage", source)
    negatives = [str(x or "") for x in table["negative"]] if "negative" in table.column_names else [""] * len(ids)
    out = Dataset.from_dict(
        {
            "item_id": ids,
            "lang": langs,
            "question": questions,
            "sentence": passages,
            "paragraph": [""] * len(ids),
            "title": [""] * len(ids),
            "negative": negatives,
        }
    )
    _check_unique(out, _describe(source))
    return out


def _open_user(source: Dataset | str | Path, split: str) -> Dataset:
    if isinstance(source, Dataset):
        return source
    path = Path(source)
    if path.is_dir():
        loaded = datasets.load_from_disk(str(path))
        return loaded[split] if isinstance(loaded, datasets.DatasetDict) else loaded
    if path.is_file():
        kind = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}.get(path.suffix)
        if kind is None:
            raise MalformedDataError(
                f"{path}: unsupported file type {path.suffix!r}; use .json, .jsonl, .csv or .parquet, "
                f"or a folder written by Dataset.save_to_disk"
            )
        if kind in ("json", "csv"):
            _check_text_file(path, kind)
        try:
            return datasets.load_dataset(kind, data_files=str(path), split="train")
        except Exception as exc:  # noqa: BLE001 - arrow and datasets raise many kinds for a damaged file
            raise MalformedDataError(
                f"{path}: cannot be read as {path.suffix[1:]} ({type(exc).__name__}: {_first_line(exc)}); "
                f"expected rows with {', '.join(USER_COLUMNS)}"
            ) from None
    try:
        return datasets.load_dataset(str(source), split=split)
    except Exception as exc:  # noqa: BLE001 - the hub raises many kinds
        raise MalformedDataError(
            f"cannot open {source!r}: it is no local folder or file, and loading it from a "
            f"data hub failed ({type(exc).__name__}: {exc}). Give a Dataset, a save_to_disk "
            f"folder, a .json/.jsonl/.csv/.parquet file, or a hub name when a hub is reachable"
        ) from exc


def _check_text_file(path: Path, kind: str) -> None:
    """Refuse an empty, truncated or ragged JSON(L)/CSV file naming its line, before `datasets` reads it
    (whose errors are a generation traceback without the line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise MalformedDataError(f"{path}, line {line}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    if not text.strip():
        raise MalformedDataError(f"{path} is empty; expected rows with {', '.join(USER_COLUMNS)}")
    if kind == "json":
        if path.suffix == ".json" and text.lstrip().startswith("["):
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                raise MalformedDataError(
                    f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); is the file truncated?"
                ) from None
            return
        for _ in iter_jsonl(path):  # names the file and line of a truncated or broken record
            pass
        return
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(rows)
        for row in rows:
            if row and len(row) != len(header):
                raise MalformedDataError(
                    f"{path}, line {rows.line_num}: {len(row)} fields where the header has {len(header)} "
                    f"({', '.join(header)}); is the file truncated, or a field's quotes unbalanced?"
                )
    except csv.Error as exc:
        raise MalformedDataError(f"{path}, line {rows.line_num}: not valid CSV ({exc})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no detail"


def _describe(source: object) -> str:
    return "the given Dataset" if isinstance(source, Dataset) else str(source)


def _user_lang(code: object, row: int, source: object) -> str:
    try:
        return canonical(str(code))
    except UnknownNameError as exc:
        raise UnknownNameError(f"{_describe(source)}, row {row}: {exc}") from None


def _texts(values: list[object], column: str, source: object) -> list[str]:
    for row, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise MalformedDataError(
                f"{_describe(source)}, row {row}: column {column!r} is {value!r}; expected non-empty text"
            )
    return list(values)  # type: ignore[arg-type]


def _check_unique(table: Dataset, what: str) -> None:
    """One row per (item id, language): a duplicate would make a translation its own negative."""
    counts = Counter(zip(table["item_id"], table["lang"]))
    dupes = [key for key, n in counts.items() if n > 1]
    if dupes:
        item, lang = dupes[0]
        raise MalformedDataError(
            f"{what}: item {item!r} appears {counts[dupes[0]]} times in language {lang!r} "
            f"({len(dupes)} such duplicates); expected one row per (id, language)"
        )


def from_aligned(
    sources: dict[str, str], *, split: str = "train", columns: dict[str, str] | None = None, limit: int | None = None
) -> Dataset:
    """Parallel QA from one data set per language whose rows are translations (row i = item i).

    Each source is a local folder/file or a hub name, optionally "name:config". `columns`
    maps their column names onto question, passage (and optionally negative).
    """
    columns = columns or {"query": "question", "positive": "passage"}
    parts = []
    for lang, source in sources.items():
        name, _, config = source.partition(":") if not Path(source).exists() else (source, "", "")
        table = _open_user(name, split) if not config else _open_hub(name, config, split)
        if limit is not None:
            table = table.select(range(min(limit, table.num_rows)))
        require_columns(table.column_names, list(columns), f"{source} ({lang})")
        frame = table.select_columns(list(columns)).rename_columns(columns)
        rows = {"id": [str(i) for i in range(frame.num_rows)], "lang": [lang] * frame.num_rows, **frame.to_dict()}
        parts.append(Dataset.from_dict(rows))
    return from_dataset(datasets.concatenate_datasets(parts))


def _open_hub(name: str, config: str, split: str) -> Dataset:
    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # noqa: BLE001 - the hub raises many kinds
        raise DataFileError(
            f"cannot load {name!r} (config {config!r}, split {split!r}) from a data hub "
            f"({type(exc).__name__}: {exc}); this needs a reachable hub, or give a local copy's path"
        ) from exc
