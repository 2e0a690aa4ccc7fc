"""TREC run and qrels files, so any standard tool (trec_eval, pytrec_eval, ir_measures) can re-score a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv


@dataclass(frozen=True)
class PoolRun:
    """A ranked top-k per query, with the relevant candidates, ready to write in TREC formats."""

    query_ids: Sequence[str]
    top: np.ndarray  # queries x k candidate-table indices, in rank order
    scores: np.ndarray  # queries x k
    candidate_ids: Sequence[str]
    relevant: Sequence[Sequence[str]]
    tag: str

    def write_run(self, path: str) -> None:
        """`qid Q0 docid rank score tag` lines in hbnb's rank order (written by Arrow's CSV writer: fast)."""
        n, k = self.top.shape
        cand = np.asarray(self.candidate_ids, dtype=object)
        table = pa.table(
            {
                "qid": np.repeat(np.asarray(self.query_ids, dtype=object), k),
                "q0": pa.array(["Q0"]).take(pa.array(np.zeros(n * k, dtype=np.int64))),
                "docid": cand[self.top.ravel()],
                "rank": np.tile(np.arange(1, k + 1), n),
                "score": self.scores.ravel().astype(np.float64),
                "tag": pa.array([self.tag.replace(" ", "_") or "hbnb"]).take(
                    pa.array(np.zeros(n * k, dtype=np.int64))
                ),
            }
        )
        _write_space_separated(table, path)

    def write_qrels(self, path: str) -> None:
        """`qid 0 docid 1` lines: binary relevance."""
        qids = [q for q, ids in zip(self.query_ids, self.relevant) for _ in ids]
        docs = [c for ids in self.relevant for c in ids]
        table = pa.table({"qid": qids, "iter": [0] * len(qids), "docid": docs, "rel": [1] * len(qids)})
        _write_space_separated(table, path)


def _write_space_separated(table: pa.Table, path: str) -> None:
    options = pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
    pacsv.write_csv(table, path, write_options=options)
