"""hbnb.data: the offline data layer. Every loader returns `datasets.Dataset`s built from verified files."""

from __future__ import annotations

from hbnb.data.parallel_qa import from_dataset, load_parallel_qa, qa_languages
from hbnb.data.retrieval import RetrievalSet, load_retrieval
from hbnb.data.store import check, data_root

__all__ = [
    "RetrievalSet",
    "check",
    "data_root",
    "from_dataset",
    "load_parallel_qa",
    "load_retrieval",
    "qa_languages",
]
