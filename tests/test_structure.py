"""The code's shape: one place per concept, small modules, stage parameters that match, old imports."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from hbnb import experiment
from hbnb.evaluation import tasks
from hbnb.experiment import pipeline

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "hbnb"
# the data loaders may name the raw folders they read; nothing else but the registry names a set
LOADERS = {"data/retrieval.py", "data/parallel_qa.py", "data/squad.py", "data/store.py", "data/mkqa.py"}


def _modules() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py"))


def test_no_module_is_over_400_lines() -> None:
    long = {p.relative_to(LIBRARY).as_posix(): n for p in _modules() if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_the_registry_is_the_only_module_that_names_an_evaluation_set() -> None:
    naming = [
        p.relative_to(LIBRARY).as_posix()
        for p in _modules()
        if '"mlqa-r"' in p.read_text() and p.relative_to(LIBRARY).as_posix() not in LOADERS
    ]
    assert naming == ["evaluation/tasks.py"]


def test_notebooks_switch_on_no_evaluation_set() -> None:
    names = "|".join(re.escape(n) for n in tasks.names())
    switch = re.compile(rf"(==|!=|\bin\b|\bnot in\b)\s*\(?[^\n]*[\"'](?:{names}|bitext|retrieval|mkqa)[\"']")
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = "\n".join(
            "".join(cell["source"])
            for cell in nbformat.read(notebook, as_version=4).cells
            if cell.cell_type == "code" and "parameters" not in cell.metadata.get("tags", [])
        )
        assert not switch.search(code), (notebook.name, switch.search(code))


@pytest.mark.parametrize("name", ["demo.yaml", "paper-offline.yaml"])
def test_each_stage_gets_exactly_its_notebooks_parameters(name: str, tmp_path: Path) -> None:
    path = ROOT / "params" / name
    stages = pipeline.plan(experiment.load(path), path, tmp_path)
    notebooks = pipeline.notebooks_dir()
    seen = set()
    for stage in stages:
        declared = set(papermill.inspect_notebook(str(notebooks / stage.notebook)))
        assert set(stage.parameters) == declared, stage.key
        seen.add(stage.notebook)
    assert seen == {"01_data.ipynb", "02_train.ipynb", "03_evaluate.ipynb", "04_report.ipynb"}


def test_the_explorer_notebook_takes_the_reports_folder() -> None:
    assert set(papermill.inspect_notebook(str(ROOT / "notebooks" / "05_explore.ipynb"))) == {"reports_dir"}


@pytest.mark.parametrize(
    ("old", "new", "name"),
    [
        ("hbnb.scoring", "hbnb.evaluation", "evaluate"),
        ("hbnb.encoding", "hbnb.evaluation.encoding", "encode"),
        ("hbnb.significance", "hbnb.evaluation.significance", "holm"),
        ("hbnb.trec", "hbnb.evaluation.trec", "PoolRun"),
        ("hbnb.batching", "hbnb.training", "HybridBatchSampler"),
        ("hbnb.pipeline", "hbnb.experiment.pipeline", "plan"),
        ("hbnb.plots", "hbnb.report.plots", "heatmap"),
        ("hbnb.explorer", "hbnb.report.explorer", "Explorer"),
    ],
)
def test_old_module_names_still_import(old: str, new: str, name: str) -> None:
    module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)
    assert module.__name__ == new  # the module keeps its own identity (pickles, reloads)
