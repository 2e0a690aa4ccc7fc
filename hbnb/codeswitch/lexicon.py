"""Bilingual lexicons induced from parallel text: eflomal alignments, symmetrised, counted, filtered.

A lexicon of the direction "a-b" maps words of language a to words of language b, each
entry with its link count and translation probability p(b word | a word). Induction:

1. parallel lines of the pair from every chosen source (`wmt22`, `tatoeba`, `xquad`
   questions and paragraphs, a user's `ParallelText`), cut into tokens as
   `hbnb.codeswitch.tokens` does (the code-switch transform cuts alike);
2. eflomal (a Bayesian IBM-style aligner, on PyPI, no model needed) aligns them in both
   directions; the two alignments are symmetrised with grow-diag-final-and;
3. links between two words (not numbers, not punctuation) are counted; p(t|s) is the
   share of s's links that go to t. The counts are cached per (sources, pair, split,
   code version, source files), so both directions and any thresholds reuse them;
4. entries below `min_count` links or `min_prob` are dropped (applied on reading).

A pair no source covers directly is composed through English ("de-ru" = "de-en" then
"en-ru", p summed over the English words, count the smaller of the two links), and its
entries are marked `pivoted`. A user's lexicon file (`LexiconFile`: `src<TAB>tgt` or
MUSE's `src tgt` lines) is read as it is: count 1 per line, p = 1 / translations of src.

Quality without a gold dictionary (`heldout_hit_rate`): induce on 90% of the lines (a
fixed draw, stream "lexicon-holdout"), then on the other 10% replace every source word
that has an entry by its most probable translation and count how often that word
occurs in the reference sentence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hbnb import seeds
from hbnb.cache import build_lock, cache_dir
from hbnb.codeswitch.align import align_counts
from hbnb.codeswitch.sources import (
    SOURCES,
    LexiconFile,
    ParallelText,
    Source,
    check_source,
    checked_sha,
    covered_pairs,
    parallel_lines,
    source_files,
    source_name,
    split_pair,
)
from hbnb.codeswitch.tokens import tokenize
from hbnb.errors import MalformedDataError, UnknownNameError
from hbnb.files import write_atomic

PIVOT = "en"
VERSION = 1  # bump when tokenisation, alignment or counting changes: old caches are not reused
MIN_COUNT = 2
MIN_PROB = 0.05
HELDOUT_SHARE = 0.1


# ----------------------------------------------------------------------------- counts


def _split_lines(n: int, part: str) -> np.ndarray:
    """Line indices of a part: "all", or the fixed 90% "train" / 10% "heldout" draw."""
    if part == "all":
        return np.arange(n)
    order = seeds.rng(0, "lexicon-holdout").permutation(n)
    cut = n - max(1, int(round(n * HELDOUT_SHARE)))
    return np.sort(order[:cut] if part == "train" else order[cut:])


def _texts(sources: Sequence[Source], a: str, b: str, part: str) -> tuple[list[str], list[str]]:
    xs, ys = [], []
    for source in sources:
        sx, sy = parallel_lines(source, a, b)
        keep = _split_lines(len(sx), part)
        xs += [sx[i] for i in keep]
        ys += [sy[i] for i in keep]
    return xs, ys


def pair_counts(sources: Sequence[Source], a: str, b: str, part: str = "all") -> pd.DataFrame:
    """Link counts (a-word, b-word, count) of the pair from the sources with parallel text, cached."""
    sources = sorted((s for s in sources if not isinstance(s, LexiconFile)), key=source_name)
    key = json.dumps(
        {
            "version": VERSION,
            "pair": [a, b],
            "part": part,
            "sources": [[source_name(s), source_files(s, a, b)] for s in sources],
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    final = cache_dir("lexicons") / f"{a}-{b}-{part}-{digest}.parquet"
    if final.is_file():
        return pd.read_parquet(final)
    with build_lock(final):
        if final.is_file():
            return pd.read_parquet(final)
        frame = align_counts(*_texts(sources, a, b, part))
        write_atomic(final, lambda tmp: frame.to_parquet(tmp, index=False))
    return frame


# ----------------------------------------------------------------------------- lexicons


@dataclass
class Lexicon:
    """Entries of one direction: src, tgt, count, p (= p(tgt | src)), pivoted; sorted by count."""

    pair: str
    entries: pd.DataFrame
    sources: tuple[str, ...]
    pivot: str | None = None
    _by_src: dict[str, tuple[list[str], np.ndarray]] | None = field(default=None, repr=False)

    @property
    def src_lang(self) -> str:
        return self.pair.split("-")[0]

    @property
    def tgt_lang(self) -> str:
        return self.pair.split("-")[1]

    @property
    def size(self) -> int:
        """Entries (word pairs)."""
        return len(self.entries)

    @property
    def words(self) -> int:
        """Source words with at least one entry."""
        return int(self.entries["src"].nunique())

    def translations(self, word: str) -> tuple[list[str], np.ndarray] | None:
        """(translations, probabilities summing to 1) of a lower-cased word, or None."""
        if self._by_src is None:
            self._by_src = {}
            for src, group in self.entries.groupby("src", sort=False):
                p = group["p"].to_numpy(dtype=float)
                self._by_src[src] = (group["tgt"].tolist(), p / p.sum())
        return self._by_src.get(word)

    def best(self, word: str) -> str | None:
        found = self.translations(word)
        return None if found is None else found[0][int(np.argmax(found[1]))]

    def coverage(self, texts: Sequence[str]) -> float:
        """Share of the running words of `texts` that have an entry."""
        words = [t.key for text in texts for t in tokenize(text) if t.word]
        if not words:
            return 0.0
        known = set(self.entries["src"])
        return sum(w in known for w in words) / len(words)

    def to_json(self, top: int | None = None, coverage: float | None = None) -> dict[str, Any]:
        rows = self.entries if top is None else self.entries.head(top)
        return {
            "pair": self.pair,
            "size": self.size,
            "words": self.words,
            "coverage": None if coverage is None else round(coverage, 4),
            "sources": list(self.sources),
            "pivot": self.pivot,
            "entries": [
                {
                    "src": r.src,
                    "tgt": r.tgt,
                    "p": round(float(r.p), 4),
                    "count": int(r.count),
                    "pivoted": bool(r.pivoted),
                }
                for r in rows.itertuples()
            ],
        }


def _direction(counts: pd.DataFrame, forward: bool) -> pd.DataFrame:
    """Entries of one direction of the link counts, with p(tgt | src)."""
    src, tgt = ("a", "b") if forward else ("b", "a")
    out = counts.rename(columns={src: "src", tgt: "tgt"})[["src", "tgt", "count"]].copy()
    out["p"] = out["count"] / out.groupby("src")["count"].transform("sum")
    return out


def _filtered(entries: pd.DataFrame, min_count: int, min_prob: float, pivoted: bool = False) -> pd.DataFrame:
    out = entries[(entries["count"] >= min_count) & (entries["p"] >= min_prob)].copy()
    out["pivoted"] = pivoted
    out = out.sort_values(["count", "p", "src", "tgt"], ascending=[False, False, True, True], kind="stable")
    return out.reset_index(drop=True)


def _read_lexicon_file(source: LexiconFile) -> pd.DataFrame:
    path = Path(source.path)
    checked_sha(path)
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        if len(parts) != 2:
            raise MalformedDataError(f"{path}, line {n}: expected 'src<TAB>tgt' or 'src tgt', got {line[:60]!r}")
        rows.append((parts[0].strip().lower(), parts[1].strip().lower()))
    frame = pd.DataFrame(rows, columns=["src", "tgt"]).drop_duplicates()
    frame["count"] = 1
    frame["p"] = 1.0 / frame.groupby("src")["src"].transform("size")
    return frame


def _direct(sources: Sequence[Source], a: str, b: str, part: str) -> pd.DataFrame | None:
    """Unfiltered entries a -> b from the sources that cover the pair directly, or None."""
    covering = [s for s in sources if frozenset((a, b)) in covered_pairs(s)]
    if not covering:
        return None
    frames = []
    texts = [s for s in covering if not isinstance(s, LexiconFile)]
    if texts:
        x, y = sorted((a, b))
        frames.append(_direction(pair_counts(texts, x, y, part), forward=(a == x)))
    for s in covering:
        if isinstance(s, LexiconFile):
            s_a, _ = split_pair(s.pair)
            frame = _read_lexicon_file(s)
            frames.append(frame if s_a == a else _direction(frame.rename(columns={"src": "b", "tgt": "a"}), True))
    merged = pd.concat(frames, ignore_index=True).groupby(["src", "tgt"], as_index=False)["count"].sum()
    merged["p"] = merged["count"] / merged.groupby("src")["count"].transform("sum")
    return merged


_BUILT: dict[tuple, Lexicon] = {}  # lexicons of built-in sources, once per process


def lexicon(
    sources: Sequence[Source],
    pair: str,
    min_count: int = MIN_COUNT,
    min_prob: float = MIN_PROB,
    part: str = "all",
) -> Lexicon:
    """The lexicon of direction `pair` ("a-b") from the sources, pivoting through English if needed.

    Lexicons of built-in sources (verified, unchanging files) are kept for the process: a plan
    of many runs composes each pivot once; a user's files are read again every time.
    """
    if sources and all(isinstance(s, str) for s in sources):
        key = (tuple(sources), pair, min_count, min_prob, part)
        if key not in _BUILT:
            _BUILT[key] = _lexicon(sources, pair, min_count, min_prob, part)
        return _BUILT[key]
    return _lexicon(sources, pair, min_count, min_prob, part)


def route(
    sources: Sequence[Source], pair: str, min_count: int = MIN_COUNT, min_prob: float = MIN_PROB, read: bool = True
) -> list[str]:
    """The directions the lexicon of `pair` is made from (the pair, or its two legs through English),
    with the error `lexicon` would raise for a pair nothing covers, bad thresholds or (`read`) a
    malformed user file. Nothing is aligned: this is the check a plan makes before any stage."""
    if not sources:
        raise UnknownNameError(f"no lexicon source given; built in: {', '.join(SOURCES)}")
    sources = [check_source(s) for s in sources]
    if not 0.0 <= min_prob <= 1.0 or min_count < 1:
        raise UnknownNameError(
            f"lexicon thresholds: min_count >= 1 and 0 <= min_prob <= 1 (got {min_count}, {min_prob})"
        )
    a, b = split_pair(pair)
    legs = [(a, b)]
    if not _covers(sources, a, b):
        names = ", ".join(source_name(s) for s in sources)
        fix = "add a source that covers it, e.g. tatoeba (xxx-en for 112 languages)"
        if PIVOT in (a, b):
            raise UnknownNameError(
                f"no source covers {a}-{b} (sources: {names}), and English is one side of it, so no "
                f"pivot through English can; {fix}"
            )
        legs = [(a, PIVOT), (PIVOT, b)]
        missing = [f"{x}-{y}" for x, y in legs if not _covers(sources, x, y)]
        if missing:
            raise UnknownNameError(
                f"no source covers {a}-{b} (sources: {names}), and no pivot through English reaches it "
                f"({' and '.join(missing)} not covered either); {fix}"
            )
    for x, y in legs if read else []:  # a user's files are cheap to read: a malformed one is refused up front
        for s in (s for s in sources if frozenset((x, y)) in covered_pairs(s)):
            if isinstance(s, LexiconFile):
                _read_lexicon_file(s)
            elif isinstance(s, ParallelText) and s.files:
                parallel_lines(s, x, y)
    return [f"{x}-{y}" for x, y in legs]


def _covers(sources: Sequence[Source], a: str, b: str) -> bool:
    return any(frozenset((a, b)) in covered_pairs(s) for s in sources)


def _lexicon(sources: Sequence[Source], pair: str, min_count: int, min_prob: float, part: str) -> Lexicon:
    legs = route(sources, pair, min_count, min_prob, read=False)
    sources = [check_source(s) for s in sources]
    names = tuple(source_name(s) for s in sources)
    a, b = split_pair(pair)
    if len(legs) == 1:
        return Lexicon(f"{a}-{b}", _filtered(_direct(sources, a, b, part), min_count, min_prob), names)
    first, second = (_direct(sources, *split_pair(leg), part) for leg in legs)
    first = first[(first["count"] >= min_count) & (first["p"] >= min_prob)]
    second = second[(second["count"] >= min_count) & (second["p"] >= min_prob)]
    joined = first.merge(second, left_on="tgt", right_on="src", suffixes=("_1", "_2"))
    joined["p"] = joined["p_1"] * joined["p_2"]
    joined["count"] = np.minimum(joined["count_1"], joined["count_2"])
    composed = joined.groupby(["src_1", "tgt_2"], as_index=False).agg(p=("p", "sum"), count=("count", "sum"))
    composed = composed.rename(columns={"src_1": "src", "tgt_2": "tgt"})
    composed["p"] = composed["p"] / composed.groupby("src")["p"].transform("sum")
    return Lexicon(f"{a}-{b}", _filtered(composed, min_count, min_prob, pivoted=True), names, pivot=PIVOT)


def heldout_hit_rate(sources: Sequence[Source], pair: str, **thresholds: Any) -> dict[str, Any]:
    """Lexicon quality without a gold dictionary: induce on 90% of the pair's lines; on the other
    10%, replace every source word with an entry by its most probable translation and count how
    often that translation occurs in the reference (as a token of it, lower-cased)."""
    a, b = split_pair(pair)
    lex = lexicon(sources, f"{a}-{b}", part="train", **thresholds)
    xs, ys = _texts([s for s in sources if not isinstance(s, LexiconFile)], a, b, "heldout")
    words = covered = hits = 0
    for x, y in zip(xs, ys):
        reference = {t.key for t in tokenize(y) if t.word}
        for token in tokenize(x):
            if not token.word:
                continue
            words += 1
            best = lex.best(token.key)
            if best is not None:
                covered += 1
                hits += best in reference
    return {
        "pair": f"{a}-{b}",
        "sources": "+".join(source_name(s) for s in sources),
        "pivoted": lex.pivot is not None,
        "heldout_lines": len(xs),
        "size": lex.size,
        "coverage": round(covered / words, 4) if words else None,
        "replaced": covered,
        "hit_rate": round(hits / covered, 4) if covered else None,
    }


def source_coverage(lex: Lexicon, sources: Sequence[Source]) -> float | None:
    """Coverage of a lexicon on the source-language side of the parallel text it came from (for a
    pivoted one, of the first leg's text); None when it came from lexicon files only."""
    a, b = lex.pair.split("-")
    other = lex.pivot or b
    texts = [s for s in sources if not isinstance(s, LexiconFile) and frozenset((a, other)) in covered_pairs(s)]
    xs = _texts(texts, a, other, "all")[0]
    return lex.coverage(xs) if xs else None
