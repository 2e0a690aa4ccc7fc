"""The named data sets of `hbnb data stats`, and the counts each one reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pandas as pd
from datasets import Dataset

from hbnb.errors import UnknownNameError


def _per_language(table: Dataset, column: str = "lang") -> dict[str, int]:
    return dict(sorted(Counter(table[column]).items()))


def _parallel_qa(name: str, langs: list[str] | None) -> dict[str, Any]:
    from hbnb.data.parallel_qa import load_parallel_qa

    table = load_parallel_qa(name, langs)
    spread = Counter(Counter(table["item_id"]).values())
    return {
        "name": name,
        "kind": "parallel QA (training)",
        "languages": sorted(set(table["lang"])),
        "rows": table.num_rows,
        "items": len(set(table["item_id"])),
        "rows_per_language": _per_language(table),
        "items_by_number_of_languages": {str(k): spread[k] for k in sorted(spread)},
    }


def _retrieval(name: str, langs: list[str] | None) -> dict[str, Any]:
    from hbnb.data.retrieval import load_retrieval

    if name.endswith("-paragraphs"):
        rs = load_retrieval(name.removesuffix("-paragraphs"), langs, level="paragraph")
        return {"kind": "retrieval, paragraph pools", **rs.stats()}
    return {"kind": "retrieval (LAReQA)", **load_retrieval(name, langs).stats()}


def _mkqa(_: str, langs: list[str] | None) -> dict[str, Any]:
    from hbnb.data.mkqa import load_mkqa

    table = load_mkqa(langs)
    return {
        "name": "mkqa",
        "kind": "parallel questions (MIA 2022 dev subset)",
        "languages": sorted(set(table["lang"])),
        "rows": table.num_rows,
        "items": len(set(table["item_id"])),
        "rows_per_language": _per_language(table),
    }


def _tatoeba(_: str, langs: list[str] | None) -> dict[str, Any]:
    from hbnb.data.bitext import load_tatoeba

    table = load_tatoeba(langs)
    return {
        "name": "tatoeba",
        "kind": "bitext, xxx-eng",
        "languages": len(set(table["src_lang"])),
        "rows": table.num_rows,
        "rows_per_pair": _per_language(table, "pair"),
    }


def _wmt22(_: str, pairs: list[str] | None) -> dict[str, Any]:
    from hbnb.data.bitext import load_wmt22, load_wmt22_multiway

    table = load_wmt22(pairs)
    multiway = load_wmt22_multiway()
    return {
        "name": "wmt22",
        "kind": "bitext, WMT22 general test sets",
        "rows": table.num_rows,
        "rows_per_pair": _per_language(table, "pair"),
        "multiway": {"languages": [c for c in multiway.column_names if c != "line"], "rows": multiway.num_rows},
    }


STATS: dict[str, Callable[[str, list[str] | None], dict[str, Any]]] = {
    "xquad": _parallel_qa,
    "mlqa": _parallel_qa,
    "xquad-r": _retrieval,
    "mlqa-r": _retrieval,
    "xquad-r-paragraphs": _retrieval,
    "mlqa-r-paragraphs": _retrieval,
    "mkqa": _mkqa,
    "tatoeba": _tatoeba,
    "wmt22": _wmt22,
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


def stats(name: str, langs: list[str] | None = None) -> dict[str, Any]:
    """Counts of one named data set (optionally some of its languages; WMT22: directions),
    as `hbnb data stats NAME --json` prints them."""
    if name not in STATS:
        raise UnknownNameError(f"unknown data set {name!r}; known: {', '.join(STATS)}")
    return STATS[name](name, langs)
