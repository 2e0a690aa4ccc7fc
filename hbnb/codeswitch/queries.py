"""Code-switched queries for evaluation: how robust is a model to mixed-language queries?

Each query not in English has its words replaced, with probability `rate`, by English
translations (a language mixed with English, the common case of a mixed query);
English queries stay as they are. The lexicons come from WMT22 and Tatoeba, never from
the evaluation set itself. Each query's switch is drawn from the stream "code-switch"
keyed by its id, so a query reads the same whichever languages are evaluated.
Candidates and relevance are unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from hbnb import seeds
from hbnb.codeswitch.sources import Source
from hbnb.codeswitch.switch import CodeSwitcher
from hbnb.data.retrieval import RetrievalSet
from hbnb.data.tables import column

EVALUATION_SOURCES = ("wmt22", "tatoeba")
TARGET = "en"


def switch_queries(
    data: RetrievalSet, rate: float, sources: Sequence[Source] = EVALUATION_SOURCES, seed: int = 0
) -> RetrievalSet:
    """The set with its non-English queries code-switched into English at `rate`."""
    switcher = CodeSwitcher(sources, [TARGET], rate)
    ids, langs, texts = (column(data.queries, c) for c in ("id", "lang", "text"))
    switcher.prepare(sorted(set(langs) - {TARGET}))
    switched = [
        switcher.switch(text, lang, seeds.rng(seed, "code-switch", zlib.crc32(qid.encode()))).text
        for qid, lang, text in zip(ids, langs, texts)
    ]
    queries = data.queries.remove_columns("text").add_column("text", switched)
    queries = queries.select_columns(data.queries.column_names)
    return RetrievalSet(data.name, queries, data.candidates, data.relevance, data.level)
