"""Ranking on matrices: where every query's relevant candidates land, per language and in the pool.

Each query is scored against all candidates (cosine of normalised embeddings, in
chunks of queries so memory stays bounded), and for each of its relevant candidates
hbnb counts how many candidates of each language score higher. That gives the
relevant candidate's rank within its own language (the pair X->Y) and within the
whole pool (multilingual) in one pass, so every text is encoded once and reused for
all pairs. Nothing here knows a data set; `hbnb.evaluation.metrics` turns ranks into
metrics.

Ties: candidates with equal scores are ranked by their position in the candidate
table, earlier first (`TIE_RULE`). Identical candidate embeddings share one score per
query (`score_chunks`), so the rule does not depend on how a matrix product is blocked.

On request (`lists`), the same pass also keeps, per (query, candidate language), that
language's candidates in rank order (`RankedLists`): the per-pair runs that TREC tools
re-score (`hbnb.evaluation.trec.PairRun`), cut from the very score blocks ranked here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hbnb.errors import MalformedDataError

FULL_RANKING_LIMIT = 200_000  # candidates; larger pools are searched top-k with faiss
TIE_RULE = "equal scores are ranked by candidate position in the candidate table, earlier first"


@dataclass(frozen=True)
class Ranking:
    """Ranks of every query's relevant candidates, within their language and within the pool.

    Arrays are (queries x K), K the largest relevant set; unused slots hold language -1
    and rank 0. `top` holds each query's best pool candidates (indices into the
    candidate table), in rank order.
    """

    languages: list[str]  # candidate languages, index -> code
    rel_lang: np.ndarray
    rank_lang: np.ndarray
    rank_pool: np.ndarray
    top: np.ndarray
    top_scores: np.ndarray
    cand_lang_of_top: np.ndarray  # language index of each top candidate
    lists: RankedLists | None = None  # per (query, candidate language) rankings, when asked for


@dataclass(frozen=True)
class RankedLists:
    """Rankings of one candidate language for some queries: list i is `docs[starts[i]:starts[i + 1]]`.

    `docs` holds candidate-table indices in rank order (the tie rule applied) and
    `scores` their scores; `rows` the query row and `langs` the candidate language
    (index into `Ranking.languages`) of each list.
    """

    rows: np.ndarray
    langs: np.ndarray
    docs: np.ndarray
    scores: np.ndarray
    starts: np.ndarray

    @classmethod
    def join(cls, parts: list[tuple[int, np.ndarray, list[np.ndarray], list[np.ndarray]]]) -> RankedLists:
        """From (language, query rows, each row's docs, each row's scores) parts."""
        rows = [int(r) for _, rs, _, _ in parts for r in rs]
        langs = [y for y, rs, _, _ in parts for _ in rs]
        docs = [d for _, _, ds, _ in parts for d in ds]
        scores = [v for _, _, _, vs in parts for v in vs]
        lengths = np.array([len(d) for d in docs], dtype=np.int64)
        return cls(
            np.array(rows, dtype=np.int64),
            np.array(langs, dtype=np.int64),
            np.concatenate(docs).astype(np.int64) if docs else np.zeros(0, dtype=np.int64),
            np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, dtype=np.float32),
            np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        )


def score_chunks(
    queries: np.ndarray, candidates: np.ndarray, chunk: int = 256
) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, scores) blocks of the query x candidate cosine matrix, `chunk` queries at a time.

    `rank` scores through this, so anyone recomputing a score row gets the same floats.
    Identical candidate embeddings get the score of their first copy: a matrix product
    may round a dot product differently depending on where a column falls in its blocks
    (seen with OpenBLAS on AVX-512), and the tie rule needs equal vectors to tie exactly.
    """
    cand = torch.from_numpy(np.ascontiguousarray(candidates, dtype=np.float32))
    copies, originals = (torch.from_numpy(x) for x in twins(candidates))
    with torch.inference_mode():
        for start in range(0, len(queries), chunk):
            rows = slice(start, min(start + chunk, len(queries)))
            block = torch.from_numpy(np.ascontiguousarray(queries[rows], dtype=np.float32)) @ cand.T
            if len(copies):
                block[:, copies] = block[:, originals]
            yield rows, block


def twins(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(copies, originals): rows equal, bit for bit, to an earlier row, and that earlier row."""
    if len(vectors) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(np.ascontiguousarray(vectors), axis=0, return_index=True, return_inverse=True)
    original = first[inverse.reshape(-1)]
    copies = np.nonzero(original != np.arange(len(vectors)))[0]
    return copies, original[copies]


def share_twin_scores(scores: np.ndarray, row_vectors: np.ndarray, column_vectors: np.ndarray) -> np.ndarray:
    """A score matrix in which identical row vectors, and identical column vectors, score identically.

    For whole matrices computed at once (bitext); `score_chunks` does the same for the
    columns of its blocks.
    """
    copies, originals = twins(column_vectors)
    if len(copies):
        scores[:, copies] = scores[:, originals]
    copies, originals = twins(row_vectors)
    if len(copies):
        scores[copies] = scores[originals]
    return scores


def rank(
    queries: np.ndarray,
    candidates: np.ndarray,
    candidate_langs: list[str],
    relevant: list[list[int]],
    *,
    top_k: int = 10,
    chunk: int = 256,
    lists: dict[str, np.ndarray] | None = None,
    list_depth: int = 100,
) -> Ranking:
    """Rank every candidate for every query and locate the relevant ones (see the module docstring).

    `queries` (Q x d) and `candidates` (C x d) are normalised embeddings; `relevant[q]`
    lists candidate-table indices. Memory: one chunk x C score block at a time.

    `lists`: {candidate language: query rows} whose ranking of that language to keep
    (`Ranking.lists`), each `list_depth` long or down to the query's deepest relevant
    candidate of that language, whichever is deeper, so that every measure of the pair
    (AP over the full list included) can be recomputed from the list.
    """
    _check_inputs(queries, candidates, candidate_langs, relevant)
    languages, lang_of, rel, rel_lang = _relevance_matrix(candidate_langs, relevant)
    blocks = _language_blocks(lang_of, len(languages))
    rank_lang = np.zeros_like(rel)
    rank_pool = np.zeros_like(rel)
    top_k = min(top_k, len(candidates))
    top = np.zeros((len(relevant), top_k), dtype=np.int64)
    top_scores = np.zeros((len(relevant), top_k), dtype=np.float32)
    wanted = {languages.index(lang): np.sort(np.asarray(r, dtype=np.int64)) for lang, r in (lists or {}).items()}
    parts: list[tuple[int, np.ndarray, list[np.ndarray], list[np.ndarray]]] = []
    for rows, scores in score_chunks(queries, candidates, chunk):
        block = scores.numpy()
        cut, clear = _rank_relevant(
            block, rel[rows], rel_lang[rows], blocks, lang_of, rank_lang[rows], rank_pool[rows], top_k
        )
        top[rows], top_scores[rows] = _top(block, cut, clear, top_k)
        for y, want in wanted.items():
            chosen = want[(want >= rows.start) & (want < rows.stop)]
            if len(chosen):
                deepest = np.where(rel_lang[chosen] == y, rank_lang[chosen], 0).max(axis=1)
                depths = np.maximum(deepest, list_depth)
                parts.append((y, chosen, *_language_lists(block[chosen - rows.start], blocks[y], depths)))
    ranked = RankedLists.join(parts) if lists is not None else None
    return Ranking(languages, rel_lang, rank_lang, rank_pool, top, top_scores, lang_of[top], ranked)


def pair_lists(
    relevant: list[list[int]], candidate_langs: list[str], query_langs: list[str], pairs: str
) -> dict[str, np.ndarray]:
    """`rank`'s `lists` for the pairs a task scores ("all", "same", "cross"): {candidate language: query
    rows}, each query with each language of its relevant candidates that `pairs` admits."""
    rows: dict[str, list[int]] = {}
    for i, (ids, x) in enumerate(zip(relevant, query_langs)):
        for y in dict.fromkeys(candidate_langs[j] for j in ids):
            if pairs == "all" or (pairs == "same") == (x == y):
                rows.setdefault(y, []).append(i)
    return {y: np.array(r, dtype=np.int64) for y, r in rows.items()}


def _language_lists(
    scores: np.ndarray, members: slice | np.ndarray, depths: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each row's ranking of one language's candidates (`members`), `depths[i]` long: (indices, scores).

    Indices are into the candidate table; order by score, then position (the tie rule).
    """
    own = np.ascontiguousarray(scores[:, members])
    n = own.shape[1]
    depths = np.minimum(depths, n)
    k = int(depths.max())
    if k < n:
        part = -np.partition(-own, [k - 1, k], axis=1)
        cut, clear = part[:, k - 1], part[:, k] < part[:, k - 1]
    else:
        cut, clear = own.min(axis=1), np.ones(len(own), dtype=bool)
    local, values = _top(own, cut, clear, k)
    index = np.arange(members.start, members.stop) if isinstance(members, slice) else members
    docs = index[local]
    return [docs[i, :d] for i, d in enumerate(depths)], [values[i, :d] for i, d in enumerate(depths)]


def rank_topk(
    queries: np.ndarray,
    candidates: np.ndarray,
    candidate_langs: list[str],
    relevant: list[list[int]],
    query_langs: list[str],
    *,
    depth: int,
    pool: bool,
    index_factory: str = "Flat",
) -> Ranking:
    """Top-`depth` ranking with faiss, for pools too large to score in full.

    "Flat" is exact inner product (the default); any faiss index_factory string (e.g.
    "HNSW32") trades exactness for speed. One index per candidate language ranks the
    queries of that language's pairs (MIRACL-style per-language pools); with `pool`,
    one more over all candidates. A relevant candidate below the depth gets rank -1.
    Each language's top `depth` per query is kept (`Ranking.lists`) in faiss's order,
    the order the ranks were read from.
    """
    import faiss

    _check_inputs(queries, candidates, candidate_langs, relevant)
    languages, lang_of, rel, rel_lang = _relevance_matrix(candidate_langs, relevant)
    rank_lang = np.zeros_like(rel)
    rank_pool = np.zeros_like(rel)
    q_langs = np.array(query_langs)

    def search(members: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        index = faiss.index_factory(candidates.shape[1], index_factory, faiss.METRIC_INNER_PRODUCT)
        index.add(np.ascontiguousarray(candidates[members], dtype=np.float32))
        scores, found = index.search(np.ascontiguousarray(queries[rows], dtype=np.float32), min(k, len(members)))
        return np.where(found >= 0, members[np.maximum(found, 0)], -1), scores  # -1: fewer than k found

    def locate(found: np.ndarray, rows: np.ndarray, slots: np.ndarray, out: np.ndarray) -> None:
        for i, row in enumerate(rows):
            position = {c: r for r, c in enumerate(found[i], start=1)}
            for k in np.nonzero(slots[i])[0]:
                out[row, k] = position.get(int(rel[row, k]), -1)

    parts = []
    for y, lang in enumerate(languages):
        rows = np.nonzero(((rel_lang == y).any(1)) & (q_langs == lang))[0]
        if len(rows):
            members = np.nonzero(lang_of == y)[0]
            found, found_scores = search(members, rows, depth)
            locate(found, rows, rel_lang[rows] == y, rank_lang)
            kept = found >= 0
            parts.append((y, rows, [f[k] for f, k in zip(found, kept)], [v[k] for v, k in zip(found_scores, kept)]))
    top, scores = np.zeros((len(relevant), 0), dtype=np.int64), np.zeros((len(relevant), 0), dtype=np.float32)
    if pool:
        rows = np.arange(len(relevant))
        top, scores = search(np.arange(len(candidates)), rows, depth)
        top = np.maximum(top, 0)
        locate(top, rows, rel >= 0, rank_pool)
    return Ranking(languages, rel_lang, rank_lang, rank_pool, top, scores, lang_of[top], RankedLists.join(parts))


def _relevance_matrix(
    candidate_langs: list[str], relevant: list[list[int]]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(languages, language index per candidate, relevant ids padded with -1 to queries x K, their languages)."""
    languages = list(dict.fromkeys(candidate_langs))
    index = {lang: i for i, lang in enumerate(languages)}
    lang_of = np.array([index[x] for x in candidate_langs], dtype=np.int64)
    rel = np.full((len(relevant), max(len(r) for r in relevant)), -1, dtype=np.int64)
    for q, ids in enumerate(relevant):
        rel[q, : len(ids)] = ids
    rel_lang = np.where(rel >= 0, lang_of[np.maximum(rel, 0)], -1)
    return languages, lang_of, rel, rel_lang


def _check_inputs(queries: np.ndarray, candidates: np.ndarray, langs: list[str], relevant: list[list[int]]) -> None:
    if len(queries) != len(relevant):
        raise MalformedDataError(
            f"{len(queries)} query embeddings for {len(relevant)} queries; encode exactly the queries of the data"
        )
    if len(candidates) != len(langs):
        raise MalformedDataError(
            f"{len(candidates)} candidate embeddings for {len(langs)} candidates; "
            "encode exactly the candidates of the data"
        )
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise MalformedDataError(
            f"embedding shapes {queries.shape} and {candidates.shape} do not match (both must be 2-D, same width)"
        )
    for label, array in (("query", queries), ("candidate", candidates)):
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        if bad:
            raise MalformedDataError(f"{bad} {label} embeddings hold NaN or infinite values; check the model's output")
    empty = [q for q, ids in enumerate(relevant) if not ids]
    if empty:
        raise MalformedDataError(f"{len(empty)} queries (e.g. row {empty[0]}) have no relevant candidate")


def _rank_relevant(
    scores: np.ndarray,
    rel: np.ndarray,
    rel_lang: np.ndarray,
    blocks: list[slice | np.ndarray],
    lang_of: np.ndarray,
    rank_lang: np.ndarray,
    rank_pool: np.ndarray,
    top_k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill the rank of each relevant candidate of a chunk of queries (1-based, tie rule applied).

    Each language's block of scores is sorted once per query (numpy's vectorised sort);
    a binary search then counts, for every relevant slot at once, the candidates of that
    language scoring higher (its rank in the pair) and, summed over languages, in the pool.
    Returns each query's `top_k`-th best score in the pool, read off the sorted blocks,
    and whether it is clear of the next (no tie across the top-k boundary).
    """
    pivots = torch.from_numpy(np.take_along_axis(scores, np.maximum(rel, 0), axis=1))
    valid = rel >= 0
    greater_pool = np.zeros(rel.shape, dtype=np.int64)
    equal_pool = np.zeros(rel.shape, dtype=np.int64)
    greater_lang = np.zeros(rel.shape, dtype=np.int64)
    block_tops = []
    for y, members in enumerate(blocks):
        ordered = np.sort(np.ascontiguousarray(scores[:, members]), axis=1)
        block_tops.append(ordered[:, -(top_k + 1) :])
        sorted_t = torch.from_numpy(ordered)
        above = torch.searchsorted(sorted_t, pivots, right=True).numpy()
        greater = ordered.shape[1] - above
        greater_pool += greater
        equal_pool += above - torch.searchsorted(sorted_t, pivots).numpy()
        own = rel_lang == y
        greater_lang[own] = greater[own]
    rank_lang[:] = np.where(valid, greater_lang + 1, 0)
    rank_pool[:] = np.where(valid, greater_pool + 1, 0)
    for row, k in zip(*np.nonzero(valid & (equal_pool > 1))):  # rare: count the tied candidates that come earlier
        earlier = np.nonzero(scores[row, : rel[row, k]] == scores[row, rel[row, k]])[0]
        rank_pool[row, k] += len(earlier)
        rank_lang[row, k] += int((lang_of[earlier] == rel_lang[row, k]).sum())
    best = np.sort(np.concatenate(block_tops, axis=1), axis=1)
    cut = best[:, -top_k]
    clear = best[:, -top_k - 1] < cut if best.shape[1] > top_k else np.ones(len(best), dtype=bool)
    return cut, clear


def _language_blocks(lang_of: np.ndarray, n_languages: int) -> list[slice | np.ndarray]:
    """Each language's candidate indices: a slice when they are contiguous (no copy to gather)."""
    blocks: list[slice | np.ndarray] = []
    for y in range(n_languages):
        members = np.nonzero(lang_of == y)[0]
        contiguous = len(members) and members[-1] - members[0] + 1 == len(members)
        blocks.append(slice(int(members[0]), int(members[-1]) + 1) if contiguous else members)
    return blocks


def _top(scores: np.ndarray, cut: np.ndarray, clear: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best candidates (candidate-table indices) in rank order, tie rule applied.

    `cut` is each row's k-th best score: where it is `clear` of the (k+1)-th, the
    candidates at or above it are exactly the top k, sorted by (score, position). A row
    whose k-th score is tied across the boundary is sorted in full (rare).
    """
    indices = np.zeros((len(scores), k), dtype=np.int64)
    rows = torch.from_numpy(np.nonzero(clear)[0])
    above = torch.from_numpy(scores)[rows] >= torch.from_numpy(cut)[rows, None]
    indices[clear] = torch.nonzero(above)[:, 1].reshape(-1, k).numpy()
    for row in np.nonzero(~clear)[0]:
        indices[row] = np.lexsort((np.arange(scores.shape[1]), -scores[row]))[:k]
    values = np.take_along_axis(scores, indices, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")  # indices ascend within a row: ties stay in position order
    return np.take_along_axis(indices, order, axis=1), np.take_along_axis(values, order, axis=1)
