"""The method's batch strategies as one sentence-transformers batch sampler, and the uncontrolled baseline.

- **X-X** (monolingual): one language per batch, drawn per batch (uniform over the
  training languages, or weighted); query and passage both in it.
- **X-Y** (cross-lingual): every example's query and passage in two different
  languages, drawn per example from the allowed ordered pairs.
- **hybrid**: per batch, monolingual with probability `alpha`, else cross-lingual.
- **en-en**: English only, the classic baseline.
- **random**: the "standard contrastive" training a user would otherwise run:
  sentence-transformers' own `NoDuplicatesBatchSampler` over every valid pair of the
  active items, all languages at once, with no control of batch languages. Its data
  set (`PairIndex.training_dataset`) holds only the valid pair codes: (item, q=p) for
  each training language an item has, and each allowed cross pair (q, p) it has in
  both languages (`pairs` defaults to all ordered pairs, as for hybrid). A batch mixes
  languages and monolingual and cross-lingual pairs (its logged kind is "mixed") and
  never repeats a text, but may hold two translations of one item. Its batch order
  comes from the trainer's generator and seed (`training.seed`, which an experiment's
  `seed` sets with `batching.seed`); `alpha`, `language_weights` and `incomplete` do
  not apply. An "epoch" of the training budget is still one pair per active item.

The languages, pairs and items a run trains on (its nested design: `n_languages`,
`pairs: k` counted per `pair_count`, `train_items`) are fixed by
`batching.design_seed`, not by the batch seed; `hbnb.training.pairs` says how.

The sampler yields pair codes of a `PairIndex` (`hbnb.training.pairs`). An item is
used at most once per step, so a batch never holds two rows of one item (no in-batch
negative is a translation of the positive), and once per epoch but for the items that
fill in when the epoch's unused ones run out (`incomplete: refill`; hard negatives,
below). Under DDP the N per-process batches of one step are drawn as a group of the
same kind and, for monolingual steps, the same language, so negatives gathered across
processes stay pure.

With hard negatives (`batching.hard_negatives`: `true`, another sentence of the answer's
paragraph, or `mined`; `hbnb.training.negatives`) a negative is often another item's
answer: a sentence of a paragraph is the answer of its other questions, and a mined
negative is the passage of another item. Every negative has *owners*, the items it
answers in some language (which texts count, per kind and `batching.positive`:
`hbnb.training.negatives`), and its own item is never one. Once a step's group is
planned, every example whose negative is owned by an item of the group is given another
item (from those not yet used this epoch, else from those used earlier in it), in turn,
unless an earlier swap of the round took the owners out (of two examples that answer
each other, one moves), until none is; a swapped-out item goes back to the epoch's pool,
for the next step. So no hard negative answers a question of its step (none is a
positive of the step, or a translation of one), and the kinds and languages of the plan
are unchanged. Items usable in few languages and answering each other (questions sharing
an answer sentence) can gather at the end of an epoch; there some are used twice.

Strategy `random` does not plan steps: `NoDuplicatesBatchSampler` keeps an identical text
out of a batch (a negative is never another example's exact positive), but not a
translation of it, nor, with `positive: sentence+paragraph`, a paragraph negative that is
another example's answer sentence; nor does it look at the other processes' batches.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sentence_transformers.base.sampler import DefaultBatchSampler, NoDuplicatesBatchSampler
from torch.utils.data import SequentialSampler

from hbnb import seeds
from hbnb.errors import ParamsError
from hbnb.training.distributed import world_size as _default_world_size
from hbnb.training.pairs import CODE_COLUMN, Batch, PairIndex

_MAX_SWAP_ROUNDS = 1000  # rounds of swaps that settle a group's hard negatives (a few at most, in practice)


class _Pool:
    """The items not yet used this epoch, in shuffled order, findable per language."""

    def __init__(self, order: np.ndarray, has: np.ndarray, pair_ok: np.ndarray) -> None:
        self.has, self.pair_ok = has, pair_ok
        self.used = np.zeros(len(has), dtype=bool)
        self.seqs = [order[has[order, lang]] for lang in range(has.shape[1])] + [order[pair_ok[order]]]
        self.starts = [0] * len(self.seqs)
        self.left = [int(len(seq)) for seq in self.seqs]  # unused items per language, then for cross
        self._places: list[np.ndarray] | None = None  # each item's place in each sequence (give_back)

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

    def give_back(self, items: np.ndarray) -> None:
        """Make taken items unused again, to be taken from their places in the shuffled order."""
        items = np.asarray(items, dtype=np.int64)
        if not len(items):
            return
        if self._places is None:
            self._places = []
            for seq in self.seqs:
                places = np.full(len(self.has), -1, dtype=np.int64)
                places[seq] = np.arange(len(seq))
                self._places.append(places)
        self.used[items] = False
        counts = self.has[items].sum(axis=0)
        for lang_i in range(self.has.shape[1]):
            self.left[lang_i] += int(counts[lang_i])
        self.left[-1] += int(self.pair_ok[items].sum())
        for k, places in enumerate(self._places):
            found = places[items]
            found = found[found >= 0]
            if len(found):
                self.starts[k] = min(self.starts[k], int(found.min()))


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
        if index.params.strategy == "random":
            raise ValueError("strategy 'random' batches come from NoDuplicatesBatchSampler (SamplerFactory)")
        self.index = index
        self.params = index.params
        self.world_size = world_size if world_size is not None else _default_world_size()
        weights = self.params.language_weights
        raw = np.array([weights.get(lang, 0.0) if weights else 1.0 for lang in index.languages])
        self.weights = raw / raw.sum()

    def __len__(self) -> int:
        groups = self._qa_group_count()
        if self.index.bitext is not None:  # bitext groups come on top: the QA items still fill an epoch
            groups = math.ceil(groups / (1 - self.index.bitext.share))
        return groups * self.world_size

    def _qa_group_count(self) -> int:
        group = self.batch_size * self.world_size
        n = len(self.index.active)
        return math.ceil(n / group) if self.params.incomplete == "refill" else n // group

    def __iter__(self):
        for batch in self.batches(self.epoch):
            if batch.kind == "bitext":  # items: bitext pairs; q_langs: their directions
                yield self.index.bitext_codes(batch.items, batch.q_langs)
            else:
                yield self.index.codes(batch)

    def batches(self, epoch: int) -> list[Batch]:
        """The plan of one epoch: every batch with its kind, items and languages."""
        rng = seeds.rng(self.params.seed, "epoch", epoch)
        groups = self._qa_groups(rng)
        bitext = self.index.bitext
        if bitext is None:
            return [batch for group in groups for batch in group]
        # bitext groups fill the epoch to its length at seeded places: an exact share, and never an
        # epoch shorter than len(self) (the trainer would stop before max_steps)
        total = len(self) // self.world_size
        slots = set(
            seeds.rng(self.params.seed, "bitext-slots", epoch)
            .choice(total, total - len(groups), replace=False)
            .tolist()
        )
        bitext_rng = seeds.rng(self.params.seed, "bitext", epoch)
        bitext_order: list[int] = []
        qa = iter(groups)
        planned: list[Batch] = []
        for slot in range(total):
            if slot in slots:
                for _ in range(self.world_size):  # each batch of the group: distinct sentences
                    pairs, directions = bitext.draw(bitext_rng, bitext_order, self.batch_size)
                    planned.append(Batch("bitext", pairs, directions, directions))
            else:
                planned += next(qa)
        return planned

    def _qa_groups(self, rng: np.random.Generator) -> list[list[Batch]]:
        """The QA batches of one epoch, a group of `world_size` batches (one per process) at a time."""
        pool = _Pool(rng.permutation(self.index.active), self.index.has, self.index.pair_ok())
        need = self.batch_size * self.world_size
        groups: list[list[Batch]] = []
        while len(groups) < self._qa_group_count():
            kind = self._kind(rng)
            lang = self._language(rng, pool, need) if kind == "mono" else None
            enough = pool.left_for(lang) >= need and not (kind == "mono" and lang is None)
            if not enough and self.params.incomplete == "drop":
                break
            if not enough and kind == "mono" and lang is None:
                lang = self._language(rng, pool, 1) if any(pool.left[:-1]) else self._language(rng, None, 0)
            taken = pool.take(lang, need)
            items = taken
            if not enough:
                items = np.concatenate([items, self._refill(rng, items, lang, need - len(items))])
            group = [self._batch(rng, kind, lang, part) for part in np.split(items, self.world_size)]
            if self.index.negatives is not None:
                group = self._apart(rng, pool, group, kind, lang, set(taken.tolist()))
            groups.append(group)
            if not enough:
                break
        return groups

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

    def _apart(
        self, rng: np.random.Generator, pool: _Pool, group: list[Batch], kind: str, lang: int | None, fresh: set[int]
    ) -> list[Batch]:
        """The group with every example whose hard negative is owned by an item of the group given another
        item, until none is (module docstring); `fresh`: the group's items taken from the pool this epoch."""
        batches = [Batch(b.kind, b.items.copy(), b.q_langs.copy(), b.p_langs.copy()) for b in group]
        removed: list[int] = []
        for _ in range(_MAX_SWAP_ROUNDS):
            members = set(np.concatenate([b.items for b in batches]).tolist())
            clashes = self._clashes(batches, members)
            if not clashes:
                pool.give_back(np.array([item for item in removed if item in fresh and item not in members]))
                return batches
            for batch, k, owners in clashes:
                if not owners & members:
                    continue  # settled by a swap before it in this round (a swapped-out owner): keep the example
                old = int(batch.items[k])
                new = self._replacement(rng, pool, lang, members | set(removed), fresh)
                members.discard(old)
                members.add(new)
                removed.append(old)
                one = self._batch(rng, kind, lang, np.array([new], dtype=np.int64))
                batch.items[k], batch.q_langs[k], batch.p_langs[k] = new, one.q_langs[0], one.p_langs[0]
        raise ParamsError(
            f"batching.hard_negatives: {self._negatives_kind()}: no step of {self.batch_size * self.world_size} "
            f"examples from the {len(self.index.active)} active items keeps every hard negative's owners out of it; "
            f"lower batching.batch_size, or train on more items"
        )

    def _clashes(self, batches: list[Batch], members: set[int]) -> list[tuple[Batch, int, frozenset[int]]]:
        """The examples (batch, position, its negative's owners) whose hard negative is owned by one of `members`."""
        negatives = self.index.negatives
        out = []
        for batch in batches:
            codes = self.index.codes(batch)
            rows = self.index.decode(codes)[1].tolist()
            for k, (code, row) in enumerate(zip(codes, rows)):
                owners = negatives.owners(negatives.pick(code, row))
                if owners & members:
                    out.append((batch, k, owners))
        return out

    def _replacement(
        self, rng: np.random.Generator, pool: _Pool, lang: int | None, avoid: set[int], fresh: set[int]
    ) -> int:
        """An item for a swapped-out example: the next unused one of the epoch, else one used earlier in it."""
        if pool.left_for(lang) > 0:
            new = int(pool.take(lang, 1)[0])
            fresh.add(new)
            return new
        ok = self.index.has[:, lang] if lang is not None else self.index.pair_ok()
        candidates = np.setdiff1d(self.index.active[ok[self.index.active]], np.array(sorted(avoid), dtype=np.int64))
        if not len(candidates):
            raise ParamsError(
                f"batching.hard_negatives: {self._negatives_kind()}: too few items to keep every hard negative's "
                f"owners out of a step of {self.batch_size * self.world_size} examples ({len(self.index.active)} "
                f"active items); lower batching.batch_size, or train on more items"
            )
        return int(rng.choice(candidates))

    def _negatives_kind(self) -> str:
        return "mined" if self.params.hard_negatives == "mined" else "true"

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
    """The trainer's `batch_sampler` hook: hbnb's sampler for the pair codes (sentence-transformers'
    `NoDuplicatesBatchSampler` for strategy `random`), sequential batches otherwise.

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
        if self.index.params.strategy == "random":
            return NoDuplicatesBatchSampler(dataset, batch_size, drop_last, **kwargs)
        return HybridBatchSampler(dataset, batch_size, drop_last, index=self.index, **kwargs)

    def __reduce__(self):
        return SamplerFactory, (None,)
