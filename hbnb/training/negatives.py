"""Hard negatives of the training examples, and the items each one must be kept apart from.

Both kinds of `batching.hard_negatives` give the `PairIndex` (`index.negatives`) one object
of the interface `Negatives`, which the pair texts and the sampler's swap step use:
`pick(code, row)`, the negative of a training example; `owners(text)`, the items for which a
negative is a right answer (so `HybridBatchSampler` keeps them out of its step); `has_row`,
the table rows that have a usable negative (the others are not trained):

- `true` (or `paragraph`): `ParagraphNegatives`, the data's `negative` column (another
  sentence of the answer's paragraph; `hbnb.data.parallel_qa`), built with the index;
- `mined`: `MinedNegatives`, mined and attached by `hbnb.training.mining.prepare` before
  training.

What a negative never is, and how:

- the positive: `mine_hard_negatives` excludes it (every candidate equal to it);
- a translation of the positive: a candidate whose text is the item's own passage in any
  language is dropped (by construction with `same`; checked for either);
- another example's positive or a translation of it, in the same batch (or, under DDP, the
  same step's batches of all processes, whose negatives the loss gathers). The candidates
  *are* other items' positives (the hardest negatives there are), so excluding every answer
  sentence would leave nothing to mine, and a choice made per batch when the texts are read
  would not see the other processes' batches. Instead every negative has *owners*, the items
  whose passage in some language is its text, and `HybridBatchSampler`, which plans whole
  steps, swaps an example whose negative's owner is in its step for another item (the
  swapped one goes back to the epoch's pool): the kinds and languages of the plan are
  unchanged, an item is still used once per epoch unless the epoch's unused items run out
  (then one used earlier fills in), and a replicate's batches stay a function of its seed.
  Strategy `random` keeps sentence-transformers' `NoDuplicatesBatchSampler`, which never puts
  a text twice in a batch (so a negative is never another example's positive) but, as for
  the positives themselves, allows translations.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hbnb import seeds
from hbnb.files import write_text


class Negatives(ABC):
    """A hard negative per training example of a `PairIndex`, and the *owners* of every negative: the items
    (numbers of the index) for which it is a right answer, in some language. An example's negative is never
    owned by its own item (a translation of the positive), and `HybridBatchSampler` keeps every owner out
    of the example's step (the module docstring of `hbnb.training.sampler`)."""

    def __init__(self, owners: dict[str, frozenset[int]]) -> None:
        self.owner_sets = owners  # negative text -> its owners

    @abstractmethod
    def pick(self, code: int, row: int) -> str:
        """The negative of the example `code` whose passage is table row `row` ("" for a row without)."""

    @abstractmethod
    def has_row(self, n_rows: int) -> np.ndarray:
        """Per table row: does it have a negative (one its own item does not own)?"""

    def owners(self, text: str) -> frozenset[int]:
        """The items for which `text` is a right answer (see the subclass for which texts count)."""
        return self.owner_sets.get(text, frozenset())

    @abstractmethod
    def record(self, out: Path) -> None:
        """Write what the run trains with to the run's folder `out` (`hbnb.training.trainer.train`)."""


def owner_sets(negatives: Iterable[str], items: Sequence[int], answers: Sequence[str]) -> dict[str, frozenset[int]]:
    """Every text of `negatives` -> the items whose answer it is: `answers[k]` is an answer of item `items[k]`."""
    owners: dict[str, set[int]] = {text: set() for text in negatives}
    for item, answer in zip(items, answers):
        holders = owners.get(answer)
        if holders is not None:
            holders.add(int(item))
    return {text: frozenset(held) for text, held in owners.items()}


class ParagraphNegatives(Negatives):
    """`hard_negatives: true`: the data's `negative` column, another sentence of the answer's paragraph.

    An example's negative is its passage row's, the same in every epoch. Its owners are the items whose
    *answer sentence* (the `sentence` column), in any language of the table, is the negative. With
    `positive: sentence` that is the item's positive itself. With `sentence+paragraph` the positive is the
    sentence followed by its paragraph, which no bare-sentence negative ever equals; but the negative still
    answers that item's question (in MNRL every question is scored against every negative of the batch), so
    it is a false negative for it all the same. (A mined negative is a passage in the positive's format, so
    there the owners are the items whose positive it is: `MinedNegatives`.) A row whose negative is its own
    item's answer sentence in another language has no negative, as a row with an empty one.
    """

    def __init__(self, by_row: list[str], row_items: np.ndarray, owners: dict[str, frozenset[int]]) -> None:
        super().__init__(owners)
        self.by_row = by_row  # table row -> its negative ("" for none)
        self.row_items = row_items  # table row -> its item number

    @classmethod
    def of_table(cls, table: pa.Table, row_items: np.ndarray) -> ParagraphNegatives:
        """The negatives of an arrow parallel QA table whose row k is of item number `row_items[k]`."""
        by_row = table.column("negative").to_pylist()
        negatives = {text for text in by_row if text}
        sentences = table.column("sentence")
        found = pc.fill_null(pc.is_in(sentences, value_set=pa.array(sorted(negatives), sentences.type)), False)
        matches = np.nonzero(np.asarray(found))[0]
        owners = owner_sets(negatives, row_items[matches].tolist(), sentences.take(matches).to_pylist())
        return cls(by_row, row_items, owners)

    def pick(self, code: int, row: int) -> str:
        return self.by_row[row] or ""

    def has_row(self, n_rows: int) -> np.ndarray:
        return np.array(
            [bool(text) and int(item) not in self.owners(text) for text, item in zip(self.by_row, self.row_items)],
            dtype=bool,
        )

    def record(self, out: Path) -> None:
        """Nothing: the negatives are the training data's own column."""


class MinedNegatives(Negatives):
    """The mined negatives of a `PairIndex`'s table rows, each with its owners (item numbers of the index):
    the items whose passage (in the positive's format), in some language, it is.

    `pick(code, row)` is the negative of one training example: one of its passage row's
    negatives, chosen from the seed and the code.
    """

    def __init__(
        self,
        by_row: dict[int, list[str]],
        owners: dict[str, frozenset[int]],
        seed: int,
        folder: Path,
        stats: dict[str, Any],
    ) -> None:
        super().__init__(owners)
        self.by_row = by_row  # table row -> its negatives, hardest first
        self.seed = seed
        self.folder = folder  # the cache entry
        self.key = folder.name
        self.stats = stats
        self._choice: dict[int, int] = {}

    def has_row(self, n_rows: int) -> np.ndarray:
        """Per table row: does it have a negative?"""
        out = np.zeros(n_rows, dtype=bool)
        out[[r for r, texts in self.by_row.items() if texts]] = True
        return out

    def pick(self, code: int, row: int) -> str:
        """The negative of the example `code` whose passage is table row `row` ("" for a row without)."""
        options = self.by_row.get(row)
        if not options:
            return ""  # only for codes the samplers never yield (sentence-transformers reads a few for its card)
        j = self._choice.get(code)
        if j is None:
            j = self._choice[code] = int(seeds.rng(self.seed, "hard-negatives", code).integers(len(options)))
        return options[j]

    def record(self, out: Path) -> None:
        """Write what the run trains with (the cache key and the mining's figures) to `out/negatives.json`."""
        write_text(out / "negatives.json", json.dumps({"cache_key": self.key, **self.stats}, indent=2))
