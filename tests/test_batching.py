"""The batch samplers on the real XQuAD and MLQA tables."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from datasets import Dataset

from hbnb.errors import ParamsError
from hbnb.languages import PAPER_TRAINING_LANGUAGES
from hbnb.params import BatchingParams, validate
from hbnb.training import Batch, HybridBatchSampler, PairIndex, RecordingCollator, realised_mix

PAPER_LANGS = list(PAPER_TRAINING_LANGUAGES)


def sampler(table: Dataset, world_size: int = 1, **kw) -> HybridBatchSampler:
    params = BatchingParams(**{"languages": PAPER_LANGS, "batch_size": 32, **kw})
    index = PairIndex(table, params)
    return HybridBatchSampler(index.training_dataset(), params.batch_size, index=index, world_size=world_size)


def _items(b: Batch) -> list[int]:
    return b.items.tolist()


def test_x_x_batches_are_one_language_each(xquad: Dataset) -> None:
    s = sampler(xquad, strategy="x-x")
    plan = s.batches(0)
    assert len(plan) == len(s) == 1190 // 32
    for b in plan:
        assert b.kind == "mono" and len(set(b.q_langs.tolist())) == 1
        assert (b.q_langs == b.p_langs).all()
    assert {s.index.languages[b.q_langs[0]] for b in plan} <= set(PAPER_LANGS)


def test_x_y_examples_pair_two_different_languages(xquad: Dataset) -> None:
    s = sampler(xquad, strategy="x-y")
    pairs = Counter()
    for b in s.batches(0):
        assert b.kind == "cross" and (b.q_langs != b.p_langs).all()
        pairs.update(zip(b.q_langs.tolist(), b.p_langs.tolist()))
    assert len(pairs) > 50  # drawn per example from the 72 ordered pairs


def test_en_en_is_english_only(xquad: Dataset) -> None:
    s = sampler(xquad, strategy="en-en", languages=None)
    assert s.index.languages == ["en"]
    assert all(b.kind == "mono" for b in s.batches(0))


def test_no_item_twice_in_a_batch_nor_in_an_epoch(xquad: Dataset) -> None:
    for strategy in ("x-x", "x-y", "hybrid"):
        plan = sampler(xquad, strategy=strategy).batches(3)
        seen = [i for b in plan for i in _items(b)]
        assert len(seen) == len(set(seen)) == 37 * 32


def test_alpha_is_respected_within_binomial_tolerance(xquad: Dataset) -> None:
    for alpha in (0.2, 0.5, 0.8):
        s = sampler(xquad, strategy="hybrid", alpha=alpha, batch_size=16)
        kinds = [b.kind for epoch in range(20) for b in s.batches(epoch)]
        n = len(kinds)
        share = kinds.count("mono") / n
        assert abs(share - alpha) < 4 * math.sqrt(alpha * (1 - alpha) / n), (alpha, share, n)
    assert {b.kind for b in sampler(xquad, strategy="hybrid", alpha=1.0).batches(0)} == {"mono"}
    assert {b.kind for b in sampler(xquad, strategy="hybrid", alpha=0.0).batches(0)} == {"cross"}


def test_deterministic_given_seed_and_epoch(xquad: Dataset) -> None:
    a, b = sampler(xquad, seed=5), sampler(xquad, seed=5)
    assert list(a) == list(b)
    a.set_epoch(1)
    assert list(a) != list(b)
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(sampler(xquad, seed=6)) != list(sampler(xquad, seed=5))


def test_language_weights(xquad: Dataset) -> None:
    s = sampler(xquad, strategy="x-x", languages=["en", "de"], language_weights={"en": 3, "de": 1}, batch_size=8)
    langs = Counter(s.index.languages[b.q_langs[0]] for e in range(10) for b in s.batches(e))
    share = langs["en"] / sum(langs.values())
    assert abs(share - 0.75) < 0.06


def test_k_design_pairs_and_explicit_pairs(xquad: Dataset) -> None:
    s = sampler(xquad, strategy="x-y", pairs=3, seed=1)
    used = {(b.q_langs[i], b.p_langs[i]) for b in s.batches(0) for i in range(len(b.items))}
    assert used == set(s.index.pairs) and len(used) == 6  # 3 unordered pairs, both directions of each
    assert {(b, a) for a, b in used} == used
    assert sampler(xquad, strategy="x-y", pairs=3, seed=2).index.pairs == s.index.pairs  # a replicate
    assert sampler(xquad, strategy="x-y", pairs=3, design_seed=2).index.pairs != s.index.pairs
    s = sampler(xquad, strategy="x-y", pairs=3, pair_count="ordered")
    used = {(b.q_langs[i], b.p_langs[i]) for b in s.batches(0) for i in range(len(b.items))}
    assert used == set(s.index.pairs) and len(used) == 3
    s = sampler(xquad, strategy="hybrid", pairs=["en-de", "deu-eng"])
    names = {f"{s.index.languages[a]}-{s.index.languages[b]}" for a, b in s.index.pairs}
    assert names == {"en-de", "de-en"}


def test_train_items_scales_the_training_set(xquad: Dataset) -> None:
    s = sampler(xquad, train_items=100, batch_size=10)
    assert len(s) == 10
    items = {i for e in range(5) for b in s.batches(e) for i in _items(b)}
    assert len(items) == 100


def test_incomplete_batches_drop_or_refill(xquad: Dataset) -> None:
    drop = sampler(xquad, incomplete="drop").batches(0)
    assert len(drop) == 37 and all(len(b.items) == 32 for b in drop)
    refill = sampler(xquad, incomplete="refill").batches(0)
    assert len(refill) == 38 and all(len(b.items) == 32 for b in refill)
    last = _items(refill[-1])
    assert len(set(last)) == 32
    earlier = {i for b in refill[:-1] for i in _items(b)}
    assert len(set(last) - earlier) == 1190 - 37 * 32  # the 6 items left, topped up with used ones
    assert len(earlier | set(last)) == 1190


def test_groups_of_processes_share_kind_and_language(xquad: Dataset) -> None:
    s = sampler(xquad, world_size=2, strategy="hybrid", batch_size=16)
    plan = s.batches(0)
    assert len(plan) == len(s) and len(plan) % 2 == 0
    for a, b in zip(plan[::2], plan[1::2]):
        assert a.kind == b.kind
        if a.kind == "mono":
            assert a.q_langs[0] == b.q_langs[0]
        assert not set(_items(a)) & set(_items(b))


def test_partial_parallel_data_mlqa(mlqa: Dataset) -> None:
    s = sampler(mlqa, languages=None, strategy="hybrid", batch_size=16)
    idx = s.index
    for b in s.batches(0):
        assert idx.has[b.items, b.q_langs].all() and idx.has[b.items, b.p_langs].all()
        assert len(set(_items(b))) == len(b.items)


def test_every_row_of_the_training_data_reads_on_partial_data(mlqa: Dataset) -> None:
    """sentence-transformers reads the first rows of the training data for its model card; on
    MLQA (not every item in every language) those hold codes no sampler yields."""
    index = PairIndex(mlqa, BatchingParams(strategy="x-x", languages=["ar", "de", "en", "es", "vi", "zh"]))
    rows = index.training_dataset()[:500]
    assert len(rows["anchor"]) == 500 and all(rows["anchor"]) and all(rows["positive"])


def test_texts_positive_and_hard_negatives(xquad: Dataset) -> None:
    params = BatchingParams(languages=["en", "de"], positive="sentence+paragraph", hard_negatives=True, batch_size=8)
    index = PairIndex(xquad, params)
    ds = index.training_dataset()
    s = HybridBatchSampler(ds, 8, index=index, world_size=1)
    codes = next(iter(s))
    batch = ds[codes]
    assert list(batch) == ["anchor", "positive", "negative", "pair"]
    q_rows, p_rows, _ = index.decode(codes)
    for pos, neg, row in zip(batch["positive"], batch["negative"], p_rows.tolist()):
        assert pos.startswith(xquad[row]["sentence"]) and xquad[row]["paragraph"] in pos
        assert neg and neg != xquad[row]["sentence"] and neg in xquad[row]["paragraph"]
    assert batch["anchor"] == [xquad[r]["question"] for r in q_rows.tolist()]


def test_recording_collator_sees_what_the_sampler_planned(xquad: Dataset) -> None:
    from torch.utils.data import DataLoader

    params = BatchingParams(languages=PAPER_LANGS, batch_size=16, alpha=0.5)
    index = PairIndex(xquad, params)
    ds = index.training_dataset()
    s = HybridBatchSampler(ds, 16, index=index, world_size=1)
    collator = RecordingCollator(preprocess_fn=lambda texts, **kw: {"n": len(texts)}, index=index)
    batches = list(DataLoader(ds, batch_sampler=s, collate_fn=collator))
    assert batches[0] == {"anchor_n": 16, "positive_n": 16}
    plan = s.batches(0)
    assert [r["kind"] for r in collator.records] == [b.kind for b in plan]
    assert all(r["unique_items"] == r["size"] == 16 for r in collator.records)
    mix = realised_mix(collator.records)
    assert mix["batches"] == len(plan) and 0 < mix["mono_share"] < 1
    assert sum(mix["examples_per_pair"].values()) == 16 * len(plan)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"strategy": "mixed"},
            r"strategy: 'mixed' is not allowed; allowed: 'x-x', 'x-y', 'hybrid', 'en-en' or 'random'",
        ),
        ({"alpha": 1.5}, r"alpha: 1.5: Input should be less than or equal to 1"),
        ({"pairs": ["en-en"]}, r"pairs: .*'en-en' is not a pair of two different languages"),
        ({"languages": ["en", "klingon"]}, r"languages: .*unknown language code 'klingon'"),
        ({"batch_sizes": 3}, r"batch_sizes: unknown key"),
    ],
)
def test_parameter_errors_name_the_key_and_the_allowed_values(kw: dict, message: str) -> None:
    with pytest.raises(ParamsError, match=message):
        validate(BatchingParams, kw, "params.yaml")


def test_data_dependent_errors(xquad: Dataset, mlqa: Dataset) -> None:
    with pytest.raises(
        ParamsError, match=r"batching.languages has 'ro', absent from the training data; allowed: ar, de"
    ):
        PairIndex(xquad, BatchingParams(languages=["en", "ro"]))
    with pytest.raises(ParamsError, match=r"batching.pairs names 'en-th', but 'th' is not a training language"):
        PairIndex(xquad, BatchingParams(languages=["en", "de"], pairs=["en-th"]))
    with pytest.raises(
        ParamsError,
        match=r"batch_size = 2000 is larger than the 1190 usable items of the training data; use at most 1190",
    ):
        PairIndex(xquad, BatchingParams(batch_size=2000))
    with pytest.raises(ParamsError, match=r"'x-y' needs at least 2 training languages"):
        PairIndex(xquad, BatchingParams(strategy="x-y", languages=["en"]))
    with pytest.raises(ParamsError, match=r"needs 'en', absent"):
        PairIndex(xquad.filter(lambda r: r["lang"] != "en"), BatchingParams(strategy="en-en"))
    with pytest.raises(
        ParamsError, match=r"batching.pairs = 22: more pairs than 7 training languages .* allowed 1..21"
    ):
        PairIndex(mlqa, BatchingParams(strategy="x-y", pairs=22))
    with pytest.raises(ParamsError, match=r"batching.pairs = 43: more pairs than 7 .* directions\); allowed 1..42"):
        PairIndex(mlqa, BatchingParams(strategy="x-y", pairs=43, pair_count="ordered"))
