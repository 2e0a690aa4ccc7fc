"""The rules of a nested training design: how many languages a strategy needs and how many
pairs L languages allow, with the messages that name the allowed range, and the fixed
random orders (of the design seed) whose prefixes are its languages, pairs and items. Shared by the
parameter schema (checks without data) and the pair index (checks against the data).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hbnb import seeds

if TYPE_CHECKING:
    from hbnb.params import BatchingParams


def min_languages(strategy: str) -> int:
    """The fewest training languages a strategy works with."""
    return 2 if strategy in ("x-y", "hybrid") else 1


def max_pairs(n_languages: int, pair_count: str) -> int:
    """The largest `pairs: k` for n training languages: L(L-1)/2 unordered pairs or L(L-1) directions."""
    return n_languages * (n_languages - 1) // (2 if pair_count == "unordered" else 1)


def n_languages_problem(n: int, strategy: str, candidates: int | None, where: str) -> str | None:
    """Why n training languages cannot be (None: they can); `candidates`: how many there are (None: unknown)."""
    low = min_languages(strategy)
    if n < low:
        allowed = f"{low}..{candidates}"
        if candidates is None:
            allowed = f"{low} or more, up to the number of languages in the data"
        return f"strategy {strategy!r} needs at least {low} training languages; allowed {allowed}"
    if candidates is not None and n > candidates:
        return f"more than the {candidates} candidate languages ({where}); allowed {low}..{candidates}"
    return None


def pairs_problem(k: int, n_languages: int, pair_count: str) -> str | None:
    """Why `pairs: k` cannot be drawn from n training languages (None: it can)."""
    top = max_pairs(n_languages, pair_count)
    if k <= top:
        return None
    if top == 0:
        return f"{n_languages} training language has no cross-lingual pairs; leave pairs out (all)"
    if pair_count == "unordered":
        return (
            f"more pairs than {n_languages} training languages allow ({top} unordered pairs, each trained in "
            f"both directions); allowed 1..{top} (pair_count 'ordered' counts directions: 1..{2 * top})"
        )
    return f"more pairs than {n_languages} training languages allow ({top} ordered directions); allowed 1..{top}"


# ----------------------------------------------------------------------------- the fixed orders of a design seed


def design_language_order(params: BatchingParams, candidates: list[str]) -> list[str]:
    """The fixed order whose first n are `n_languages: n`: languages_first, then the other
    candidates in the random order of the design seed (over the sorted candidates)."""
    ordered = sorted(candidates)
    shuffled = [ordered[i] for i in seeds.rng(params.design_seed, "design-languages").permutation(len(ordered))]
    return list(params.languages_first) + [lang for lang in shuffled if lang not in params.languages_first]


def design_pair_order(params: BatchingParams, candidates: list[str]) -> list[tuple[str, str]]:
    """The fixed random order (design seed) of the candidates' pairs whose first k are `pairs: k`:
    unordered pairs (a < b) or ordered directions, as `pair_count` says."""
    names = sorted(candidates)
    if params.pair_count == "unordered":
        pool = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    else:
        pool = [(a, b) for a in names for b in names if a != b]
    return [pool[i] for i in seeds.rng(params.design_seed, "design-pairs").permutation(len(pool))]


def design_item_order(item_ids: np.ndarray, design_seed: int) -> np.ndarray:
    """The fixed random order (design seed) of all items, as indices into `item_ids`, whose first
    usable N are `train_items: N`; drawn over the sorted ids, so the table's row order does not matter."""
    by_id = np.argsort(np.asarray(item_ids, dtype=str), kind="stable")
    return by_id[seeds.rng(design_seed, "design-items").permutation(len(by_id))]
