"""Bitext: Tatoeba (xxx-eng pairs) and the WMT22 general test sets, as aligned rows.

Pair tables have one row per aligned line: `pair` (e.g. "de-en", canonical codes),
`src_lang`, `tgt_lang`, `line` (0-based line number in the upstream files), `src`,
`tgt`. `load_wmt22_multiway` gives the six-way parallel en->{cs,de,ja,ru,uk,zh}
corpus with one column per language.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from datasets import Dataset

from hbnb.data import store
from hbnb.data.tables import cached
from hbnb.errors import MalformedDataError, UnknownNameError
from hbnb.languages import canonical, check_subset

COLUMNS = ("pair", "src_lang", "tgt_lang", "line", "src", "tgt")
MULTIWAY_TARGETS = ("cs", "de", "ja", "ru", "uk", "zh")

_TATOEBA = re.compile(r"tatoeba\.(?P<xxx>[a-z]+)-eng\.(?P<side>[a-z]+)$")
_WMT_SRC = re.compile(r"generaltest2022\.(?P<s>[a-z]+)-(?P<t>[a-z]+)\.src\.(?P=s)$")
_WMT_REF = re.compile(r"generaltest2022\.(?P<s>[a-z]+)-(?P<t>[a-z]+)\.ref\.(?P<ref>[A-Za-z]+)\.(?P=t)$")


def _lines(f: store.DataFile) -> list[str]:
    """The verified file's lines (no trailing newline characters)."""
    return store.path(f.path).read_text(encoding="utf-8").splitlines()


def _aligned(src: store.DataFile, tgt: store.DataFile) -> tuple[list[str], list[str]]:
    a, b = _lines(src), _lines(tgt)
    if len(a) != len(b):
        raise MalformedDataError(
            f"{src.path} has {len(a)} lines but {tgt.path} has {len(b)}; bitext files must be line-aligned"
        )
    return a, b


def _rows(pair_rows: list[tuple[str, str, list[str], list[str]]]) -> Dataset:
    data: dict[str, list] = {c: [] for c in COLUMNS}
    for src_lang, tgt_lang, src, tgt in pair_rows:
        n = len(src)
        data["pair"] += [f"{src_lang}-{tgt_lang}"] * n
        data["src_lang"] += [src_lang] * n
        data["tgt_lang"] += [tgt_lang] * n
        data["line"] += list(range(n))
        data["src"] += src
        data["tgt"] += tgt
    return Dataset.from_dict(data)


# ----------------------------------------------------------------------------- Tatoeba


def _tatoeba_files() -> dict[str, tuple[store.DataFile, store.DataFile]]:
    """canonical language -> (its side, the English side) of the xxx-eng pair."""
    sides: dict[str, dict[str, store.DataFile]] = {}
    for f in store.files_of("tatoeba"):
        m = _TATOEBA.match(PurePosixPath(f.path).name)
        if m:
            sides.setdefault(m["xxx"], {})[m["side"]] = f
    out = {}
    for xxx, files in sides.items():
        out[canonical(xxx)] = (files[xxx], files["eng"])
    return dict(sorted(out.items()))


def tatoeba_languages() -> list[str]:
    """The 112 Tatoeba languages paired with English, canonical codes."""
    return list(_tatoeba_files())


def load_tatoeba(langs: list[str] | None = None) -> Dataset:
    """Tatoeba xxx-eng pairs (src = the xxx sentence, tgt = English), up to 1000 per language.

    The English side differs from pair to pair, so pairs are never joined on English.
    """
    files = _tatoeba_files()
    chosen = list(files) if langs is None else check_subset(langs, files, "tatoeba")
    sources = [f for lang in chosen for f in files[lang]]

    def build() -> Dataset:
        return _rows([(lang, "en", *_aligned(*files[lang])) for lang in chosen])

    return cached("tatoeba", sources, {"langs": chosen}, build)


# ----------------------------------------------------------------------------- WMT22


def _wmt_files() -> dict[tuple[str, str], tuple[store.DataFile, dict[str, store.DataFile]]]:
    """(src, tgt) upstream codes -> (source file, {reference name: reference file})."""
    sources: dict[tuple[str, str], store.DataFile] = {}
    refs: dict[tuple[str, str], dict[str, store.DataFile]] = {}
    for f in store.files_of("wmt22"):
        name = PurePosixPath(f.path).name
        if m := _WMT_SRC.match(name):
            sources[(m["s"], m["t"])] = f
        elif m := _WMT_REF.match(name):
            refs.setdefault((m["s"], m["t"]), {})[m["ref"]] = f
    return {key: (sources[key], dict(sorted(refs[key].items()))) for key in sorted(sources)}


def wmt22_pairs() -> list[str]:
    """The WMT22 general-task directions, e.g. "en-de" (canonical codes)."""
    return [f"{canonical(s)}-{canonical(t)}" for s, t in _wmt_files()]


def _wmt_pair(pair: str) -> tuple[store.DataFile, dict[str, store.DataFile]]:
    by_pair = dict(zip(wmt22_pairs(), _wmt_files().values()))
    if pair not in by_pair:
        raise UnknownNameError(f"unknown WMT22 direction {pair!r}; available: {', '.join(by_pair)}")
    return by_pair[pair]


def _reference(pair: str, ref: str | None) -> tuple[store.DataFile, store.DataFile]:
    """(source, chosen reference) of a direction; the first reference by name unless `ref` is given."""
    source, refs = _wmt_pair(pair)
    if ref is None:
        return source, next(iter(refs.values()))
    if ref not in refs:
        raise UnknownNameError(f"WMT22 {pair} has no reference {ref!r}; available: {', '.join(refs)}")
    return source, refs[ref]


def load_wmt22(pairs: list[str] | None = None, ref: str | None = None) -> Dataset:
    """WMT22 general test sets, one aligned row per source line (reference `ref`, default the first)."""
    chosen = wmt22_pairs() if pairs is None else pairs
    files = {pair: _reference(pair, ref) for pair in chosen}

    def build() -> Dataset:
        return _rows([(*pair.split("-"), *_aligned(*files[pair])) for pair in chosen])

    sources = [f for pair in chosen for f in files[pair]]
    return cached("wmt22", sources, {"pairs": chosen, "ref": ref}, build)


def load_wmt22_multiway() -> Dataset:
    """The six-way parallel corpus: en->{cs,de,ja,ru,uk,zh} share one English source.

    The six source files hold the same 2037 English lines in different document
    orders, so each direction is re-aligned to the en-ja order by matching lines
    (a repeated line takes the occurrence whose neighbours match, else the first
    unused). Columns: line, en, cs, de, ja, ru, uk, zh.
    """
    files = {t: _reference(f"en-{t}", None) for t in MULTIWAY_TARGETS}
    sources = [f for pair in files.values() for f in pair]

    def build() -> Dataset:
        anchor = _lines(files["ja"][0])
        columns: dict[str, list] = {"line": list(range(len(anchor))), "en": anchor}
        for t, (src, ref) in files.items():
            english, target = _aligned(src, ref)
            order = _match_order(anchor, english, src.path)
            columns[t] = [target[j] for j in order]
        return Dataset.from_dict(columns)

    return cached("wmt22-multiway", sources, {"targets": list(MULTIWAY_TARGETS)}, build)


def _match_order(anchor: list[str], lines: list[str], where: str) -> list[int]:
    """For each anchor line, the index of the same line in `lines` (a bijection)."""
    positions: dict[str, list[int]] = {}
    for j, line in enumerate(lines):
        positions.setdefault(line, []).append(j)
    used: set[int] = set()
    order: list[int] = []
    for i, line in enumerate(anchor):
        free = [j for j in positions.get(line, []) if j not in used]
        if not free:
            raise MalformedDataError(
                f"{where}: line {i} of the en-ja English source ({line[:60]!r}) has no unused "
                f"match; the en->xx sources must hold the same lines"
            )
        j = next((j for j in free if _neighbours_match(anchor, i, lines, j)), free[0])
        used.add(j)
        order.append(j)
    return order


def _neighbours_match(a: list[str], i: int, b: list[str], j: int) -> bool:
    before = i > 0 and j > 0 and a[i - 1] == b[j - 1]
    after = i + 1 < len(a) and j + 1 < len(b) and a[i + 1] == b[j + 1]
    return before or after
