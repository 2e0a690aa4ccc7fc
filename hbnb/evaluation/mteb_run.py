"""`mteb` tasks run by name with mteb's own evaluator: the evaluation sets "mteb:<Task>".

An evaluation-set name "mteb:<Task>" (`MtebTask`, which `hbnb.evaluation.tasks.get_task` resolves)
runs a text retrieval or reranking task of `mteb.get_task` (MIRACLRetrieval, BelebeleRetrieval,
MLQARetrieval, XQuADRetrieval, the BEIR tasks, ...) or one of hbnb's own sets ("mteb:xquad-r",
through `hbnb.evaluation.mteb_tasks`). `hbnb evaluate --mteb TASK...` and an experiment's
`data.evaluate: [mteb:<Task>]` come here. The model keeps its prompts: mteb picks them from
`model.prompts` ("query"/"document", or per task) as for any SentenceTransformer; candidates of a
question->question set (MKQA) get the query prompt, as hbnb encodes them. One split is run: "test"
where the task has it, else its first evaluation split.

What comes back: the `TaskResult` (written as it is by `Evaluation.save`), hbnb's tidy rows of its
scores (`mteb_results.table_from_result`) and per-query values, pytrec_eval's own as mteb computed
them (kept through mteb's `task_specific_scores` hook), so reports treat the task like hbnb's sets.
mteb's data is on the Hugging Face hub; where the hub cannot be reached (HF_HUB_OFFLINE=1, no
network) one `DataFileError` line says so. `import mteb` takes about a second: it happens inside the
functions that run something, so the registry and the reports stay quick.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from hbnb.errors import DataFileError, UnknownNameError
from hbnb.evaluation import mteb_results
from hbnb.evaluation.tasks import MTEB_PREFIX, TASKS, EvalTask, Headline, RetrievalTask

if TYPE_CHECKING:
    from hbnb.evaluation.scoring import Evaluation, ScoreOptions

MTEB_METRICS = ("ndcg@10", "map", "recall@1", "recall@10", "recall@100", "mrr@10")
_PER_QUERY_COLUMNS = ("run", "dataset", "query_id", "item_id", "query_lang", "cand_lang")
# pytrec_eval's per-query measures at mteb's cut-offs -> hbnb's per-query columns (rr@10 from the run, as mteb)
_PYTREC = {
    "map_cut_1000": "ap",
    "ndcg_cut_10": "ndcg@10",
    "recall_1": "recall@1",
    "recall_10": "recall@10",
    "recall_100": "recall@100",
}


def mteb_task_name(name: str) -> str:
    """The mteb task of an evaluation-set name: "mteb:SciFact" -> "SciFact"."""
    return name.removeprefix(MTEB_PREFIX)


@dataclass(frozen=True)
class MtebTask(EvalTask):
    """An `mteb` retrieval task scored by mteb's evaluator, as an hbnb evaluation set named "mteb:<Task>".

    Its table: "pair" rows per MTEB subset, mono/cross macro-averages and setting "mteb" (the mean
    over subsets, as MTEB averages a task), from mteb's `TaskResult`, without intervals. Its
    per-query values are pytrec_eval's, as mteb computed them (ap: AP cut at 1000), so the report's
    intervals and comparisons work on it as on hbnb's own sets.
    """

    headlines: tuple[Headline, ...] = (Headline("ndcg@10", "mteb", "ndcg@10", "nDCG@10 (MTEB)"),)
    heatmap_metric: str | None = "ndcg@10"
    kind: ClassVar[str] = "mteb retrieval"

    @property
    def metrics(self) -> tuple[str, ...]:
        return MTEB_METRICS

    @property
    def source(self) -> EvalTask | None:
        """hbnb's own set that this task scores ("mteb:xquad-r": `max_items` applies), None for mteb's."""
        return TASKS.get(mteb_task_name(self.name))

    def score(self, model: Any, langs: list[str] | None, options: ScoreOptions) -> Evaluation:
        return run_task(
            model,
            self.name,
            run=options.run,
            langs=langs,
            candidates=options.candidates,
            max_items=options.max_items,
            batch_size=options.batch_size,
            fingerprint=options.fingerprint,
        )

    def _data_languages(self) -> list[str]:
        task = resolve(mteb_task_name(self.name))
        codes = task.metadata.bcp47_codes
        return list(dict.fromkeys(mteb_results.hbnb_language(c) for c in codes))

    def _default_stats(self, langs: list[str] | None) -> dict[str, Any]:
        task = resolve(mteb_task_name(self.name), langs)
        meta = task.metadata
        return {
            "name": self.name,
            "kind": self.kind,
            "mteb_task": meta.name,
            "type": meta.type,
            "main_score": meta.main_score,
            "split": task.eval_splits[0],
            "subsets": list(task.hf_subsets),
            "languages": list(dict.fromkeys(mteb_results.hbnb_language(c) for c in meta.bcp47_codes)),
            "dataset": dict(meta.dataset),
            "reference": meta.reference,
        }


def mteb_task(name: str) -> MtebTask:
    """The evaluation set "mteb:<Task>" (not checked against mteb here: `name_problem` does, `score` fails)."""
    inner = mteb_task_name(name)
    return MtebTask(name=f"{MTEB_PREFIX}{inner}", description=f"the MTEB task {inner}, scored by mteb's evaluator")


def name_problem(name: str) -> str | None:
    """Why "mteb:<Task>" names no runnable task (unknown to mteb and to hbnb, or not retrieval), or None."""
    inner = mteb_task_name(name)
    if not inner:
        return f"{name!r} names no task; write mteb:<Task>, e.g. mteb:SciFact"
    local = TASKS.get(inner)
    if local is not None:
        return None if isinstance(local, RetrievalTask) else f"{name}: {inner} is a {local.kind} set, not retrieval"
    import mteb
    from mteb.abstasks import AbsTaskRetrieval

    try:
        task = mteb.get_task(inner)
    except KeyError as exc:
        return f"{name}: {str(exc.args[0]).removeprefix('KeyError: ')} (mteb {mteb.__version__})"
    if not isinstance(task, AbsTaskRetrieval) or task.metadata.modalities != ["text"]:
        kind = f"{'+'.join(task.metadata.modalities)} {task.metadata.type}"
        return f"{name}: a {kind} task; hbnb runs mteb's text retrieval tasks (retrieval, reranking)"
    return None


def check_names(names: list[str]) -> None:
    """Refuse the first "mteb:<Task>" of `names` that names no runnable task (`name_problem`)."""
    problem = next((p for p in map(name_problem, names) if p), None)
    if problem:
        raise UnknownNameError(problem)


def resolve(
    name: str, langs: list[str] | None = None, *, candidates: str = "paragraph", max_items: int | None = None
) -> Any:
    """The mteb task of a name: hbnb's own retrieval set of that name, else `mteb.get_task`, restricted to the
    subsets whose languages are all in `langs` and to one split ("test", else the task's first)."""
    if name in TASKS:
        problem = name_problem(name)
        if problem:
            raise UnknownNameError(problem)
        from hbnb.evaluation.mteb_tasks import as_mteb_task

        return as_mteb_task(name, langs, candidates=candidates, max_items=max_items)
    if max_items:
        raise UnknownNameError(f"max_items = {max_items} for the mteb task {name}; it applies to hbnb's own sets only")
    problem = name_problem(name)
    if problem:
        raise UnknownNameError(problem)
    import mteb

    splits = mteb.get_task(name).metadata.eval_splits
    split = mteb_results.SPLIT if mteb_results.SPLIT in splits else splits[0]
    languages = None
    if langs:
        languages = [(mteb_results.mteb_language(x) or x).split("-")[0] for x in langs]  # any script
    try:
        return mteb.get_task(name, languages=languages, eval_splits=[split], exclusive_language_filter=bool(langs))
    except ValueError:
        raise UnknownNameError(
            f"the mteb task {name} has no subset whose languages are all among {', '.join(langs or [])}"
        ) from None


def run_task(
    model: Any,
    name: str,
    *,
    run: str = "model",
    langs: list[str] | None = None,
    candidates: str = "paragraph",
    max_items: int | None = None,
    batch_size: int = 64,
    fingerprint: str = "",
) -> Evaluation:
    """Score a `SentenceTransformer` on an mteb task ("SciFact", "mteb:SciFact", or hbnb's "xquad-r") with
    mteb's evaluator; an `Evaluation` whose table holds hbnb's rows of its scores and whose `mteb_result`
    is mteb's `TaskResult`."""
    import mteb

    from hbnb.evaluation.encoding import model_fingerprint
    from hbnb.evaluation.scoring import Evaluation

    inner = mteb_task_name(name)
    dataset = f"{MTEB_PREFIX}{inner}"
    task = resolve(inner, langs, candidates=candidates, max_items=max_items)
    split = task.eval_splits[0]
    fingerprint = fingerprint or model_fingerprint(model)
    start = time.perf_counter()
    with _quiet():
        _load(task, inner)
        kept = _keep_per_query(task)
        try:
            encoder = _encoder_class()(model, run, fingerprint, query_role=getattr(task, "candidate_role", "passage"))
            results = mteb.evaluate(
                encoder,
                task,
                cache=None,
                co2_tracker=False,
                show_progress_bar=False,
                encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            )
        finally:
            del task.task_specific_scores
            task.unload_data()
    result = results.task_results[0]
    counts = {key: len(frame) for key, frame in kept.items()}
    table = mteb_results.table_from_result(result, run, dataset, counts, split)
    meta = {
        "model_fingerprint": fingerprint,
        "model_card": mteb_results.model_card(model),
        "mteb_task": task.metadata.name,
        "mteb_version": mteb.__version__,
        "split": split,
        "subsets": len(counts),
        "main_score": task.metadata.main_score,
        "dataset_revision": task.metadata.revision,
        "n_queries": sum(counts.values()),
        "mteb_s": round(time.perf_counter() - start, 3),
    }
    languages = mteb_results.subset_languages(result.scores[split])
    items = getattr(task, "item_of", None)  # hbnb's own sets: query ids are hbnb's, items shared by translations
    frames = []
    for key, frame in kept.items():
        ids = frame.query_id if items is not None else key + ":" + frame.query_id
        item_ids = [items.get(q, q) for q in frame.query_id] if items is not None else ids
        x, y = languages[key]
        frames.append(frame.assign(query_id=ids, item_id=item_ids, query_lang=x, cand_lang=y))
    per_query = pd.concat(frames, ignore_index=True)[[*_PER_QUERY_COLUMNS[2:], *_PYTREC.values(), "rr@10"]]
    per_query.insert(0, "dataset", dataset)
    per_query.insert(0, "run", run)
    return Evaluation(run, dataset, table, per_query, meta, mteb_result=result)


def _keep_per_query(task: Any) -> dict[str, pd.DataFrame]:
    """Per subset, each query's scores: mteb hands pytrec_eval's per-query values (and the run) to a task's
    `task_specific_scores` hook; this instance's hook keeps them, then defers to the task's own."""
    kept: dict[str, pd.DataFrame] = {}
    own = task.task_specific_scores

    def keep(scores: dict, qrels: dict, results: dict, hf_split: str, hf_subset: str) -> dict[str, float]:
        ids = list(scores)
        values = {column: [scores[q].get(key, np.nan) for q in ids] for key, column in _PYTREC.items()}
        kept[hf_subset] = pd.DataFrame(
            {"query_id": ids, **values, "rr@10": [_rr10(results.get(q, {}), qrels[q]) for q in ids]}
        )
        return own(scores, qrels, results, hf_split=hf_split, hf_subset=hf_subset)

    task.task_specific_scores = keep
    return kept


def _rr10(run: dict[str, float], qrels: dict[str, int]) -> float:
    """Reciprocal rank of the first relevant document in the top 10, ties by descending id (as mteb's MRR)."""
    top = sorted(run.items(), key=lambda item: (item[1], item[0]), reverse=True)[:10]
    return next((1 / rank for rank, (doc, _) in enumerate(top, start=1) if qrels.get(doc, 0) > 0), 0.0)


def _load(task: Any, name: str) -> None:
    """Load the task's data; a hub that cannot be reached becomes one `DataFileError` line."""
    try:
        task.load_data()
    except Exception as exc:
        if not _unreachable(exc):
            raise
        offline = os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")
        why = "HF_HUB_OFFLINE=1 is set" if offline else "no network"
        raise DataFileError(
            f"the mteb task {name} needs its data from the Hugging Face hub, which cannot be reached here ({why}); "
            "run it where the hub is reachable, or with the data set already in the datasets cache"
        ) from None


def _unreachable(exc: BaseException) -> bool:
    """Whether an error (or one it came from) is a hub that cannot be reached: offline mode, no connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionError | TimeoutError) or type(seen).__name__ in (
            "OfflineModeIsEnabled",
            "LocalEntryNotFoundError",
            "ConnectTimeout",
            "ConnectError",
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """mteb's and datasets' progress bars, info logs and warnings about its model metadata, and the hub
    client's retry warnings (a hub that cannot be reached is one line of ours), silenced."""
    import datasets

    loggers = [logging.getLogger(name) for name in ("mteb", "huggingface_hub")]
    levels = [logger.level for logger in loggers]
    bars = datasets.is_progress_bar_enabled()
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if bars:
            datasets.enable_progress_bars()


@functools.cache
def _encoder_class() -> type:
    """mteb's SentenceTransformer wrapper, named after the run and encoding candidates as hbnb does."""
    from mteb.models import SentenceTransformerEncoderWrapper
    from mteb.types import PromptType

    class HbnbEncoder(SentenceTransformerEncoderWrapper):
        """The model with the model's prompts; ModelMeta name: the run, revision: the model fingerprint.

        `query_role` "query": documents get the query prompt (question->question sets such as MKQA,
        whose candidates hbnb encodes as queries). mteb encodes each subset's corpus and queries
        anew; the same texts with the same prompt come back from memory instead (a pair matrix
        of L languages: L corpora encoded, not L * L).
        """

        def __init__(self, model: Any, run: str, fingerprint: str, query_role: str = "passage") -> None:
            super().__init__(model)
            self.mteb_model_meta = self.mteb_model_meta.model_copy(update={"name": run, "revision": fingerprint})
            self.query_role = query_role
            self._memo: dict[tuple[str, str, str | None, str], Any] = {}

        def encode(self, inputs: Any, *, task_metadata: Any, prompt_type: Any = None, **kwargs: Any) -> Any:
            if self.query_role == "query" and prompt_type == PromptType.document:
                prompt_type = PromptType.query
            features = set(getattr(inputs.dataset, "column_names", ()))
            if "text" not in features or features & {"image", "audio", "video"}:
                return super().encode(inputs, task_metadata=task_metadata, prompt_type=prompt_type, **kwargs)
            digest = hashlib.blake2b(digest_size=16)
            for text in inputs.dataset["text"]:
                digest.update(len(text).to_bytes(8, "little") + text.encode("utf-8"))
            key = (
                task_metadata.name,
                kwargs.get("hf_split", ""),
                getattr(prompt_type, "value", None),
                digest.hexdigest(),
            )
            if key not in self._memo:
                self._memo[key] = super().encode(
                    inputs, task_metadata=task_metadata, prompt_type=prompt_type, **kwargs
                )
            return self._memo[key]

    return HbnbEncoder
