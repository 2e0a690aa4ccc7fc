"""The evaluation-task registry: what each task knows, and adding one as a user would."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from hbnb import models
from hbnb.cli import main
from hbnb.data.bitext import load_tatoeba
from hbnb.data.retrieval import load_retrieval
from hbnb.errors import ParamsError, UnknownNameError
from hbnb.evaluation import METRICS, evaluate, tasks
from hbnb.evaluation.tasks import BitextTask, PoolTask, RetrievalTask, get_task, register
from hbnb.params import DataParams, validate


@pytest.fixture(scope="module")
def use_m():
    return models.load("use-m")


@pytest.fixture
def en_de() -> Iterator[RetrievalTask]:
    """A user's evaluation set, registered as the README shows: XQuAD-R in English and German only."""
    task = register(
        RetrievalTask(
            name="xquad-r-en-de",
            description="XQuAD-R, en and de",
            loader=lambda langs: load_retrieval("xquad-r", langs or ["en", "de"]),
        )
    )
    yield task
    tasks.TASKS.pop(task.name)


def test_every_built_in_set_is_one_registry_entry() -> None:
    assert tasks.names() == [
        "xquad-r",
        "xquad-r-paragraphs",
        "mlqa-r",
        "mlqa-r-paragraphs",
        "mkqa",
        "tatoeba",
        "wmt22",
        "miracl",
        "mkqa-cs",
        "xquad-r-cs",
        "mlqa-r-cs",
    ]
    kinds = {name: get_task(name).kind for name in tasks.names()}
    assert kinds == {
        "xquad-r": "pair-matrix retrieval",
        "mlqa-r": "pair-matrix retrieval",
        "mkqa": "pair-matrix retrieval",
        "xquad-r-paragraphs": "pool retrieval",
        "mlqa-r-paragraphs": "pool retrieval",
        "tatoeba": "bitext",
        "wmt22": "bitext",
        "miracl": "pool retrieval",
        "mkqa-cs": "pair-matrix retrieval",
        "xquad-r-cs": "pair-matrix retrieval",
        "mlqa-r-cs": "pair-matrix retrieval",
    }


@pytest.mark.parametrize("name", ["xquad-r", "mlqa-r", "xquad-r-paragraphs", "mkqa", "tatoeba", "wmt22"])
def test_a_task_knows_its_languages_metrics_and_display(name: str) -> None:
    task = get_task(name)
    assert task.description
    assert set(task.metrics) <= set(METRICS)
    assert task.headlines and {h.metric for h in task.headlines} <= set(task.metrics)
    assert task.heatmap_metric is None or task.heatmap_metric in task.metrics
    assert task.pool == ("rank_distance" in task.metrics)
    languages = task.languages()
    expected = {"xquad-r": 11, "mlqa-r": 7, "xquad-r-paragraphs": 11, "mkqa": 12, "tatoeba": 112, "wmt22": None}[name]
    assert len(languages) == expected if expected else {"en", "de", "zh", "ja"} <= set(languages)


def test_counts_come_from_the_task() -> None:
    assert get_task("mlqa-r").stats()["queries"]["total"] == 4199
    assert get_task("mkqa").stats()["kind"] == "parallel questions (MIA 2022 dev subset)"
    assert get_task("xquad-r-paragraphs").stats(["en"])["kind"] == "retrieval, paragraph pools"
    assert isinstance(get_task("tatoeba"), BitextTask) and isinstance(get_task("mlqa-r-paragraphs"), PoolTask)


def test_an_unknown_name_is_refused_with_the_closest_one() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'mlqa-r'"):
        get_task("mlqa_r")
    with pytest.raises(ParamsError, match="allowed evaluation sets are xquad-r, "):
        validate(DataParams, {"evaluate": ["mlqa"]}, "test.yaml")


def test_a_registered_set_is_evaluated_validated_and_counted_like_a_built_in_one(en_de, use_m, capsys) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register(en_de)
    assert validate(DataParams, {"evaluate": ["xquad-r-en-de"]}, "test.yaml").evaluate == ["xquad-r-en-de"]
    assert main(["data", "stats", "xquad-r-en-de", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["languages"] == ["en", "de"] and counts["queries"]["total"] == 2 * 1190
    result = evaluate(use_m, "xquad-r-en-de", candidates="sentence", n_resamples=100)
    pairs = result.table[result.table.setting == "pair"]
    assert set(zip(pairs.query_lang, pairs.cand_lang)) == {("en", "en"), ("en", "de"), ("de", "en"), ("de", "de")}
    assert set(result.summary()) == {"mono_map", "cross_map", "multilingual_map", "rank_distance"}
    # the same numbers as the built-in set restricted to the same languages
    built_in = evaluate(use_m, "xquad-r", langs=["en", "de"], candidates="sentence", n_resamples=100)
    assert result.summary() == built_in.summary()


def test_summaries_follow_the_tasks_headlines(use_m) -> None:
    mkqa = evaluate(use_m, "mkqa", langs=["en", "es"])
    assert set(mkqa.summary()) == {"cross_map", "cross_recall@1"}
    bitext = evaluate(use_m, "tatoeba", langs=["de", "fr"])
    rows = bitext.table[bitext.table.setting == "bitext"]
    assert bitext.summary() == {"accuracy@1": pytest.approx(rows.value.mean())}


def test_an_installed_package_registers_its_sets_through_the_entry_point(tmp_path, monkeypatch) -> None:
    """A package (here a module and its dist-info on sys.path) names its task module in `hbnb.tasks`."""
    (tmp_path / "my_sets.py").write_text(
        "from hbnb.data.retrieval import load_retrieval\n"
        "from hbnb.evaluation.tasks import PoolTask, register\n"
        "register(PoolTask(name='mlqa-r-de-paragraphs', description='MLQA-R German paragraphs',\n"
        "                  loader=lambda langs: load_retrieval('mlqa-r', ['de'], level='paragraph')))\n"
    )
    info = tmp_path / "my_sets-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-sets\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hbnb.tasks]\nmine = my_sets\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert tasks.load_plugins() == ["mine"]
        task = get_task("mlqa-r-de-paragraphs")
        assert task.kind == "pool retrieval" and task.languages() == ["de"]
        assert task.stats()["queries"]["per_language"] == {"de": get_task("mlqa-r").stats(["de"])["queries"]["total"]}
    finally:
        tasks.TASKS.pop("mlqa-r-de-paragraphs", None)


def test_an_unregistered_task_object_is_summarised_by_its_own_headlines(use_m) -> None:
    pools = PoolTask(name="mlqa-r-en-pool", loader=lambda langs: load_retrieval("mlqa-r", ["en"], level="paragraph"))
    result = evaluate(use_m, pools, n_resamples=100)
    assert "mlqa-r-en-pool" not in tasks.TASKS
    assert set(result.summary()) == {"ndcg@10", "recall@100"}  # a PoolTask's headlines, not LAReQA's


def test_a_bitext_task_without_counts_counts_its_table() -> None:
    task = BitextTask(name="tatoeba-de-fr", loader=lambda langs: load_tatoeba(langs or ["de", "fr"]))
    assert task.languages() == ["de", "en", "fr"]
    counts = task.stats()
    assert counts["kind"] == "bitext" and counts["rows_per_pair"] == {"de-en": 1000, "fr-en": 1000}
