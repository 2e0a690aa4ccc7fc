"""Hostile and careless input: each case reproduces a failure a new user met, then checks the fix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from conftest import write_experiment
from transformers import TrainerControl, TrainerState, TrainingArguments

from hbnb import cli
from hbnb.errors import NonFiniteError


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- 9. bad values


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("training.learning_rate", math.inf, "training.learning_rate: inf"),
        ("training.learning_rate", math.nan, "training.learning_rate: nan"),
        ("training.max_steps", 1e29, "training.max_steps: 1e+29"),
        ("training.max_steps", 20_000_000, "training.max_steps: 20000000"),
        ("report.n_resamples", 1e12, "report.n_resamples: 1000000000000.0"),
        ("training.max_steps", True, "training.max_steps: True: a boolean where a number is expected"),
        ("batching.batch_size", False, "batching.batch_size: False: a boolean"),
        ("batching.language_weights", {"en": True, "de": 1}, "batching.language_weights"),
        ("data.max_items", {"mlqa-r": True}, "data.max_items"),
        ("batching.seed", -1, "batching.seed: -1"),
    ],
)
def test_absurd_and_non_finite_values_are_one_error_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, value: object, shown: str
) -> None:
    path = write_experiment(tmp_path, "absurd", **{key: value})
    code, out, err = run_cli(capsys, "run", str(path), "--plan", "--reports", str(tmp_path / "reports"))
    assert code == 2 and out == ""
    assert err.count("hbnb: error:") == 1 and shown in err and "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_a_boolean_swept_into_a_number_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_experiment(tmp_path, "swept", sweep={"training.max_steps": [4, True]})
    code, _, err = run_cli(capsys, "run", str(path), "--plan", "--reports", str(tmp_path / "reports"))
    assert code == 2 and "training.max_steps: True: a boolean where a number is expected" in err


def test_booleans_stay_booleans_and_numbers_numbers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_experiment(tmp_path, "fine", **{"training.bf16": False, "training.max_steps": 4.0})
    code, out, err = run_cli(capsys, "run", str(path), "--plan", "--reports", str(tmp_path / "reports"))
    assert code == 0, err
    assert '"max_steps": 4' in out and '"bf16": false' in out


def test_debug_adds_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_experiment(tmp_path, "absurd", **{"training.max_steps": True})
    code, _, err = run_cli(capsys, "--debug", "run", str(path), "--plan", "--reports", str(tmp_path / "reports"))
    assert code == 2 and "Traceback" in err and err.count("hbnb: error:") == 1


def test_a_diverging_training_step_stops_before_it_is_checkpointed(tmp_path: Path) -> None:
    from hbnb.training.trainer import _StopWhenNonFinite

    good = tmp_path / "checkpoint-4"
    good.mkdir()
    (good / "trainer_state.json").write_text("{}")
    stop = _StopWhenNonFinite(tmp_path, 0.5)
    state = TrainerState()
    state.global_step = 5
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none")
    stop.on_log(args, state, TrainerControl(), logs={"loss": 3.2, "grad_norm": 1.5})  # finite: nothing happens
    with pytest.raises(NonFiniteError, match=r"step 5 \(grad_norm inf\); the last good checkpoint is .*checkpoint-4"):
        stop.on_log(args, state, TrainerControl(), logs={"loss": 3.2, "grad_norm": math.inf})
    with pytest.raises(NonFiniteError, match="loss nan.*training.learning_rate"):
        stop.on_log(args, state, TrainerControl(), logs={"loss": math.nan})


def test_nan_embeddings_are_never_scored(fresh_cache: Path) -> None:
    import torch

    from hbnb import models
    from hbnb.evaluation import encoding

    model = models.load("use-m")
    texts = ["Wo liegt Berlin?", "Where is Berlin?"]
    assert np.isfinite(encoding.encode(model, texts, "query", cache=False)).all()
    with torch.no_grad():
        next(model.parameters()).fill_(math.nan)
    with pytest.raises(NonFiniteError, match="NaN or infinite embeddings for 2 of 2 query texts"):
        encoding.encode(model, texts, "query")
    assert not list(fresh_cache.rglob("*.npy"))  # nothing cached


# --------------------------------------------------------------------------- 11. languages checked up front


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"data.langs": {"mlqa-r": ["fr"], "tatoeba": ["de"]}}, "data.langs.mlqa-r = ['fr']: 'fr' not in mlqa-r"),
        ({"data.evaluate": ["wmt22"], "data.langs": {"wmt22": ["en-xx"]}}, "'en-xx' not in wmt22; allowed: cs-en"),
        ({"batching.pairs": ["en-es"]}, "batching.pairs names 'en-es', but 'es' is not a training language"),
        ({"batching.languages": None, "batching.pairs": ["en-fr"]}, "'fr' is not a training language"),
        (
            {"batching.language_weights": {"es": 1.0, "en": 1.0}, "sweep": {"batching.strategy": ["x-x"]}},
            "batching.language_weights names es, not a training language; allowed: en, de",
        ),
        ({"training.validation": {"languages": ["fr"], "every": 3}}, "validation.languages has fr, absent"),
        ({"batching.languages": ["en", "fr"]}, "batching.languages has 'fr', absent from xquad"),
    ],
)
def test_languages_outside_the_data_are_refused_before_any_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], changes: dict, shown: str
) -> None:
    path = write_experiment(tmp_path, "langs", **changes)
    reports = tmp_path / "reports"
    for argv in (["run", str(path), "--plan"], ["run", str(path)]):
        code, _, err = run_cli(capsys, *argv, "--reports", str(reports))
        assert code == 2 and err.count("hbnb: error:") == 1 and shown in err, err
        assert not reports.exists()  # refused before the baseline evaluation (or any folder)


# --------------------------------------------------------------------------- 6. experiment folders


@pytest.mark.parametrize(
    ("variants", "shown"),
    [
        ([{"name": ".."}, {"name": "b"}], "sweep.variant name '..' is not a safe folder name"),
        ([{"name": "."}, {"name": "b"}], "sweep.variant name '.' is not a safe folder name"),
        ([{"name": "../../etc"}, {"name": "b"}], "is not a safe folder name"),
        ([{"name": "baseline-use-m"}, {"name": "b"}], "'baseline-use-m' is reserved"),
        ([{"name": "report"}, {"name": "b"}], "'report' is reserved"),
        ([{"name": "Hybrid"}, {"name": "hybrid"}], "names 'Hybrid' and 'hybrid' name one folder"),
        ([{"name": 7}, {"name": "b"}], "sweep.variant name 7 is not a safe folder name"),
    ],
)
def test_run_names_that_escape_hide_or_collide_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], variants: list[dict], shown: str
) -> None:
    for v in variants:
        v["batching.strategy"] = "x-x"
    path = write_experiment(tmp_path, "names", sweep={"variant": variants})
    reports = tmp_path / "reports"
    code, _, err = run_cli(capsys, "run", str(path), "--reports", str(reports))
    assert code == 2 and err.count("hbnb: error:") == 1 and shown in err, err
    assert not reports.exists() and not (tmp_path / "etc").exists()


def test_swept_values_that_slug_to_one_folder_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_experiment(tmp_path, "slugs", sweep={"model": ["use-m", "use_m"]})
    code, _, err = run_cli(capsys, "run", str(path), "--plan", "--reports", str(tmp_path / "r"))
    assert code == 2 and "would share the folder" in err, err


def test_an_experiment_cannot_be_named_like_the_findings_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_experiment(tmp_path, "findings")
    code, _, err = run_cli(capsys, "run", str(path), "--plan", "--reports", str(tmp_path / "r"))
    assert code == 2 and "experiment: 'findings'" in err and "is reserved" in err, err
