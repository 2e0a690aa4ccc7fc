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
    from hbnb.training.callbacks import StopWhenNonFinite

    good = tmp_path / "checkpoint-4"
    good.mkdir()
    (good / "trainer_state.json").write_text("{}")
    stop = StopWhenNonFinite(tmp_path, 0.5)
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


# --------------------------------------------------------------------------- 4, 5. writes


def _full_disk(monkeypatch: pytest.MonkeyPatch, method: str) -> None:
    """DataFrame.<method> writes part of its file, then the disk is full."""
    import errno
    import os

    import pandas as pd

    def write_part(self, path, *args, **kwargs):
        Path(path).write_bytes(b"half a file")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(pd.DataFrame, method, write_part)


def test_a_full_disk_is_one_error_naming_the_file_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    from hbnb.errors import WriteError
    from hbnb.evaluation.scoring import Evaluation

    row = {"run": "run", "dataset": "mlqa-r", "setting": "pair", "query_lang": "en", "cand_lang": "de"}
    table = pd.DataFrame([{**row, "metric": "map", "value": 0.5, "n_queries": 10}])
    evaluation = Evaluation("run", "mlqa-r", table, table, meta={"n": 1})
    folder = evaluation.save(tmp_path / "eval")
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    _full_disk(monkeypatch, "to_csv")
    with pytest.raises(WriteError, match=r"could not write .*eval/metrics.csv: No space left on device"):
        Evaluation("run", "mlqa-r", table.assign(value=0.9), table).save(folder)
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert set(after) == set(before)  # no .tmp- file left behind
    assert after[Path("metrics.csv")] == before[Path("metrics.csv")]  # the earlier result is intact


def test_a_full_disk_in_hbnb_evaluate_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _full_disk(monkeypatch, "to_parquet")
    out = tmp_path / "eval"
    code, _, err = run_cli(
        capsys, "evaluate", "--model", "use-m", "--data", "tatoeba", "--langs", "tzl", "--out", str(out)
    )
    assert code == 2 and err.count("hbnb: error:") == 1 and "No space left on device" in err, err
    assert "Traceback" not in err and not list(out.rglob(".tmp-*"))


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_written_files_and_folders_follow_the_umask(tmp_path: Path, mask: int) -> None:
    import os

    from hbnb.evaluation.encoding import _write
    from hbnb.files import atomic_dir, write_text

    old = os.umask(mask)
    try:
        page = write_text(tmp_path / "report" / "index.html", "<p>shared</p>")
        with atomic_dir(tmp_path / "model") as folder:
            (folder / "config.json").write_text("{}")
        _write(tmp_path / "cache" / "e.npy", np.ones((2, 3), dtype=np.float32))
    finally:
        os.umask(old)
    assert page.stat().st_mode & 0o777 == 0o666 & ~mask
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o777 & ~mask
    for written in (tmp_path / "cache" / "e.npy", tmp_path / "cache" / "e.json"):
        assert written.stat().st_mode & 0o777 == 0o666 & ~mask


# --------------------------------------------------------------------------- 8. hbnb train locks its folder


def test_a_second_training_on_one_output_dir_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml
    from filelock import FileLock

    out = tmp_path / "run"
    params = tmp_path / "train.yaml"
    params.write_text(
        yaml.safe_dump(
            {"model": "use-m", "data": "xquad", "output_dir": str(out), "max_steps": 2, "save_steps": 2,
             "batching": {"strategy": "x-x", "languages": ["en", "de"], "batch_size": 4}}
        )
    )  # fmt: skip
    out.mkdir()
    with FileLock(str(out / ".lock")):  # another `hbnb train` holds the folder
        code, _, err = run_cli(capsys, "train", str(params))
    assert code == 2 and f"{out} is being trained by another process" in err, err
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written, no checkpoint interleaved


# --------------------------------------------------------------------------- 10. damaged training files

GOOD_ROW = '{"id": "1", "lang": "en", "question": "Where is it?", "passage": "It is there."}\n'


@pytest.mark.parametrize(
    ("name", "content", "shown"),
    [
        ("cut.jsonl", GOOD_ROW + GOOD_ROW.replace('"en"', '"de"')[:40], "cut.jsonl, line 2: not valid JSON"),
        ("empty.jsonl", "", "empty.jsonl is empty; expected rows with id, lang, question, passage"),
        ("blank.csv", "\n\n", "blank.csv is empty"),
        ("cut.csv", "id,lang,question,passage\n1,en,Where?,There.\n1,de,Wo", "cut.csv, line 3: 3 fields where"),
        ("quote.csv", 'id,lang,question,passage\n1,en,Where?,There.\n1,de,"Wo?,Da.\n', "quote.csv, line 3"),
        ("cut.json", "[" + GOOD_ROW.strip() + ", {", "cut.json, line 1: not valid JSON"),
        ("noise.parquet", "PAR1 not really", "noise.parquet: cannot be read as parquet"),
    ],
)
def test_a_damaged_training_file_is_one_error_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, shown: str
) -> None:
    data = tmp_path / name
    data.write_text(content, encoding="utf-8")
    path = write_experiment(tmp_path, "damaged", **{"data.train": str(data), "batching.languages": None})
    code, _, err = run_cli(capsys, "run", str(path), "--reports", str(tmp_path / "reports"))
    assert code == 2 and err.count("hbnb: error:") == 1 and shown in err, err
    assert "Traceback" not in err and not (tmp_path / "reports").exists()


# --------------------------------------------------------------------------- 1. no code from a model folder unasked


def _folder_with_code(tmp_path: Path) -> tuple[Path, Path]:
    """A saved use-m plus a Transformer module whose config's auto_map names the folder's own Python,
    which leaves a marker file when imported."""
    import json

    from hbnb import models

    folder = tmp_path / "model"
    models.load("use-m").save(str(folder))
    marker = tmp_path / "code-ran"
    module = folder / "1_Transformer"
    module.mkdir()
    for where in (folder, module):  # transformers looks beside the model's root config
        (where / "evil.py").write_text(
            f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
            "from transformers import BertConfig, BertModel\n"
            "class EvilConfig(BertConfig):\n    model_type = 'evil'\n"
            "class EvilModel(BertModel):\n    config_class = EvilConfig\n"
        )
    (module / "config.json").write_text(
        json.dumps(
            {"model_type": "bert", "auto_map": {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}}
        )
    )
    (module / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 32}))
    modules = json.loads((folder / "modules.json").read_text())
    modules.append(
        {"idx": len(modules), "name": "1", "path": "1_Transformer", "type": "sentence_transformers.models.Transformer"}
    )
    (folder / "modules.json").write_text(json.dumps(modules))
    return folder, marker


def test_a_model_folder_runs_none_of_its_code_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hbnb import models
    from hbnb.errors import HbnbError, UntrustedCodeError

    folder, marker = _folder_with_code(tmp_path)
    with pytest.raises(UntrustedCodeError, match=r"1_Transformer/config.json: auto_map .*--trust-remote-code"):
        models.load(str(folder))
    code, _, err = run_cli(
        capsys, "evaluate", "--model", str(folder), "--data", "tatoeba", "--out", str(tmp_path / "e")
    )
    assert code == 2 and "would run its own code" in err and "trust_remote_code: true" in err
    assert not marker.exists()  # nothing from the folder ran
    try:  # allowed, its code runs (whether the folder then loads is its own business)
        models.load(str(folder), trust_remote_code=True)
    except (HbnbError, OSError, ValueError, TypeError, AttributeError):
        pass
    assert marker.exists()


def test_a_saved_use_m_folder_still_loads_without_the_flag(tmp_path: Path) -> None:
    from hbnb import models

    folder = tmp_path / "use-m"
    models.load("use-m").save(str(folder))
    assert models.foreign_code(folder) == []
    vectors = models.load(str(folder)).encode(["Wo liegt Berlin?"])
    assert vectors.shape == (1, 512) and np.isfinite(vectors).all()


# --------------------------------------------------------------------------- 2. user strings escaped in pages

HOSTILE = '<img src=x onerror="window.__pwned=1">'


def test_a_report_built_from_hostile_names_runs_no_script_in_a_browser(
    tmp_path: Path, xquad, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from browser import launch_chromium, require_chromium

    from hbnb import experiment
    from hbnb.experiment import pipeline

    executable = require_chromium()
    data = tmp_path / f"x{HOSTILE}.jsonl"  # a training file whose name is markup
    rows = xquad.filter(lambda r: r["lang"] in ("en", "de")).select(range(120))
    data.write_text(
        "".join(
            json.dumps({"id": r["item_id"], "lang": r["lang"], "question": r["question"], "passage": r["sentence"]})
            + "\n"
            for r in rows
        )
    )
    path = write_experiment(
        tmp_path,
        "hostile",
        **{"data.train": str(data), "description": f"<script>window.__pwned=2</script>{HOSTILE}"},
    )
    reports = tmp_path / "reports"
    params = experiment.load(path)
    stages = pipeline.plan(params, path, reports)
    data_stage = stages[0]
    pipeline.execute(data_stage, pipeline.notebooks_dir(), "test")
    index = pipeline.write_index(reports / "hostile", stages)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p, executable)
        page = browser.new_page()
        for url in (data_stage.html.as_uri(), index.as_uri()):
            page.goto(url)
            page.wait_for_load_state("load")
            assert page.evaluate("window.__pwned === undefined"), url
        page.goto(data_stage.html.as_uri())
        headings = page.locator("h3").all_inner_texts()
        assert any(HOSTILE in h for h in headings), headings  # shown as the literal text it is
        browser.close()


def test_user_strings_in_markdown_outputs_and_summaries_are_literal_text() -> None:
    import mistune  # nbconvert's Markdown renderer
    import pandas as pd

    from hbnb.report import plain
    from hbnb.report.summary import _markdown

    for text in (f"x{HOSTILE}.jsonl", "[click](javascript:alert(1))", "a_b*c* `d` #e"):
        rendered = mistune.html(f"### {plain(text)}")
        assert "<img" not in rendered and "<a " not in rendered and "<em>" not in rendered and "<code>" not in rendered
    table = _markdown(pd.DataFrame({"claim": [f"hybrid > x-x {HOSTILE}"], HOSTILE: ["a|b"]}))
    assert "<img" not in table and "&lt;img" in table and "a\\|b" in table


# --------------------------------------------------------------------------- 3. damaged caches are rebuilt


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else data[:-1] + bytes([data[-1] ^ 0xFF]))


@pytest.mark.parametrize("how", ["truncate", "alter"])
def test_a_damaged_table_cache_is_rebuilt_with_a_warning(
    fresh_cache: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    from datasets import Dataset

    from hbnb.data.tables import cached

    builds = []

    def build() -> Dataset:
        builds.append(1)
        return Dataset.from_dict({"question": ["Where is Berlin?", "Wo liegt Berlin?"], "lang": ["en", "de"]})

    assert cached("test-table", [], {"n": 2}, build)["question"] == ["Where is Berlin?", "Wo liegt Berlin?"]
    assert cached("test-table", [], {"n": 2}, build).num_rows == 2 and len(builds) == 1  # intact: reused
    (arrow,) = (fresh_cache / "datasets").rglob("*.arrow")
    _damage(arrow, how)
    with caplog.at_level("WARNING", logger="hbnb"):
        table = cached("test-table", [], {"n": 2}, build)
    assert len(builds) == 2 and table["lang"] == ["en", "de"]
    (record,) = [r for r in caplog.records if "damaged" in r.getMessage()]
    assert arrow.name in record.getMessage() and "rebuilding it" in record.getMessage()


def test_a_damaged_model_cache_is_rebuilt_with_a_warning(
    fresh_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hbnb.models import e5

    source = tmp_path / "source.bin"
    source.write_bytes(b"weights")
    builds = []

    def write(src: Path, folder: Path) -> None:  # stands in for the 4-bit decoding (tested in test_models)
        builds.append(1)
        for name in e5._REQUIRED:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(name.encode() * 100)

    monkeypatch.setattr(e5, "source_file", lambda: source)
    monkeypatch.setattr(e5, "write_sentence_transformer", write)
    folder = e5.ensure_built()
    assert e5.ensure_built() == folder and len(builds) == 1
    for how in ("alter", "truncate"):
        _damage(folder / "model.safetensors", how)
        with caplog.at_level("WARNING", logger="hbnb"):
            assert e5.ensure_built() == folder
        assert (folder / "model.safetensors").read_bytes() == b"model.safetensors" * 100
    assert len(builds) == 3 and sum("model.safetensors" in r.getMessage() for r in caplog.records) == 2
    (folder / "tokenizer.json").unlink()  # partly deleted
    e5.ensure_built()
    assert len(builds) == 4 and (folder / "tokenizer.json").is_file()


# --------------------------------------------------------------------------- 7. edited files: no dead ends


def test_an_edited_file_sets_the_earlier_run_aside_instead_of_a_dead_end(tmp_path: Path) -> None:
    import json

    import yaml

    from hbnb import experiment
    from hbnb.experiment import pipeline
    from hbnb.experiment.archive import set_aside_stale
    from hbnb.training.trainer import _claim_output_dir

    reports = tmp_path / "reports"
    first = experiment.load(write_experiment(tmp_path, "edited"))
    edited_path = write_experiment(tmp_path, "edited", **{"training.max_steps": 9})
    edited = experiment.load(edited_path)
    root = reports / "edited"
    (old_stage,) = [s for s in pipeline.plan(first, edited_path, reports) if s.key == "train/strategy-x-x"]
    (stage,) = [s for s in pipeline.plan(edited, edited_path, reports) if s.key == "train/strategy-x-x"]
    (eval_stage,) = [s for s in pipeline.plan(edited, edited_path, reports) if s.key == "evaluate/strategy-x-x"]
    # what the first version of the file left: a finished training and its evaluation
    run = stage.folder
    (run / "train" / "model").mkdir(parents=True)
    (run / "train" / "params.yaml").write_text(yaml.safe_dump(old_stage.inputs["train"], sort_keys=False))
    (run / "eval" / "mlqa-r").mkdir(parents=True)
    eval_stage.record.write_text(json.dumps({"fingerprint": "earlier", "inputs": {"datasets": ["mlqa-r"]}}))
    from hbnb.params import TrainParams

    with pytest.raises(Exception, match="holds a run with other parameters"):  # the dead end training alone meets
        _claim_output_dir(run / "train", TrainParams.model_validate(stage.inputs["train"]))
    moved = set_aside_stale(stage, root)
    assert moved is not None and moved.parent == root / "archive" and moved.name.endswith("-strategy-x-x")
    assert (moved / "train" / "model").is_dir() and (moved / "eval" / "mlqa-r").is_dir()  # kept, not deleted
    assert not run.exists()  # the edited run starts clean
    assert set_aside_stale(stage, root) is None  # nothing left in the way
    # the same parameters from a moved reports folder resume instead of starting over
    (run / "train" / "model").mkdir(parents=True)
    moved_dir = {**stage.inputs["train"], "output_dir": "/elsewhere/train"}
    (run / "train" / "params.yaml").write_text(yaml.safe_dump(moved_dir, sort_keys=False))
    assert set_aside_stale(stage, root) is None
    _claim_output_dir(run / "train", TrainParams.model_validate(stage.inputs["train"]))
    assert yaml.safe_load((run / "train" / "params.yaml").read_text())["output_dir"] == str(run / "train")
    # an evaluation finished with other inputs is set aside too; reports read */eval only, not archive/
    (run / "eval" / "tatoeba").mkdir(parents=True)
    same = json.loads(json.dumps(eval_stage.inputs, default=str))
    eval_stage.record.write_text(json.dumps({"fingerprint": "earlier", "inputs": same}))
    assert set_aside_stale(eval_stage, root) is None  # same inputs (a new notebook): redone in place
    eval_stage.record.write_text(json.dumps({"fingerprint": "earlier", "inputs": {**same, "run_depth": 5}}))
    moved_eval = set_aside_stale(eval_stage, root)
    assert moved_eval is not None and (moved_eval / "tatoeba").is_dir() and not (run / "eval").exists()


# --------------------------------------------------------------------------- fuzzing parameter files

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

INT_KEYS = {  # key -> (lowest allowed, highest allowed)
    "training.max_steps": (1, 10_000_000),
    "training.save_steps": (1, 10_000_000),
    "training.gradient_accumulation_steps": (1, 4096),
    "batching.batch_size": (2, 65_536),
    "batching.seed": (0, 2**32 - 1),
    "report.n_resamples": (100, 100_000),
    "report.run_depth": (1, 100_000),
    "seed": (0, 2**32 - 1),
}
FLOAT_KEYS = {"training.learning_rate": (0.0, 1.0), "batching.alpha": (0.0, 1.0), "training.warmup_ratio": (0.0, 1.0)}
CHOICE_KEYS = ["batching.strategy", "data.candidates", "training.budget", "batching.positive", "batching.incomplete"]
HOSTILE_TEXT = st.sampled_from(["../..", ".", "<script>alert(1)</script>", "a/b", "\x00", "x" * 300, "", " "])
NOT_A_NUMBER = st.one_of(
    st.booleans(),
    st.sampled_from([math.inf, -math.inf, math.nan, "ten", [1], {"a": 1}]),
    HOSTILE_TEXT,
)


def _out_of_range(low: float, high: float) -> st.SearchStrategy:
    below = st.floats(min_value=-1e30, max_value=low, exclude_max=True)
    return st.one_of(below, st.floats(min_value=high, exclude_min=True, max_value=1e30))


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, object]:
    """One (dotted key, bad value) that no parameter file may accept."""
    kind = draw(st.sampled_from(["int", "float", "choice", "unknown", "name", "list"]))
    if kind == "int":
        key = draw(st.sampled_from(sorted(INT_KEYS)))
        low, high = INT_KEYS[key]
        bad = st.one_of(NOT_A_NUMBER, st.integers(max_value=low - 1, min_value=low - 10**6),
                        st.integers(min_value=high + 1, max_value=10**40), st.just(low + 0.5))  # fmt: skip
        return key, draw(bad)
    if kind == "float":
        key = draw(st.sampled_from(sorted(FLOAT_KEYS)))
        return key, draw(st.one_of(NOT_A_NUMBER, _out_of_range(*FLOAT_KEYS[key])))
    if kind == "choice":
        return draw(st.sampled_from(CHOICE_KEYS)), draw(st.one_of(HOSTILE_TEXT, st.integers(), st.booleans()))
    if kind == "unknown":
        block = draw(st.sampled_from(["", "training.", "batching.", "data.", "report."]))
        name = draw(st.from_regex(r"\A[a-z]{3,12}\Z").filter(lambda n: n not in {"seed", "model", "alpha", "epochs"}))
        return f"{block}{name}_x", draw(st.one_of(st.integers(), HOSTILE_TEXT))
    if kind == "name":
        return "experiment", draw(HOSTILE_TEXT)
    return draw(st.sampled_from(["batching.languages", "data.evaluate"])), draw(
        st.one_of(st.just([]), st.lists(HOSTILE_TEXT, min_size=1, max_size=3), st.integers(), st.just({"en": 1}))
    )


@settings(
    max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(change=malformed())
def test_malformed_parameter_files_are_always_one_error_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: tuple[str, object]
) -> None:
    key, value = change
    path = write_experiment(tmp_path, "fuzz", **{key: value})
    reports = tmp_path / "fuzz-reports"
    for argv in (["run", str(path), "--plan"], ["run", str(path)]):
        code, out, err = run_cli(capsys, *argv, "--reports", str(reports))
        assert code == 2 and out == "", (key, value, out, err)
        assert err.startswith("hbnb: error:") and err.count("hbnb: error:") == 1 and "Traceback" not in err
        assert key.rsplit(".", 1)[-1] in err, (key, value, err)
        assert not reports.exists()


def test_a_folder_that_cannot_be_made_is_one_line_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = write_experiment(tmp_path, "nowhere")
    code, _, err = run_cli(capsys, "run", str(path), "--reports", str(blocker / "reports"))
    assert code == 2 and err.startswith(f"hbnb: error: cannot use {blocker / 'reports'}") and "Traceback" not in err
    code, _, err = run_cli(capsys, "evaluate", "--model", "no-such-model-folder/x", "--data", "tatoeba",
                           "--out", str(blocker / "eval"))  # fmt: skip
    assert code == 2 and "cannot use" in err and "Traceback" not in err  # refused before loading any model
