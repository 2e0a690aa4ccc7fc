"""Benchmark: induce the lexicons of every WMT22 and Tatoeba language pair (eflomal, 2 cores).

Prints, per source, the pairs, parallel lines, wall time and the peak memory of this
process and of the aligner processes (eflomal runs as a child program). Runs on an
empty cache of its own, so every pair is aligned. With --hit-rates it also prints the
held-out hit rate table (90/10 lines) for the pairs of --hit-pairs, per source.

    .venv/bin/python bench/lexicon_induction.py [--sources wmt22 tatoeba] [--hit-rates]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

FIRST_HIT_PAIRS = ("en-de", "en-ru", "en-zh", "en-ja", "en-cs", "en-uk", "de-en")
TATOEBA_HIT = ("ar", "de", "es", "hi", "ru", "th", "tr", "zh", "fi", "ko")
XQUAD_HIT = ("de", "es", "ru", "zh", "th")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", nargs="+", default=["wmt22", "tatoeba"])
    parser.add_argument("--hit-rates", action="store_true")
    parser.add_argument("--cache", default=None, help="cache folder (default: a new empty one)")
    args = parser.parse_args()
    os.environ["HBNB_CACHE"] = args.cache or tempfile.mkdtemp(prefix="hbnb-bench-lexicon-")

    from hbnb.codeswitch import lexicon as lx
    from hbnb.codeswitch.sources import covered_pairs, parallel_lines

    total = 0.0
    for source in args.sources:
        pairs = sorted(tuple(sorted(p)) for p in covered_pairs(source))
        lines = 0
        start = time.perf_counter()
        for a, b in pairs:
            lines += len(parallel_lines(source, a, b)[0])
            lx.pair_counts([source], a, b)
        wall = time.perf_counter() - start
        total += wall
        print(f"{source}: {len(pairs)} pairs, {lines} parallel lines, {wall:.1f} s ({wall / len(pairs):.2f} s a pair)")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"all: {total:.1f} s; peak RSS {own:.0f} MB (this process), {children:.0f} MB (largest aligner process)")
    if not args.hit_rates:
        return
    print("\nheld-out hit rate (induce on 90% of the lines, replace by the top translation on the other 10%)")
    print(f"{'source':<8} {'pair':<6} {'lines':>6} {'entries':>8} {'coverage':>9} {'replaced':>9} {'hit rate':>9}")
    rows = [("wmt22", p) for p in FIRST_HIT_PAIRS]
    rows += [("tatoeba", f"{x}-en") for x in TATOEBA_HIT] + [("xquad", f"en-{x}") for x in XQUAD_HIT]
    for source, pair in rows:
        h = lx.heldout_hit_rate([source], pair)
        print(
            f"{source:<8} {pair:<6} {h['heldout_lines']:>6} {h['size']:>8} {h['coverage']:>9} "
            f"{h['replaced']:>9} {h['hit_rate']:>9}"
        )


if __name__ == "__main__":
    main()
