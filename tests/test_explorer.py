"""The explorer app on a real tiny experiment: its controls, its views, its notebook, and (slow) the
notebook in a real JupyterLab driven by headless Chromium."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import papermill
import pytest
from browser import (
    BASELINE_RUN,
    EXPERIMENT,
    TRAINED_RUN,
    JupyterLab,
    build_tiny_experiment,
    launch_chromium,
    require_chromium,
    run_all_cells,
    wait_until_idle,
)

from hbnb import report
from hbnb.report.explorer import DisplayData, Explorer, find_experiments, not_significant, run_models

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "05_explore.ipynb"
SCREENSHOT = REPO / "reports" / "ci-artifacts" / "explorer.png"
RETRIEVAL_METRICS = ["map", "recall@1", "recall@10", "mrr@10", "ndcg@10", "recall@100"]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system Chromium; asked for before `reports`, so a machine without it skips before building anything."""
    return require_chromium()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reports folder with the tiny experiment and a folder that is not an experiment (CI artifacts)."""
    folder = tmp_path_factory.mktemp("reports")
    build_tiny_experiment(folder)
    (folder / "ci-artifacts").mkdir()
    (folder / "ci-artifacts" / "notes.txt").write_text("not an experiment\n")
    return folder


@pytest.fixture
def explorer(reports: Path) -> Explorer:
    return Explorer(reports, n_resamples=1000)


def text_of(outputs: tuple) -> str:
    return "\n".join(o["data"]["text/plain"] for o in outputs)


def test_the_controls_offer_what_the_reports_folder_holds(reports: Path, explorer: Explorer) -> None:
    assert find_experiments(reports) == [EXPERIMENT]
    assert explorer.experiment.options == (EXPERIMENT,)
    assert explorer.dataset.options == ("mlqa-r", "tatoeba")
    assert explorer.dataset.value == "mlqa-r"
    assert list(explorer.metric.options) == RETRIEVAL_METRICS  # per-pair metrics only: no rank distance, no shares
    assert explorer.run_a.options == explorer.run_b.options == (BASELINE_RUN, TRAINED_RUN)
    assert (explorer.run_a.value, explorer.run_b.value) == (BASELINE_RUN, TRAINED_RUN)


def test_trained_runs_are_grouped_under_the_model_they_were_trained_from(reports: Path, explorer: Explorer) -> None:
    info = json.loads((reports / EXPERIMENT / TRAINED_RUN / "eval" / "info.json").read_text())
    assert info["model"].endswith("train/model")  # the evaluation names the trained folder
    assert run_models(report.load_results(reports / EXPERIMENT)) == {BASELINE_RUN: "use-m", TRAINED_RUN: "use-m"}
    assert explorer.model.options == (("all models", ""), ("use-m", "use-m"))
    explorer.model.value = "use-m"
    assert explorer.shown_runs() == [BASELINE_RUN, TRAINED_RUN]


def test_changing_the_metric_redraws_the_heatmap_and_its_table(reports: Path, explorer: Explorer) -> None:
    results = report.load_results(reports / EXPERIMENT)
    map_png = pngs(explorer.heatmap.outputs)
    assert len(map_png) == 1 and map_png[0].startswith(b"\x89PNG")
    explorer.metric.value = "recall@1"
    recall_png = pngs(explorer.heatmap.outputs)
    assert recall_png != map_png
    recall = report.pair_matrix(results.table, BASELINE_RUN, "mlqa-r", "recall@1").round(3)
    assert recall.to_string() in text_of(explorer.table.outputs)
    explorer.metric.value = "map"
    assert pngs(explorer.heatmap.outputs) == map_png  # the picture is a function of the selection
    assert plt.get_fignums() == []  # every figure was closed after rendering


def test_run_a_drives_the_heatmap_and_run_b_only_the_comparison(explorer: Explorer) -> None:
    heatmap, delta = explorer.heatmap.outputs, explorer.delta.outputs
    explorer.run_b.value = BASELINE_RUN
    assert explorer.heatmap.outputs is heatmap
    assert "same run" in text_of(explorer.delta.outputs)
    explorer.run_a.value = TRAINED_RUN
    assert pngs(explorer.heatmap.outputs) != pngs(heatmap)
    assert pngs(explorer.delta.outputs) != pngs(delta)  # now baseline - trained, the other way round


def test_the_delta_view_marks_the_pairs_whose_difference_is_not_significant(reports: Path, explorer: Explorer) -> None:
    results = report.load_results(reports / EXPERIMENT)
    delta, significant = explorer.delta_matrix()
    expected = report.pair_matrix(results.table, TRAINED_RUN, "mlqa-r", "map") - report.pair_matrix(
        results.table, BASELINE_RUN, "mlqa-r", "map"
    )
    assert delta.equals(expected)
    assert significant.equals(report.delta_matrix(results, BASELINE_RUN, TRAINED_RUN, "mlqa-r", "map", 1000)[1])
    unmarked = not_significant(delta, significant)
    assert 0 < len(unmarked) < delta.size, "ten steps of training change some pairs significantly, not all"
    assert text_of(explorer.delta.outputs).endswith(f"not significant: {', '.join(unmarked)}>")
    assert explorer.delta_matrix() is explorer.delta_matrix()  # cached per selection


def test_bias_views_and_headline_rows_cover_both_runs(explorer: Explorer) -> None:
    assert len(pngs(explorer.bias.outputs)) == 2  # rank distance per run, top-10 share of run A
    headline = explorer.table.outputs[1]["data"]["text/plain"]
    for name in (BASELINE_RUN, TRAINED_RUN, "monolingual mAP", "rank distance"):
        assert name in headline


def test_a_bitext_set_offers_accuracy_and_explains_why_it_has_no_bias_views(explorer: Explorer) -> None:
    retrieval_heatmap = pngs(explorer.heatmap.outputs)
    explorer.dataset.value = "tatoeba"
    assert explorer.metric.options == ("accuracy@1",) and explorer.metric.value == "accuracy@1"
    assert pngs(explorer.heatmap.outputs) not in ([], retrieval_heatmap)
    assert "not significant:" in text_of(explorer.delta.outputs)  # pairs compared with the bitext test
    assert text_of(explorer.bias.outputs) == "tatoeba has no multilingual pool, so it has no language-bias views."
    assert "accuracy@1" in explorer.table.outputs[1]["data"]["text/plain"]
    explorer.dataset.value = "mlqa-r"
    assert explorer.metric.value == "map"  # accuracy@1 is not offered there: back to the first metric
    assert pngs(explorer.heatmap.outputs) == retrieval_heatmap


@pytest.mark.parametrize("layout", ["missing", "empty", "no evaluations"])
def test_a_folder_without_evaluations_gets_a_message_not_a_crash(tmp_path: Path, layout: str) -> None:
    folder = tmp_path / "reports"
    if layout != "missing":
        folder.mkdir()
    if layout == "no evaluations":
        (folder / "experiment" / "run" / "eval").mkdir(parents=True)
    app = Explorer(folder)
    assert app.message is not None and app.widget is app.message
    assert "No evaluations" in app.message.value and "hbnb-message" in app.message._dom_classes


def test_the_notebook_runs_under_papermill_with_its_default_selection(reports: Path, tmp_path: Path) -> None:
    out = tmp_path / "05_explore.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"reports_dir": str(reports)},
        kernel_name="python3",
        cwd=str(NOTEBOOK.parent),
        progress_bar=False,
    )
    cells = nbformat.read(out, as_version=4).cells
    app_outputs = cells[-1].outputs
    assert [o.output_type for o in app_outputs] == ["display_data"]
    assert "application/vnd.jupyter.widget-view+json" in app_outputs[0].data


@pytest.mark.slow
def test_the_explorer_redraws_in_jupyterlab_when_the_metric_changes(
    chromium: str, reports: Path, tmp_path: Path
) -> None:
    """Real JupyterLab, real kernel, real browser: run the notebook, switch the metric, see a new heatmap."""
    from playwright.sync_api import sync_playwright

    root = tmp_path / "lab"
    root.mkdir()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells[1].source = f"reports_dir = {str(reports)!r}"
    nbformat.write(notebook, root / NOTEBOOK.name)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    with JupyterLab(root) as lab, sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium)
        page = browser.new_page(viewport={"width": 1400, "height": 2600})  # the whole app fits
        try:
            run_all_cells(page, lab, NOTEBOOK.name)
            image = page.locator(".hbnb-heatmap img")
            image.wait_for(timeout=120_000)
            before = image.get_attribute("src")
            delta_before = page.locator(".hbnb-delta img").get_attribute("src")
            assert before and before.startswith("data:image/png;base64,")
            page.select_option(".hbnb-metric select", "recall@1")
            page.wait_for_function(
                "before => { const img = document.querySelector('.hbnb-heatmap img'); "
                "return img && img.src !== before; }",
                arg=before,
                timeout=60_000,
            )
            wait_until_idle(page)  # the other views follow the heatmap; the screenshot should show them redrawn
            page.locator(".hbnb-explorer").screenshot(path=str(SCREENSHOT))
            assert image.get_attribute("src") != before
            assert page.locator(".hbnb-delta img").get_attribute("src") != delta_before
        except Exception:
            page.screenshot(path=str(SCREENSHOT.with_name("explorer-failure.png")), full_page=True)
            shutil.copyfile(lab.log, SCREENSHOT.with_name("explorer-jupyterlab.log"))
            raise
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000


def pngs(outputs: tuple[DisplayData, ...]) -> list[bytes]:
    """The PNG images among outputs (what these tests compare to see that a view was redrawn)."""
    return [base64.b64decode(o["data"]["image/png"]) for o in outputs if "image/png" in o["data"]]
