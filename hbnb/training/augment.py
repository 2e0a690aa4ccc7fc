"""What code-switching and bitext add to the training stream of a `PairIndex`.

- `SwitchedTexts` (the `training.code_switching` block): a `share` of the training
  examples are code-switched (`hbnb.codeswitch`): their query, positive or both, in
  the language the pair code gives, into the target languages (default: the training
  languages). The choice is a function of the replicate seed and the pair code alone
  (stream "code-switch", keyed by the code), so an example is switched the same way in
  every epoch and after a resume: a fixed augmented corpus, as Litschko et al. (2023)
  build theirs once. A switched example keeps its pair code, hence its item: the
  samplers' "no two translations of one item in a batch" and a batch's kind (from the
  unswitched languages) are unchanged.
- `BitextPool` (the `training.bitext` block): translation pairs of the chosen
  languages from parallel text, as extra codes after the QA pair codes. Bitext groups
  come on top of an epoch's QA groups, as many as make them a `share` of the epoch, at
  seeded places (every example cross-lingual, a random direction); a batch never holds
  two pairs of one *sentence group* (pairs sharing their English side, as WMT22's en->xx
  lines do, or their first side without English). With strategy `random` bitext codes
  are a `share` of the examples, and sentence-transformers' sampler keeps equal texts out
  of one batch.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hbnb import seeds
from hbnb.codeswitch.sources import covered_pairs, parallel_lines, source_name
from hbnb.codeswitch.switch import CodeSwitcher
from hbnb.errors import HbnbError, ParamsError
from hbnb.params import BitextParams, CodeSwitchingParams

AUGMENT_COLUMN = "hbnb_augment"  # per example: what was switched (JSON), popped by the collator


class SwitchedTexts:
    """The code-switching of a training stream (see the module docstring)."""

    def __init__(self, params: CodeSwitchingParams, languages: Sequence[str], seed: int, build: bool = True) -> None:
        self.params = params
        self.seed = seed
        targets = params.languages or list(languages)
        self.switcher = CodeSwitcher(
            params.sources_(), targets, params.rate, params.per, params.min_count, params.min_prob
        )
        self.lexicons: dict = {}
        try:
            if build:
                self.lexicons = self.switcher.prepare(languages)
            else:  # a plan: every direction is checked, none aligned (training builds them)
                self.switcher.check(languages)
        except HbnbError as exc:  # an unreachable pair, an unknown source, a bad file: name the block
            raise ParamsError(f"training.code_switching: {exc}") from None

    def apply(self, codes: Sequence[int], texts: dict[str, list[str]], q_langs, p_langs) -> list[dict[str, Any]]:
        """Switch the chosen examples of a batch in place; one record per example."""
        sides = {"query": ("anchor",), "positive": ("positive",), "both": ("anchor", "positive")}[self.params.switch]
        records = []
        for k, code in enumerate(codes):
            rng = seeds.rng(self.seed, "code-switch", int(code))
            record: dict[str, Any] = {"switched": False, "words": {}}
            if rng.random() < self.params.share:
                record["switched"] = True
                for side in sides:
                    lang = q_langs[k] if side == "anchor" else p_langs[k]
                    out = self.switcher.switch(texts[side][k], lang, rng)
                    texts[side][k] = out.text
                    for _, _, target in out.replaced:
                        record["words"][target] = record["words"].get(target, 0) + 1
                    record.setdefault("eligible", 0)
                    record["eligible"] += out.eligible
            records.append(record)
        return records

    def describe(self) -> dict[str, Any]:
        return {
            "sources": [source_name(s) for s in self.params.sources_()],
            "rate": self.params.rate,
            "share": self.params.share,
            "switch": self.params.switch,
            "per": self.params.per,
            "lexicon_sizes": {pair: lex.size for pair, lex in self.lexicons.items()},
            "pivoted": sorted(pair for pair, lex in self.lexicons.items() if lex.pivot),
        }


@dataclass(frozen=True)
class BitextPool:
    """Translation pairs for training: languages, texts and sentence groups, one row per pair."""

    a_lang: list[str]
    b_lang: list[str]
    a_text: list[str]
    b_text: list[str]
    group: np.ndarray  # sentence group of each pair (no two of one group in a batch)
    share: float
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.a_text)

    @classmethod
    def build(cls, params: BitextParams, languages: Sequence[str]) -> BitextPool:
        langs = sorted(set(params.languages or languages))
        sources = params.sources_()
        rows: dict[tuple[str, str, str, str], None] = {}
        for i, a in enumerate(langs):
            for b in langs[i + 1 :]:
                for source in sources:
                    if frozenset((a, b)) in covered_pairs(source):
                        xs, ys = parallel_lines(source, a, b)
                        rows.update(dict.fromkeys((a, b, x, y) for x, y in zip(xs, ys) if x.strip() and y.strip()))
        if not rows:
            raise ParamsError(
                f"training.bitext: no source among {', '.join(source_name(s) for s in sources)} has parallel text "
                f"for a pair of {', '.join(langs)}; add tatoeba (xxx-en) or wmt22, or set bitext.languages"
            )
        keys = list(rows)
        groups: dict[str, int] = {}
        group = np.array(
            [groups.setdefault(y if a != "en" and b == "en" else x, len(groups)) for a, b, x, y in keys],
            dtype=np.int64,
        )
        return cls(
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [k[3] for k in keys],
            group,
            params.share,
            tuple(source_name(s) for s in sources),
        )

    @property
    def n_groups(self) -> int:
        return int(len(np.unique(self.group)))

    def text(self, j: int, direction: int) -> tuple[str, str, str, str]:
        """(query, positive, query language, positive language) of pair j in a direction."""
        if direction == 0:
            return self.a_text[j], self.b_text[j], self.a_lang[j], self.b_lang[j]
        return self.b_text[j], self.a_text[j], self.b_lang[j], self.a_lang[j]

    @staticmethod
    def encode(base: int, pairs: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Codes of pairs in directions (0: a->b, 1: b->a), numbered after the QA codes (from `base`)."""
        return base + 2 * np.asarray(pairs, dtype=np.int64) + np.asarray(directions, dtype=np.int64)

    @staticmethod
    def decode(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pairs, directions) of bitext codes minus the base: the inverse of `encode`."""
        return np.divmod(np.asarray(offsets, dtype=np.int64), 2)

    def random_codes(self, n_valid: int, seed: int, base: int) -> np.ndarray:
        """For strategy random: bitext codes (from `base`) making a `share` of the examples beside
        n_valid QA codes; pairs cycled in random orders, random directions (stream "bitext")."""
        n = int(round(self.share / (1 - self.share) * n_valid))
        rng = seeds.rng(seed, "bitext", 0)
        pairs = np.concatenate([rng.permutation(len(self)) for _ in range(-(-n // len(self)))])[:n]
        return self.encode(base, pairs, rng.integers(0, 2, size=n))

    def describe(self, offsets: np.ndarray) -> dict[str, Any]:
        """What the bitext codes of a batch (minus the base) hold: count, different sentences, directions."""
        j, direction = self.decode(offsets)
        names = Counter("-".join(self.text(int(a), int(d))[2:]) for a, d in zip(j, direction))
        return {
            "bitext": len(j),
            "bitext_sentences": int(len(set(self.group[j].tolist()))),
            "bitext_pairs": dict(sorted(names.items())),
        }

    def pairs(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a, b in zip(self.a_lang, self.b_lang):
            out[f"{a}-{b}"] = out.get(f"{a}-{b}", 0) + 1
        return dict(sorted(out.items()))

    def draw(self, rng: np.random.Generator, order: list[int], n: int) -> tuple[np.ndarray, np.ndarray]:
        """n pairs of distinct sentence groups, taken from the end of `order` (refilled with a new
        permutation when it runs out), and a direction for each (0: a->b, 1: b->a)."""
        taken: list[int] = []
        seen: set[int] = set()
        skipped: list[int] = []
        while len(taken) < n:  # ends: the sampler checks that the pool has n sentence groups
            if not order:
                order.extend(rng.permutation(len(self)).tolist())
            j = order.pop()
            g = int(self.group[j])
            if g in seen:
                skipped.append(j)
                continue
            seen.add(g)
            taken.append(j)
        order.extend(reversed(skipped))  # the skipped pairs come first in the next batch (taken from the end)
        return np.array(taken, dtype=np.int64), rng.integers(0, 2, size=n)


def augment_texts(index: Any, codes: np.ndarray, out: dict[str, list], q_langs: list[str], p_langs: list[str]) -> None:
    """Fill in the bitext examples of a batch of codes (those from `index.base` on) and code-switch
    its chosen QA examples, in place; add one record per example (AUGMENT_COLUMN)."""
    qa = np.nonzero(codes < index.base)[0]
    if index.bitext is not None:
        bitext = np.nonzero(codes >= index.base)[0]
        for i, j, direction in zip(bitext.tolist(), *index.bitext.decode(codes[bitext] - index.base)):
            out["anchor"][i], out["positive"][i], q_langs[i], p_langs[i] = index.bitext.text(int(j), int(direction))
    records: list[dict[str, Any]] = [{"switched": False, "words": {}} for _ in range(len(codes))]
    if index.switching is not None and len(qa):
        part = {side: [out[side][i] for i in qa] for side in ("anchor", "positive")}
        done = index.switching.apply(codes[qa].tolist(), part, [q_langs[i] for i in qa], [p_langs[i] for i in qa])
        for k, i in enumerate(qa.tolist()):
            out["anchor"][i], out["positive"][i], records[i] = part["anchor"][k], part["positive"][k], done[k]
    # the code makes each record unique: sentence-transformers' NoDuplicatesBatchSampler (random)
    # compares every column's values across a batch
    out[AUGMENT_COLUMN] = [json.dumps({"code": int(c), **r}, separators=(",", ":")) for c, r in zip(codes, records)]


def augmentation(params: Any, index: Any, build: bool = True) -> tuple[SwitchedTexts | None, BitextPool | None]:
    """The code-switching and bitext of a run's training stream (`TrainParams`), sources checked
    against its training languages before any model is loaded; lexicons built unless not `build`."""
    switching = (
        SwitchedTexts(params.code_switching, index.languages, params.batching.seed, build)
        if params.code_switching is not None
        else None
    )
    bitext = BitextPool.build(params.bitext, index.languages) if params.bitext is not None else None
    return switching, bitext
