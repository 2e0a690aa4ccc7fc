"""The training data as pair codes over texts stored once: `PairIndex`.

Texts are stored once per (item, language), in the parallel QA table. The training
data set handed to the trainer holds only integer *pair codes*: code
`row * L + p` means "the question of table row `row`, the passage of the same item
in language `p`". A transform turns the codes of a batch into texts when the
DataLoader asks for them, so nothing is materialised per language pair.

The index also resolves the run's design against the table, and validates the
batching parameters with it (languages, pairs, item counts) before any model is
loaded. The design is nested: with one `batching.design_seed`,

- `n_languages: n` trains the first n of a fixed order of the candidate languages
  (`batching.languages`, or all in the data): `languages_first` in their order, then
  the other candidates in a random order (stream "design-languages" over the sorted
  candidates), so n=1, 2, 4 give nested sets;
- `pairs: k` takes the first k of a fixed random order (stream "design-pairs") of the
  pairs of the sorted candidates, restricted to the training languages: with
  `pair_count: unordered` (the default) k counts unordered pairs {a, b} and both
  directions of each are trained (k at most L(L-1)/2); with `ordered` k counts
  directions (at most L(L-1)). k=1, 2, 4 are nested;
- `train_items: N` takes the first N usable items of one fixed random order of all
  the table's items (stream "design-items" over the sorted item ids), so N=100, 300,
  1000 are nested and every strategy gets the same items where they are usable.

The replicate seed (`batching.seed`) draws batches only; it never changes the design.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from datasets import Dataset
from datasets.table import InMemoryTable

from hbnb import designs
from hbnb.data.retrieval import answer_text
from hbnb.data.tables import ChunkedColumn
from hbnb.designs import design_item_order, design_language_order, design_pair_order
from hbnb.errors import ParamsError
from hbnb.params import BatchingParams
from hbnb.training.negatives import Negatives, ParagraphNegatives

CODE_COLUMN = "pair"


_INDEXES: weakref.WeakValueDictionary[int, PairIndex] = weakref.WeakValueDictionary()


class _PairTexts:
    """The training data set's transform: pair codes -> texts, via its PairIndex.

    It pickles as a key into this process's index registry, not as the texts: the
    `datasets` library hashes every transform (it would serialise the whole table),
    and forked DataLoader workers inherit the registry.
    """

    def __init__(self, index: PairIndex) -> None:
        self.index = index
        _INDEXES[id(index)] = index

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return self.index.texts(batch)

    def __reduce__(self):
        return _pair_texts, (id(self.index),)


def _pair_texts(key: int) -> _PairTexts:
    try:
        return _PairTexts(_INDEXES[key])
    except KeyError:
        raise RuntimeError(
            "the training data's pair index is not in this process; DataLoader workers must be "
            "forked (the default on Linux), not spawned"
        ) from None


@dataclass(frozen=True)
class Batch:
    """One planned batch: its kind and, per example, the item and the two languages."""

    kind: str  # "mono", "cross", or "bitext" (items: bitext pairs; q_langs = p_langs: their directions)
    items: np.ndarray
    q_langs: np.ndarray
    p_langs: np.ndarray


class PairIndex:
    """Index over a parallel QA table: which row holds each (item, language), and pair codes.

    Validates the batching parameters against the table (before any model is loaded):
    the errors name the parameter and the allowed values.
    """

    def __init__(
        self,
        table: Dataset,
        params: BatchingParams,
        source: str = "the training data",
        exclude: set[str] | None = None,
    ) -> None:
        self.table = table
        self.params = params
        arrow = table.with_format("arrow")[:]  # the selected rows, zero-copy when memory-mapped
        lang_codes, all_langs = _encode(arrow, "lang")
        self.languages, candidates = _training_languages(params, all_langs, source)
        self.lang_index = {lang: i for i, lang in enumerate(self.languages)}
        self.pairs = _allowed_pairs(params, self.languages, candidates)
        item_codes, item_ids = _encode(arrow, "item_id")
        self.row = _row_matrix(item_codes, len(item_ids), lang_codes, all_langs, self.languages)
        self.has = self.row >= 0
        # the examples' hard negatives: the paragraph ones here, mined ones by hbnb.training.mining.attach
        self.negatives: Negatives | None = None
        if params.hard_negatives is True:
            self.negatives = ParagraphNegatives.of_table(arrow, item_codes)
            self.has &= self.negatives.has_row(table.num_rows)[np.maximum(self.row, 0)]
        if exclude:
            self.has[[i for i, item in enumerate(item_ids) if item in exclude]] = False
        # the inverse of `row`: item and training-language index of every table row (-1 outside)
        self.item_of_row = np.full(table.num_rows, -1, dtype=np.int64)
        self.lang_of_row = np.full(table.num_rows, -1, dtype=np.int64)
        items, langs = np.nonzero(self.row >= 0)
        self.item_of_row[self.row[items, langs]] = items
        self.lang_of_row[self.row[items, langs]] = langs
        self.item_ids = np.array(item_ids, dtype=object)
        self.active = _active_items(self, params, source)
        self._columns = {c: ChunkedColumn(arrow.column(c)) for c in ("question", "sentence", "paragraph")}
        self._check_batch_size(source)
        self.base = table.num_rows * self.n_langs  # pair codes below it are QA pairs; bitext codes follow
        self.switching: Any = None  # hbnb.training.augment.SwitchedTexts
        self.bitext: Any = None  # hbnb.training.augment.BitextPool

    def augment(self, switching: Any = None, bitext: Any = None) -> PairIndex:
        """Attach code-switching and bitext (`hbnb.training.augment`) to the training stream."""
        if bitext is not None and self.params.hard_negatives:
            raise ParamsError("training.bitext cannot be combined with batching.hard_negatives (bitext has none)")
        if bitext is not None and bitext.n_groups < self.params.batch_size:
            raise ParamsError(
                f"training.bitext has {bitext.n_groups} different sentences, fewer than batching.batch_size = "
                f"{self.params.batch_size}; add sources or lower the batch size"
            )
        self.switching, self.bitext = switching, bitext
        return self

    def bitext_codes(self, pairs: np.ndarray, directions: np.ndarray) -> list[int]:
        """Codes of bitext pairs in directions (0: a->b, 1: b->a): after the QA codes."""
        return self.bitext.encode(self.base, pairs, directions).tolist()

    @property
    def n_langs(self) -> int:
        return len(self.languages)

    def pair_names(self) -> list[str]:
        """The allowed ordered pairs as "q-p" language codes (empty for x-x and en-en)."""
        return [f"{self.languages[a]}-{self.languages[b]}" for a, b in self.pairs]

    def pair_ok(self) -> np.ndarray:
        """Per item: does it exist in both languages of at least one allowed pair?"""
        if not self.pairs:
            return np.zeros(len(self.row), dtype=bool)
        a = np.array([p[0] for p in self.pairs])
        b = np.array([p[1] for p in self.pairs])
        return (self.has[:, a] & self.has[:, b]).any(axis=1)

    def codes(self, batch: Batch) -> list[int]:
        """Pair codes of a planned batch: the query row, times L, plus the passage language."""
        rows = self.row[batch.items, batch.q_langs]
        return (rows * self.n_langs + batch.p_langs).tolist()

    def decode(self, codes: list[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query rows, passage rows, items) of pair codes.

        The samplers yield valid codes only; the data set holds every code, and sentence-
        transformers reads its first rows for the model card: a code whose item lacks the
        passage language (partial data such as MLQA) or whose row is no training language
        gets the query's own row as passage, so such reads never fail.
        """
        codes = np.asarray(codes, dtype=np.int64)
        q_rows, p_langs = np.divmod(codes, self.n_langs)
        items = self.item_of_row[q_rows]
        p_rows = np.where(items >= 0, self.row[np.maximum(items, 0), p_langs], -1)
        return q_rows, np.where(p_rows >= 0, p_rows, q_rows), items

    def texts(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The set_transform of the training data set: pair codes -> anchor/positive(/negative) texts,
        bitext codes -> their pair, then code-switching of the chosen QA examples."""
        codes = np.asarray(batch[CODE_COLUMN], dtype=np.int64)
        qa = np.nonzero(codes < self.base)[0]
        n = len(codes)
        out: dict[str, list[Any]] = {"anchor": [None] * n, "positive": [None] * n}
        q_langs: list[str] = [""] * n
        p_langs: list[str] = [""] * n
        if len(qa):
            q_rows, p_rows, _ = self.decode(codes[qa])
            questions = self._columns["question"].take(q_rows)
            sentences = self._columns["sentence"].take(p_rows)
            paragraphs = self._columns["paragraph"].take(p_rows)
            with_paragraph = self.params.positive == "sentence+paragraph"
            negatives = None
            if self.negatives is not None:
                negatives = [self.negatives.pick(c, r) for c, r in zip(codes[qa].tolist(), p_rows.tolist())]
                out["negative"] = [None] * n
            for k, i in enumerate(qa.tolist()):
                out["anchor"][i] = questions[k]
                out["positive"][i] = answer_text(sentences[k], paragraphs[k], with_paragraph)
                q_langs[i] = self.languages[self.lang_of_row[q_rows[k]]]
                p_langs[i] = self.languages[self.lang_of_row[p_rows[k]]]
                if negatives is not None:
                    out["negative"][i] = negatives[k]
        if self.switching is not None or self.bitext is not None:
            from hbnb.training.augment import augment_texts

            augment_texts(self, codes, out, q_langs, p_langs)
        out[CODE_COLUMN] = codes.tolist()
        return out

    def valid_codes(self) -> np.ndarray:
        """Every pair code the active items can serve, sorted: (item, q=p) for each training
        language the item has, and (q, p) for each allowed pair it has in both languages."""
        items, n = self.active, self.n_langs
        parts = [self.row[items[self.has[items, q]], q] * n + q for q in range(n)]
        for a, b in self.pairs:
            both = items[self.has[items, a] & self.has[items, b]]
            parts.append(self.row[both, a] * n + b)
        return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def training_dataset(self) -> Dataset:
        """The data set the trainer sees: one int64 column of pair codes, turned into texts on access.

        For the controlled strategies it holds every possible code (row i is code i: the
        sampler yields codes); for `random`, only the valid codes of the active items
        (`valid_codes`), which sentence-transformers' own sampler draws rows of.
        """
        if self.params.strategy == "random":
            values = self.valid_codes()
            if self.bitext is not None:
                values = np.concatenate([values, self.bitext.random_codes(len(values), self.params.seed, self.base)])
            digest = hashlib.sha1(values.tobytes()).hexdigest()[:16]
            fingerprint = f"hbnb-valid-codes-{len(values)}-{digest}"
        else:
            values = np.arange(self.base + (2 * len(self.bitext) if self.bitext is not None else 0), dtype=np.int64)
            fingerprint = f"hbnb-pair-codes-{len(values)}"  # no hashing of 8M integers
        codes = InMemoryTable.from_pydict({CODE_COLUMN: pa.array(values)})
        ds = Dataset(codes, fingerprint=fingerprint)
        ds.set_transform(_PairTexts(self))
        return ds

    def describe(self, codes: list[int]) -> dict[str, Any]:
        """What a batch of codes holds: its kind, its language (mono), its language-pair counts, and
        how many bitext pairs (of how many different sentences) it has."""
        codes = np.asarray(codes, dtype=np.int64)
        qa, bi = codes[codes < self.base], codes[codes >= self.base]
        q_rows, p_rows, items = self.decode(qa)
        q = self.lang_of_row[q_rows]
        p = self.lang_of_row[p_rows]
        pairs = Counter(f"{self.languages[a]}-{self.languages[b]}" for a, b in zip(q, p))
        same = q == p
        if len(bi) and not len(qa):
            kind = "bitext"
        elif len(bi):
            kind = "mixed"
        else:
            kind = "mono" if same.all() and len(set(q)) == 1 else "cross" if (~same).all() else "mixed"
        out = {
            "kind": kind,
            "lang": self.languages[q[0]] if kind == "mono" else None,
            "size": len(codes),
            "unique_items": int(len(set(items.tolist()))),
            "pairs": dict(sorted(pairs.items())),
        }
        if self.bitext is not None:
            out.update(self.bitext.describe(bi - self.base))
        return out

    def _check_batch_size(self, source: str) -> None:
        if self.params.batch_size > len(self.active):
            raise ParamsError(
                f"batching.batch_size = {self.params.batch_size} is larger than the {len(self.active)} "
                f"usable items of {source}; use at most {len(self.active)}"
            )


def _training_languages(params: BatchingParams, available: list[str], source: str) -> tuple[list[str], list[str]]:
    """(the training languages, the candidate languages they are chosen from)."""
    if params.strategy == "en-en":
        candidates = ["en"]
        where = "strategy 'en-en'"
    else:
        candidates = params.languages if params.languages is not None else available
        where = "batching.languages" if params.languages is not None else f"all in {source}"
    missing = [lang for lang in candidates if lang not in available]
    if missing:
        key = "strategy 'en-en' needs" if params.strategy == "en-en" else "batching.languages has"
        raise ParamsError(
            f"{key} {', '.join(repr(m) for m in missing)}, absent from {source}; allowed: {', '.join(available)}"
        )
    if params.strategy in ("x-y", "hybrid") and len(candidates) < 2:
        raise ParamsError(
            f"batching.strategy {params.strategy!r} needs at least 2 training languages for "
            f"cross-lingual batches; batching.languages gives {candidates}"
        )
    if params.strategy == "en-en" or (params.n_languages is None and not params.languages_first):
        wanted = list(candidates)
    else:
        stray = [lang for lang in params.languages_first if lang not in candidates]
        if stray:
            raise ParamsError(
                f"batching.languages_first has {', '.join(repr(x) for x in stray)}, not a candidate language "
                f"({where}); allowed: {', '.join(candidates)}"
            )
        n = params.n_languages if params.n_languages is not None else len(candidates)
        problem = designs.n_languages_problem(n, params.strategy, len(candidates), where)
        if problem:
            raise ParamsError(f"batching.n_languages = {n}: {problem}")
        wanted = design_language_order(params, candidates)[:n]
    if params.language_weights is not None:
        unknown = [lang for lang in params.language_weights if lang not in wanted]
        if unknown:
            raise ParamsError(
                f"batching.language_weights names {', '.join(unknown)}, not a training language; "
                f"allowed: {', '.join(wanted)}"
            )
    return list(wanted), list(candidates)


def _allowed_pairs(params: BatchingParams, langs: list[str], candidates: list[str]) -> list[tuple[int, int]]:
    """Ordered cross-lingual pairs as language indices: all, an explicit list, or the first k of the design."""
    if params.strategy in ("x-x", "en-en"):
        return []
    index = {lang: i for i, lang in enumerate(langs)}
    if params.pairs == "all":
        return [(a, b) for a in range(len(langs)) for b in range(len(langs)) if a != b]
    if isinstance(params.pairs, int):
        problem = designs.pairs_problem(params.pairs, len(langs), params.pair_count)
        if problem:
            raise ParamsError(f"batching.pairs = {params.pairs}: {problem}")
        mine = [(a, b) for a, b in design_pair_order(params, candidates) if a in index and b in index]
        out = []
        for a, b in mine[: params.pairs]:
            out.append((index[a], index[b]))
            if params.pair_count == "unordered":
                out.append((index[b], index[a]))
        return out
    out = []
    for pair in params.pairs:
        a, b = pair.split("-")
        if a not in index or b not in index:
            raise ParamsError(
                f"batching.pairs names {pair!r}, but {a if a not in index else b!r} is not a training "
                f"language; allowed languages: {', '.join(langs)}"
            )
        out.append((index[a], index[b]))
    return out


def _encode(table: pa.Table, column: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a string column and its distinct values in first-seen order (vectorised)."""
    encoded = table.column(column).combine_chunks().dictionary_encode()
    return np.asarray(encoded.indices, dtype=np.int64), encoded.dictionary.to_pylist()


def _row_matrix(
    item_codes: np.ndarray, n_items: int, lang_codes: np.ndarray, all_langs: list[str], langs: list[str]
) -> np.ndarray:
    """row[item, lang] = the table row of that item in that training language, or -1."""
    to_training = np.array([langs.index(x) if x in langs else -1 for x in all_langs], dtype=np.int64)
    lang = to_training[lang_codes]
    keep = lang >= 0
    row = np.full((n_items, len(langs)), -1, dtype=np.int64)
    row[item_codes[keep], lang[keep]] = np.nonzero(keep)[0]
    return row


def _active_items(index: PairIndex, params: BatchingParams, source: str) -> np.ndarray:
    """Items that can serve the strategy; with `train_items: N`, the first N of the design's item order."""
    mono = index.has.any(axis=1) if params.strategy != "x-y" else np.zeros(len(index.row), dtype=bool)
    ok = mono | index.pair_ok()
    if params.train_items is None:
        return np.nonzero(ok)[0]
    order = design_item_order(index.item_ids, params.design_seed)
    usable = order[ok[order]]
    if params.train_items > len(usable):
        raise ParamsError(
            f"batching.train_items = {params.train_items} exceeds the {len(usable)} usable items of {source}; "
            f"allowed 1..{len(usable)} (or leave it out for all)"
        )
    return np.sort(usable[: params.train_items])
