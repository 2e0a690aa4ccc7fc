"""The validation split of a training run: held-out items and the X-X pairs whose loss picks the checkpoint."""

from __future__ import annotations

from datasets import Dataset

from hbnb import seeds
from hbnb.data.retrieval import answer_text
from hbnb.errors import ParamsError
from hbnb.languages import canonical
from hbnb.params import TrainParams


def held_out_items(table: Dataset, params: TrainParams) -> set[str]:
    """Items kept out of training for the validation loss: part of the design, so fixed by
    `batching.design_seed`, not by the strategy or the replicate seed."""
    if params.validation is None:
        return set()
    langs = [canonical(x) for x in params.validation.languages]
    arrow = table.with_format("arrow")[:]
    item_ids, row_langs = arrow.column("item_id").to_pylist(), arrow.column("lang").to_pylist()
    present = set(row_langs)
    missing = [x for x in langs if x not in present]
    if missing:
        raise ParamsError(
            f"validation.languages has {', '.join(missing)}, absent from the training data; "
            f"allowed: {', '.join(sorted(present))}"
        )
    candidates = sorted({item for item, lang in zip(item_ids, row_langs) if lang in langs})
    n = params.validation.items
    count = int(round(n * len(candidates))) if n < 1 else int(n)
    if not 2 <= count < len(candidates):
        raise ParamsError(
            f"validation.items = {n} holds out {count} of {len(candidates)} items; "
            f"it must leave at least 2 out and some in"
        )
    rng = seeds.rng(params.batching.design_seed, "validation-items")
    return {candidates[i] for i in rng.choice(len(candidates), size=count, replace=False)}


def validation_dataset(table: Dataset, held_out: set[str], params: TrainParams) -> Dataset:
    """One X-X pair per held-out item (languages in turn), so no batch holds an item twice."""
    assert params.validation is not None
    langs = [canonical(x) for x in params.validation.languages]
    rows: dict[str, list[str]] = {"anchor": [], "positive": []}
    paragraph_negatives = params.batching.hard_negatives is True  # mined ones: none here (hbnb.training.mining)
    if paragraph_negatives:
        rows["negative"] = []
    with_paragraph = params.batching.positive == "sentence+paragraph"
    by_item: dict[str, dict[str, int]] = {}
    for r, (item, lang) in enumerate(zip(table["item_id"], table["lang"])):
        if item in held_out and lang in langs:
            by_item.setdefault(item, {})[lang] = r
    for k, item in enumerate(sorted(by_item)):
        options = [lang for lang in langs if lang in by_item[item]]
        row = table[by_item[item][options[k % len(options)]]]
        if paragraph_negatives and not row["negative"]:
            continue
        rows["anchor"].append(row["question"])
        rows["positive"].append(answer_text(row["sentence"], row["paragraph"], with_paragraph))
        if paragraph_negatives:
            rows["negative"].append(row["negative"])
    return Dataset.from_dict(rows)
