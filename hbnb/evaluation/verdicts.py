"""Verdicts on claims about strategies, from a seed x item comparison (`replicates.SeedComparison`).

- `directional`: "b > a" / "b < a": supported when the interval lies on the claimed side
  of 0, refuted when it lies on the other side, else inconclusive;
- `equivalent`: "b ~ a within M": two one-sided tests (TOST) on the bootstrap draws;
- `best`: "X is best": an intersection-union test over X's comparisons with the others.

The p-value definitions are in the docstring of each function and of `replicates`.
Each function answers one claim; a caller asking several questions corrects for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hbnb.errors import ParamsError
from hbnb.evaluation.replicates import SeedComparison, Side
from hbnb.evaluation.significance import _check_level, _percentile_interval


@dataclass(frozen=True)
class Verdict:
    """The verdict on a claim ("supported", "refuted" or "inconclusive"), the p-value that decides it, and why."""

    verdict: Literal["supported", "refuted", "inconclusive"]
    p: float
    reason: str


def directional(c: SeedComparison, side: Side) -> Verdict:
    """The claim "b > a" (`side=">"`) or "b < a" (`side="<"`) from a comparison of b - a.

    Supported when the interval (at `c.level`) lies entirely on the claimed side of 0,
    refuted when it lies entirely on the other side, else inconclusive. `p` is the
    one-sided bootstrap p on the claimed side: for ">", (1 + #{d* <= 0}) / (1 + R).
    """
    _check_side(side)
    draws = _valid(c)
    wrong = (draws <= 0) if side == ">" else (draws >= 0)
    p = (1 + int(wrong.sum())) / (1 + draws.size)
    interval = f"{_percent(c.level)} interval {_span(c.low, c.high)}"
    above, below = c.low > 0, c.high < 0
    if (above and side == ">") or (below and side == "<"):
        return Verdict("supported", p, f"{interval} lies {'above' if above else 'below'} 0")
    if above or below:
        return Verdict("refuted", p, f"{interval} lies {'above' if above else 'below'} 0")
    return Verdict("inconclusive", p, f"{interval} contains 0")


def equivalent(c: SeedComparison, margin: float, alpha: float = 0.05) -> Verdict:
    """The claim "b ~ a within `margin`" by two one-sided tests (TOST) on the bootstrap draws.

    p_low = (1 + #{d* <= -margin}) / (1 + R) tests H0: delta <= -margin, p_high =
    (1 + #{d* >= margin}) / (1 + R) tests H0: delta >= margin, and p = max(p_low, p_high).
    Supported (equivalent) when p <= alpha, which is the (1 - 2 alpha) percentile interval
    lying inside (-margin, margin) up to the +1 correction; refuted when the (1 - alpha)
    interval lies entirely outside [-margin, margin] (the difference is significantly
    larger than the margin); else inconclusive.
    """
    if not margin > 0:
        raise ParamsError(f"equivalent: margin must be > 0, got {margin}")
    _check_level(alpha, "alpha")
    draws = _valid(c)
    n = 1 + draws.size
    p = max((1 + int((draws <= -margin).sum())) / n, (1 + int((draws >= margin).sum())) / n)
    bounds = f"(-{margin:g}, {margin:g})"
    if p <= alpha:
        low, high = _percentile_interval(draws, 1 - 2 * alpha)
        interval = f"{_percent(1 - 2 * alpha)} interval {_span(low, high)}"
        return Verdict("supported", p, f"TOST p = {p:.3g} <= {alpha:g}: {interval} lies inside {bounds}")
    low, high = _percentile_interval(draws, 1 - alpha)
    interval = f"{_percent(1 - alpha)} interval {_span(low, high)}"
    if low > margin:
        return Verdict("refuted", p, f"{interval} lies above +{margin:g}")
    if high < -margin:
        return Verdict("refuted", p, f"{interval} lies below -{margin:g}")
    reason = f"TOST p = {p:.3g} > {alpha:g} and {interval} overlaps [-{margin:g}, {margin:g}]"
    return Verdict("inconclusive", p, reason)


def best(comparisons: Mapping[str, SeedComparison], side: Side) -> Verdict:
    """The claim "X is best" from the comparisons of X (as b) against each other strategy (as a, the keys).

    `side=">"`: higher is better; `side="<"`: lower is better. Supported when every
    `directional` verdict is supported, refuted when any is refuted (another strategy is
    significantly better), else inconclusive; `p` is the largest component p.

    "Supported" is an intersection-union test: the claim holds only if every component
    holds, so the largest component p is a valid p for it at level alpha and no
    multiplicity correction is needed. "Refuted" rests on a single component out of
    several; if that conclusion matters on its own, correct it (e.g. Holm) over the
    component p-values.
    """
    _check_side(side)
    if not comparisons:
        raise ParamsError("best: no comparisons; pass X's comparison against each other strategy")
    verdicts = {name: directional(c, side) for name, c in comparisons.items()}
    p = max(v.p for v in verdicts.values())
    word = "better" if side == ">" else "lower"
    refuted = [f"{name!r} ({v.reason})" for name, v in verdicts.items() if v.verdict == "refuted"]
    if refuted:
        return Verdict("refuted", p, f"significantly worse than {', '.join(refuted)}")
    open_ = [f"{name!r} ({v.reason})" for name, v in verdicts.items() if v.verdict == "inconclusive"]
    if open_:
        return Verdict("inconclusive", p, f"not separated from {', '.join(open_)}")
    return Verdict("supported", p, f"significantly {word} than all {len(verdicts)} others: {', '.join(verdicts)}")


def _check_side(side: str) -> None:
    if side not in (">", "<"):
        raise ParamsError(f"side must be '>' or '<', got {side!r}")


def _valid(c: SeedComparison) -> np.ndarray:
    draws = np.asarray(c.draws, dtype=float)
    draws = draws[~np.isnan(draws)]
    if not draws.size:
        raise ParamsError("the comparison holds no valid bootstrap draws")
    return draws


def _percent(level: float) -> str:
    return f"{100 * level:g}%"


def _span(low: float, high: float) -> str:
    return f"[{low:.3g}, {high:.3g}]"
