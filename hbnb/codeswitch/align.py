"""Word alignment of parallel lines with eflomal, symmetrised, counted into word-link counts."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hbnb.codeswitch.tokens import aligner_line, is_word


def _links(line: str) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in (x.split("-") for x in line.split())}


_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def grow_diag_final_and(forward: set[tuple[int, int]], reverse: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Symmetrise two directional alignments (Koehn et al., 2005): start from their intersection,
    grow into neighbouring links of the union that align an unaligned word, then add union
    links whose two words are both unaligned."""
    union = forward | reverse
    links = forward & reverse
    src = {i for i, _ in links}
    tgt = {j for _, j in links}
    grown = True
    while grown:
        grown = False
        for i, j in sorted(links):
            for di, dj in _NEIGHBOURS:
                p = (i + di, j + dj)
                if p in union and p not in links and (p[0] not in src or p[1] not in tgt):
                    links.add(p)
                    src.add(p[0])
                    tgt.add(p[1])
                    grown = True
    for i, j in sorted(union - links):
        if i not in src and j not in tgt:
            links.add((i, j))
            src.add(i)
            tgt.add(j)
    return links


def align_counts(xs: Sequence[str], ys: Sequence[str]) -> pd.DataFrame:
    """Symmetrised word-link counts of line-aligned texts: columns a, b (lower-cased words), count."""
    import eflomal

    pairs = [(x, y) for x, y in ((aligner_line(x), aligner_line(y)) for x, y in zip(xs, ys)) if x and y]
    counts: Counter[tuple[str, str]] = Counter()
    if not pairs:
        return pd.DataFrame({"a": [], "b": [], "count": []})
    with tempfile.TemporaryDirectory(prefix="hbnb-align-") as tmp:
        fwd, rev = Path(tmp) / "fwd", Path(tmp) / "rev"
        eflomal.Aligner().align(
            [x for x, _ in pairs], [y for _, y in pairs], links_filename_fwd=str(fwd), links_filename_rev=str(rev)
        )
        forward = fwd.read_text(encoding="utf-8").splitlines()
        reverse = rev.read_text(encoding="utf-8").splitlines()
    word = {}
    for (x, y), f, r in zip(pairs, forward, reverse):
        a, b = x.split(" "), y.split(" ")
        for i, j in grow_diag_final_and(_links(f), _links(r)):
            s, t = a[i], b[j]
            if word.setdefault(s, is_word(s)) and word.setdefault(t, is_word(t)):
                counts[(s, t)] += 1
    return pd.DataFrame(
        {"a": [s for s, _ in counts], "b": [t for _, t in counts], "count": np.fromiter(counts.values(), np.int64)}
    )
