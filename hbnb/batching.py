"""The method's batch strategies as sentence-transformers batch samplers.

- **X-X** (monolingual): one language per batch, drawn per batch (uniform over the
  training languages, or weighted); query and passage both in it.
- **X-Y** (cross-lingual): every example's query and passage in two different
  languages, drawn per example from the allowed ordered pairs.
- **hybrid**: per batch, monolingual with probability `alpha`, else cross-lingual.
- **en-en**: English only, the classic baseline.

Texts are stored once per (item, language), in the parallel QA table. The training
data set handed to the trainer holds only integer *pair codes*: code
`row * L + p` means "the question of table row `row`, the passage of the same item
in language `p`". A transform turns the codes of a batch into texts when the
DataLoader asks for them, so nothing is materialised per language pair.

An item is used at most once per epoch, so a batch never holds two rows of one item
(a translation of the positive is never a negative). Under DDP the N per-process
batches of one step are drawn as a group of the same kind and, for monolingual
steps, the same language, so negatives gathered across processes stay pure.
"""

from __future__ import annotations

import math
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import SequentialSampler
from datasets import Dataset
from datasets.table import InMemoryTable
from sentence_transformers.base.sampler import DefaultBatchSampler
from sentence_transformers.sentence_transformer.data_collator import SentenceTransformerDataCollator

from hbnb.data.retrieval import answer_text
from hbnb.errors import ParamsError
from hbnb.params import BatchingParams

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

    kind: str  # "mono" or "cross"
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
        self.languages = _training_languages(params, all_langs, source)
        self.lang_index = {lang: i for i, lang in enumerate(self.languages)}
        self.pairs = _allowed_pairs(params, self.languages)
        item_codes, item_ids = _encode(arrow, "item_id")
        self.row = _row_matrix(item_codes, len(item_ids), lang_codes, all_langs, self.languages)
        self.has = self.row >= 0
        if params.hard_negatives:
            self.has &= _nonempty(arrow, "negative")[np.maximum(self.row, 0)]
        if exclude:
            self.has[[i for i, item in enumerate(item_ids) if item in exclude]] = False
        # the inverse of `row`: item and training-language index of every table row (-1 outside)
        self.item_of_row = np.full(table.num_rows, -1, dtype=np.int64)
        self.lang_of_row = np.full(table.num_rows, -1, dtype=np.int64)
        items, langs = np.nonzero(self.row >= 0)
        self.item_of_row[self.row[items, langs]] = items
        self.lang_of_row[self.row[items, langs]] = langs
        self.item_ids = np.array(item_ids, dtype=object)
        self.active = _active_items(self, params)
        self._columns = {c: _Column(arrow.column(c)) for c in ("question", "sentence", "paragraph", "negative")}
        self._check_batch_size(source)

    @property
    def n_langs(self) -> int:
        return len(self.languages)

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
        """(query rows, passage rows, items) of pair codes."""
        codes = np.asarray(codes, dtype=np.int64)
        q_rows, p_langs = np.divmod(codes, self.n_langs)
        items = self.item_of_row[q_rows]
        return q_rows, self.row[items, p_langs], items

    def texts(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        """The set_transform of the training data set: pair codes -> anchor/positive(/negative) texts."""
        codes = batch[CODE_COLUMN]
        q_rows, p_rows, _ = self.decode(codes)
        out = {"anchor": self._columns["question"].take(q_rows)}
        sentences = self._columns["sentence"].take(p_rows)
        paragraphs = self._columns["paragraph"].take(p_rows)
        with_paragraph = self.params.positive == "sentence+paragraph"
        out["positive"] = [answer_text(s, p, with_paragraph) for s, p in zip(sentences, paragraphs)]
        if self.params.hard_negatives:
            out["negative"] = self._columns["negative"].take(p_rows)
        out[CODE_COLUMN] = list(codes)
        return out

    def training_dataset(self) -> Dataset:
        """The data set the trainer sees: one int64 column of every possible pair code."""
        n = self.table.num_rows * self.n_langs
        codes = InMemoryTable.from_pydict({CODE_COLUMN: pa.array(np.arange(n, dtype=np.int64))})
        ds = Dataset(codes, fingerprint=f"hbnb-pair-codes-{n}")  # no hashing of 8M integers
        ds.set_transform(_PairTexts(self))
        return ds

    def describe(self, codes: list[int]) -> dict[str, Any]:
        """What a batch of codes holds: its kind, its language (mono), its language-pair counts."""
        q_rows, p_rows, items = self.decode(codes)
        q = self.lang_of_row[q_rows]
        p = self.lang_of_row[p_rows]
        pairs = Counter(f"{self.languages[a]}-{self.languages[b]}" for a, b in zip(q, p))
        same = q == p
        kind = "mono" if same.all() and len(set(q)) == 1 else "cross" if (~same).all() else "mixed"
        return {
            "kind": kind,
            "lang": self.languages[q[0]] if kind == "mono" else None,
            "size": len(codes),
            "unique_items": int(len(set(items.tolist()))),
            "pairs": dict(sorted(pairs.items())),
        }

    def _check_batch_size(self, source: str) -> None:
        if self.params.batch_size > len(self.active):
            raise ParamsError(
                f"batching.batch_size = {self.params.batch_size} is larger than the {len(self.active)} "
                f"usable items of {source}; use at most {len(self.active)}"
            )


def _training_languages(params: BatchingParams, available: list[str], source: str) -> list[str]:
    if params.strategy == "en-en":
        wanted = ["en"]
    else:
        wanted = params.languages if params.languages is not None else available
    missing = [lang for lang in wanted if lang not in available]
    if missing:
        key = "strategy 'en-en' needs" if params.strategy == "en-en" else "batching.languages has"
        raise ParamsError(
            f"{key} {', '.join(repr(m) for m in missing)}, absent from {source}; "
            f"allowed: {', '.join(available)}"
        )
    if params.strategy in ("x-y", "hybrid") and len(wanted) < 2:
        raise ParamsError(
            f"batching.strategy {params.strategy!r} needs at least 2 training languages for "
            f"cross-lingual batches; batching.languages gives {wanted}"
        )
    if params.language_weights is not None:
        unknown = [lang for lang in params.language_weights if lang not in wanted]
        if unknown:
            raise ParamsError(
                f"batching.language_weights names {', '.join(unknown)}, not a training language; "
                f"allowed: {', '.join(wanted)}"
            )
    return list(wanted)


def _allowed_pairs(params: BatchingParams, langs: list[str]) -> list[tuple[int, int]]:
    """Ordered cross-lingual pairs as language indices: all, an explicit list, or k sampled."""
    if params.strategy in ("x-x", "en-en"):
        return []
    index = {lang: i for i, lang in enumerate(langs)}
    every = [(a, b) for a in range(len(langs)) for b in range(len(langs)) if a != b]
    if params.pairs == "all":
        return every
    if isinstance(params.pairs, int):
        if params.pairs > len(every):
            raise ParamsError(
                f"batching.pairs = {params.pairs} asks for more pairs than the {len(every)} ordered "
                f"pairs of {len(langs)} training languages; use 1..{len(every)} or 'all'"
            )
        rng = np.random.default_rng([params.seed, 7919])
        chosen = sorted(rng.choice(len(every), size=params.pairs, replace=False).tolist())
        return [every[i] for i in chosen]
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


class _Column:
    """A text column read a few rows at a time, chunk by chunk.

    `ChunkedArray.take` would first concatenate every chunk of a memory-mapped
    column (hundreds of MB per batch); taking from the chunks that hold the rows
    touches only those.
    """

    def __init__(self, chunked: pa.ChunkedArray) -> None:
        self.chunks = chunked.chunks
        self.starts = np.cumsum([0] + [len(c) for c in self.chunks])

    def take(self, rows: np.ndarray) -> list[Any]:
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out: list[Any] = [None] * len(rows)
        for chunk in np.unique(which):
            sel = np.nonzero(which == chunk)[0]
            values = self.chunks[chunk].take(pa.array(rows[sel] - self.starts[chunk])).to_pylist()
            for i, value in zip(sel.tolist(), values):
                out[i] = value
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


def _nonempty(table: pa.Table, column: str) -> np.ndarray:
    return np.asarray(pc.greater(pc.utf8_length(table.column(column)), 0))


def _active_items(index: PairIndex, params: BatchingParams) -> np.ndarray:
    """Items that can serve the strategy, subsampled to `train_items` with the seed."""
    mono = index.has.any(axis=1) if params.strategy != "x-y" else np.zeros(len(index.row), dtype=bool)
    usable = np.nonzero(mono | index.pair_ok())[0]
    if params.train_items is not None:
        if params.train_items > len(usable):
            raise ParamsError(
                f"batching.train_items = {params.train_items} exceeds the {len(usable)} usable items; "
                f"use at most {len(usable)} (or leave it out for all)"
            )
        rng = np.random.default_rng([params.seed, 104729])
        usable = np.sort(rng.choice(usable, size=params.train_items, replace=False))
    return usable


class _Pool:
    """The items not yet used this epoch, in shuffled order, findable per language."""

    def __init__(self, order: np.ndarray, has: np.ndarray, pair_ok: np.ndarray) -> None:
        self.has, self.pair_ok = has, pair_ok
        self.used = np.zeros(len(has), dtype=bool)
        self.seqs = [order[has[order, lang]] for lang in range(has.shape[1])] + [order[pair_ok[order]]]
        self.starts = [0] * len(self.seqs)
        self.left = [int(len(seq)) for seq in self.seqs]  # unused items per language, then for cross

    def left_for(self, lang: int | None) -> int:
        """Unused items that have `lang` (or, for None, some allowed pair)."""
        return self.left[-1 if lang is None else lang]

    def take(self, lang: int | None, n: int) -> np.ndarray:
        """Up to n unused items having `lang` (None: some allowed pair), in shuffled order."""
        k = -1 if lang is None else lang
        seq, start = self.seqs[k], self.starts[k]
        taken: list[np.ndarray] = []
        count = 0
        while count < n and start < len(seq):
            chunk = seq[start : start + max(2 * n, 64)]
            pos = np.nonzero(~self.used[chunk])[0][: n - count]
            taken.append(chunk[pos])
            count += len(pos)
            start += int(pos[-1]) + 1 if count == n else len(chunk)
        self.starts[k] = start
        out = np.concatenate(taken) if taken else np.zeros(0, dtype=np.int64)
        self.used[out] = True
        counts = self.has[out].sum(axis=0)
        for lang_i in range(self.has.shape[1]):
            self.left[lang_i] -= int(counts[lang_i])
        self.left[-1] -= int(self.pair_ok[out].sum())
        return out


class HybridBatchSampler(DefaultBatchSampler):
    """X-X, X-Y, hybrid and en-en batches over a `PairIndex` (see the module docstring).

    Deterministic given the seed and the epoch (the trainer calls `set_epoch`).
    `incomplete` says what happens when the items left this epoch cannot fill the
    next group of batches: "drop" ends the epoch; "refill" tops the last group up with
    items drawn from outside it (used earlier in the epoch), then ends the epoch.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        *,
        index: PairIndex,
        world_size: int | None = None,
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        self.index = index
        self.params = index.params
        self.world_size = world_size if world_size is not None else _world_size()
        weights = self.params.language_weights
        raw = np.array([weights.get(lang, 0.0) if weights else 1.0 for lang in index.languages])
        self.weights = raw / raw.sum()

    def __len__(self) -> int:
        group = self.batch_size * self.world_size
        n = len(self.index.active)
        groups = math.ceil(n / group) if self.params.incomplete == "refill" else n // group
        return groups * self.world_size

    def __iter__(self):
        for batch in self.batches(self.epoch):
            yield self.index.codes(batch)

    def batches(self, epoch: int) -> list[Batch]:
        """The plan of one epoch: every batch with its kind, items and languages."""
        rng = np.random.default_rng([self.params.seed, epoch])
        pool = _Pool(rng.permutation(self.index.active), self.index.has, self.index.pair_ok())
        need = self.batch_size * self.world_size
        planned: list[Batch] = []
        while len(planned) < len(self):
            kind = self._kind(rng)
            lang = self._language(rng, pool, need) if kind == "mono" else None
            enough = pool.left_for(lang) >= need and not (kind == "mono" and lang is None)
            if not enough and self.params.incomplete == "drop":
                break
            if not enough and kind == "mono" and lang is None:
                lang = self._language(rng, pool, 1) if any(pool.left[:-1]) else self._language(rng, None, 0)
            items = pool.take(lang, need)
            if not enough:
                items = np.concatenate([items, self._refill(rng, items, lang, need - len(items))])
            planned += [self._batch(rng, kind, lang, part) for part in np.split(items, self.world_size)]
            if not enough:
                break
        return planned

    def _kind(self, rng: np.random.Generator) -> str:
        strategy = self.params.strategy
        if strategy in ("x-x", "en-en"):
            return "mono"
        if strategy == "x-y":
            return "cross"
        return "mono" if rng.random() < self.params.alpha else "cross"

    def _language(self, rng: np.random.Generator, pool: _Pool | None, need: int) -> int | None:
        """A language for a monolingual group (weighted), among those with `need` items left."""
        ok = np.array([pool is None or pool.left_for(lang) >= need for lang in range(self.index.n_langs)])
        weights = self.weights * ok
        if weights.sum() == 0:
            return None
        return int(rng.choice(self.index.n_langs, p=weights / weights.sum()))

    def _refill(self, rng: np.random.Generator, taken: np.ndarray, lang: int | None, n: int) -> np.ndarray:
        """n items outside `taken` that can serve the batch kind (they were used earlier this epoch)."""
        ok = self.index.has[:, lang] if lang is not None else self.index.pair_ok()
        candidates = np.setdiff1d(self.index.active[ok[self.index.active]], taken)
        if len(candidates) < n:
            raise ParamsError(
                f"batching.incomplete = 'refill' cannot fill a batch of {self.batch_size}: only "
                f"{len(candidates) + len(taken)} items can serve it; lower batching.batch_size"
            )
        return rng.choice(candidates, size=n, replace=False)

    def _batch(self, rng: np.random.Generator, kind: str, lang: int | None, items: np.ndarray) -> Batch:
        if kind == "mono":
            langs = np.full(len(items), lang, dtype=np.int64)
            return Batch(kind, items, langs, langs)
        pairs = np.array(self.index.pairs)
        avail = self.index.has[items][:, pairs[:, 0]] & self.index.has[items][:, pairs[:, 1]]
        choice = np.argmax(rng.random(avail.shape) * avail, axis=1)  # uniform among available pairs
        chosen = pairs[choice]
        return Batch(kind, items, chosen[:, 0], chosen[:, 1])


class SamplerFactory:
    """The trainer's `batch_sampler` hook: hbnb's sampler for the pair codes, sequential batches otherwise.

    The trainer builds its evaluation loader with the same hook; a validation set
    (plain anchor/positive rows, one per item) is read in order. The trainer pickles
    its arguments into every checkpoint: a pickled factory keeps no data (it cannot
    sample after unpickling, and says so).
    """

    def __init__(self, index: PairIndex | None) -> None:
        self.index = index

    def __call__(self, dataset: Dataset, batch_size: int, drop_last: bool, **kwargs: Any) -> DefaultBatchSampler:
        if CODE_COLUMN not in dataset.column_names:
            return DefaultBatchSampler(SequentialSampler(dataset), batch_size, drop_last, **kwargs)
        if self.index is None:
            raise RuntimeError("this sampler factory was unpickled from a checkpoint's arguments; build a new one")
        return HybridBatchSampler(dataset, batch_size, drop_last, index=self.index, **kwargs)

    def __reduce__(self):
        return SamplerFactory, (None,)


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


@dataclass
class RecordingCollator(SentenceTransformerDataCollator):
    """The sentence-transformers collator, recording what each batch really held.

    It strips the pair codes from the features and appends one record per batch
    (kind, language, pair counts) to `records`, the realised batch mix.
    """

    index: PairIndex | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        codes = [f.pop(CODE_COLUMN) for f in features if CODE_COLUMN in f]
        if codes and self.index is not None:
            self.records.append(self.index.describe(codes))
        return super().__call__(features)


def realised_mix(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of a batch log: share of monolingual batches, per-language and per-pair counts."""
    kinds = Counter(r["kind"] for r in records)
    langs = Counter(r["lang"] for r in records if r["kind"] == "mono")
    pairs: Counter[str] = Counter()
    for r in records:
        pairs.update(r["pairs"])
    return {
        "batches": len(records),
        "mono_share": kinds["mono"] / len(records) if records else 0.0,
        "kinds": dict(kinds),
        "mono_batches_per_language": dict(sorted(langs.items())),
        "examples_per_pair": dict(sorted(pairs.items())),
    }
