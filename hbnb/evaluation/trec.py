"""TREC run and qrels files, so any standard tool (trec_eval, pytrec_eval, ir_measures) can re-score a run.

What an evaluation folder holds (`Evaluation.save`):
- `run.trec` / `qrels.trec`: the task's main ranking. For a pair-matrix set with a
  multilingual pool (XQuAD-R, MLQA-R) it is the pool: each query's best `run_depth`
  candidates of every language (`PoolRun`), so AP read from it is truncated at that
  depth. For per-language pools (MIRACL, the `-paragraphs` sets) it is each query's
  ranking of its own language's pool (`PairRun` with plain query ids): the standard
  run file of such a set, and every value of per_query.parquet can be recomputed from it.
- `run.pairs.trec` / `qrels.pairs.trec` (pair-matrix sets, `evaluate(..., pair_runs=True)`
  or `hbnb evaluate --pair-runs`): one ranked list per (query, candidate language) row
  of per_query.parquet, with query id `<query id>@<candidate language>` (e.g.
  `de_5726...@en`: German question, English candidates). `trec_eval -q` on them gives
  each pair's values; grouped by the suffix, every pair's mean.

A per-pair list runs `run_depth` deep or down to the query's deepest relevant
candidate of that language, whichever is deeper, so AP (over the full list), nDCG@10,
recall@k (k <= run_depth) and RR read from it equal hbnb's exactly; after a faiss
top-k search (`depth=`) the lists end at that depth, as hbnb's values do.

Ties: hbnb ranks equal scores by candidate position (`hbnb.evaluation.ranking.TIE_RULE`),
while trec_eval sorts them by document id (descending) and others (the MS MARCO
evaluator behind ir_measures' RR@k) ascending. So that every tool sees hbnb's order,
a written score that is not below the one above it is lowered to the next float32
below that one (`distinct_scores`; float32 because trec_eval keeps scores as C floats):
only tied scores move, each by as many float32 steps as its place in the run of ties
(and a score right below such a run, if it would now tie, by one step more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

if TYPE_CHECKING:
    from hbnb.evaluation.ranking import Ranking


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
        starts = np.arange(n + 1, dtype=np.int64) * k
        _write_run(path, self.query_ids, starts, self.top.ravel(), self.scores.ravel(), self.candidate_ids, self.tag)

    def write_qrels(self, path: str) -> None:
        """`qid 0 docid 1` lines: binary relevance."""
        _write_qrels(path, self.query_ids, self.relevant)


@dataclass(frozen=True)
class PairRun:
    """Ranked lists of uneven length, one per (query, candidate language), in TREC formats.

    List i is `docs[starts[i]:starts[i + 1]]` (candidate-table indices in rank order)
    with `scores` alike; `query_ids[i]` and `langs[i]` name its query and candidate
    language, `relevant[i]` the relevant candidate ids of that language. With
    `pair_ids` the written query id is `<query id>@<language>`, else the query id
    (for sets where each query has one list).
    """

    query_ids: Sequence[str]
    langs: Sequence[str]
    docs: np.ndarray
    scores: np.ndarray
    starts: np.ndarray
    candidate_ids: Sequence[str]
    relevant: Sequence[Sequence[str]]
    tag: str
    pair_ids: bool = True

    @classmethod
    def of(
        cls,
        ranking: Ranking,
        query_ids: Sequence[str],
        candidate_ids: Sequence[str],
        candidate_langs: Sequence[str],
        relevant: Sequence[Sequence[int]],
        tag: str,
        pair_ids: bool = True,
    ) -> PairRun:
        """A ranking's per-pair lists (`Ranking.lists`), each with the relevant candidates of its language."""
        lists = ranking.lists
        langs = [ranking.languages[y] for y in lists.langs]
        return cls(
            [query_ids[r] for r in lists.rows],
            langs,
            lists.docs,
            lists.scores,
            lists.starts,
            candidate_ids,
            [[candidate_ids[j] for j in relevant[r] if candidate_langs[j] == y] for r, y in zip(lists.rows, langs)],
            tag,
            pair_ids,
        )

    @property
    def run_ids(self) -> list[str]:
        """The query id of each list, as written."""
        if not self.pair_ids:
            return list(self.query_ids)
        return [f"{q}@{lang}" for q, lang in zip(self.query_ids, self.langs)]

    def write_run(self, path: str) -> None:
        """`qid Q0 docid rank score tag` lines, list after list, in hbnb's rank order."""
        _write_run(path, self.run_ids, self.starts, self.docs, self.scores, self.candidate_ids, self.tag)

    def write_qrels(self, path: str) -> None:
        """`qid 0 docid 1` lines: binary relevance."""
        _write_qrels(path, self.run_ids, self.relevant)


def distinct_scores(scores: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Scores (as float64, for writing) strictly decreasing in float32 within each list: a score not
    below the one before it becomes the next float32 below that one. Lists (`scores[starts[i]:starts[i + 1]]`)
    are in rank order."""
    out = np.asarray(scores, dtype=np.float32).copy()
    first = np.zeros(len(out) + 1, dtype=bool)
    first[starts] = True
    check = np.nonzero(~first[1 : len(out)])[0] + 1  # every line but the first of its list
    while len(check):  # one pass per place in the longest run of tied scores (a handful)
        bad = check[out[check] >= out[check - 1]]
        out[bad] = np.nextafter(out[bad - 1], -np.inf)
        check = np.unique(np.concatenate([bad, bad + 1]))
        check = check[(check < len(out)) & ~first[check]]
    return out.astype(np.float64)


def _write_run(
    path: str,
    query_ids: Sequence[str],
    starts: np.ndarray,
    docs: np.ndarray,
    scores: np.ndarray,
    candidate_ids: Sequence[str],
    tag: str,
) -> None:
    lengths = np.diff(starts)
    n = int(starts[-1])
    first_of_line = np.repeat(starts[:-1], lengths)
    table = pa.table(
        {
            "qid": np.repeat(np.asarray(query_ids, dtype=object), lengths),
            "q0": pa.array(["Q0"]).take(pa.array(np.zeros(n, dtype=np.int64))),
            "docid": np.asarray(candidate_ids, dtype=object)[docs],
            "rank": np.arange(n, dtype=np.int64) - first_of_line + 1,
            "score": distinct_scores(scores, starts),
            "tag": pa.array([tag.replace(" ", "_") or "hbnb"]).take(pa.array(np.zeros(n, dtype=np.int64))),
        }
    )
    _write_space_separated(table, path)


def _write_qrels(path: str, query_ids: Sequence[str], relevant: Sequence[Sequence[str]]) -> None:
    qids = [q for q, ids in zip(query_ids, relevant) for _ in ids]
    docs = [c for ids in relevant for c in ids]
    table = pa.table({"qid": qids, "iter": [0] * len(qids), "docid": docs, "rel": [1] * len(qids)})
    _write_space_separated(table, path)


def _write_space_separated(table: pa.Table, path: str) -> None:
    options = pacsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
    pacsv.write_csv(table, path, write_options=options)
