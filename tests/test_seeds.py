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


def test_sampled_pairs_and_items_follow_their_own_streams() -> None:
    table = load_parallel_qa("xquad", ["en", "de", "es", "ru", "zh"])
    params = BatchingParams(strategy="hybrid", pairs=4, train_items=300, seed=5, batch_size=8)
    a, b = PairIndex(table, params), PairIndex(table, params)
    assert a.pairs == b.pairs and np.array_equal(a.active, b.active)
    other_seed = PairIndex(table, params.model_copy(update={"seed": 6}))
    assert not np.array_equal(a.active, other_seed.active)
    every = [(x, y) for x in range(5) for y in range(5) if x != y]
    expected = sorted(seeds.rng(5, "pairs").choice(len(every), size=4, replace=False).tolist())
    assert a.pairs == [every[i] for i in expected]
