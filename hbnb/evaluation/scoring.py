"""Scoring a model on an evaluation task: encode each text once, rank, tabulate, save.

`evaluate(model, name)` looks the task up in the registry (`hbnb.evaluation.tasks`),
which loads its data and calls `score_retrieval` or `score_bitext` here; the ranking
lives in `ranking`, the metrics in `metrics`, the tidy tables in `tables`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hbnb.data.retrieval import RetrievalSet
from hbnb.data.tables import column
from hbnb.errors import ParamsError
from hbnb.evaluation import mteb_results
from hbnb.evaluation.encoding import encode, model_fingerprint
from hbnb.evaluation.ranking import FULL_RANKING_LIMIT, TIE_RULE, pair_lists, rank, rank_topk, share_twin_scores
from hbnb.evaluation.tables import aggregate, headline_figures, per_query_frame, tidy_row
from hbnb.evaluation.tasks import EvalTask, RetrievalTask, folder_name, for_results, get_task
from hbnb.evaluation.trec import PairRun, PoolRun
from hbnb.files import write_atomic
from hbnb.models.backends import backend_of, with_backend
from hbnb.progress import bar


@dataclass
class Evaluation:
    """The scores of one model on one data set: a tidy table and per-query values.

    `table`: one row per (run, dataset, setting, query_lang, cand_lang, metric) with
    `value`, `n_queries` and the 95% interval where there is one (settings:
    `hbnb.evaluation.tables`). `per_query`: one row per (query, cand_lang or "pool")
    with every per-query metric.
    """

    run: str
    dataset: str
    table: pd.DataFrame
    per_query: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    trec: PoolRun | PairRun | None = None  # the main ranking, run.trec / qrels.trec (hbnb.evaluation.trec)
    task: EvalTask | None = None  # what was scored (None: the registered task of `dataset`)
    pair_trec: PairRun | None = None  # per-pair rankings, run.pairs.trec / qrels.pairs.trec
    mteb_result: Any = None  # mteb's TaskResult, when mteb's evaluator scored it (hbnb.evaluation.mteb_run)

    def summary(self) -> dict[str, float]:
        """The task's headline figures (e.g. mono/cross/multilingual mAP and rank distance), by key."""
        headlines = (self.task or for_results(self.dataset)).headlines
        figures = headline_figures(self.table, headlines).set_index("figure").value
        return {h.key: float(figures[h.label]) for h in headlines if h.label in figures.index}

    def save(self, folder: Path | str) -> Path:
        """Write metrics.parquet/.csv, per_query.parquet, run.trec, qrels.trec and meta.json.

        With per-pair rankings, also run.pairs.trec and qrels.pairs.trec (what each TREC
        file holds: `hbnb.evaluation.trec`). The scores in MTEB's result format go under
        mteb/ (`hbnb.evaluation.mteb_results`).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "metrics.parquet", lambda p: self.table.to_parquet(p, index=False))
        write_atomic(folder / "metrics.csv", lambda p: self.table.to_csv(p, index=False))
        write_atomic(folder / "per_query.parquet", lambda p: self.per_query.to_parquet(p, index=False))
        if self.trec is not None:
            write_atomic(folder / "run.trec", self.trec.write_run)
            write_atomic(folder / "qrels.trec", self.trec.write_qrels)
        if self.pair_trec is not None:
            write_atomic(folder / "run.pairs.trec", self.pair_trec.write_run)
            write_atomic(folder / "qrels.pairs.trec", self.pair_trec.write_qrels)
        write_atomic(
            folder / "meta.json", lambda p: Path(p).write_text(json.dumps(self.meta, indent=2), encoding="utf-8")
        )
        mteb_results.write(self, folder / mteb_results.FOLDER)
        return folder


@dataclass(frozen=True)
class ScoreOptions:
    """How a task is scored (the keyword arguments of `evaluate`)."""

    run: str = "model"
    candidates: str = "paragraph"
    cache: bool = True
    run_depth: int = 1000
    n_resamples: int = 2000
    batch_size: int = 64
    depth: int | None = None
    index_factory: str = "Flat"
    fingerprint: str = ""
    max_items: int | None = None
    pair_runs: bool = False


def evaluate(
    model: Any,
    data: str | EvalTask | RetrievalSet,
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
    max_items: int | None = None,
    pair_runs: bool = False,
) -> Evaluation:
    """Score a `SentenceTransformer` on a registered task (by name), a task object, or a `RetrievalSet`.

    - xquad-r, mlqa-r (or a RetrievalSet): all language pairs, monolingual and
      cross-lingual macro-averages, the multilingual pool with rank distance and top-10
      language shares; `candidates` is "paragraph" (LAReQA: the sentence with its
      paragraph) or "sentence" (much cheaper on CPU).
    - xquad-r-paragraphs, mlqa-r-paragraphs: per-language paragraph pools (MIRACL-style),
      read for ndcg@10 and recall@100; miracl: MIRACL dev, the same way (`hbnb.data.miracl`).
    - mkqa: question->question retrieval across languages (the parallel questions are relevant).
    - tatoeba, wmt22: bitext retrieval, accuracy@1 in both directions per pair.

    `depth`: None ranks every candidate (exact; every metric). A number switches to a
    faiss top-`depth` search (exact inner product with index_factory "Flat"), for pools
    too large to score in full: per-language pools and the multilingual pool, top-k
    metrics (AP truncated at the depth). Pools over FULL_RANKING_LIMIT candidates use
    it with depth 1000 unless a depth is given.

    `max_items`: evaluate a pair-matrix retrieval set on that many of its items
    (`RetrievalSet.subset_items`): a quick look, not comparable with the full set.

    `pair_runs`: also keep every (query, candidate language) ranking, `run_depth` deep
    (deeper where a relevant candidate lies deeper), for `save` to write as
    run.pairs.trec: per-pair values any TREC tool can recompute (`hbnb.evaluation.trec`).
    Per-language pool sets (miracl, the -paragraphs sets) always keep theirs, as run.trec.
    """
    start = time.perf_counter()
    task = (
        data
        if isinstance(data, EvalTask)
        else RetrievalTask.of(data)
        if isinstance(data, RetrievalSet)
        else get_task(data)
    )
    if max_items and not isinstance(getattr(task, "source", task), RetrievalTask):  # source: mteb:<hbnb set>
        raise ParamsError(
            f"max_items = {max_items} for {task.name}, a {task.kind} set; "
            "it applies to pair-matrix retrieval sets only"
        )
    fingerprint = model_fingerprint(model)
    options = ScoreOptions(
        run,
        candidates,
        cache,
        run_depth,
        n_resamples,
        batch_size,
        depth,
        index_factory,
        fingerprint,
        max_items,
        pair_runs,
    )
    evaluation = task.score(model, langs, options)
    evaluation.task = task
    evaluation.meta.update(
        {
            "run": run,
            "dataset": task.name,
            "model_fingerprint": fingerprint,
            "model_card": mteb_results.model_card(model),
            "tie_rule": TIE_RULE,
            "wall_time_s": round(time.perf_counter() - start, 3),
            **({"max_items": max_items} if max_items else {}),
            **({"backend": backend} if (backend := backend_of(model)) != "torch" else {}),
        }
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
    max_items: dict[str, int] | None = None,
    trust_remote_code: bool = False,
    backend: str = "torch",
) -> dict[str, Evaluation]:
    """Load a model once, evaluate it on each data set into `folder/<data set>/`, and record the run.

    `folder/info.json` names the run, its model (`label`, e.g. the base model a run
    fine-tuned, else the spec), whether it is an untuned baseline, and the model's total and
    non-embedding parameter counts.
    """
    from hbnb import models

    folder = Path(folder)
    model = with_backend(models.load(model_spec, trust_remote_code=trust_remote_code), backend, model_spec)
    results = {}
    sets = bar(datasets, desc="evaluate", unit="set")  # one bar over the data sets, each named as it starts
    for name in sets:
        sets.set_postfix_str(name)
        result = evaluate(
            model,
            name,
            run=run,
            candidates=candidates,
            langs=(langs or {}).get(name),
            n_resamples=n_resamples,
            run_depth=run_depth,
            max_items=(max_items or {}).get(name),
        )
        result.meta["model"] = model_spec
        result.save(folder / folder_name(name))
        results[name] = result
    info = {
        "run": run,
        "model": label or model_spec,
        "model_path": model_spec,
        "baseline": baseline,
        "datasets": datasets,
        "candidates": candidates,
        "parameters": models.parameter_counts(model),
    }
    write_atomic(folder / "info.json", lambda p: Path(p).write_text(json.dumps(info, indent=2), encoding="utf-8"))
    if not baseline:
        _refresh_card(Path(model_spec), folder)
    return results


def _refresh_card(model_dir: Path, evaluations: Path) -> None:
    """A trained model's card (written by training) gets the evaluation table once its evaluations are saved."""
    if (model_dir.parent / "run.json").is_file() and (model_dir / "README.md").is_file():
        from hbnb.models import card

        card.write_card(model_dir, model_dir.parent, card.read_evaluations([evaluations]))


def _encode(model: Any, texts: list[str], role: str, options: ScoreOptions) -> np.ndarray:
    return encode(
        model, texts, role, cache=options.cache, fingerprint=options.fingerprint, batch_size=options.batch_size
    )


def score_retrieval(
    model: Any, name: str, rs: RetrievalSet, pairs: str, pool: bool, role: str, options: ScoreOptions
) -> Evaluation:
    """Rank a retrieval set's candidates for every query once; tabulate `pairs` and, with `pool`, the pool.

    `name` (the task's) labels the results: one retrieval set can serve several tasks.
    Per-language pools (`pairs` "same", no pool) keep each query's ranking as their run.
    """
    depth = options.depth
    own_lists = pairs == "same" and not pool  # each query has one list, its own language's: the set's run
    t0 = time.perf_counter()
    query_texts = column(rs.queries, "text")
    cand_texts = rs.candidate_texts(options.candidates, role)
    q = _encode(model, query_texts, "query", options)
    c = _encode(model, cand_texts, role, options)
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
        lists = pair_lists(relevant, cand_langs, query_langs, pairs) if own_lists or options.pair_runs else None
        top_k = max(10, options.run_depth if pool else 10)
        ranking = rank(q, c, cand_langs, relevant, top_k=top_k, lists=lists, list_depth=options.run_depth)
    else:
        pairs = "same"  # a top-k search ranks each language's own pool (and the whole pool)
        ranking = rank_topk(
            q, c, cand_langs, relevant, query_langs, depth=depth, pool=pool, index_factory=options.index_factory
        )
    per_query = per_query_frame(ranking, query_ids, column(rs.queries, "item_id"), query_langs, pairs, pool)
    table = aggregate(per_query, ranking if pool else None, options.run, name, n_resamples=options.n_resamples)
    per_query.insert(0, "dataset", name)
    per_query.insert(0, "run", options.run)
    trec = None
    if pool:
        keep = min(options.run_depth, ranking.top.shape[1])
        trec = PoolRun(
            query_ids,
            ranking.top[:, :keep],
            ranking.top_scores[:, :keep],
            cand_ids,
            [rel_of[q] for q in query_ids],
            options.run,
        )
    pair_trec = None
    if (own_lists or options.pair_runs) and ranking.lists is not None:
        pair_trec = PairRun.of(ranking, query_ids, cand_ids, cand_langs, relevant, options.run, not own_lists)
    if own_lists:
        trec, pair_trec = pair_trec, None
    meta = {
        "search": "full ranking" if depth is None else f"faiss {options.index_factory} top-{depth}",
        "candidates": "paragraph level" if rs.level == "paragraph" else options.candidates,
        "candidate_role": role,
        "n_queries": len(query_ids),
        "pool_size": len(cand_ids),
        "encode_s": round(t1 - t0, 3),
        "score_s": round(time.perf_counter() - t1, 3),
    }
    return Evaluation(options.run, name, table, per_query, meta, trec, pair_trec=pair_trec)


def score_bitext(model: Any, name: str, table: Any, options: ScoreOptions) -> Evaluation:
    """Accuracy@1 both ways per pair: is the aligned line the nearest of all the pair's lines?"""
    src = _encode(model, column(table, "src"), "query", options)
    tgt = _encode(model, column(table, "tgt"), "query", options)
    pair_of = np.array(column(table, "pair"))
    lines = np.array(column(table, "line"))
    rows, per_query = [], []
    for pair in dict.fromkeys(pair_of):
        sel = np.nonzero(pair_of == pair)[0]
        forward = share_twin_scores(src[sel] @ tgt[sel].T, src[sel], tgt[sel])  # identical lines tie exactly
        s_lang, t_lang = pair.split("-")
        for q_lang, c_lang, matrix in ((s_lang, t_lang, forward), (t_lang, s_lang, forward.T)):
            correct = (matrix.argmax(axis=1) == np.arange(len(sel))).astype(float)  # argmax: first max wins
            rows.append(tidy_row(options.run, name, "bitext", q_lang, c_lang, "accuracy@1", correct.mean(), len(sel)))
            per_query.append(
                pd.DataFrame(
                    {
                        "run": options.run,
                        "dataset": name,
                        "query_id": [f"{pair}:{q_lang}:{i}" for i in lines[sel]],
                        "item_id": [f"{pair}:{i}" for i in lines[sel]],
                        "query_lang": q_lang,
                        "cand_lang": c_lang,
                        "accuracy@1": correct,
                    }
                )
            )
    return Evaluation(
        options.run, name, pd.DataFrame(rows), pd.concat(per_query, ignore_index=True), {"pairs": len(rows) // 2}
    )
