"""Named random streams: every random choice hbnb makes is drawn from one of these.

A stream is `numpy.random.SeedSequence(seed, spawn_key=(STREAMS[name], *more))`: the
run's seed, a fixed key per purpose (and, for per-epoch streams, the epoch). Streams
of different purposes are independent for every seed, and adding a purpose never
moves the numbers of another (as adding a magic salt to the seed could collide).
"""

from __future__ import annotations

import numpy as np

# purpose -> its spawn key; never renumber one (that would change every run's numbers)
STREAMS = {
    "bootstrap": 0,  # resamples of items for intervals (significance)
    "randomization": 1,  # sign flips of paired differences (significance)
    "pairs": 2,  # the k language pairs sampled for `batching.pairs: k`
    "train-items": 3,  # the items kept by `batching.train_items`
    "validation-items": 4,  # the items held out for the validation loss
    "epoch": 5,  # batch kinds, languages, items and pairs of one epoch (key: the epoch)
    "design-languages": 6,  # the fixed order whose first n are `batching.n_languages` (design seed)
    "design-pairs": 7,  # the fixed order whose first k are `batching.pairs: k` (design seed)
    "design-items": 8,  # the fixed order whose first N are `batching.train_items` (design seed)
    "seed-bootstrap": 9,  # two-level resamples over seeds and items (results over seed groups)
    "evaluation-items": 10,  # the items kept by `data.max_items` (a quick look at an evaluation set)
    "lexicon-holdout": 11,  # the 10% of parallel lines held out to measure an induced lexicon
    "code-switch": 12,  # which words are switched, into which language, by which translation
    "bitext": 13,  # the bitext pairs of training batches and their directions (key: the epoch)
    "bitext-slots": 14,  # where in an epoch the bitext batches go (key: the epoch)
    "hard-negatives": 15,  # which mined negative a training example uses (key: its pair code)
}


def rng(seed: int, stream: str, *more: int) -> np.random.Generator:
    """The generator of one named stream for a seed (`more`: further keys, e.g. the epoch)."""
    if stream not in STREAMS:
        raise KeyError(f"unknown random stream {stream!r}; named streams: {', '.join(STREAMS)}")
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[stream], *more)))
