"""hbnb's evaluation sets as `mteb` retrieval tasks, so that mteb's own evaluator scores the same data.

`as_mteb_task("xquad-r", langs)` is an `mteb` `AbsTaskRetrieval` over hbnb's data (XQuAD-R, MLQA-R,
MKQA, any pair-matrix or per-language pool set, a user's `RetrievalSet`): one subset per language
pair "X-Y" holding the queries in X that have a relevant candidate in Y, every candidate in Y (the
text hbnb encodes: LAReQA's sentence with its paragraph, or the sentence) and those qrels.
`mteb.evaluate` scores it with pytrec_eval, the field's reference implementation, so its nDCG@10,
recall@k, MRR@10 and map_at_1000 check hbnb's ranking and metrics (tests/test_mteb.py).

Two principled differences, both documented rather than papered over: pytrec_eval orders exactly
tied candidates by descending id, hbnb by candidate position (`hbnb.evaluation.ranking.TIE_RULE`),
so a query whose relevant candidate ties exactly with another (identical texts) may differ; and
map_at_1000 stops at rank 1000 where hbnb's map does not (equal when every relevant candidate ranks
in the top 1000, as in any pair pool of at most 1000 candidates). mteb strips the ends of a corpus
text; the tokenizers of hbnb's models ignore such whitespace.

A candidate of a question->question set (MKQA: `candidate_role` "query") is a question, which hbnb
encodes with the query prompt; the task records that role, and hbnb's encoder for mteb
(`hbnb.evaluation.mteb_run`) follows it. The mteb classes are built on first use
(`_retrieval_class`): `import mteb` takes about a second, and importing this module does not.
"""

from __future__ import annotations

import functools
from typing import Any

from hbnb.data.retrieval import RetrievalSet
from hbnb.data.tables import column
from hbnb.errors import UnknownNameError
from hbnb.evaluation import mteb_results
from hbnb.evaluation.tasks import TASKS, RetrievalTask


def as_mteb_task(
    task: str | RetrievalTask | RetrievalSet,
    langs: list[str] | None = None,
    *,
    candidates: str = "paragraph",
    max_items: int | None = None,
) -> Any:
    """An hbnb pair-matrix or pool retrieval set (registered name, task or `RetrievalSet`) as an `mteb` task.

    `langs`, `candidates` and `max_items` choose the data as `hbnb.evaluation.evaluate` does.
    """
    if isinstance(task, RetrievalSet):
        task = RetrievalTask.of(task)
    elif isinstance(task, str):
        found = TASKS.get(task)
        if found is None:
            from hbnb.evaluation.tasks import get_task

            found = get_task(task)  # the unknown-name error
        task = found
    if not isinstance(task, RetrievalTask):
        raise UnknownNameError(f"{task.name} is a {task.kind} set; only retrieval sets become mteb retrieval tasks")
    data = task.load(langs)
    if max_items:
        data = data.subset_items(max_items)
    registered = TASKS.get(task.name) is task
    revision = mteb_results.dataset_revision(max_items) if registered else "local"
    return from_retrieval_set(
        data,
        name=task.name,
        pairs=task.pairs,
        role=task.candidate_role,
        candidates=candidates,
        description=task.description or f"the retrieval set {task.name}",
        revision=revision,
    )


def from_retrieval_set(
    data: RetrievalSet,
    *,
    name: str,
    pairs: str = "all",
    role: str = "passage",
    candidates: str = "paragraph",
    description: str = "",
    revision: str = "local",
) -> Any:
    """An `mteb` retrieval task over a `RetrievalSet`: one subset per language pair (module docstring).

    `pairs`: "all", "same" (X-X) or "cross" (X-Y, Y != X); `role` "query" encodes candidates as
    queries (question->question sets).
    """
    from mteb.abstasks.task_metadata import TaskMetadata

    subsets = _pair_subsets(data, pairs, role, candidates)
    if not subsets:
        raise UnknownNameError(f"{name}: no language pair ({pairs}) has a query with a relevant candidate")
    langs = {}
    for key, (x, y, _) in subsets.items():
        codes = [mteb_results.mteb_language(x), mteb_results.mteb_language(y)]
        if None in codes:
            bad = x if codes[0] is None else y
            raise UnknownNameError(f"{name}: language {bad!r} has no ISO 639-3 code with a script in mteb's tables")
        langs[key] = codes
    metadata = TaskMetadata(
        name=name,
        description=description or f"hbnb's retrieval set {name}",
        dataset={"path": f"hbnb/{name}", "revision": revision},
        type="Retrieval",
        category="t2t",
        eval_splits=[mteb_results.SPLIT],
        eval_langs=langs,
        main_score="ndcg_at_10",
        annotations_creators="derived",
        sample_creation="found",
    )
    cls = type(
        "Hbnb" + "".join(part.capitalize() for part in name.replace("-", " ").replace("_", " ").split()),
        (_retrieval_class(),),
        {"metadata": metadata, "candidate_role": role, "__doc__": f"{name} (hbnb) as an mteb retrieval task."},
    )
    items = dict(zip(column(data.queries, "id"), column(data.queries, "item_id")))
    return cls(subsets=subsets, items=items)


def _pair_subsets(data: RetrievalSet, pairs: str, role: str, candidates: str) -> dict[str, tuple[str, str, Any]]:
    """{"X-Y": (X, Y, build)}: build() gives the subset's corpus, queries and qrels (fresh qrels each time:
    mteb drops queries without positives in place)."""
    from datasets import Dataset

    texts = data.candidate_texts(candidates, role)
    cand_ids, cand_langs = column(data.candidates, "id"), column(data.candidates, "lang")
    lang_of = dict(zip(cand_ids, cand_langs))
    query_ids, query_langs = column(data.queries, "id"), column(data.queries, "lang")
    query_texts = dict(zip(query_ids, column(data.queries, "text")))
    relevant = dict(zip(column(data.relevance, "query_id"), column(data.relevance, "candidate_ids")))
    corpora: dict[str, Any] = {}
    out: dict[str, tuple[str, str, Any]] = {}
    for x in dict.fromkeys(query_langs):
        for y in dict.fromkeys(cand_langs):
            if (pairs == "same" and x != y) or (pairs == "cross" and x == y):
                continue
            qrels = {
                q: {c: 1 for c in relevant[q] if lang_of[c] == y}
                for q, lang in zip(query_ids, query_langs)
                if lang == x and any(lang_of[c] == y for c in relevant[q])
            }
            if not qrels:
                continue
            if y not in corpora:
                members = [i for i, lang in enumerate(cand_langs) if lang == y]
                corpora[y] = Dataset.from_dict(
                    {"id": [cand_ids[i] for i in members], "text": [texts[i] for i in members]}
                )
            queries = Dataset.from_dict({"id": list(qrels), "text": [query_texts[q] for q in qrels]})

            def build(corpus: Any = corpora[y], queries: Any = queries, qrels: dict = qrels) -> dict[str, Any]:
                fresh = {q: dict(docs) for q, docs in qrels.items()}
                return {"corpus": corpus, "queries": queries, "relevant_docs": fresh, "top_ranked": None}

            out[mteb_results.subset(x, y)] = (x, y, build)
    return out


@functools.cache
def _retrieval_class() -> type:
    """The base of hbnb's mteb tasks: an `AbsTaskRetrieval` whose data is built from hbnb's, not downloaded."""
    from mteb.abstasks import AbsTaskRetrieval

    class HbnbRetrieval(AbsTaskRetrieval):
        """hbnb's retrieval set as an mteb task: one subset per language pair (`hbnb.evaluation.mteb_tasks`)."""

        candidate_role = "passage"

        def __init__(self, subsets: dict[str, tuple[str, str, Any]], items: dict[str, str], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._subsets = subsets
            self.item_of = items  # query id -> item id (shared by a question's translations)

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            if self.data_loaded:
                return
            self.dataset = {
                key: {split: build() for split in self.eval_splits}
                for key, (_, _, build) in self._subsets.items()
                if key in self.hf_subsets
            }
            self.data_loaded = True

    return HbnbRetrieval
