"""The evaluation-task registry: one object per evaluation set, and the only list of them.

A task knows its name, its kind, its languages, how to load and count its data, how
to score a model on it, which metrics that produces, its headline figures (the
summary table's columns) and how its results are shown (the per-pair heatmap's
metric, whether it has a multilingual pool for the language-bias views). Parameter
validation, `hbnb data stats`, scoring, summaries, the report and the explorer all
ask the registry.

Three kinds, one class each (as MTEB has one abstract task per task type):
- `RetrievalTask`, "pair-matrix retrieval": every query language against every
  candidate language, optionally the multilingual pool (XQuAD-R, MLQA-R, MKQA, a
  user's `RetrievalSet`);
- `PoolTask`, "pool retrieval": one pool per language, queries in its language
  (MIRACL-style paragraph pools);
- `BitextTask`, "bitext": accuracy@1 both ways per language pair (Tatoeba, WMT22).

Add an evaluation set with `register(RetrievalTask(name=..., loader=...))`: the
loader takes a language list (or None for all) and returns a `RetrievalSet`. Built-in
sets are registered at the end of this module; a package of yours registers its own
from a module named by an entry point in the group `hbnb.tasks` (`PLUGIN_GROUP`), which
every hbnb process (the CLI, `hbnb run`, its stage notebooks) imports with the registry.
"""

from __future__ import annotations

import difflib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from hbnb.data import bitext, catalog, miracl, mkqa, retrieval, squad
from hbnb.data.retrieval import RetrievalSet
from hbnb.errors import UnknownNameError
from hbnb.evaluation.metrics import METRICS, PAIR_METRICS, POOL_METRICS

if TYPE_CHECKING:
    from hbnb.evaluation.scoring import Evaluation, ScoreOptions


@dataclass(frozen=True)
class Headline:
    """One figure of the summary table: a metric in a setting, overall (query_lang "all")."""

    key: str  # its name in `Evaluation.summary()`
    setting: str
    metric: str
    label: str

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric].higher_is_better

    @property
    def digits(self) -> int:
        return METRICS[self.metric].digits


LAREQA_HEADLINES = (
    Headline("mono_map", "mono", "map", "monolingual mAP"),
    Headline("cross_map", "cross", "map", "cross-lingual mAP"),
    Headline("multilingual_map", "pool", "map", "multilingual mAP"),
    Headline("rank_distance", "pool", "rank_distance", "rank distance"),
)


@dataclass(frozen=True)
class EvalTask(ABC):
    """What every evaluation set knows about itself (see the module docstring).

    `loader(langs)` returns its data restricted to some languages (None: all);
    `language_list()` its languages without loading it; `counts(langs)` what
    `hbnb data stats` prints, where the kind's default does not fit.
    """

    name: str
    description: str = ""
    loader: Callable[[list[str] | None], Any] | None = None
    language_list: Callable[[], list[str]] | None = None
    counts: Callable[[list[str] | None], dict[str, Any]] | None = None
    headlines: tuple[Headline, ...] = ()
    pool: bool = False  # scored as one multilingual pool: it has the language-bias views
    heatmap_metric: str | None = "map"  # the per-pair metric its heatmaps show; None: no heatmap
    kind: ClassVar[str]
    pair_setting: ClassVar[str] = "pair"  # the metrics-table setting of its per-pair rows

    def load(self, langs: list[str] | None = None) -> Any:
        if self.loader is None:
            raise UnknownNameError(f"evaluation set {self.name!r} has no loader; register it with loader=...")
        return self.loader(langs)

    def languages(self) -> list[str]:
        return self.language_list() if self.language_list else self._data_languages()

    def stats(self, langs: list[str] | None = None) -> dict[str, Any]:
        """Counts of the data, as `hbnb data stats NAME --json` prints them."""
        return self.counts(langs) if self.counts else self._default_stats(langs)

    @property
    @abstractmethod
    def metrics(self) -> tuple[str, ...]:
        """The metrics its evaluation reports."""

    @abstractmethod
    def score(self, model: Any, langs: list[str] | None, options: ScoreOptions) -> Evaluation:
        """Score a `SentenceTransformer` on this task (`hbnb.evaluation.evaluate` calls this)."""

    @abstractmethod
    def _data_languages(self) -> list[str]: ...

    @abstractmethod
    def _default_stats(self, langs: list[str] | None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RetrievalTask(EvalTask):
    """Retrieval over a pair matrix of languages, scored by one ranking pass per query.

    The loader returns a `RetrievalSet`. `pairs`: "all" ordered language pairs, only
    "cross" ones (X->Y, Y != X) or only "same" ones; `pool`: also score the
    multilingual pool (rank distance, top-10 language shares); `candidate_role`: how
    candidates are encoded, "passage" or "query" (question->question).
    """

    headlines: tuple[Headline, ...] = LAREQA_HEADLINES
    pool: bool = True
    pairs: Literal["all", "same", "cross"] = "all"
    candidate_role: Literal["passage", "query"] = "passage"
    stats_kind: str = "retrieval (LAReQA)"
    kind: ClassVar[str] = "pair-matrix retrieval"

    @classmethod
    def of(cls, data: RetrievalSet) -> RetrievalTask:
        """A user's own `RetrievalSet` as a task (all pairs and the pool)."""
        return cls(name=data.name, description="a user's retrieval set", loader=lambda _: data)

    @property
    def metrics(self) -> tuple[str, ...]:
        return PAIR_METRICS + (tuple(m for m in POOL_METRICS if m not in PAIR_METRICS) if self.pool else ())

    def score(self, model: Any, langs: list[str] | None, options: ScoreOptions) -> Evaluation:
        from hbnb.evaluation.scoring import score_retrieval

        data = self.load(langs)
        if options.max_items:
            data = data.subset_items(options.max_items)
        return score_retrieval(model, self.name, data, self.pairs, self.pool, self.candidate_role, options)

    def _data_languages(self) -> list[str]:
        return self.load().languages

    def _default_stats(self, langs: list[str] | None) -> dict[str, Any]:
        return {"kind": self.stats_kind, **self.load(langs).stats()}


@dataclass(frozen=True)
class PoolTask(RetrievalTask):
    """One candidate pool per language, each searched by the queries of its language."""

    headlines: tuple[Headline, ...] = (
        Headline("ndcg@10", "mono", "ndcg@10", "nDCG@10"),
        Headline("recall@100", "mono", "recall@100", "recall@100"),
    )
    pool: bool = False
    pairs: Literal["all", "same", "cross"] = "same"
    heatmap_metric: str | None = None
    stats_kind: str = "retrieval, paragraph pools"
    kind: ClassVar[str] = "pool retrieval"


@dataclass(frozen=True)
class BitextTask(EvalTask):
    """Bitext retrieval: is a line's translation the nearest of all the pair's lines? Both ways.

    The loader returns a `Dataset` with columns pair, line, src, tgt, src_lang,
    tgt_lang; its argument restricts languages (Tatoeba) or directions (WMT22, "en-de").
    """

    headlines: tuple[Headline, ...] = (Headline("accuracy@1", "bitext", "accuracy@1", "accuracy@1"),)
    heatmap_metric: str | None = "accuracy@1"
    kind: ClassVar[str] = "bitext"
    pair_setting: ClassVar[str] = "bitext"

    @property
    def metrics(self) -> tuple[str, ...]:
        return ("accuracy@1",)

    def score(self, model: Any, langs: list[str] | None, options: ScoreOptions) -> Evaluation:
        from hbnb.evaluation.scoring import score_bitext

        return score_bitext(model, self.name, self.load(langs), options)

    def _data_languages(self) -> list[str]:
        table = self.load()
        return sorted(set(table["src_lang"]) | set(table["tgt_lang"]))

    def _default_stats(self, langs: list[str] | None) -> dict[str, Any]:
        table = self.load(langs)
        return {
            "name": self.name,
            "kind": "bitext",
            "rows": table.num_rows,
            "rows_per_pair": catalog.per_language(table, "pair"),
        }


# ----------------------------------------------------------------------------- the registry

TASKS: dict[str, EvalTask] = {}
MTEB_PREFIX = "mteb:"  # "mteb:<Task>": an mteb task run by mteb's evaluator (hbnb.evaluation.mteb_run)


def register(task: EvalTask) -> EvalTask:
    """Add a task to the registry; a second task of the same name is refused."""
    if task.name in TASKS:
        raise ValueError(f"an evaluation task named {task.name!r} is already registered")
    TASKS[task.name] = task
    return task


def names() -> list[str]:
    """Every registered evaluation set, in registration order."""
    return list(TASKS)


def get_task(name: str) -> EvalTask:
    """The task of that name; an unknown name is refused with the closest registered one.

    "mteb:<Task>" is an `MtebTask` (`hbnb.evaluation.mteb_run`), checked against mteb when scored.
    """
    if name in TASKS:
        return TASKS[name]
    if name.startswith(MTEB_PREFIX):
        from hbnb.evaluation.mteb_run import mteb_task

        return mteb_task(name)
    close = difflib.get_close_matches(name, TASKS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UnknownNameError(f"unknown evaluation set {name!r}; {hint}known: {', '.join(TASKS)}")


def folder_name(name: str) -> str:
    """The folder of an evaluation set's results in a run (`<run>/eval/<folder>/`): its name, the ":" of
    "mteb:<Task>" written "-" (a colon is not a file-name character everywhere)."""
    return name.replace(":", "-")


def for_results(name: str) -> EvalTask:
    """The task that produced results named `name`: a registered one, an mteb task, else a user's `RetrievalSet`."""
    if name not in TASKS and name.startswith(MTEB_PREFIX):
        return get_task(name)
    return TASKS.get(name) or RetrievalTask(name=name, description="a user's retrieval set")


def _lareqa(name: str, level: str = "sentence") -> Callable[[list[str] | None], RetrievalSet]:
    return lambda langs: retrieval.load_retrieval(name, langs, level=level)


def _languages_of(name: str) -> Callable[[], list[str]]:
    return lambda: squad.squad_languages(name)


def _wmt22_languages() -> list[str]:
    return sorted({lang for pair in bitext.wmt22_pairs() for lang in pair.split("-")})


for _name, _title in (("xquad-r", "XQuAD-R"), ("mlqa-r", "MLQA-R")):
    register(
        RetrievalTask(
            name=_name,
            description=f"{_title} (LAReQA): answer-sentence retrieval across every language pair and in one pool",
            loader=_lareqa(_name),
            language_list=_languages_of(_name),
        )
    )
    register(
        PoolTask(
            name=f"{_name}-paragraphs",
            description=f"{_title} paragraphs: per-language paragraph pools, read for nDCG@10 and recall@100",
            loader=_lareqa(_name, "paragraph"),
            language_list=_languages_of(_name),
        )
    )
register(
    RetrievalTask(
        name="mkqa",
        description="MKQA (MIA 2022 dev subset): question->question retrieval across languages "
        "(the translations of a question are relevant)",
        headlines=(
            Headline("cross_map", "cross", "map", "cross-lingual mAP"),
            Headline("cross_recall@1", "cross", "recall@1", "cross-lingual recall@1"),
        ),
        loader=mkqa.mkqa_retrieval,
        language_list=mkqa.mkqa_languages,
        pairs="cross",
        pool=False,
        candidate_role="query",
        counts=catalog.mkqa_stats,
    )
)
register(
    BitextTask(
        name="tatoeba",
        description="Tatoeba: xxx-eng bitext retrieval, accuracy@1 both ways",
        loader=bitext.load_tatoeba,
        language_list=bitext.tatoeba_languages,
        counts=catalog.tatoeba_stats,
    )
)
register(
    BitextTask(
        name="wmt22",
        description="WMT22 general test sets: bitext retrieval per direction, accuracy@1 both ways",
        loader=bitext.load_wmt22,
        language_list=_wmt22_languages,
        counts=catalog.wmt22_stats,
    )
)
register(
    PoolTask(
        name="miracl",
        description="MIRACL dev: monolingual passage retrieval in 18 languages, one Wikipedia pool per language, "
        "read for nDCG@10 and recall@100 (a local copy in MIRACL's layout, or the hub: hbnb.data.miracl)",
        loader=miracl.load_miracl,
        language_list=lambda: list(miracl.MIRACL_LANGUAGES),
        counts=miracl.miracl_stats,
    )
)


def code_switched(base: str, rate: float = 0.5, name: str | None = None) -> RetrievalTask:
    """A pair-matrix retrieval set with its non-English queries code-switched into English at `rate`
    (lexicons from WMT22 and Tatoeba: `hbnb.codeswitch.queries`); register it to evaluate on it."""
    from dataclasses import replace

    task = get_task(base)
    if not isinstance(task, RetrievalTask) or isinstance(task, PoolTask):
        raise UnknownNameError(f"{base!r} is not a pair-matrix retrieval set; code-switched queries need one")

    def load(langs: list[str] | None) -> RetrievalSet:
        from hbnb.codeswitch.queries import switch_queries

        return switch_queries(task.load(langs), rate)

    return replace(
        task,
        name=name or f"{base}-cs",
        description=f"{base} with its non-English queries code-switched into English at rate {rate} "
        f"(lexicons from WMT22 + Tatoeba; hbnb.codeswitch.queries)",
        loader=load,
        counts=None,
    )


for _base in ("mkqa", "xquad-r", "mlqa-r"):
    register(code_switched(_base))
DEFAULT_EVALUATION = ("mlqa-r",)  # an experiment's evaluation sets when its file names none
PLUGIN_GROUP = "hbnb.tasks"


def load_plugins() -> list[str]:
    """Import every module that an installed package names in the `hbnb.tasks` entry-point group.

    Such a module registers its tasks when imported; returns the entry points loaded.
    """
    loaded = []
    for entry in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        entry.load()
        loaded.append(entry.name)
    return loaded


load_plugins()
