"""MIRACL: monolingual passage retrieval in 18 languages, read from MIRACL's own release files.

The paper's appendix reports MIRACL dev (nDCG@10 and recall@100 per language, every
query searching its own language's Wikipedia passages); `load_miracl` returns it as a
paragraph-level `RetrievalSet` with one pool per language, the registry's `miracl` task.

Where the files come from, in this order:
1. a local copy: the `root` argument, else `$HBNB_MIRACL`, else `<data root>/miracl`
   (`hbnb.data.store.data_root()`), holding MIRACL's release layout (the hub
   datasets miracl/miracl and miracl/miracl-corpus), directly or in subfolders
   `miracl/` and `miracl-corpus/` (a clone of each):
     miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-dev.tsv   qid TAB query
     miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-dev.tsv     qid TAB Q0 TAB docid TAB relevance
     miracl-corpus-v1.0-{lang}/docs-{n}.jsonl(.gz)                  {"docid", "title", "text"} per line
   Built once into Arrow tables under the cache, keyed by each file's path, size and mtime.
2. the hub, when no local copy exists and the hub is not switched off
   (`HF_HUB_OFFLINE`/`HF_DATASETS_OFFLINE`): the same files, read through `datasets`'
   text and json builders on `hf://` paths (the repos' loading scripts do not run
   in datasets >= 4). miracl/miracl is gated: accept its terms on the dataset page
   and log in (`hf auth login` or `HF_TOKEN`).
3. otherwise one `DataFileError` naming the folder to fill and the layout.

Queries without a positive judgement (relevance > 0) are left out, as trec_eval skips
them. Ids carry the language (`sw_12`, `sw_3245#7`), as in `hbnb.data.beir`; a
query's item is its own id (MIRACL's queries are not translations of each other). The
encoder sees a passage as "title text", as MTEB's MIRACLRetrieval does. Full corpora
are large (English: 32.9 M passages); `hbnb.evaluation.evaluate` searches a pool over
`FULL_RANKING_LIMIT` candidates with faiss top-k.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetDict, concatenate_datasets

from hbnb.data.retrieval import QUERY_COLUMNS, RetrievalSet
from hbnb.data.store import data_root
from hbnb.data.tables import FORMAT_VERSION, cached_table, column
from hbnb.errors import DataFileError, MalformedDataError
from hbnb.files import iter_jsonl
from hbnb.languages import check_subset

MIRACL_LANGUAGES = (
    "ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "yo", "zh",
)  # fmt: skip
ENV = "HBNB_MIRACL"
HUB_TOPICS = "miracl/miracl"
HUB_CORPUS = "miracl/miracl-corpus"
_BATCH = 100_000  # corpus rows per Arrow batch while building


def topics_file(lang: str, split: str = "dev") -> str:
    return f"miracl-v1.0-{lang}/topics/topics.miracl-v1.0-{lang}-{split}.tsv"


def qrels_file(lang: str, split: str = "dev") -> str:
    return f"miracl-v1.0-{lang}/qrels/qrels.miracl-v1.0-{lang}-{split}.tsv"


def corpus_folder(lang: str) -> str:
    return f"miracl-corpus-v1.0-{lang}"


def miracl_root() -> Path:
    """Where a local copy is looked for: `$HBNB_MIRACL`, else `<data root>/miracl`."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else data_root() / "miracl"


@dataclass(frozen=True)
class LocalFiles:
    """One language's files in a local copy."""

    topics: Path
    qrels: Path
    docs: tuple[Path, ...]


def load_miracl(langs: list[str] | None = None, *, root: Path | str | None = None, split: str = "dev") -> RetrievalSet:
    """MIRACL `split` (dev: its 18 languages) as per-language passage pools (module docstring)."""
    tables, _ = _tables(langs, root, split)
    return RetrievalSet("miracl", tables["queries"], tables["candidates"], tables["relevance"], "paragraph")


def miracl_stats(langs: list[str] | None = None) -> dict[str, Any]:
    """What `hbnb data stats miracl` prints: where the data came from, the counts, the topics left out."""
    tables, source = _tables(langs, None, "dev")
    rs = RetrievalSet("miracl", tables["queries"], tables["candidates"], tables["relevance"], "paragraph")
    topics = tables["topics"].to_pandas().set_index("lang")
    return {
        "kind": "retrieval, paragraph pools",
        "source": source,
        **rs.stats(),
        "topics_per_language": topics["topics"].to_dict(),
        "topics_without_positive_left_out": (topics["topics"] - topics["kept"]).to_dict(),
    }


def _tables(langs: list[str] | None, root: Path | str | None, split: str) -> tuple[DatasetDict, str]:
    """The built tables and where they were read from (a local folder or the hub).

    No languages given: those of the local copy, or all 18 from the hub.
    """
    folder = Path(root).expanduser() if root is not None else miracl_root()
    present = local_languages(folder)
    langs = check_subset(langs or present or list(MIRACL_LANGUAGES), MIRACL_LANGUAGES, "miracl")
    if not present:
        return _build(_hub_sources(folder, langs, split)), f"hub: {HUB_TOPICS}, {HUB_CORPUS}"
    files = local_files(folder, langs, split)
    return cached_table(f"miracl-{_local_key(files, split)}", lambda: _build(_local_sources(files))), str(folder)


def _bases(folder: Path) -> list[Path]:
    """Where the release folders may sit: the folder itself, or clones of the two hub repos in it."""
    return [b for b in (folder, folder / "miracl", folder / "miracl-corpus") if b.is_dir()]


def local_languages(folder: Path) -> list[str]:
    """The MIRACL languages a local copy holds (topics/qrels or a corpus), in MIRACL's order; [] for none."""
    names = {p.name for b in _bases(folder) for p in b.iterdir()}
    return [lang for lang in MIRACL_LANGUAGES if f"miracl-v1.0-{lang}" in names or corpus_folder(lang) in names]


def local_files(folder: Path, langs: list[str], split: str = "dev") -> dict[str, LocalFiles]:
    """Each language's files in the local copy under `folder`; a missing file is refused, naming every one."""
    bases = _bases(folder)
    found: dict[str, LocalFiles] = {}
    missing: list[str] = []
    for lang in langs:
        topics = _first(bases, topics_file(lang, split))
        qrels = _first(bases, qrels_file(lang, split))
        corpus = _first(bases, corpus_folder(lang))
        docs = _doc_files(corpus) if corpus else ()
        missing += [
            str(folder / rel)
            for rel, have in ((topics_file(lang, split), topics), (qrels_file(lang, split), qrels))
            if not have
        ]
        if not docs:
            missing.append(f"{folder / corpus_folder(lang)}/docs-*.jsonl.gz")
        if topics and qrels and docs:
            found[lang] = LocalFiles(topics, qrels, docs)
    if missing:
        raise DataFileError(
            f"the MIRACL copy in {folder} lacks {', '.join(missing)}; add those files (MIRACL's release layout: "
            f"{_LAYOUT}) or ask for the languages it holds"
        )
    return found


_LAYOUT = (
    "miracl-v1.0-LANG/topics/topics.miracl-v1.0-LANG-dev.tsv (qid TAB query), "
    "miracl-v1.0-LANG/qrels/qrels.miracl-v1.0-LANG-dev.tsv (qid TAB Q0 TAB docid TAB relevance), "
    "miracl-corpus-v1.0-LANG/docs-N.jsonl.gz (docid, title, text per line)"
)


def _first(bases: list[Path], rel: str) -> Path | None:
    return next((b / rel for b in bases if (b / rel).exists()), None)


def _doc_files(corpus: Path) -> tuple[Path, ...]:
    """docs-0, docs-1, ..., docs-10 in numeric order (.jsonl or .jsonl.gz)."""
    files = [p for p in corpus.iterdir() if re.fullmatch(r"docs-\d+\.jsonl(\.gz)?", p.name)]
    return tuple(sorted(files, key=lambda p: int(re.search(r"\d+", p.name).group())))


def _local_key(files: dict[str, LocalFiles], split: str) -> str:
    """A cache key from every file's absolute path, size and mtime (a user's copy has no checksum list)."""
    stamp = [
        (lang, str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns)
        for lang, f in files.items()
        for p in (f.topics, f.qrels, *f.docs)
    ]
    blob = json.dumps({"format": FORMAT_VERSION, "split": split, "files": stamp}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Source:
    """One language's MIRACL data, wherever it is read from."""

    lang: str
    where: str  # the topics file, for messages
    qrels_where: str
    topics: Iterable[str]  # lines
    qrels: Iterable[str]  # lines
    corpus: Callable[[], Dataset]  # builds the language's candidates


def _local_sources(files: dict[str, LocalFiles]) -> list[_Source]:
    return [
        _Source(
            lang,
            str(f.topics),
            str(f.qrels),
            _lines(f.topics),
            _lines(f.qrels),
            lambda lang=lang, f=f: _corpus_table(lang, (r for p in f.docs for r in iter_jsonl(p, ("docid", "text")))),
        )
        for lang, f in files.items()
    ]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _hub_sources(folder: Path, langs: list[str], split: str) -> list[_Source]:
    """The same files from the hub, through `datasets` (module docstring); errors say what to do instead."""
    offline = [v for v in _OFFLINE if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")]
    if offline:
        raise DataFileError(_where_to_put(folder, f"no hub: {offline[0]} is set"))
    return [
        _Source(
            lang,
            f"hf://datasets/{HUB_TOPICS}/{topics_file(lang, split)}",
            f"hf://datasets/{HUB_TOPICS}/{qrels_file(lang, split)}",
            _hub_lines(folder, f"hf://datasets/{HUB_TOPICS}/{topics_file(lang, split)}"),
            _hub_lines(folder, f"hf://datasets/{HUB_TOPICS}/{qrels_file(lang, split)}"),
            lambda lang=lang: _hub_corpus(folder, lang),
        )
        for lang in langs
    ]


_OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _where_to_put(folder: Path, reason: str) -> str:
    return (
        f"MIRACL is not available ({reason}) and there is no local copy in {folder}; put MIRACL's release "
        f"files there (clones of the hub datasets {HUB_TOPICS} and {HUB_CORPUS}: {_LAYOUT}) "
        f"or set {ENV} to the folder that holds them"
    )


def _hub_dataset(folder: Path, builder: str, files: str) -> Dataset:
    from datasets import load_dataset

    try:
        return load_dataset(builder, data_files=files, split="train")
    except Exception as exc:  # noqa: BLE001 - no hub, no access, no file: one message that says what to do
        gated = any(w in str(exc).lower() for w in ("gated", "401", "403", "authenticat"))
        hint = f"; {HUB_TOPICS} is gated: accept its terms on its dataset page and log in (HF_TOKEN)" if gated else ""
        reason = f"reading {files} from the hub failed: {type(exc).__name__}: {exc}{hint}"
        raise DataFileError(_where_to_put(folder, reason)) from exc


def _hub_lines(folder: Path, url: str) -> list[str]:
    return column(_hub_dataset(folder, "text", url), "text")


def _hub_corpus(folder: Path, lang: str) -> Dataset:
    docs = _hub_dataset(folder, "json", f"hf://datasets/{HUB_CORPUS}/{corpus_folder(lang)}/docs-*.jsonl.gz")

    def convert(batch: dict[str, list]) -> dict[str, list]:
        return _candidate_columns(
            lang, batch["docid"], batch.get("title") or [""] * len(batch["docid"]), batch["text"]
        )

    return docs.map(convert, batched=True, batch_size=_BATCH, remove_columns=docs.column_names)


def _candidate_columns(lang: str, docids: list, titles: list, texts: list) -> dict[str, list]:
    ids = [f"{lang}_{d}" for d in docids]
    passages = [f"{t or ''} {x or ''}".strip() for t, x in zip(titles, texts)]
    return {
        "id": ids,
        "lang": [lang] * len(ids),
        "sentence": [""] * len(ids),
        "paragraph": passages,
        "paragraph_id": ids,
        "title": [t or "" for t in titles],
    }


def _corpus_table(lang: str, records: Iterator[tuple[str, dict]]) -> Dataset:
    """A language's passages as candidates, built in Arrow batches (corpora run to millions of rows)."""
    batches, docids, titles, texts = [], [], [], []
    for _, doc in records:
        docids.append(str(doc["docid"]))
        titles.append(doc.get("title") or "")
        texts.append(doc["text"] or "")
        if len(docids) == _BATCH:
            batches.append(pa.Table.from_pydict(_candidate_columns(lang, docids, titles, texts)))
            docids, titles, texts = [], [], []
    batches.append(pa.Table.from_pydict(_candidate_columns(lang, docids, titles, texts)))
    return Dataset(pa.concat_tables(batches))


def _build(sources: list[_Source]) -> DatasetDict:
    """Queries with at least one positive judgement, every language's passages, the positives, and
    per language how many topics there were and how many were kept."""
    queries: dict[str, list[str]] = {c: [] for c in QUERY_COLUMNS}
    relevant: list[list[str]] = []
    candidates, topics = [], {"lang": [], "topics": [], "kept": []}
    for source in sources:
        lang = source.lang
        positives = _positives(source.qrels, source.qrels_where)
        corpus = source.corpus()
        known = set(column(corpus, "id"))
        n_topics = n_kept = 0
        for line_no, line in enumerate(source.topics, start=1):
            if not line.strip():
                continue
            qid, sep, text = line.partition("\t")
            if not sep or not text.strip():
                raise MalformedDataError(f"{source.where}, line {line_no}: expected query id TAB query text")
            n_topics += 1
            if not positives.get(qid):
                continue  # no positive judgement: trec_eval would skip the query
            docs = [f"{lang}_{d}" for d in positives[qid]]
            absent = [d for d in docs if d not in known]
            if absent:
                raise MalformedDataError(
                    f"{source.qrels_where}: query {qid} judges passage {absent[0].split('_', 1)[1]!r} relevant, "
                    f"which is not in the {lang} corpus ({corpus_folder(lang)}); the copy is incomplete"
                )
            for name, value in zip(QUERY_COLUMNS, (f"{lang}_{qid}", f"{lang}_{qid}", lang, text.strip())):
                queries[name].append(value)
            relevant.append(docs)
            n_kept += 1
        candidates.append(corpus)
        for name, value in zip(topics, (lang, n_topics, n_kept)):
            topics[name].append(value)
    relevance = Dataset.from_dict({"query_id": list(queries["id"]), "candidate_ids": relevant})
    rs = RetrievalSet.from_tables(
        "miracl", Dataset.from_dict(queries), concatenate_datasets(candidates), relevance, level="paragraph"
    )
    return DatasetDict(
        queries=rs.queries, candidates=rs.candidates, relevance=rs.relevance, topics=Dataset.from_dict(topics)
    )


def _positives(lines: Iterable[str], where: str) -> dict[str, list[str]]:
    """query id -> passages judged relevant (relevance > 0), from TREC qrels lines (tab- or space-separated)."""
    out: dict[str, list[str]] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            qid, _, docid, rel = fields
            grade = int(rel)
        except ValueError:
            raise MalformedDataError(
                f"{where}, line {line_no}: expected TREC qrels (query id, Q0, passage id, relevance)"
            ) from None
        if grade > 0:
            out.setdefault(qid, []).append(docid)
    return out
