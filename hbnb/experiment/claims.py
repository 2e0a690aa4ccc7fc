"""Claims an experiment file states about its batch strategies, checked against its results.

A claim is one line of a small grammar over strategy names (`batching.strategy`
values), or names of seed groups, and headline figures of an evaluation set:

- `A > B on FIGURE` / `A < B on FIGURE`: A's figure is higher / lower than B's;
- `A ~ B on FIGURE within M`: A and B are equivalent within a margin M (TOST);
- `A best on FIGURE`: A beats every other trained strategy of the same model (higher,
  or lower where lower is better, as for rank distance).

FIGURE is a headline key of the evaluation set (`mono_map`, `cross_map`,
`multilingual_map`, `rank_distance`, ...) or its short form without `_map` (`mono`,
`cross`, `multilingual`). The entry `paper` stands for `PAPER_CLAIMS`, the paper's four
claims. Verdicts come from `hbnb.report.groups.verdicts`, per model, evaluation set
and setting of the other swept factors, from the seed x item interval of the difference.

A and B may instead name two seed groups of the file (a variant's name, or a run name
without its seed, e.g. `hybrid-acs-0.5 > hybrid-none on cross`): the claim then compares
those two configurations directly, once per evaluation set, whatever else differs
between them (an addition to the training data, a model). A name that is a strategy of
the file means the strategy; `best` ranks strategies only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# the paper's claim: hybrid ~ X-X on mono, ~ X-Y on cross, best on multilingual, least bias
PAPER_CLAIMS = (
    "hybrid ~ x-x on mono within 0.01",
    "hybrid ~ x-y on cross within 0.01",
    "hybrid best on multilingual",
    "hybrid best on rank_distance",
)
BLOCKS = {"paper": PAPER_CLAIMS}

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"  # a strategy, a group (variant) name or a figure
_PATTERN = re.compile(
    rf"^\s*(?P<a>{_NAME})\s+(?:(?P<rel>[<>~])\s+(?P<b>{_NAME})|(?P<best>best))\s+on\s+(?P<figure>{_NAME})"
    r"(?:\s+within\s+(?P<margin>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?\s*$"
)


@dataclass(frozen=True)
class Claim:
    """One parsed claim; `text` is how the file states it."""

    text: str
    subject: str  # the strategy (or seed group) the claim is about (A)
    relation: Literal[">", "<", "~", "best"]
    other: str | None  # B; None for "best"
    figure: str
    margin: float | None = None

    @property
    def strategies(self) -> tuple[str, ...]:
        return (self.subject,) if self.other is None else (self.subject, self.other)


def parse(text: str) -> Claim:
    """Parse one claim; a ValueError says what is wrong and shows the grammar."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a claim; write 'A > B on FIGURE', 'A < B on FIGURE', "
            f"'A ~ B on FIGURE within MARGIN' or 'A best on FIGURE' (e.g. {PAPER_CLAIMS[0]!r}), or 'paper'"
        )
    relation = "best" if match["best"] else match["rel"]
    margin = float(match["margin"]) if match["margin"] else None
    if relation == "~" and not margin:
        raise ValueError(f"{text!r}: an equivalence claim needs a margin > 0, e.g. '... within 0.01'")
    if relation != "~" and margin is not None:
        raise ValueError(f"{text!r}: 'within' belongs to equivalence claims ('A ~ B on FIGURE within M') only")
    if match["b"] is not None and match["b"] == match["a"]:
        raise ValueError(f"{text!r}: a claim compares two different strategies (or groups)")
    return Claim(text.strip(), match["a"], relation, match["b"], match["figure"], margin)


def expand(entries: list[str]) -> list[Claim]:
    """The claims of an experiment file's `claims:` list, named blocks (`paper`) expanded."""
    claims: list[Claim] = []
    for entry in entries:
        for text in BLOCKS.get(entry.strip(), (entry,)):
            claims.append(parse(text))
    return claims
