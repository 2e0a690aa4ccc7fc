"""The research machinery through `hbnb run`: a tiny sweep over strategies, seeds and a factor; a
report over variants that evaluate different data sets. Slow: they train and evaluate."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY

from hbnb import experiment
from hbnb.evaluation import replicates
from hbnb.experiment import pipeline
from hbnb.report import load_results, stratified

SEEDS = Path(__file__).resolve().parent / "params" / "tiny-seeds.yaml"
FIGURES = ["monolingual mAP", "cross-lingual mAP", "multilingual mAP", "rank distance"]


@pytest.fixture(scope="session")
def seeds_run(tmp_path_factory) -> tuple[Path, float]:
    """tests/params/tiny-seeds.yaml run once: (its experiment folder, wall seconds)."""
    folder = tmp_path_factory.mktemp("seeds")
    start = time.perf_counter()
    index = pipeline.run(SEEDS, folder / "reports", echo=print)
    return index.parent, time.perf_counter() - start


def run_json(root: Path, name: str) -> dict:
    return json.loads((root / name / "train" / "run.json").read_text())


@pytest.mark.slow
def test_seed_groups_have_three_replicates_and_intervals_over_seeds_and_items(seeds_run) -> None:
    root, seconds = seeds_run
    print(f"tiny-seeds: {seconds:.0f} s")
    summary = pd.read_csv(root / "report" / "summary.csv")
    trained = summary[~summary.baseline]
    assert set(trained.group) == {f"strategy-{s}_n_languages-{n}" for s in ("x-x", "hybrid") for n in (2, 4)}
    assert (trained.n_seeds == 3).all() and (summary[summary.baseline].n_seeds == 1).all()
    assert set(summary.figure) == set(FIGURES)
    for row in trained.itertuples():
        per_seed = json.loads(row.per_seed)
        assert len(per_seed) == 3 and np.isclose(np.mean(per_seed), row.mean)
        assert row.low <= row.mean <= row.high and row.min == min(per_seed) and row.max == max(per_seed)
    # the written interval is the two-level bootstrap of the written per-query values, and it
    # widens when seed variance is added (each seed's values shifted: -0.1, 0, +0.1)
    results = load_results(root)
    runs = [f"strategy-hybrid_n_languages-4_seed-{s}" for s in (0, 1, 2)]
    frames = [stratified(results, r, "xquad-r", "cross", "map") for r in runs]
    written = trained[(trained.group == "strategy-hybrid_n_languages-4") & (trained.figure == "cross-lingual mAP")]
    both = replicates.seed_interval(frames, n_resamples=300)
    assert np.allclose([both.estimate, both.low, both.high], written[["mean", "low", "high"]].to_numpy()[0])
    assert len(set(both.per_seed)) == 3  # the seeds trained different models
    spread = [f.assign(value=f.value + d) for f, d in zip(frames, (-0.1, 0.0, 0.1))]
    wider = replicates.seed_interval(spread, n_resamples=300)
    assert wider.high - wider.low > 1.5 * (both.high - both.low)


@pytest.mark.slow
def test_language_pair_and_item_sets_are_nested_across_the_factor(seeds_run) -> None:
    root, _ = seeds_run
    for strategy in ("x-x", "hybrid"):
        for seed in (0, 1, 2):
            records = [run_json(root, f"strategy-{strategy}_n_languages-{n}_seed-{seed}") for n in (2, 4)]
            langs = [r["languages"] for r in records]
            assert [len(x) for x in langs] == [2, 4] and all(x[0] == "en" for x in langs)
            assert langs[0] == langs[1][:2]
            pairs = [set(r["pairs"]) for r in records]
            assert (pairs[0] <= pairs[1]) and (strategy == "x-x") == (not pairs[1])
            assert {r["train_items"] for r in records} == {200}
            assert all(r["completed_steps"] == 4 for r in records)
    # replicates share the design
    assert len({tuple(run_json(root, f"strategy-hybrid_n_languages-4_seed-{s}")["languages"]) for s in (0, 1, 2)}) == 1


@pytest.mark.slow
def test_seen_unseen_splits_curves_and_verdicts_are_written(seeds_run) -> None:
    root, _ = seeds_run
    splits = pd.read_csv(root / "report" / "seen_unseen.csv")
    assert set(splits.split) == {"seen->seen", "seen->unseen", "unseen->seen", "unseen->unseen"}
    mono = splits[splits.figure == "monolingual mAP"]
    assert set(mono.split) == {"seen->seen", "unseen->unseen"}  # en->en and vi->vi only
    assert (splits.n_seeds == 3).all() and (splits.low <= splits["mean"]).all()
    curves = {p.name for p in (root / "report" / "curves").glob("*.png")}
    for figure in FIGURES:
        assert f"xquad-r_{figure.replace(' ', '-')}_batching.n-languages.png" in curves
    assert "xquad-r_tradeoff_batching.n-languages.png" in curves
    verdicts = pd.read_csv(root / "report" / "verdicts.csv")
    assert len(verdicts) == 3 * 2  # 3 claims x 2 numbers of languages
    assert set(verdicts.verdict) <= {"supported", "refuted", "inconclusive"}
    assert set(verdicts.claim) == {
        "hybrid > x-x on cross",
        "hybrid ~ x-x on mono within 0.05",
        "hybrid best on multilingual",
    }
    comparisons = pd.read_csv(root / "report" / "comparisons.csv")
    assert len(comparisons) == 2 * 4  # one strategy pair per figure and number of languages
    assert ((comparisons.p_holm >= comparisons.p) | np.isclose(comparisons.p_holm, comparisons.p)).all()
    page = (root / "report" / "04_report.html").read_text()
    assert "from hbnb import report" not in page and "Traceback" not in page  # no code on the page
    assert page.index('id="Claims"') < page.index('id="Summary"') < page.index('id="Per-language-pair"')
    assert 'href="#Curves"' in page and page.count("data:image/png;base64,") >= 6
    index = (root / "index.html").read_text()
    assert "<h3>Claims</h3>" in index and "hybrid best on multilingual" in index


@pytest.mark.slow
def test_the_explorer_draws_a_curve_over_the_factor(seeds_run) -> None:
    from hbnb.report.explorer import Explorer

    root, _ = seeds_run
    app = Explorer(root.parent, n_resamples=200)
    assert app.factor.value == "batching.n_languages" and app.figure.value == "monolingual mAP"
    app.split.value = "seen->unseen"
    app.figure.value = "cross-lingual mAP"
    (output,) = app.curve.outputs
    assert (
        "image/png" in output["data"] and "cross-lingual mAP by batching.n_languages" in output["data"]["text/plain"]
    )


@pytest.mark.slow
def test_report_over_variants_that_evaluate_different_sets_and_runs_not_in_the_file(tiny, tmp_path: Path) -> None:
    """The tiny experiment's evaluations, rearranged as two variants (one evaluates MLQA-R, the
    other Tatoeba), plus a run the file no longer has; the report stage runs on them."""
    source, _, _ = tiny
    params = yaml.safe_load(TINY.read_text())
    params["experiment"] = "variants"
    params["sweep"] = {
        "variant": [
            {"name": "on-mlqa", "data": {**params["data"], "evaluate": ["mlqa-r"], "langs": {"mlqa-r": ["en", "de"]}}},
            {"name": "on-tatoeba", "data": {**params["data"], "evaluate": ["tatoeba"], "langs": {"tatoeba": ["de"]}}},
        ],
        "batching.strategy": ["x-x", "hybrid"],
    }
    path = tmp_path / "variants.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    root = tmp_path / "reports" / "variants"
    for variant, dataset in (("on-mlqa", "mlqa-r"), ("on-tatoeba", "tatoeba")):
        for strategy in ("x-x", "hybrid"):
            _copy_run(source, f"strategy-{strategy}", root, f"{variant}_strategy-{strategy}", dataset, variant)
        _copy_run(source, "baseline-use-m", root, f"baseline-use-m-{dataset}", dataset, None)
    _copy_run(source, "strategy-x-x", root, "old-run", "mlqa-r", None)
    shutil.copyfile(path, root / "params.yaml")
    stages = pipeline.plan(experiment.load(path), path, tmp_path / "reports")
    report = next(s for s in stages if s.key == "report")
    pipeline.execute(report, pipeline.notebooks_dir(), "test")
    summary = pd.read_csv(root / "report" / "summary.csv")
    assert set(summary[summary.dataset == "mlqa-r"].group) == {
        "on-mlqa_strategy-x-x",
        "on-mlqa_strategy-hybrid",
        "baseline-use-m-mlqa-r",
    }
    assert set(summary[summary.dataset == "tatoeba"].group) == {
        "on-tatoeba_strategy-x-x",
        "on-tatoeba_strategy-hybrid",
        "baseline-use-m-tatoeba",
    }
    assert "old-run" not in set(summary.group)
    page = (root / "report" / "04_report.html").read_text()
    assert "Traceback" not in page and "old-run" in page.split('id="Runs-not-in-this-file"')[1]


def _copy_run(source: Path, run: str, root: Path, name: str, dataset: str, variant: str | None) -> None:
    """One evaluation of the tiny experiment under another run name (tables renamed)."""
    target = root / name
    (target / "eval").mkdir(parents=True)
    shutil.copytree(source / run / "eval" / dataset, target / "eval" / dataset)
    for table in ("metrics.parquet", "per_query.parquet"):
        file = target / "eval" / dataset / table
        pd.read_parquet(file).assign(run=name).to_parquet(file)
    info = json.loads((source / run / "eval" / "info.json").read_text())
    (target / "eval" / "info.json").write_text(json.dumps({**info, "run": name, "datasets": [dataset]}))
    if (source / run / "train").is_dir():
        (target / "train").mkdir()
        shutil.copyfile(source / run / "train" / "params.yaml", target / "train" / "params.yaml")
        values = json.loads((source / run / "run_spec.json").read_text())["values"]
        if variant:
            values = {"variant": {"name": variant}, **values}
        (target / "run_spec.json").write_text(json.dumps({"name": name, "values": values}))


@pytest.mark.slow
def test_the_report_writes_summary_md_and_hbnb_findings_commits_it(seeds_run, tmp_path: Path) -> None:
    from hbnb import cli

    root, _ = seeds_run
    text = (root / "report" / "summary.md").read_text()
    assert text.startswith("# tiny-seeds") and "hbnb run params/tiny-seeds.yaml" in text
    assert "## Verdicts" in text and "| hybrid best on multilingual |" in text and "## xquad-r" in text
    assert "![xquad-r_tradeoff_batching.n-languages](curves/xquad-r_tradeoff_batching.n-languages.png)" in text
    assert "minutes over the" in text  # the stages' recorded time
    out = tmp_path / "findings" / "tiny"
    assert cli.main(["findings", str(root), str(out)]) == 0
    assert {p.name for p in out.iterdir()} >= {"summary.md", "verdicts.csv", "summary.csv", "curves"}
    assert not list(out.rglob("*.html")) and not list(out.rglob("*.ipynb"))
    index = (tmp_path / "findings" / "README.md").read_text()
    assert "[tiny-seeds](tiny/summary.md)" in index and "hybrid > x-x on cross" in index
    assert cli.main(["findings", str(tmp_path / "nowhere"), str(out)]) == 2
