"""Mined hard negatives (`batching.hard_negatives: mined`): a negative per training example, mined with a model.

For each (item, language) row of the active training items, sentence-transformers'
`mine_hard_negatives` ranks the *candidate pool* by the model's similarity to the row's
question, drops the positive, keeps the candidates ranked `range_min..range_max` that clear
the `margin` / `relative_margin` below the positive's similarity, and takes the top
`num_negatives` ("top" sampling). The pool is the passages (`batching.positive`: the
answer sentence, or the sentence with its paragraph) of every training-table row in the
negatives' language, of every item but the held-out ones, so validation texts never become
training negatives; that language is the positive's (`mining.language: same`) or one
language for all (`mining.language: de`: the row of the item in that language is mined, and
its negatives serve every row of the item). Each training example (a pair code) uses one of
its row's negatives, chosen from `batching.seed` and the code (stream "hard-negatives"): the
same negative in every epoch and after a resume, another one in another replicate.

The miner is `mining.model`, or the run's own model before training (with the run's
`max_seq_length`). The result is cached under the hbnb cache (`negatives/<key>/`: a parquet
table of (item, language, negatives, scores) and a manifest), keyed by the model's
fingerprint (its weights), the mining parameters and the exact questions, positives and
pool texts of each language, so a replicate or a resumed run mines nothing.

A row the range and margins leave without a negative (or, with `mining.language`, of an
item without a row in that language) is not trained, as a row without a paragraph negative
under `hard_negatives: true`; its item leaves the active items if no row is left. The
validation pairs have no negatives with `mined` (the validation loss is the in-batch one,
comparable across checkpoints).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hbnb.cache import build_lock, cache_dir, intact, write_manifest
from hbnb.data.retrieval import answer_text
from hbnb.errors import ParamsError
from hbnb.files import atomic_dir
from hbnb.params import MiningParams, TrainParams

if TYPE_CHECKING:  # annotations only
    from hbnb.training.pairs import PairIndex

from hbnb.training.negatives import MinedNegatives, owner_sets

VERSION = 1  # bump when what is mined for the same inputs changes: old caches are not reused
TABLE = "negatives.parquet"
STATS = "stats.json"


def check(params: TrainParams, index: PairIndex) -> None:
    """Refuse mining parameters the data cannot serve (before any model is loaded)."""
    mining = params.batching.mining_()
    present = set(index.table.with_format("arrow")["lang"].unique().to_pylist())
    if mining.language != "same" and mining.language not in present:
        raise ParamsError(
            f"batching.mining.language = {mining.language!r} is absent from the training data; "
            f"allowed: same, {', '.join(sorted(present))}"
        )


def prepare(params: TrainParams, index: PairIndex, held_out: set[str], build: bool = True) -> None:
    """Check the mining parameters; with `build`, mine (or read the cache) and train `index` with the negatives."""
    check(params, index)
    if build:
        negatives = mine(index, load_miner(params), held_out)
        attach(index, negatives)
        stats = negatives.stats
        stats["model"] = params.batching.mining_().model or params.model
        print(
            f"hbnb: mined hard negatives for {stats['rows_with_negatives']} of {stats['rows']} rows "
            f"({'cached' if stats['cached'] else 'mined now'}; key {negatives.key})",
            file=sys.stderr,
        )


def attach(index: PairIndex, negatives: MinedNegatives) -> PairIndex:
    """Train `index` with mined negatives: a row without one is not trained, and an active item left without
    a row that serves the strategy leaves the active items (no other item takes its place)."""
    index.negatives = negatives
    index.has &= negatives.has_row(index.table.num_rows)[np.maximum(index.row, 0)]
    mono = index.has.any(axis=1) if index.params.strategy != "x-y" else np.zeros(len(index.row), dtype=bool)
    usable = mono | index.pair_ok()  # as hbnb.training.pairs decides the active items
    index.active = index.active[usable[index.active]]
    if index.params.batch_size > len(index.active):
        raise ParamsError(
            f"batching.batch_size = {index.params.batch_size} is larger than the {len(index.active)} items with "
            f"mined negatives; use at most {len(index.active)}, or widen batching.mining's range or margins"
        )
    return index


def load_miner(params: TrainParams) -> Any:
    """The mining model: `mining.model`, or the run's model as training will start from it."""
    import torch

    from hbnb import models

    spec = params.batching.mining_().model
    local = os.environ.get("LOCAL_RANK")  # under torchrun, each process on its own GPU (one of them mines)
    device = f"cuda:{local}" if local is not None and torch.cuda.is_available() else None
    model = models.load(spec or params.model, device=device, trust_remote_code=params.trust_remote_code)
    if spec is None and params.max_seq_length is not None:
        model.max_seq_length = params.max_seq_length
    return model


def mine(index: PairIndex, model: Any, held_out: set[str] | Sequence[str] = ()) -> MinedNegatives:
    """The negatives of the active items' rows of `index`, mined with `model` (from the cache when there);
    `held_out`: the validation items, whose passages are no candidates."""
    mining = _mining_of(index)
    rows = _rows(index)
    tasks = _tasks(index, rows, set(held_out), mining)
    folder = cache_dir("negatives") / _key(tasks, model, mining)
    cached = intact(folder, "mined negatives")
    if not cached:
        with build_lock(folder):
            cached = intact(folder, "mined negatives")
            if not cached:
                _build(folder, tasks, model, mining)
    table = pq.read_table(folder / TABLE)
    mined_stats = json.loads((folder / STATS).read_text(encoding="utf-8"))
    return _attach(index, rows, table, folder, {**mined_stats, "cached": cached})


def cache_key(index: PairIndex, model: Any, held_out: set[str] | Sequence[str] = ()) -> str:
    """The key `mine` files its result under: the model's fingerprint, the mining parameters, and the
    exact rows (item ids, questions, positives) and candidate pool of every language mined."""
    mining = _mining_of(index)
    return _key(_tasks(index, _rows(index), set(held_out), mining), model, mining)


# ----------------------------------------------------------------------------- mining


def _mining_of(index: PairIndex) -> MiningParams:
    if index.params.hard_negatives != "mined":
        raise ParamsError("mining needs batching.hard_negatives: mined")
    return index.params.mining_()


def _rows(index: PairIndex) -> dict[str, list[Any]]:
    """The table's item ids, languages, questions and passages (in the positive's format), as lists."""
    arrow = index.table.with_format("arrow")[:]
    with_paragraph = index.params.positive == "sentence+paragraph"
    columns = {c: arrow.column(c).to_pylist() for c in ("item_id", "lang", "question", "sentence", "paragraph")}
    columns["passage"] = [
        answer_text(s, p, with_paragraph) for s, p in zip(columns.pop("sentence"), columns.pop("paragraph"))
    ]
    return columns


def _tasks(
    index: PairIndex, rows: dict[str, list[Any]], held_out: set[str], mining: MiningParams
) -> dict[str, dict[str, list[str]]]:
    """Per pool language: the rows to mine (item ids, questions, positives) and the candidate pool."""
    active = set(index.item_ids[index.active].tolist())
    languages = list(index.languages) if mining.language == "same" else [mining.language]
    tasks: dict[str, dict[str, list[str]]] = {
        lang: {"ids": [], "anchor": [], "positive": [], "corpus": []} for lang in languages
    }
    for item, lang, question, passage in zip(rows["item_id"], rows["lang"], rows["question"], rows["passage"]):
        task = tasks.get(lang)
        if task is None or item in held_out:
            continue
        task["corpus"].append(passage)
        if item in active:
            task["ids"].append(item)
            task["anchor"].append(question)
            task["positive"].append(passage)
    return {lang: task for lang, task in tasks.items() if task["ids"]}


def _key(tasks: dict[str, dict[str, list[str]]], model: Any, mining: MiningParams) -> str:
    from hbnb.evaluation.encoding import model_fingerprint, texts_fingerprint

    parts = {
        "version": VERSION,
        "model": model_fingerprint(model),
        "mining": mining.model_dump(exclude={"model"}),  # the model is in its fingerprint
        "languages": {
            lang: [texts_fingerprint(task[part], part) for part in ("ids", "anchor", "positive", "corpus")]
            for lang, task in tasks.items()
        },
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _build(folder: Path, tasks: dict[str, dict[str, list[str]]], model: Any, mining: MiningParams) -> None:
    """Mine every language with sentence-transformers and publish the table (and its figures) at `folder`."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    from hbnb.evaluation.encoding import gpu_encoding

    columns: dict[str, list[Any]] = {"item_id": [], "lang": [], "negatives": [], "scores": [], "positive_score": []}
    for lang, task in tasks.items():
        pairs = Dataset.from_dict({"anchor": task["anchor"], "positive": task["positive"]})
        mined = mine_hard_negatives(
            pairs,
            model,
            anchor_column_name="anchor",
            positive_column_name="positive",
            corpus=task["corpus"],
            range_min=mining.range_min,
            range_max=mining.range_max,
            absolute_margin=mining.margin,
            relative_margin=mining.relative_margin,
            num_negatives=mining.num_negatives,
            sampling_strategy="top",
            output_format="triplet",
            output_scores=True,
            batch_size=max(64, gpu_encoding(model)[1]),
            verbose=False,
        )
        found: dict[tuple[str, str], list[tuple[str, float, float]]] = defaultdict(list)
        for anchor, positive, negative, (pos_score, neg_score) in zip(
            mined["anchor"], mined["positive"], mined["negative"], mined["scores"]
        ):
            found[anchor, positive].append((negative, float(neg_score), float(pos_score)))
        for item, anchor, positive in zip(task["ids"], task["anchor"], task["positive"]):
            hits = found.get((anchor, positive), [])
            columns["item_id"].append(item)
            columns["lang"].append(lang)
            columns["negatives"].append([h[0] for h in hits])
            columns["scores"].append([h[1] for h in hits])
            columns["positive_score"].append(hits[0][2] if hits else None)
    table = pa.table(
        {
            "item_id": pa.array(columns["item_id"], pa.string()),
            "lang": pa.array(columns["lang"], pa.string()),
            "negatives": pa.array(columns["negatives"], pa.list_(pa.string())),
            "scores": pa.array(columns["scores"], pa.list_(pa.float32())),
            "positive_score": pa.array(columns["positive_score"], pa.float32()),
        }
    )
    stats = {
        "languages": {lang: {"rows": len(t["ids"]), "pool": len(set(t["corpus"]))} for lang, t in tasks.items()},
        "mined_rows": table.num_rows,
        "mined_without_negatives": sum(1 for n in columns["negatives"] if not n),
        "mining": mining.model_dump(exclude={"model"}),  # the model: its fingerprint in the key
    }
    with atomic_dir(folder) as tmp:
        pq.write_table(table, Path(tmp) / TABLE)
        (Path(tmp) / STATS).write_text(json.dumps(stats, indent=2), encoding="utf-8")
        write_manifest(Path(tmp))


def _attach(
    index: PairIndex, rows: dict[str, list[Any]], table: pa.Table, folder: Path, stats: dict[str, Any]
) -> MinedNegatives:
    """The mined table as negatives of the index's rows, each negative with its owners; a negative owned by
    its own item (a translation of the positive) is dropped."""
    item_number = {item: i for i, item in enumerate(index.item_ids.tolist())}
    negatives = (text for texts in table.column("negatives").to_pylist() for text in texts)
    frozen = owner_sets(negatives, [item_number[item] for item in rows["item_id"]], rows["passage"])
    by_row: dict[int, list[str]] = {}
    same = index.params.mining_().language == "same"
    dropped = 0
    for item, lang, texts in zip(
        table.column("item_id").to_pylist(), table.column("lang").to_pylist(), table.column("negatives").to_pylist()
    ):
        a = item_number[item]
        kept = [text for text in texts if a not in frozen[text]]
        dropped += len(texts) - len(kept)
        targets = [index.lang_index[lang]] if same else range(index.n_langs)
        for lang_i in targets:
            row = int(index.row[a, lang_i])
            if row >= 0:
                by_row[row] = kept
    rows_total = int((index.row[index.active] >= 0).sum())
    with_negatives = sum(1 for row in index.row[index.active].ravel().tolist() if row >= 0 and by_row.get(row))
    figures = {
        **stats,
        "rows": rows_total,
        "rows_with_negatives": with_negatives,
        "dropped_as_translations_of_the_positive": dropped,
    }
    return MinedNegatives(by_row, frozen, index.params.seed, folder, figures)
