"""Where lexicons come from: the built-in parallel text (wmt22, tatoeba, xquad) and a user's
own parallel text or lexicon file, with the language pairs each covers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hbnb.cache import file_sha256
from hbnb.errors import DataFileError, MalformedDataError, UnknownNameError
from hbnb.languages import canonical

SOURCES = ("wmt22", "tatoeba", "xquad")


@dataclass(frozen=True)
class ParallelText:
    """A user's own parallel text of one language pair: two line-aligned files, or a `datasets`
    data set (hub name or local path) with one column per language."""

    pair: str  # "a-b": the first file / column is language a
    files: tuple[str, str] | None = None
    dataset: str | None = None
    columns: tuple[str, str] | None = None
    split: str = "train"

    @property
    def name(self) -> str:
        what = ",".join(self.files) if self.files else f"{self.dataset}[{','.join(self.columns or ())}]"
        return f"parallel:{self.pair}:{what}"


@dataclass(frozen=True)
class LexiconFile:
    """A user's own lexicon of one direction: `src<TAB>tgt` or MUSE's `src tgt` lines."""

    pair: str
    path: str

    @property
    def name(self) -> str:
        return f"lexicon:{self.pair}:{self.path}"


Source = str | ParallelText | LexiconFile


def source_name(source: Source) -> str:
    return source if isinstance(source, str) else source.name


def check_source(source: Source) -> Source:
    """A known built-in name or a user source whose pair is two languages; else one clear error."""
    if isinstance(source, str):
        if source not in SOURCES:
            raise UnknownNameError(
                f"unknown lexicon source {source!r}; built in: {', '.join(SOURCES)} "
                f"(or a user's ParallelText / LexiconFile)"
            )
        return source
    split_pair(source.pair)
    if isinstance(source, ParallelText) and (source.files is None) == (source.dataset is None):
        raise UnknownNameError(f"parallel text {source.pair}: give two files or a dataset with two columns")
    return source


def split_pair(pair: str) -> tuple[str, str]:
    parts = pair.split("-")
    if len(parts) != 2 or not all(parts):
        raise UnknownNameError(f"{pair!r} is not a language pair like 'en-de'")
    a, b = canonical(parts[0]), canonical(parts[1])
    if a == b:
        raise UnknownNameError(f"{pair!r} pairs a language with itself; give two different languages")
    return a, b


@cache
def covered_pairs(source: Source) -> frozenset[frozenset[str]]:
    """The unordered language pairs a source holds parallel text (or a lexicon) for."""
    if isinstance(source, (ParallelText, LexiconFile)):
        return frozenset({frozenset(split_pair(source.pair))})
    if source == "wmt22":
        from hbnb.data.bitext import wmt22_pairs

        return frozenset(frozenset(p.split("-")) for p in wmt22_pairs())
    if source == "tatoeba":
        from hbnb.data.bitext import tatoeba_languages

        return frozenset(frozenset((lang, "en")) for lang in tatoeba_languages() if lang != "en")
    from hbnb.data.squad import squad_languages

    langs = squad_languages("xquad")
    return frozenset(frozenset((a, b)) for a in langs for b in langs if a < b)


def source_files(source: Source, a: str, b: str) -> list[tuple[str, str]]:
    """(path, sha256) of the files a source reads for the pair: part of the cache key."""
    from hbnb.data import store

    if isinstance(source, ParallelText):
        if source.files:
            return [(str(Path(f).resolve()), checked_sha(Path(f))) for f in source.files]
        return [(f"dataset:{source.dataset}:{source.split}:{source.columns}", "")]
    if isinstance(source, LexiconFile):
        return [(str(Path(source.path).resolve()), checked_sha(Path(source.path)))]
    dataset = {"wmt22": "wmt22", "tatoeba": "tatoeba", "xquad": "xquad"}[source]
    return [(f.path, f.sha256) for f in store.files_of(dataset)]


def checked_sha(path: Path) -> str:
    if not path.is_file():
        raise DataFileError(f"{path}: no such file (a lexicon or parallel text source)")
    return file_sha256(path)


def parallel_lines(source: Source, a: str, b: str) -> tuple[list[str], list[str]]:
    """Line-aligned texts of languages a and b from one source (empty lists if it lacks the pair)."""
    if frozenset((a, b)) not in covered_pairs(source) or isinstance(source, LexiconFile):
        return [], []
    if isinstance(source, ParallelText):
        left, right = _user_parallel(source)
        return (left, right) if canonical(source.pair.split("-")[0]) == a else (right, left)
    if source == "wmt22":
        from hbnb.data.bitext import load_wmt22, wmt22_pairs

        xs: list[str] = []
        ys: list[str] = []
        for direction in wmt22_pairs():
            s, t = direction.split("-")
            if {s, t} == {a, b}:
                table = load_wmt22([direction])
                src, tgt = table["src"], table["tgt"]
                xs += src if s == a else tgt
                ys += tgt if s == a else src
        return xs, ys
    if source == "tatoeba":
        from hbnb.data.bitext import load_tatoeba

        other = b if a == "en" else a
        table = load_tatoeba([other])
        return (table["src"], table["tgt"]) if a == other else (table["tgt"], table["src"])
    from hbnb.data.squad import read_squad_set

    sets = read_squad_set("xquad", [a, b])
    xs, ys = [], []
    for pa, pb in zip(sets[a], sets[b]):
        xs.append(pa.context)
        ys.append(pb.context)
        questions_b = {q.id: q.text for q in pb.questions}
        for q in pa.questions:
            if q.id in questions_b:
                xs.append(q.text)
                ys.append(questions_b[q.id])
    return xs, ys


def _user_parallel(source: ParallelText) -> tuple[list[str], list[str]]:
    if source.files:
        texts = []
        for f in source.files:
            checked_sha(Path(f))
            texts.append(Path(f).read_text(encoding="utf-8").splitlines())
        if len(texts[0]) != len(texts[1]):
            raise MalformedDataError(
                f"{source.files[0]} has {len(texts[0])} lines but {source.files[1]} has {len(texts[1])}; "
                f"parallel text must be line-aligned"
            )
        return texts[0], texts[1]
    import datasets

    from hbnb.data.tables import column, require_columns

    table = datasets.load_dataset(source.dataset, split=source.split)
    columns = list(source.columns or ())
    require_columns(table.column_names, columns, f"parallel text {source.dataset}")
    return [str(x) for x in column(table, columns[0])], [str(x) for x in column(table, columns[1])]
