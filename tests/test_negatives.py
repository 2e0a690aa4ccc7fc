"""Hard negatives: mined ones (`batching.hard_negatives: mined`, real mining with use-m on an XQuAD slice, en and de),
and the data's paragraph negatives (`true`), both kept apart from the questions they answer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import Dataset

from hbnb import models
from hbnb.errors import ParamsError
from hbnb.params import BatchingParams, TrainParams, validate
from hbnb.training import HybridBatchSampler, PairIndex, load_params, resolve, train
from hbnb.training.mining import TABLE, attach, cache_key, mine
from hbnb.training.negatives import ParagraphNegatives

LANGS = ["en", "de"]
MINING = {"range_max": 20, "num_negatives": 3}


def batching(**kw) -> BatchingParams:
    return BatchingParams(
        **{"languages": LANGS, "batch_size": 8, "train_items": 60, "hard_negatives": "mined", "mining": MINING, **kw}
    )


@pytest.fixture(scope="module")
def table(xquad: Dataset) -> Dataset:
    """English and German rows of 70 XQuAD items from many paragraphs (every 17th item id)."""
    keep = set(sorted(set(xquad["item_id"]))[::17][:70])
    rows = [i for i, (item, lang) in enumerate(zip(xquad["item_id"], xquad["lang"])) if item in keep and lang in LANGS]
    return xquad.select(rows)


@pytest.fixture(scope="module")
def usem():
    return models.load("use-m")


@pytest.fixture(scope="module")
def mined(table: Dataset, usem, tmp_path_factory: pytest.TempPathFactory):
    """The slice's index with negatives mined into an empty cache (so they are really mined)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HBNB_CACHE", str(tmp_path_factory.mktemp("cache")))
        index = PairIndex(table, batching())
        negatives = mine(index, usem)
        yield attach(index, negatives), negatives


def passages(table: Dataset) -> dict[str, dict[str, str]]:
    """item id -> language -> its passage (the answer sentence)."""
    out: dict[str, dict[str, str]] = {}
    for item, lang, sentence in zip(table["item_id"], table["lang"], table["sentence"]):
        out.setdefault(item, {})[lang] = sentence
    return out


def test_mining_gives_each_row_hard_same_language_negatives_from_other_items(mined, table: Dataset) -> None:
    index, negatives = mined
    assert not negatives.stats["cached"]
    truth = passages(table)
    by_lang = {lang: {p[lang] for p in truth.values() if lang in p} for lang in LANGS}
    rows = [int(r) for r in index.row[index.active].ravel() if r >= 0]
    assert len(rows) == negatives.stats["rows_with_negatives"] == 120  # 60 items, 2 languages, no margin
    for row in rows:
        item, lang = table[row]["item_id"], table[row]["lang"]
        options = negatives.by_row[row]
        assert len(options) == 3 and len(set(options)) == 3
        for text in options:
            assert text in by_lang[lang]  # the same language's pool: other items' positives
            assert text not in truth[item].values()  # never the positive, nor a translation of it
            owners = {index.item_ids[o] for o in negatives.owners(text)}
            assert owners and item not in owners  # whose positive it is: the sampler keeps them apart
    cached = pq.read_table(negatives.folder / TABLE)
    for scores, positive in zip(cached.column("scores").to_pylist(), cached.column("positive_score").to_pylist()):
        assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= 1 and -1 <= positive <= 1


def test_the_same_inputs_mine_the_same_negatives_and_the_seed_picks_one(
    mined, usem, table: Dataset, tmp_path, monkeypatch
):
    index, negatives = mined
    monkeypatch.setenv("HBNB_CACHE", str(tmp_path / "other-cache"))
    again = mine(PairIndex(table, batching()), usem)
    assert not again.stats["cached"] and again.key == negatives.key and again.by_row == negatives.by_row
    codes = index.valid_codes().tolist()
    rows = index.decode(codes)[1].tolist()
    picks = [negatives.pick(c, r) for c, r in zip(codes, rows)]
    assert picks == [again.pick(c, r) for c, r in zip(codes, rows)]  # same seed, same negatives
    assert all(p in negatives.by_row[r] for p, r in zip(picks, rows))
    per_row: dict[int, set[str]] = {}
    for pick, row in zip(picks, rows):
        per_row.setdefault(row, set()).add(pick)
    assert max(len(v) for v in per_row.values()) > 1  # examples sharing a passage row use different negatives of it
    other = mine(PairIndex(table, batching(seed=1)), usem)
    assert other.stats["cached"]  # the replicate seed does not enter the mining
    assert [other.pick(c, r) for c, r in zip(codes, rows)] != picks


def test_negatives_in_another_language_serve_every_row_and_never_translate_the_positive(
    mined, usem, table: Dataset, tmp_path: Path, monkeypatch
) -> None:
    index, negatives = mined
    first = int(index.active[0])
    english, german = (int(index.row[first, index.lang_index[x]]) for x in LANGS)
    hardest = negatives.by_row[english][0]  # another item's English positive
    # make it a translation of the first item's positive: its German passage is now that very text
    columns = table.to_dict()
    columns["sentence"][german] = hardest
    monkeypatch.setenv("HBNB_CACHE", str(tmp_path / "cache"))
    other = PairIndex(Dataset.from_dict(columns), batching(mining={**MINING, "language": "en"}))
    english_only = mine(other, usem)
    assert english_only.stats["languages"].keys() == {"en"}  # one language mined, for every row
    assert (
        hardest not in english_only.by_row[english] and english_only.stats["dropped_as_translations_of_the_positive"]
    )
    assert english_only.by_row[english] == [t for t in negatives.by_row[english] if t != hardest]
    truth = passages(other.table)
    english_pool = {p["en"] for p in truth.values()}
    for item in index.active.tolist():
        rows = [int(r) for r in other.row[item] if r >= 0]
        assert english_only.by_row[rows[0]] == english_only.by_row[rows[1]]
        for text in english_only.by_row[rows[0]]:
            assert text in english_pool and text not in truth[other.item_ids[item]].values()
    assert english_only.owners(hardest) == {first} | negatives.owners(hardest)


def test_mining_again_reads_the_cache_and_encodes_nothing(mined, usem, table: Dataset, monkeypatch) -> None:
    index, negatives = mined
    monkeypatch.setenv("HBNB_CACHE", str(negatives.folder.parents[1]))
    calls = []
    for name in ("encode_query", "encode_document", "encode"):
        original = getattr(usem, name)
        monkeypatch.setattr(usem, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    again = mine(PairIndex(table, batching()), usem)
    assert again.stats["cached"] and again.by_row == negatives.by_row and calls == []
    assert cache_key(index, usem) == negatives.key
    inactive = next(i for i in range(len(index.item_ids)) if i not in set(index.active.tolist()))
    held_out = {index.item_ids[inactive]}
    assert cache_key(index, usem, held_out=held_out) != negatives.key  # another pool
    for other in ({"mining": {**MINING, "num_negatives": 2}}, {"positive": "sentence+paragraph"}, {"train_items": 50}):
        assert cache_key(PairIndex(table, batching(**other)), usem) != negatives.key
    assert cache_key(PairIndex(table, batching(seed=3, batch_size=4)), usem) == negatives.key
    smaller_pool = mine(PairIndex(table, batching()), usem, held_out=held_out)
    assert not smaller_pool.stats["cached"] and {"encode_query", "encode_document"} <= set(calls)
    assert all(smaller_pool.owners(t) - {inactive} for t in smaller_pool.owner_sets)  # none from held-out items only


@pytest.mark.parametrize(("strategy", "world_size"), [("hybrid", 1), ("x-y", 2), ("x-x", 1)])
def test_no_step_holds_a_negative_that_is_a_positive_or_its_translation(mined, strategy, world_size) -> None:
    index, negatives = mined
    index = attach(PairIndex(index.table, batching(strategy=strategy)), negatives)
    sampler = HybridBatchSampler(index.training_dataset(), 8, index=index, world_size=world_size)
    truth = passages(index.table)
    plain = PairIndex(index.table, batching(strategy=strategy, hard_negatives=False, mining=None))
    plain_sampler = HybridBatchSampler(plain.training_dataset(), 8, index=plain, world_size=world_size)
    clashes_without = 0
    for epoch in range(6):
        plan = sampler.batches(epoch)
        assert len(plan) == len(sampler)
        items = [i for b in plan for i in b.items.tolist()]
        assert len(items) == len(set(items))  # still one use per item and epoch
        for start in range(0, len(plan), world_size):
            step = plan[start : start + world_size]
            step_items = {index.item_ids[i] for b in step for i in b.items.tolist()}
            step_texts = {text for item in step_items for text in truth[item].values()}
            for b in step:
                assert strategy == "hybrid" or b.kind == {"x-x": "mono", "x-y": "cross"}[strategy]
                out = index.texts({"pair": index.codes(b)})
                for negative, positive in zip(out["negative"], out["positive"]):
                    assert negative and negative != positive and negative not in step_texts
        # the plan without the swaps would put an example and its negative's item in one step
        plain_plan = plain_sampler.batches(epoch)
        for start in range(0, len(plain_plan), world_size):
            step = plain_plan[start : start + world_size]
            members = {i for b in step for i in b.items.tolist()}
            for b in step:
                codes = plain.codes(b)
                for code, row in zip(codes, plain.decode(codes)[1].tolist()):
                    if negatives.by_row.get(row):
                        clashes_without += bool(negatives.owners(negatives.pick(code, row)) & members)
    assert clashes_without > 0  # the property above is not vacuous


PARAGRAPH_LANGS = ["en", "de", "ru"]


@pytest.fixture(scope="module")
def paragraphs(xquad: Dataset) -> Dataset:
    """English, German and Russian rows of the first 120 XQuAD items: about 24 whole paragraphs, so the paragraph
    negative of a question (another sentence of its paragraph) is often the answer of another question of the slice."""
    keep = set(sorted(set(xquad["item_id"]))[:120])
    langs = set(PARAGRAPH_LANGS)
    return xquad.select(
        [i for i, (it, la) in enumerate(zip(xquad["item_id"], xquad["lang"])) if it in keep and la in langs]
    )


def answers(table: Dataset) -> dict[str, set[str]]:
    """item id -> its answer sentences, in every language of the table."""
    out: dict[str, set[str]] = {}
    for item, sentence in zip(table["item_id"], table["sentence"]):
        out.setdefault(item, set()).add(sentence)
    return out


@pytest.mark.parametrize(
    ("strategy", "world_size", "positive"),
    [("hybrid", 1, "sentence"), ("hybrid", 1, "sentence+paragraph"), ("x-y", 2, "sentence"), ("x-x", 1, "sentence")],
)
def test_no_step_holds_a_paragraph_negative_that_answers_one_of_its_questions(
    paragraphs: Dataset, strategy: str, world_size: int, positive: str
) -> None:
    params = BatchingParams(
        languages=PARAGRAPH_LANGS, strategy=strategy, positive=positive, hard_negatives=True, batch_size=8
    )
    index = PairIndex(paragraphs, params)
    assert isinstance(index.negatives, ParagraphNegatives)
    sampler = HybridBatchSampler(index.training_dataset(), 8, index=index, world_size=world_size)
    truth = answers(paragraphs)
    # the same design without the swaps: the plan hbnb made before paragraph negatives had owners
    unswapped = PairIndex(paragraphs, params)
    unswapped.negatives = None
    unswapped_sampler = HybridBatchSampler(unswapped.training_dataset(), 8, index=unswapped, world_size=world_size)
    clashes_without = 0
    for epoch in range(5):
        plan = sampler.batches(epoch)
        assert len(plan) == len(sampler)
        last = len(plan) - world_size  # the last step, where the epoch's unused items may run out
        before = [i for b in plan[:last] for i in b.items.tolist()]
        assert len(before) == len(set(before))  # one use per item and epoch until then
        assert len({i for b in plan for i in b.items.tolist()}) >= len(before) + 4 * world_size
        for start in range(0, len(plan), world_size):
            step = plan[start : start + world_size]
            step_answers = set().union(*(truth[index.item_ids[i]] for b in step for i in b.items.tolist()))
            for b in step:
                assert strategy == "hybrid" or b.kind == {"x-x": "mono", "x-y": "cross"}[strategy]
                out = index.texts({"pair": index.codes(b)})
                for negative, p_row in zip(out["negative"], index.decode(index.codes(b))[1].tolist()):
                    assert negative == paragraphs[p_row]["negative"]  # the data's own negative, unchanged
                    assert negative not in step_answers  # it answers no question of the step, in any language
        plain_plan = unswapped_sampler.batches(epoch)
        for start in range(0, len(plain_plan), world_size):
            step = plain_plan[start : start + world_size]
            step_answers = set().union(*(truth[index.item_ids[i]] for b in step for i in b.items.tolist()))
            negatives = [n for b in step for n in index.texts({"pair": index.codes(b)})["negative"]]
            clashes_without += sum(n in step_answers for n in negatives)
    assert clashes_without > 20  # the property above is not vacuous: without owners, steps held such negatives


def test_paragraph_negatives_are_owned_by_the_items_they_answer_and_never_by_their_own(paragraphs: Dataset) -> None:
    params = BatchingParams(
        languages=PARAGRAPH_LANGS, positive="sentence+paragraph", hard_negatives=True, batch_size=8
    )
    index = PairIndex(paragraphs, params)
    negatives = index.negatives
    truth = answers(paragraphs)
    owned = 0
    for row in range(paragraphs.num_rows):
        text = paragraphs[row]["negative"]
        owners = {index.item_ids[o] for o in negatives.owners(text)}
        assert owners == {item for item, sentences in truth.items() if text in sentences}  # by answer sentence
        assert paragraphs[row]["item_id"] not in owners
        owned += bool(owners)
    assert owned > paragraphs.num_rows // 2  # most paragraph negatives answer another question of the slice
    # an item whose German negative is its own English answer (a translation of the positive): that row is not trained
    first = int(index.active[0])
    english, german = (int(index.row[first, index.lang_index[x]]) for x in ("en", "de"))
    columns = paragraphs.to_dict()
    columns["negative"][german] = columns["sentence"][english]
    other = PairIndex(Dataset.from_dict(columns), params)
    assert first in other.negatives.owners(columns["sentence"][english])
    assert not other.has[first, other.lang_index["de"]] and other.has[first, other.lang_index["en"]]
    assert (other.has != index.has).sum() == 1


def test_bad_mining_parameters_are_refused(tmp_path: Path, table: Dataset, monkeypatch) -> None:
    bad = [
        ({"range_min": 20, "range_max": 20}, "batching.mining: {'range_min': 20, 'range_max': 20}: range_min (20)"),
        ({"num_negatives": 9, "range_max": 5}, "num_negatives (9) is more than the 5 candidates"),
        ({"language": "xx"}, "batching.mining.language: 'xx': unknown language code"),
        ({"margin": -0.1}, "batching.mining.margin: -0.1: Input should be greater than or equal to 0"),
    ]
    for mining, message in bad:
        with pytest.raises(ParamsError, match="1 invalid parameter") as err:
            validate(TrainParams, {"output_dir": "x", "batching": {"hard_negatives": "mined", "mining": mining}}, "p")
        assert message in str(err.value)
    with pytest.raises(ParamsError, match="batching.mining is for hard_negatives: mined"):
        validate(TrainParams, {"output_dir": "x", "batching": {"hard_negatives": True, "mining": {}}}, "p")
    assert BatchingParams(hard_negatives="paragraph").hard_negatives is True  # true stays the paragraph negative
    assert "mining" not in BatchingParams(hard_negatives=True).model_dump()  # recorded runs keep their parameters
    mined = BatchingParams(hard_negatives="mined").model_dump()  # no block: the defaults, and a sweep may turn it off
    assert BatchingParams.model_validate({**mined, "hard_negatives": False}).mining_().range_max == 50

    monkeypatch.setattr(models, "load", lambda *a, **k: pytest.fail("loaded a model for bad parameters"))
    data = write_slice(tmp_path, table)
    french = load_params(write_params(tmp_path, data, mining={"language": "fr"}))
    with pytest.raises(ParamsError, match="batching.mining.language = 'fr' is absent from the training data"):
        train(french)
    with pytest.raises(ParamsError, match="cannot be combined with batching.hard_negatives"):
        train(load_params(write_params(tmp_path, data, bitext={"sources": ["tatoeba"]})))
    assert resolve(load_params(write_params(tmp_path, data)))["train_items"] == 60  # a plan mines nothing


def write_slice(folder: Path, table: Dataset) -> Path:
    path = folder / "slice.jsonl"
    rows = zip(table["item_id"], table["lang"], table["question"], table["sentence"])
    path.write_text(
        "".join(json.dumps({"id": i, "lang": la, "question": q, "passage": p}) + "\n" for i, la, q, p in rows)
    )
    return path


def write_params(folder: Path, data: Path, mining: dict | None = None, **overrides) -> Path:
    params = {
        "model": "use-m",
        "data": str(data),
        "output_dir": str(folder / "run"),
        "max_steps": 2,
        "save_steps": 2,
        "learning_rate": 1e-4,
        "freeze_word_embeddings": True,
        "batching": {
            "strategy": "hybrid",
            "languages": LANGS,
            "batch_size": 4,
            "train_items": 60,
            "hard_negatives": "mined",
            "mining": {**MINING, **(mining or {})},
        },
        **overrides,
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_a_short_run_trains_with_mined_negatives(mined, tmp_path: Path, table: Dataset, monkeypatch) -> None:
    monkeypatch.setenv("HBNB_CACHE", str(mined[1].folder.parents[1]))  # the slice's negatives are mined there
    out = tmp_path / "run"
    seen: dict[tuple, dict] = {}
    yielded: list[list[int]] = []
    texts, batches = PairIndex.texts, HybridBatchSampler.__iter__
    monkeypatch.setattr(PairIndex, "texts", lambda self, b: seen.setdefault(tuple(b["pair"]), texts(self, b)))
    monkeypatch.setattr(HybridBatchSampler, "__iter__", lambda self: (yielded.append(c) or c for c in batches(self)))
    train(load_params(write_params(tmp_path, write_slice(tmp_path, table))))
    truth = passages(table)
    for codes in yielded[:2]:  # the two steps' batches: each example with its negative, of no item of the batch
        out_texts = seen[tuple(codes)]
        step_texts = {
            text
            for anchor in out_texts["anchor"]
            for item in _items_of(table, anchor)
            for text in truth[item].values()
        }
        assert len(out_texts["negative"]) == 4 and all(n and n not in step_texts for n in out_texts["negative"])
    run = json.loads((out / "run.json").read_text())
    assert run["completed_steps"] == 2 and run["train_items"] == 60
    record = json.loads((out / "negatives.json").read_text())
    assert record["cached"] and record["cache_key"] == mined[1].key and record["rows_with_negatives"] == 120
    losses = [float(r["loss"]) for r in csv.DictReader((out / "loss.csv").open()) if r["loss"]]
    assert len(losses) == 2 and all(0 < x < 10 for x in losses)


def _items_of(table: Dataset, question: str) -> list[str]:
    return [item for item, q in zip(table["item_id"], table["question"]) if q == question]


def test_a_short_run_trains_with_paragraph_negatives(paragraphs: Dataset, tmp_path: Path, monkeypatch) -> None:
    english_german = paragraphs.filter(lambda lang: lang in LANGS, input_columns="lang")
    data = tmp_path / "paragraphs.jsonl"
    rows = zip(*(english_german[c] for c in ("item_id", "lang", "question", "sentence", "negative")))
    data.write_text(
        "".join(
            json.dumps({"id": i, "lang": la, "question": q, "passage": p, "negative": n}) + "\n"
            for i, la, q, p, n in rows
        )
    )
    params = yaml.safe_load(write_params(tmp_path, data).read_text())
    params["batching"] = {**params["batching"], "hard_negatives": True, "batch_size": 8, "train_items": None}
    params["batching"].pop("mining")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    seen: dict[tuple, dict] = {}
    yielded: list[list[int]] = []
    texts, batches = PairIndex.texts, HybridBatchSampler.__iter__
    monkeypatch.setattr(PairIndex, "texts", lambda self, b: seen.setdefault(tuple(b["pair"]), texts(self, b)))
    monkeypatch.setattr(HybridBatchSampler, "__iter__", lambda self: (yielded.append(c) or c for c in batches(self)))
    train(load_params(tmp_path / "params.yaml"))
    truth = answers(english_german)
    negative_of = dict(zip(english_german["sentence"], english_german["negative"]))
    for codes in yielded[:2]:  # each example with its passage's negative from the data, answering no question of it
        batch = seen[tuple(codes)]
        answered = {s for anchor in batch["anchor"] for item in _items_of(english_german, anchor) for s in truth[item]}
        assert len(batch["negative"]) == 8 and [negative_of[p] for p in batch["positive"]] == batch["negative"]
        assert all(n and n not in answered for n in batch["negative"])
    out = tmp_path / "run"
    assert json.loads((out / "run.json").read_text())["completed_steps"] == 2
    assert not (out / "negatives.json").exists()  # the data's own column: nothing to record
    losses = [float(r["loss"]) for r in csv.DictReader((out / "loss.csv").open()) if r["loss"]]
    assert len(losses) == 2 and all(0 < x < 10 for x in losses)
