"""The counts `hbnb data stats` reports for each kind of data, the training table of a run, examples.

The evaluation sets' counts are reached through their registry entries
(`hbnb.evaluation.tasks`), which point here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd
from datasets import Dataset


def per_language(table: Dataset, column: str = "lang") -> dict[str, int]:
    return dict(sorted(Counter(table[column]).items()))


def parallel_qa_stats(name: str, langs: list[str] | None = None) -> dict[str, Any]:
    from hbnb.data.parallel_qa import load_parallel_qa

    table = load_parallel_qa(name, langs)
    spread = Counter(Counter(table["item_id"]).values())
    return {
        "name": name,
        "kind": "parallel QA (training)",
        "languages": sorted(set(table["lang"])),
        "rows": table.num_rows,
        "items": len(set(table["item_id"])),
        "rows_per_language": per_language(table),
        "items_by_number_of_languages": {str(k): spread[k] for k in sorted(spread)},
    }


def mkqa_stats(langs: list[str] | None = None) -> dict[str, Any]:
    from hbnb.data.mkqa import load_mkqa

    table = load_mkqa(langs)
    return {
        "name": "mkqa",
        "kind": "parallel questions (MIA 2022 dev subset)",
        "languages": sorted(set(table["lang"])),
        "rows": table.num_rows,
        "items": len(set(table["item_id"])),
        "rows_per_language": per_language(table),
    }


def tatoeba_stats(langs: list[str] | None = None) -> dict[str, Any]:
    from hbnb.data.bitext import load_tatoeba

    table = load_tatoeba(langs)
    return {
        "name": "tatoeba",
        "kind": "bitext, xxx-eng",
        "languages": len(set(table["src_lang"])),
        "rows": table.num_rows,
        "rows_per_pair": per_language(table, "pair"),
    }


def wmt22_stats(pairs: list[str] | None = None) -> dict[str, Any]:
    from hbnb.data.bitext import load_wmt22, load_wmt22_multiway

    table = load_wmt22(pairs)
    multiway = load_wmt22_multiway()
    return {
        "name": "wmt22",
        "kind": "bitext, WMT22 general test sets",
        "rows": table.num_rows,
        "rows_per_pair": per_language(table, "pair"),
        "multiway": {"languages": [c for c in multiway.column_names if c != "line"], "rows": multiway.num_rows},
    }


def training_table(data: Any) -> Dataset:
    """The parallel QA table a training run reads: a built-in name, a user's data
    (`from_dataset`), or aligned per-language data (an `AlignedData` block)."""
    from hbnb.data.parallel_qa import QA_SETS, from_aligned, from_dataset, load_parallel_qa

    if not isinstance(data, str):
        return from_aligned(dict(data.sources), split=data.split, columns=dict(data.columns), limit=data.limit)
    return load_parallel_qa(data) if data in QA_SETS else from_dataset(data)


def examples(table: Dataset, per_language: int = 1) -> pd.DataFrame:
    """The first item(s) of each language: question and positive, to eyeball the data."""
    frame = table.select_columns(["item_id", "lang", "question", "sentence"]).to_pandas()
    return frame.groupby("lang", sort=False).head(per_language).reset_index(drop=True)
