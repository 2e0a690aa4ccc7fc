"""Named random streams: deterministic per (seed, purpose), independent across purposes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hbnb import seeds
from hbnb.data import load_parallel_qa
from hbnb.evaluation.significance import macro_ci
from hbnb.params import BatchingParams
from hbnb.training import PairIndex


def test_a_stream_is_a_function_of_seed_purpose_and_key() -> None:
    first = seeds.rng(7, "epoch", 3).random(5)
    assert np.array_equal(first, seeds.rng(7, "epoch", 3).random(5))
    others = [seeds.rng(7, "epoch", 4), seeds.rng(8, "epoch", 3), seeds.rng(7, "pairs"), seeds.rng(7, "train-items")]
    assert all(not np.array_equal(first, g.random(5)) for g in others)
    assert len(set(seeds.STREAMS.values())) == len(seeds.STREAMS)  # one spawn key per purpose


def test_an_unknown_stream_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown random stream 'epochs'; named streams: bootstrap"):
        seeds.rng(0, "epochs")


def test_the_bootstrap_draws_are_the_seed_sequences_first_child() -> None:
    """The significance streams are SeedSequence(seed).spawn(2), as before they were named."""
    rng = np.random.default_rng(0)
    frame = {"item_id": np.repeat(np.arange(40), 2), "stratum": np.tile(["a", "b"], 40), "value": rng.random(80)}
    ci = macro_ci(pd.DataFrame(frame), n_resamples=500, seed=4)
    child = np.random.default_rng(np.random.SeedSequence(4).spawn(2)[0])
    assert np.array_equal(seeds.rng(4, "bootstrap").integers(0, 40, 10), child.integers(0, 40, 10))
    assert ci.low < ci.estimate < ci.high


def test_sampled_pairs_and_items_follow_the_design_streams() -> None:
    table = load_parallel_qa("xquad", ["en", "de", "es", "ru", "zh"])
    params = BatchingParams(strategy="hybrid", pairs=4, train_items=300, design_seed=5, batch_size=8)
    a, b = PairIndex(table, params), PairIndex(table, params)
    assert a.pairs == b.pairs and np.array_equal(a.active, b.active)
    replicate = PairIndex(table, params.model_copy(update={"seed": 6}))  # a replicate keeps the design
    assert replicate.pairs == a.pairs and np.array_equal(a.active, replicate.active)
    other_design = PairIndex(table, params.model_copy(update={"design_seed": 6}))
    assert not np.array_equal(a.active, other_design.active)
    names = sorted(a.languages)
    unordered = [(x, y) for i, x in enumerate(names) for y in names[i + 1 :]]
    order = seeds.rng(5, "design-pairs").permutation(len(unordered))
    chosen = {unordered[i] for i in order[:4]}
    got = {tuple(sorted((a.languages[x], a.languages[y]))) for x, y in a.pairs}
    assert got == chosen and len(a.pairs) == 8  # 4 unordered pairs, both directions
