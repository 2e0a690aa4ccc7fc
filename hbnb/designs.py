"""The rules of a nested training design: how many languages a strategy needs and how many
pairs L languages allow, with the messages that name the allowed range. Shared by the
parameter schema (checks without data) and the pair index (checks against the data).
"""

from __future__ import annotations


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
