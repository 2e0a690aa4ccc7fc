"""Retrieval metrics for every language pair, the multilingual pool, language bias, and bitext.

All metrics come from one ranking pass per query over the candidates of every
language at once: each query is scored against all candidates (cosine of normalised
embeddings, in chunks of queries so memory stays bounded), and for each of its
relevant candidates hbnb counts how many candidates of each language score higher.
That gives the relevant candidate's rank within its own language (the pair X->Y)
and within the whole pool (multilingual) in one pass, so every text is encoded once
and reused for all pairs.

Metrics, per query, from the ranks r_1 < ... < r_m of its m relevant candidates:
- average precision (LAReQA mAP): (1/m) * sum_i i / r_i, over the full candidate list;
- recall@k: #{r_i <= k} / m;  mrr@10: 1 / r_1 if r_1 <= 10 else 0;
- ndcg@10 with binary gains; rank distance (pool only): r_m - r_1.

Ties: candidates with equal scores are ranked by their position in the candidate
table, earlier first (`TIE_RULE`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import torch

from hbnb.data.tables import column
from hbnb.errors import MalformedDataError
from hbnb.files import write_atomic
from hbnb.params import EVAL_SETS

FULL_RANKING_LIMIT = 200_000  # candidates; larger pools are searched top-k with faiss
TIE_RULE = "equal scores are ranked by candidate position in the candidate table, earlier first"
PAIR_METRICS = ("map", "recall@1", "recall@10", "mrr@10", "ndcg@10", "recall@100")
POOL_METRICS = ("map", "recall@1", "recall@10", "rank_distance")
_PER_QUERY = {
    "map": "ap",
    "recall@1": "recall@1",
    "recall@10": "recall@10",
    "mrr@10": "rr@10",
    "ndcg@10": "ndcg@10",
    "recall@100": "recall@100",
    "rank_distance": "rank_distance",
}


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


def score_chunks(queries: np.ndarray, candidates: np.ndarray, chunk: int = 256) -> Iterator[tuple[slice, torch.Tensor]]:
    """(rows, scores) blocks of the query x candidate cosine matrix, `chunk` queries at a time.

    `rank` scores through this, so anyone recomputing a score row gets the same floats.
    """
    cand = torch.from_numpy(np.ascontiguousarray(candidates, dtype=np.float32))
    with torch.inference_mode():
        for start in range(0, len(queries), chunk):
            rows = slice(start, min(start + chunk, len(queries)))
            yield rows, torch.from_numpy(np.ascontiguousarray(queries[rows], dtype=np.float32)) @ cand.T


def rank(
    queries: np.ndarray,
    candidates: np.ndarray,
    candidate_langs: list[str],
    relevant: list[list[int]],
    *,
    top_k: int = 10,
    chunk: int = 256,
) -> Ranking:
    """Rank every candidate for every query and locate the relevant ones (see the module docstring).

    `queries` (Q x d) and `candidates` (C x d) are normalised embeddings; `relevant[q]`
    lists candidate-table indices. Memory: one chunk x C score block at a time.
    """
    _check_inputs(queries, candidates, candidate_langs, relevant)
    languages, lang_of, rel, rel_lang = _relevance_matrix(candidate_langs, relevant)
    blocks = _language_blocks(lang_of, len(languages))
    rank_lang = np.zeros_like(rel)
    rank_pool = np.zeros_like(rel)
    top_k = min(top_k, len(candidates))
    top = np.zeros((len(relevant), top_k), dtype=np.int64)
    top_scores = np.zeros((len(relevant), top_k), dtype=np.float32)
    for rows, scores in score_chunks(queries, candidates, chunk):
        block = scores.numpy()
        cut, clear = _rank_relevant(block, rel[rows], rel_lang[rows], blocks, lang_of, rank_lang[rows], rank_pool[rows], top_k)
        top[rows], top_scores[rows] = _top(block, cut, clear, top_k)
    return Ranking(languages, rel_lang, rank_lang, rank_pool, top, top_scores, lang_of[top])


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
        return members[np.where(found >= 0, found, 0)], scores

    def locate(found: np.ndarray, rows: np.ndarray, slots: np.ndarray, out: np.ndarray) -> None:
        for i, row in enumerate(rows):
            position = {c: r for r, c in enumerate(found[i], start=1)}
            for k in np.nonzero(slots[i])[0]:
                out[row, k] = position.get(int(rel[row, k]), -1)

    for y, lang in enumerate(languages):
        rows = np.nonzero(((rel_lang == y).any(1)) & (q_langs == lang))[0]
        if len(rows):
            members = np.nonzero(lang_of == y)[0]
            locate(search(members, rows, depth)[0], rows, rel_lang[rows] == y, rank_lang)
    top, scores = np.zeros((len(relevant), 0), dtype=np.int64), np.zeros((len(relevant), 0), dtype=np.float32)
    if pool:
        rows = np.arange(len(relevant))
        top, scores = search(np.arange(len(candidates)), rows, depth)
        locate(top, rows, rel >= 0, rank_pool)
    return Ranking(languages, rel_lang, rank_lang, rank_pool, top, scores, lang_of[top])


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
            f"{len(candidates)} candidate embeddings for {len(langs)} candidates; encode exactly the candidates of the data"
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


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Per-query metrics from relevant ranks (queries x K).

    A slot holds the rank of a relevant candidate (> 0), 0 when the query has no
    relevant candidate in that slot, or -1 for a relevant candidate ranked below the
    retrieved depth (top-k search): it counts as relevant but never found, so AP is
    truncated at the depth and rank distance is undefined (NaN).
    """
    m = (ranks != 0).sum(1)
    if (m == 0).any():
        raise ValueError("every query needs at least one relevant rank")
    r = np.where(ranks > 0, ranks, np.inf)
    r.sort(axis=1)
    valid = np.isfinite(r)
    hits = np.arange(1, r.shape[1] + 1)[None, :]
    ap = np.where(valid, hits / np.where(valid, r, 1), 0).sum(1) / m
    first = r[:, 0]
    gains = np.where(valid & (r <= 10), 1 / np.log2(np.where(valid, r, 1) + 1), 0).sum(1)
    ideal = np.concatenate([[0.0], np.cumsum(1 / np.log2(np.arange(2, 12)))])[np.minimum(m, 10)]
    last = np.where(valid, r, -np.inf).max(1)
    return {
        "ap": ap,
        "recall@1": (valid & (r <= 1)).sum(1) / m,
        "recall@10": (valid & (r <= 10)).sum(1) / m,
        "recall@100": (valid & (r <= 100)).sum(1) / m,
        "rr@10": np.where(first <= 10, 1 / first, 0.0),
        "ndcg@10": gains / ideal,
        "rank_distance": np.where((ranks < 0).any(1), np.nan, last - first),
    }


@dataclass
class Evaluation:
    """The scores of one model on one data set: a tidy table and per-query values.

    `table`: one row per (run, dataset, setting, query_lang, cand_lang, metric) with
    `value` and `n_queries`; settings: "pair" (X->Y), "mono"/"cross" (macro over pairs,
    overall when query_lang is "all", else per query language), "pool" (multilingual),
    "top10_share" (share of each candidate language among the pool's top 10), "bitext".
    `per_query`: one row per (query, cand_lang or "pool") with every per-query metric.
    """

    run: str
    dataset: str
    table: pd.DataFrame
    per_query: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    trec: Any = None  # hbnb.trec.PoolRun of the multilingual pool, written as run.trec / qrels.trec

    def summary(self) -> dict[str, float]:
        """The paper's headline figures: mono/cross/multilingual mAP and mean rank distance."""
        t = self.table
        out = {}
        for setting, metric, name in (
            ("mono", "map", "mono_map"),
            ("cross", "map", "cross_map"),
            ("pool", "map", "multilingual_map"),
            ("pool", "rank_distance", "rank_distance"),
        ):
            rows = t[(t.setting == setting) & (t.query_lang == "all") & (t.metric == metric)]
            if len(rows):
                out[name] = float(rows.value.iloc[0])
        return out

    def save(self, folder: Path | str) -> Path:
        """Write metrics.parquet/.csv, per_query.parquet, run.trec, qrels.trec and meta.json."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "metrics.parquet", lambda p: self.table.to_parquet(p, index=False))
        write_atomic(folder / "metrics.csv", lambda p: self.table.to_csv(p, index=False))
        write_atomic(folder / "per_query.parquet", lambda p: self.per_query.to_parquet(p, index=False))
        if self.trec is not None:
            write_atomic(folder / "run.trec", self.trec.write_run)
            write_atomic(folder / "qrels.trec", self.trec.write_qrels)
        write_atomic(folder / "meta.json", lambda p: Path(p).write_text(json.dumps(self.meta, indent=2), encoding="utf-8"))
        return folder


# ----------------------------------------------------------------------------- tables


def per_query_frame(
    ranking: Ranking, query_ids: list[str], item_ids: list[str], query_langs: list[str], pairs: str, pool: bool
) -> pd.DataFrame:
    """One row per (query, candidate language) and, with `pool`, per (query, "pool"): every metric.

    `pairs`: "all" language pairs, "same" (X->X only) or "cross" (X->Y, Y != X only).
    """
    frames = []
    base = pd.DataFrame({"query_id": query_ids, "item_id": item_ids, "query_lang": query_langs})
    for y, lang in enumerate(ranking.languages):
        mask = ranking.rel_lang == y
        rows = np.nonzero(mask.any(axis=1))[0]
        keep = base.query_lang.to_numpy()[rows]
        rows = rows[(keep == lang) if pairs == "same" else (keep != lang) if pairs == "cross" else slice(None)]
        if len(rows) == 0:
            continue
        values = metrics_from_ranks(np.where(mask, ranking.rank_lang, 0)[rows])
        values.pop("rank_distance")
        frames.append(base.iloc[rows].assign(cand_lang=lang, **values))
    if pool:
        frames.append(base.assign(cand_lang="pool", **metrics_from_ranks(ranking.rank_pool)))
    return pd.concat(frames, ignore_index=True)


def aggregate(per_query: pd.DataFrame, ranking: Ranking | None, run: str, dataset: str, *, n_resamples: int = 2000) -> pd.DataFrame:
    """The tidy table: pairs, mono/cross macro-averages, pool, top-10 language shares (see Evaluation)."""
    from hbnb.significance import macro_cis

    rows: list[dict[str, Any]] = []

    def add(setting: str, query_lang: str, cand_lang: str, metric: str, value: float, n: int, ci=None) -> None:
        rows.append(
            {"run": run, "dataset": dataset, "setting": setting, "query_lang": query_lang, "cand_lang": cand_lang,
             "metric": metric, "value": float(value), "n_queries": int(n),
             "ci_low": ci.low if ci else np.nan, "ci_high": ci.high if ci else np.nan}
        )

    pairs = per_query[per_query.cand_lang != "pool"]
    means = pairs.groupby(["query_lang", "cand_lang"], sort=False)
    pair_columns = [_PER_QUERY[m] for m in PAIR_METRICS]
    pair_table = means[pair_columns].mean()
    counts = means.size()
    for (x, y), values in pair_table.iterrows():
        for metric in PAIR_METRICS:
            add("pair", x, y, metric, values[_PER_QUERY[metric]], counts[(x, y)])
    for setting, same in (("mono", True), ("cross", False)):
        chosen = pairs[(pairs.query_lang == pairs.cand_lang) == same]
        if chosen.empty:
            continue
        keyed = chosen.assign(stratum=chosen.query_lang + "->" + chosen.cand_lang)
        pair_means = keyed.groupby("stratum")[pair_columns].mean()
        first_lang = keyed.groupby("stratum").query_lang.first()
        other = "same" if same else "others"
        cis = macro_cis(keyed[["item_id", "stratum", *pair_columns]], pair_columns, n_resamples=n_resamples)
        for metric in PAIR_METRICS:
            column = _PER_QUERY[metric]
            add(setting, "all", other, metric, pair_means[column].mean(), len(keyed), cis[column])
            for x, values in pair_means[column].groupby(first_lang):
                add(setting, x, other, metric, values.mean(), int((keyed.query_lang == x).sum()))
    pool = per_query[per_query.cand_lang == "pool"]
    if not pool.empty:
        by_lang = pool.groupby("query_lang", sort=False)
        # rank distance after a top-k search is NaN (not every relevant was ranked): not reported
        metrics = [m for m in POOL_METRICS if not pool[_PER_QUERY[m]].isna().any()]
        columns = [_PER_QUERY[m] for m in metrics]
        cis = macro_cis(pool.assign(stratum=pool.query_lang)[["item_id", "stratum", *columns]], columns, n_resamples=n_resamples)
        for metric, column in zip(metrics, columns):
            for x, values in by_lang[column]:
                add("pool", x, "pool", metric, values.mean(), len(values))
            add("pool", "all", "pool", metric, by_lang[column].mean().mean(), len(pool), cis[column])
        if ranking is not None:
            for x, share in top_language_share(ranking, list(pool.query_lang), 10).items():
                for y, value in share.items():
                    add("top10_share", x, y, "share", value, int((pool.query_lang == x).sum()))
    return pd.DataFrame(rows)


def top_language_share(ranking: Ranking, query_langs: list[str], k: int = 10) -> dict[str, dict[str, float]]:
    """Per query language, the mean share of each candidate language among the top k (a view of bias)."""
    langs = np.array(query_langs)
    lang_index = {lang: i for i, lang in enumerate(ranking.languages)}
    out: dict[str, dict[str, float]] = {}
    top_lang = ranking.cand_lang_of_top[:, :k]
    for x in dict.fromkeys(query_langs):
        rows = top_lang[langs == x]
        counts = np.stack([(rows == lang_index[y]).sum(1) for y in ranking.languages], 1) / rows.shape[1]
        out[x] = dict(zip(ranking.languages, counts.mean(0).tolist()))
    return out


# ----------------------------------------------------------------------------- evaluate

DATASETS = EVAL_SETS


def evaluate(
    model: Any,
    data: Any,
    *,
    run: str = "model",
    candidates: str = "paragraph",
    langs: list[str] | None = None,
    cache: bool = True,
    run_depth: int = 1000,
    n_resamples: int = 2000,
    batch_size: int = 64,
    depth: int | None = None,
    index_factory: str = "Flat",
) -> Evaluation:
    """Score a `SentenceTransformer` on a data set: a name in `DATASETS` or a `RetrievalSet`.

    - xquad-r, mlqa-r (or a RetrievalSet): all language pairs, monolingual and
      cross-lingual macro-averages, the multilingual pool with rank distance and top-10
      language shares; `candidates` is "paragraph" (LAReQA: the sentence with its
      paragraph) or "sentence" (much cheaper on CPU).
    - xquad-r-paragraphs, mlqa-r-paragraphs: per-language paragraph pools (MIRACL-style),
      read for ndcg@10 and recall@100.
    - mkqa: question->question retrieval across languages (the parallel questions are relevant).
    - tatoeba, wmt22: bitext retrieval, accuracy@1 in both directions per pair.

    `depth`: None ranks every candidate (exact; every metric). A number switches to a
    faiss top-`depth` search (exact inner product with index_factory "Flat"), for pools
    too large to score in full: per-language pools and the multilingual pool, top-k
    metrics (AP truncated at the depth). Pools over FULL_RANKING_LIMIT candidates use
    it with depth 1000 unless a depth is given.
    """
    import time

    from hbnb.encoding import model_fingerprint

    start = time.perf_counter()
    fingerprint = model_fingerprint(model)
    name = data if isinstance(data, str) else data.name
    if isinstance(data, str) and data in ("tatoeba", "wmt22"):
        evaluation = _evaluate_bitext(model, data, langs, run, fingerprint, cache, batch_size)
    else:
        rs, pairs, pool, role = _retrieval_task(data, langs)
        evaluation = _evaluate_retrieval(
            model, rs, run=run, candidates=candidates, pairs=pairs, pool=pool, role=role, cache=cache,
            run_depth=run_depth, n_resamples=n_resamples, fingerprint=fingerprint, batch_size=batch_size,
            depth=depth, index_factory=index_factory,
        )
    evaluation.meta.update(
        {"run": run, "dataset": name, "model_fingerprint": fingerprint, "tie_rule": TIE_RULE,
         "wall_time_s": round(time.perf_counter() - start, 3)}
    )
    return evaluation


def evaluate_to(
    folder: Path | str,
    model_spec: str,
    run: str,
    datasets: list[str],
    *,
    langs: dict[str, list[str]] | None = None,
    candidates: str = "paragraph",
    n_resamples: int = 2000,
    run_depth: int = 1000,
    baseline: bool = False,
    label: str | None = None,
) -> dict[str, Evaluation]:
    """Load a model once, evaluate it on each data set into `folder/<data set>/`, and record the run.

    `folder/info.json` names the run, its model (`label`, e.g. the base model a run
    fine-tuned, else the spec) and whether it is an untuned baseline.
    """
    from hbnb import models

    folder = Path(folder)
    model = models.load(model_spec)
    results = {}
    for name in datasets:
        result = evaluate(model, name, run=run, candidates=candidates, langs=(langs or {}).get(name),
                          n_resamples=n_resamples, run_depth=run_depth)
        result.meta["model"] = model_spec
        result.save(folder / name)
        results[name] = result
    info = {"run": run, "model": label or model_spec, "model_path": model_spec, "baseline": baseline,
            "datasets": datasets, "candidates": candidates}
    write_atomic(folder / "info.json", lambda p: Path(p).write_text(json.dumps(info, indent=2), encoding="utf-8"))
    return results


def _retrieval_task(data: Any, langs: list[str] | None):
    """(retrieval set, which pairs, whether to score the pool, the candidates' encoding role)."""
    from hbnb.data.retrieval import RetrievalSet, load_retrieval

    if isinstance(data, RetrievalSet):
        return data, "all", True, "passage"
    if data in ("xquad-r", "mlqa-r"):
        return load_retrieval(data, langs), "all", True, "passage"
    if data in ("xquad-r-paragraphs", "mlqa-r-paragraphs"):
        return load_retrieval(data.removesuffix("-paragraphs"), langs, level="paragraph"), "same", False, "passage"
    if data == "mkqa":
        return _mkqa_retrieval(langs), "cross", False, "query"
    from hbnb.errors import UnknownNameError

    raise UnknownNameError(f"unknown evaluation data {data!r}; use one of {', '.join(DATASETS)} or a RetrievalSet")


def _mkqa_retrieval(langs: list[str] | None):
    """MKQA as a retrieval set: each question's relevant candidates are its translations."""
    from datasets import Dataset

    from hbnb.data.mkqa import load_mkqa
    from hbnb.data.retrieval import RetrievalSet

    table = load_mkqa(langs)
    ids = [f"{lang}_{item}" for lang, item in zip(table["lang"], table["item_id"])]
    by_item: dict[str, list[str]] = {}
    for cid, item in zip(ids, table["item_id"]):
        by_item.setdefault(item, []).append(cid)
    queries = Dataset.from_dict({"id": ids, "item_id": list(table["item_id"]), "lang": list(table["lang"]), "text": list(table["question"])})
    n = len(ids)
    candidates = Dataset.from_dict(
        {"id": ids, "lang": list(table["lang"]), "sentence": list(table["question"]), "paragraph": [""] * n,
         "paragraph_id": [""] * n, "title": [""] * n}
    )
    relevant = [[c for c in by_item[item] if c != qid] for qid, item in zip(ids, table["item_id"])]
    relevance = Dataset.from_dict({"query_id": ids, "candidate_ids": relevant})
    return RetrievalSet("mkqa", queries, candidates, relevance)


def _evaluate_retrieval(
    model: Any,
    rs: Any,
    *,
    run: str,
    candidates: str,
    pairs: str,
    pool: bool,
    role: str,
    cache: bool,
    run_depth: int,
    n_resamples: int,
    fingerprint: str,
    batch_size: int,
    depth: int | None,
    index_factory: str,
) -> Evaluation:
    import time

    from hbnb.encoding import encode

    t0 = time.perf_counter()
    query_texts = column(rs.queries, "text")
    cand_texts = column(rs.candidates, "sentence") if role == "query" else rs.candidate_texts(candidates)
    q = encode(model, query_texts, "query", cache=cache, fingerprint=fingerprint, batch_size=batch_size)
    c = encode(model, cand_texts, role, cache=cache, fingerprint=fingerprint, batch_size=batch_size)
    t1 = time.perf_counter()
    cand_ids = column(rs.candidates, "id")
    index = {cid: i for i, cid in enumerate(cand_ids)}
    rel_of = dict(zip(column(rs.relevance, "query_id"), column(rs.relevance, "candidate_ids")))
    query_ids = column(rs.queries, "id")
    relevant = [[index[cid] for cid in rel_of[qid]] for qid in query_ids]
    cand_langs, query_langs = column(rs.candidates, "lang"), column(rs.queries, "lang")
    if depth is None and len(cand_ids) > FULL_RANKING_LIMIT:
        depth = 1000
    if depth is None:
        ranking = rank(q, c, cand_langs, relevant, top_k=max(10, run_depth if pool else 10))
    else:
        pairs = "same"  # a top-k search ranks each language's own pool (and the whole pool)
        ranking = rank_topk(q, c, cand_langs, relevant, query_langs, depth=depth, pool=pool, index_factory=index_factory)
    per_query = per_query_frame(
        ranking, query_ids, column(rs.queries, "item_id"), column(rs.queries, "lang"), pairs, pool
    )
    table = aggregate(per_query, ranking if pool else None, run, rs.name, n_resamples=n_resamples)
    per_query.insert(0, "dataset", rs.name)
    per_query.insert(0, "run", run)
    trec = None
    if pool:
        from hbnb.trec import PoolRun

        keep = min(run_depth, ranking.top.shape[1])
        trec = PoolRun(query_ids, ranking.top[:, :keep], ranking.top_scores[:, :keep], cand_ids, [rel_of[q] for q in query_ids], run)
    meta = {
        "search": "full ranking" if depth is None else f"faiss {index_factory} top-{depth}",
        "candidates": "paragraph level" if rs.level == "paragraph" else candidates,
        "candidate_role": role,
        "n_queries": len(query_ids),
        "pool_size": len(cand_ids),
        "encode_s": round(t1 - t0, 3),
        "score_s": round(time.perf_counter() - t1, 3),
    }
    return Evaluation(run, rs.name, table, per_query, meta, trec)


def _evaluate_bitext(
    model: Any, name: str, langs: list[str] | None, run: str, fingerprint: str, cache: bool, batch_size: int
) -> Evaluation:
    """Accuracy@1 both ways per pair: is the aligned line the nearest of all the pair's lines?"""
    from hbnb.data.bitext import load_tatoeba, load_wmt22
    from hbnb.encoding import encode

    table = load_tatoeba(langs) if name == "tatoeba" else load_wmt22(langs)
    src = encode(model, column(table, "src"), "query", cache=cache, fingerprint=fingerprint, batch_size=batch_size)
    tgt = encode(model, column(table, "tgt"), "query", cache=cache, fingerprint=fingerprint, batch_size=batch_size)
    pair_of = np.array(column(table, "pair"))
    lines = np.array(column(table, "line"))
    rows, per_query = [], []
    for pair in dict.fromkeys(pair_of):
        sel = np.nonzero(pair_of == pair)[0]
        scores = src[sel] @ tgt[sel].T
        s_lang, t_lang = pair.split("-")
        for q_lang, c_lang, matrix in ((s_lang, t_lang, scores), (t_lang, s_lang, scores.T)):
            correct = (matrix.argmax(axis=1) == np.arange(len(sel))).astype(float)  # argmax: first max wins
            rows.append({"run": run, "dataset": name, "setting": "bitext", "query_lang": q_lang, "cand_lang": c_lang,
                         "metric": "accuracy@1", "value": float(correct.mean()), "n_queries": len(sel),
                         "ci_low": np.nan, "ci_high": np.nan})
            per_query.append(pd.DataFrame({
                "run": run, "dataset": name, "query_id": [f"{pair}:{q_lang}:{i}" for i in lines[sel]],
                "item_id": [f"{pair}:{i}" for i in lines[sel]], "query_lang": q_lang, "cand_lang": c_lang,
                "accuracy@1": correct,
            }))
    return Evaluation(run, name, pd.DataFrame(rows), pd.concat(per_query, ignore_index=True), {"pairs": len(rows) // 2})
