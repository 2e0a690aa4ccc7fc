"""Nested designs (n_languages, pairs: k, train_items under one design seed), the uncontrolled
`random` strategy, budgets in epochs and `resolve`, on the real XQuAD and MLQA tables."""

from __future__ import annotations

import csv
import itertools
import json
import math
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from datasets import Dataset

from hbnb.errors import ParamsError
from hbnb.languages import PAPER_TRAINING_LANGUAGES
from hbnb.params import BatchingParams, TrainParams, validate
from hbnb.training import HybridBatchSampler, PairIndex, SamplerFactory, resolve, train
from hbnb.training import trainer as training

PAPER_LANGS = list(PAPER_TRAINING_LANGUAGES)  # 9 languages, all in XQuAD
REPLICATES = (0, 1, 7)


def index(table: Dataset, **kw) -> PairIndex:
    return PairIndex(table, BatchingParams(**{"languages": PAPER_LANGS, "batch_size": 16, **kw}))


def train_params(tmp_path: Path, batching: dict | None = None, **kw) -> TrainParams:
    batching = {"strategy": "hybrid", "languages": PAPER_LANGS, "batch_size": 32, **(batching or {})}
    return TrainParams(**{"data": "xquad", "output_dir": tmp_path / "run", "batching": batching, **kw})


def directions(idx: PairIndex) -> list[tuple[str, str]]:
    return [tuple(name.split("-")) for name in idx.pair_names()]


# ----------------------------------------------------------------------------- languages


def test_n_languages_are_nested_prefixes_that_replicate_seeds_keep(xquad: Dataset) -> None:
    chosen = {n: index(xquad, strategy="x-x", n_languages=n).languages for n in range(1, 10)}
    order = chosen[9]
    assert sorted(order) == sorted(PAPER_LANGS)
    for n, langs in chosen.items():
        assert langs == order[:n]
        for seed in REPLICATES:  # the replicate seed draws batches, never the design
            assert index(xquad, strategy="x-x", n_languages=n, seed=seed).languages == langs
    # the same order for every strategy, and for batching.languages listed in another order
    for strategy in ("x-y", "hybrid", "random"):
        assert index(xquad, strategy=strategy, n_languages=4).languages == order[:4]
    assert index(xquad, strategy="x-x", n_languages=4, languages=PAPER_LANGS[::-1]).languages == order[:4]
    # another design seed is another order
    assert index(xquad, strategy="x-x", n_languages=9, design_seed=1).languages != order
    # without batching.languages the candidates are all 11 languages of XQuAD
    every = index(xquad, strategy="x-x", languages=None, n_languages=11).languages
    assert len(every) == 11 and index(xquad, strategy="x-x", languages=None, n_languages=3).languages == every[:3]
    # n_languages left out keeps batching.languages as given
    assert index(xquad, strategy="x-x").languages == PAPER_LANGS


def test_languages_first_head_the_order(xquad: Dataset) -> None:
    plain = index(xquad, strategy="x-x", n_languages=9).languages
    assert index(xquad, strategy="x-x", n_languages=1, languages_first=["eng"]).languages == ["en"]
    first_en = index(xquad, strategy="x-x", n_languages=4, languages_first=["en"]).languages
    assert first_en == ["en"] + [x for x in plain if x != "en"][:3]
    assert index(xquad, strategy="hybrid", n_languages=2, languages_first=["de", "en"]).languages == ["de", "en"]
    for n in (1, 2, 4, 8):
        langs = index(xquad, strategy="x-x", n_languages=n, languages_first=["en"], seed=3).languages
        assert langs == (["en"] + [x for x in plain if x != "en"])[:n]


def test_training_on_the_chosen_languages_only(xquad: Dataset) -> None:
    idx = index(xquad, strategy="hybrid", n_languages=3, languages_first=["en"])
    s = HybridBatchSampler(idx.training_dataset(), 16, index=idx, world_size=1)
    used = {idx.languages[lang] for b in s.batches(0) for lang in [*b.q_langs.tolist(), *b.p_langs.tolist()]}
    assert used == set(idx.languages) and len(used) == 3 and "en" in used


# ----------------------------------------------------------------------------- pairs


def test_unordered_pairs_count_pairs_are_nested_and_train_both_directions(xquad: Dataset) -> None:
    chosen = {k: directions(index(xquad, strategy="x-y", pairs=k)) for k in (1, 2, 4, 10, 36)}
    for k, dirs in chosen.items():
        assert len(dirs) == 2 * k and len(set(dirs)) == 2 * k
        assert {(b, a) for a, b in dirs} == set(dirs)  # both directions of each pair
        assert len({frozenset(d) for d in dirs}) == k  # k counts unordered pairs
        assert dirs == chosen[36][: 2 * k]  # prefixes: k=1 within k=2 within k=4
        for seed in REPLICATES:
            assert directions(index(xquad, strategy="x-y", pairs=k, seed=seed)) == dirs
    assert len(chosen[36]) == 72  # all ordered pairs of 9 languages
    assert directions(index(xquad, strategy="x-y", pairs=4, design_seed=5)) != chosen[4]
    # the x-y batches use exactly the chosen directions, both ways
    idx = index(xquad, strategy="x-y", pairs=2)
    s = HybridBatchSampler(idx.training_dataset(), 16, index=idx, world_size=1)
    used = Counter((b.q_langs[i], b.p_langs[i]) for b in s.batches(0) for i in range(len(b.items)))
    assert {(idx.languages[a], idx.languages[b]) for a, b in used} == set(chosen[2])
    assert min(used.values()) > 100  # every direction well used: 1184 examples over 4 directions


def test_ordered_pairs_count_directions(xquad: Dataset) -> None:
    chosen = {k: directions(index(xquad, strategy="hybrid", pairs=k, pair_count="ordered")) for k in (1, 2, 4, 72)}
    for k, dirs in chosen.items():
        assert len(dirs) == len(set(dirs)) == k and dirs == chosen[72][:k]
        assert directions(index(xquad, strategy="hybrid", pairs=k, pair_count="ordered", seed=9)) == dirs
    assert sorted(chosen[72]) == sorted((a, b) for a in PAPER_LANGS for b in PAPER_LANGS if a != b)
    idx = index(xquad, strategy="x-y", pairs=1, pair_count="ordered")
    s = HybridBatchSampler(idx.training_dataset(), 16, index=idx, world_size=1)
    used = {(b.q_langs[i], b.p_langs[i]) for b in s.batches(0) for i in range(len(b.items))}
    assert used == set(idx.pairs) and len(used) == 1


def test_pairs_follow_the_languages_design(xquad: Dataset) -> None:
    small = index(xquad, strategy="hybrid", n_languages=3, pairs=3)
    assert {frozenset(d) for d in directions(small)} == {
        frozenset(p) for p in itertools.combinations(small.languages, 2)
    }
    # the pairs of nested language sets keep their relative order (one order over all candidates)
    big = index(xquad, strategy="hybrid", n_languages=6, pairs=15)
    restricted = [d for d in directions(big) if set(d) <= set(small.languages)]
    assert restricted == directions(small)
    assert index(xquad, strategy="x-x", pairs=3).pair_names() == []
    assert index(xquad, strategy="en-en", languages=None, pairs=3).pair_names() == []


# ----------------------------------------------------------------------------- items


def test_train_items_are_nested_and_the_same_for_every_strategy(xquad: Dataset, mlqa: Dataset) -> None:
    items = {n: set(index(xquad, strategy="hybrid", train_items=n).active.tolist()) for n in (100, 300, 1000)}
    assert [len(items[n]) for n in (100, 300, 1000)] == [100, 300, 1000]
    assert items[100] < items[300] < items[1000]
    for strategy in ("x-x", "x-y", "random"):
        assert set(index(xquad, strategy=strategy, train_items=300).active.tolist()) == items[300]
    for seed in REPLICATES:
        assert set(index(xquad, train_items=300, seed=seed).active.tolist()) == items[300]
    assert set(index(xquad, train_items=300, design_seed=1).active.tolist()) != items[300]
    # the order is over all items, whatever the languages: 2 languages take the same items as 9
    assert set(index(xquad, languages=["en", "de"], train_items=300).active.tolist()) == items[300]
    # MLQA is partly parallel: x-y can use fewer items; those it shares with x-x are the same
    xx = index(mlqa, strategy="x-x", languages=None, train_items=400)
    xy = index(mlqa, strategy="x-y", languages=None, train_items=400)
    assert len(xy.active) == 400 and xy.pair_ok()[xy.active].all()
    shared = set(xx.active[xx.pair_ok()[xx.active]].tolist())
    assert shared < set(xy.active.tolist())


def test_held_out_items_are_part_of_the_design(tmp_path: Path) -> None:
    validation = {"items": 100, "every": 10}
    active = [
        set(training._plan(train_params(tmp_path, {"train_items": 500}, seed=s, validation=validation)).index.active)
        for s in REPLICATES
    ]
    assert all(a == active[0] for a in active) and len(active[0]) == 500
    other = training._plan(train_params(tmp_path, {"train_items": 500, "design_seed": 1}, validation=validation))
    assert set(other.index.active) != active[0]


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("batching", "message"),
    [
        (
            {"n_languages": 1},
            r"batching.n_languages: 1: strategy 'hybrid' needs at least 2 training languages; allowed 2..9",
        ),
        (
            {"strategy": "x-y", "n_languages": 1, "languages": None},
            r"batching.n_languages: 1: strategy 'x-y' needs at least 2 training languages; allowed 2 or more",
        ),
        (
            {"strategy": "x-x", "n_languages": 10},
            r"batching.n_languages: 10: more than the 9 candidate languages \(batching.languages\); allowed 1..9",
        ),
        (
            {"n_languages": 4, "pairs": 7},
            r"batching.pairs: 7: more pairs than 4 training languages allow .*; allowed 1..6 "
            r"\(pair_count 'ordered' counts directions: 1..12\)",
        ),
        (
            {"languages": ["en", "de", "es"], "pairs": 7, "pair_count": "ordered"},
            r"batching.pairs: 7: more pairs than 3 training languages allow \(6 ordered directions\); allowed 1..6",
        ),
        (
            {"strategy": "random", "languages": ["en"], "pairs": 1},
            r"batching.pairs: 1: 1 training language has no cross-lingual pairs",
        ),
        (
            {"languages_first": ["en", "ro"]},
            r"batching.languages_first: .*names ro, not in batching.languages; allowed: ar, zh, en",
        ),
    ],
)
def test_design_errors_without_data_name_the_key_and_the_range(batching: dict, message: str) -> None:
    data = {"output_dir": "out", "batching": {"languages": PAPER_LANGS, **batching}}
    with pytest.raises(ParamsError, match=message):
        validate(TrainParams, data, "params.yaml")


@pytest.mark.parametrize(
    ("data", "batching", "training", "message"),
    [
        (
            "xquad",
            {"languages": None, "n_languages": 12},
            {},
            r"^batching.n_languages = 12: more than the 11 candidate languages \(all in xquad\); allowed 2..11$",
        ),
        (
            "mlqa",
            {"strategy": "random", "languages": None, "n_languages": 8},
            {},
            r"^batching.n_languages = 8: more than the 7 candidate languages \(all in mlqa\); allowed 1..7$",
        ),
        (
            "mlqa",
            {"languages": None, "pairs": 22},
            {},
            r"^batching.pairs = 22: more pairs than 7 training languages allow \(21 unordered pairs, each trained "
            r"in both directions\); allowed 1..21 \(pair_count 'ordered' counts directions: 1..42\)$",
        ),
        (
            "mlqa",
            {"languages": None, "pairs": 43, "pair_count": "ordered"},
            {},
            r"^batching.pairs = 43: more pairs than 7 training languages allow \(42 ordered directions\); "
            r"allowed 1..42$",
        ),
        (
            "xquad",
            {"train_items": 1191},
            {},
            r"^batching.train_items = 1191 exceeds the 1190 usable items of xquad; allowed 1..1190 \(or leave",
        ),
        (
            "xquad",
            {"train_items": 1100},
            {"validation": {"items": 100, "every": 10}, "save_steps": 10},
            r"^batching.train_items = 1100 exceeds the 1090 usable items of xquad; allowed 1..1090",
        ),
        (
            "xquad",
            {"languages": None, "languages_first": ["ro"], "n_languages": 2},
            {},
            r"^batching.languages_first has 'ro', not a candidate language \(all in xquad\); allowed: ar, de, el",
        ),
        (
            "xquad",
            {"batch_size": 32},
            {"budget": "epochs", "epochs": 1.0, "save_steps": 50},
            r"^training.save_steps = 50 is more than the 38 steps that training.epochs = 1.0 makes \(1190 items, "
            r"32 pairs a step\); allowed 1..38",
        ),
    ],
)
def test_design_errors_with_data_name_the_key_and_the_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: str, batching: dict, training: dict, message: str
) -> None:
    import hbnb.models

    params = train_params(tmp_path, batching, data=data, **training)
    with pytest.raises(ParamsError, match=message):
        resolve(params)
    monkeypatch.setattr(hbnb.models, "load", lambda *a, **k: pytest.fail("loaded a model for bad parameters"))
    with pytest.raises(ParamsError, match=message):  # training refuses the same way, before any model
        train(params)
    assert not (tmp_path / "run").exists()


def test_one_language_is_fine_for_x_x_and_random(xquad: Dataset) -> None:
    assert (
        index(xquad, strategy="x-x", n_languages=1).languages
        == index(xquad, strategy="random", n_languages=1).languages
    )
    idx = index(xquad, strategy="random", n_languages=1)
    assert idx.pairs == [] and len(idx.valid_codes()) == 1190


# ----------------------------------------------------------------------------- random


def random_batches(idx: PairIndex, seed: int, n: int = 30) -> list[list[int]]:
    """The first n batches (pair codes) of the sampler the trainer gets for strategy random."""
    ds = idx.training_dataset()
    s = SamplerFactory(idx)(
        ds, idx.params.batch_size, False, valid_label_columns=[], generator=torch.Generator(), seed=seed
    )
    return [ds[rows]["pair"] for rows in itertools.islice(iter(s), n)]


def test_random_batches_mix_languages_and_kinds_without_repeated_texts(xquad: Dataset) -> None:
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    idx = index(xquad, strategy="random", batch_size=32)
    ds = idx.training_dataset()
    assert len(ds) == 1190 * (9 + 72)  # every item: 9 monolingual codes and 72 cross pairs
    sampler = SamplerFactory(idx)(ds, 32, False, generator=torch.Generator(), seed=0)
    assert isinstance(sampler, NoDuplicatesBatchSampler)
    batches = random_batches(idx, seed=0)
    kinds = Counter()
    for codes in batches:
        assert len(codes) == 32
        q_rows, p_rows, items = idx.decode(codes)
        assert idx.has[items, idx.lang_of_row[q_rows]].all() and idx.has[items, idx.lang_of_row[p_rows]].all()
        row = idx.texts({"pair": codes})
        every_text = row["anchor"] + row["positive"]
        assert len(set(every_text)) == len(every_text)  # no text twice in a batch
        described = idx.describe(codes)
        kinds[described["kind"]] += 1
        assert len({idx.lang_of_row[r] for r in q_rows}) >= 4  # many query languages in one batch
    assert kinds["mixed"] >= 25 and kinds["mono"] == 0  # monolingual and cross-lingual pairs together
    assert random_batches(idx, seed=0) == batches  # deterministic given the seed
    assert random_batches(idx, seed=1) != batches


def test_random_data_holds_only_valid_codes_of_the_design(xquad: Dataset, mlqa: Dataset) -> None:
    idx = index(xquad, strategy="random", n_languages=3, pairs=1, train_items=200)
    codes = idx.valid_codes()
    assert len(codes) == 200 * (3 + 2)
    q_rows, p_rows, items = idx.decode(codes)
    assert set(items.tolist()) == set(idx.active.tolist())
    pairs = Counter(
        f"{idx.languages[idx.lang_of_row[q]]}-{idx.languages[idx.lang_of_row[p]]}" for q, p in zip(q_rows, p_rows)
    )
    assert set(pairs) == {f"{x}-{x}" for x in idx.languages} | set(idx.pair_names())
    assert set(pairs.values()) == {200}
    # partly parallel MLQA: a code only where the item has both languages
    idx = index(mlqa, strategy="random", languages=None)
    q_rows, p_rows, items = idx.decode(idx.valid_codes())
    assert (p_rows >= 0).all() and (idx.item_of_row[p_rows] == items).all()
    expected = idx.has[idx.active].sum() + sum(
        (idx.has[idx.active, a] & idx.has[idx.active, b]).sum() for a, b in idx.pairs
    )
    assert len(q_rows) == expected


# ----------------------------------------------------------------------------- resolve and budgets


def test_resolve_an_epochs_budget(tmp_path: Path) -> None:
    params = train_params(
        tmp_path,
        {"n_languages": 4, "languages_first": ["en"], "pairs": 2, "train_items": 600},
        budget="epochs",
        epochs=2.5,
        gradient_accumulation_steps=2,
        save_steps=10,
        validation={"items": 100, "every": 5},
    )
    design = resolve(params)
    assert set(design) == {"languages", "pairs", "train_items", "steps", "epochs", "budget"}
    assert design["budget"] == "epochs" and design["train_items"] == 600
    assert design["steps"] == math.ceil(2.5 * 600 / 64) == 24
    assert design["epochs"] == round(24 * 64 / 600, 4) == 2.56
    assert len(design["languages"]) == 4 and design["languages"][0] == "en"
    assert len(design["pairs"]) == 4 and {tuple(p.split("-")) for p in design["pairs"]} <= {
        (a, b) for a in design["languages"] for b in design["languages"]
    }
    # a steps budget keeps max_steps; x-x trains no pair; the replicate seed changes nothing
    steps = resolve(train_params(tmp_path, {"strategy": "x-x"}, max_steps=30))
    assert steps == {
        "languages": PAPER_LANGS,
        "pairs": [],
        "train_items": 1190,
        "steps": 30,
        "epochs": round(30 * 32 / 1190, 4),
        "budget": "steps",
    }
    for seed in REPLICATES:
        assert resolve(params.model_copy(update={"seed": seed})) == design
    start = time.perf_counter()
    resolve(params)
    assert time.perf_counter() - start < 1.0  # cheap: no model, the table is cached


def test_save_steps_with_an_epochs_budget(tmp_path: Path) -> None:
    # the interval rule holds for either budget, before any data is read
    with pytest.raises(ParamsError, match=r"save_steps \(5\) must be a multiple of validation.every \(2\)"):
        validate(
            TrainParams,
            {"output_dir": "o", "budget": "epochs", "save_steps": 5, "validation": {"every": 2}},
            "params.yaml",
        )
    # with epochs, save_steps must fit the resolved steps (38 for 1190 items of 32 pairs a step) ...
    assert resolve(train_params(tmp_path, budget="epochs", save_steps=38))["steps"] == 38
    with pytest.raises(ParamsError, match=r"training.save_steps = 39 .* allowed 1..38"):
        resolve(train_params(tmp_path, budget="epochs", save_steps=39))
    # ... and max_steps is ignored; a steps budget keeps its old rules (save_steps beyond max_steps is allowed)
    assert resolve(train_params(tmp_path, budget="epochs", max_steps=1, save_steps=38))["steps"] == 38
    assert resolve(train_params(tmp_path, max_steps=30, save_steps=50))["steps"] == 30


# ----------------------------------------------------------------------------- real training runs


def short_run(tmp_path: Path, batching: dict, **kw) -> tuple[dict, list[dict], dict]:
    """A few use-m steps on XQuAD: (run.json, loss.csv rows, batch_mix.json)."""
    params = train_params(
        tmp_path,
        {"languages": ["en", "de", "es", "ru"], "batch_size": 8, **batching},
        model="use-m",
        learning_rate=1e-4,
        freeze_word_embeddings=True,
        **kw,
    )
    train(params)
    out = tmp_path / "run"
    curve = list(csv.DictReader((out / "loss.csv").open()))
    return json.loads((out / "run.json").read_text()), curve, json.loads((out / "batch_mix.json").read_text())


def test_a_short_run_on_an_epochs_budget_records_its_design(tmp_path: Path) -> None:
    batching = {"n_languages": 3, "languages_first": ["en"], "pairs": 1, "train_items": 64}
    run, curve, mix = short_run(tmp_path, batching, budget="epochs", epochs=0.5, warmup_ratio=0.5, save_steps=4)
    design = resolve(train_params(tmp_path, {"languages": ["en", "de", "es", "ru"], "batch_size": 8, **batching}))
    assert run["budget"] == "epochs"
    assert run["max_steps"] == run["completed_steps"] == 4  # ceil(0.5 * 64 items / 8 pairs a step)
    assert run["trained_pairs"] == 32 and run["epochs"] == 0.5 and run["train_items"] == 64
    assert run["languages"][0] == "en" and len(run["languages"]) == 3 and run["languages"] == design["languages"]
    assert len(run["pairs"]) == 2 and run["pairs"] == design["pairs"]
    assert {"wall_time_s", "pairs_per_second", "versions", "model", "resumed_from"} <= set(run)
    # warmup is half of the 4 resolved steps (not of max_steps = 100): the peak rate is reached
    assert [int(r["step"]) for r in curve] == [1, 2, 3, 4]
    assert max(float(r["learning_rate"]) for r in curve) == pytest.approx(1e-4)
    allowed = {f"{x}-{x}" for x in run["languages"]} | set(run["pairs"])
    assert set(mix["examples_per_pair"]) <= allowed and sum(mix["examples_per_pair"].values()) == 32


def test_a_short_random_run_logs_mixed_batches(tmp_path: Path) -> None:
    run, _, mix = short_run(tmp_path, {"strategy": "random", "batch_size": 16}, max_steps=3, save_steps=3)
    assert run["budget"] == "steps" and run["completed_steps"] == run["max_steps"] == 3
    assert run["trained_pairs"] == 48 and run["train_items"] == 1190 and run["epochs"] == round(48 / 1190, 4)
    assert run["languages"] == ["en", "de", "es", "ru"] and len(run["pairs"]) == 12
    assert mix["batches"] == 3 and mix["kinds"] == {"mixed": 3}
    assert sum(mix["examples_per_pair"].values()) == 48
