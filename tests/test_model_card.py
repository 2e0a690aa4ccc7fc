"""Model cards and `hbnb push`: a real tiny use-m run on XQuAD, a small XQuAD-R evaluation, dry runs and
the refusals of a real push (no hub is reachable here)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml
from huggingface_hub import ModelCard

from hbnb import cli
from hbnb.errors import ModelNotFoundError, ParamsError
from hbnb.evaluation.scoring import evaluate_to
from hbnb.models import card, hub
from hbnb.models.card_sections import BATCH_KINDS
from hbnb.training import load_params, train


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, str]:
    """An experiment-style run folder (train/ and eval/xquad-r/) and the card as training wrote it."""
    folder = tmp_path_factory.mktemp("card") / "r1"
    params = {
        "model": "use-m",
        "data": "xquad",
        "output_dir": str(folder / "train"),
        "max_steps": 6,
        "save_steps": 6,
        "learning_rate": 1e-4,
        "freeze_word_embeddings": True,
        "batching": {"strategy": "hybrid", "languages": ["en", "de"], "batch_size": 4},
    }
    path = folder.parent / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    model = train(load_params(path))
    written = (model / "README.md").read_text(encoding="utf-8")
    evaluate_to(
        folder / "eval",
        str(model),
        "r1",
        ["xquad-r"],
        langs={"xquad-r": ["en", "de"]},
        candidates="sentence",
        n_resamples=200,
        max_items={"xquad-r": 30},
        label="use-m",
    )
    return folder, written


def table(text: str, header: str) -> dict[str, list[str]]:
    """The rows of the markdown table whose header starts with `header`, keyed by their first cell."""
    rows: dict[str, list[str]] = {}
    for line in text[text.index(f"| {header} |") :].splitlines()[2:]:
        if not line.startswith("|"):
            break
        first, *rest = (cell.strip() for cell in line.strip().strip("|").split("|"))
        rows[first] = rest
    return rows


def section(text: str) -> str:
    return text[text.index(card.START) : text.index(card.END)]


def test_training_writes_sentence_transformers_card_with_design_and_batch_mix(run) -> None:
    folder, written = run
    record = json.loads((folder / "train" / "run.json").read_text())
    mix = json.loads((folder / "train" / "batch_mix.json").read_text())
    parsed = ModelCard(written)
    assert parsed.data.language == record["languages"] == ["en", "de"]
    assert {"sentence-transformers", "hbnb", "batch-strategy:hybrid"} <= set(parsed.data.tags)
    assert parsed.data.datasets == ["google/xquad"] and parsed.data.library_name == "sentence-transformers"
    assert parsed.text.count(card.START) == 1 and "## Training Details" in parsed.text  # sentence-transformers' part
    assert "# use-m fine-tuned with hybrid batches on XQuAD" in parsed.text
    ours = section(written)
    assert "Strategy **hybrid**" in ours and "alpha = 0.5" in ours and "No evaluation yet" in ours
    # the batch mix as the run recorded it: both kinds drawn, every count and share equal to batch_mix.json
    assert set(mix["kinds"]) == {"mono", "cross"} and mix["batches"] == record["completed_steps"] == 6
    kinds = table(ours, "batch kind")
    assert {k: int(v[0]) for k, v in kinds.items()} == {
        BATCH_KINDS["mono"]: mix["kinds"]["mono"],
        BATCH_KINDS["cross"]: mix["kinds"]["cross"],
        "all": 6,
    }
    assert kinds[BATCH_KINDS["mono"]][1] == f"{mix['mono_share']:.1%}"
    pairs = {k: int(v[0].replace(",", "")) for k, v in table(ours, "pair").items()}
    assert pairs == mix["examples_per_pair"] and sum(pairs.values()) == record["trained_pairs"] == 24
    design = table(ours, "")
    assert design["languages (2)"] == ["en, de"] and design["cross-lingual pairs (2)"] == [", ".join(record["pairs"])]
    assert design["trained"][0].startswith("6 steps, 24 pairs")
    hyper = table(ours, "parameter")
    assert hyper["batch size"][0].startswith("4 pairs") and hyper["learning rate"] == ["0.0001"]


def test_the_evaluate_stage_adds_its_evaluations_to_the_trained_models_card(run) -> None:
    folder, written = run
    now = section((folder / "train" / "model" / "README.md").read_text(encoding="utf-8"))
    assert "No evaluation yet" in section(written) and "No evaluation yet" not in now
    metrics = pd.read_parquet(folder / "eval" / "xquad-r" / "metrics.parquet")
    cross = metrics[(metrics.query_lang == "all") & (metrics.setting == "cross") & (metrics.metric == "map")]
    assert table(now, "figure")["cross-lingual mAP"][0] == f"{cross.value.iloc[0]:.3f}"


def test_the_cards_examples_are_a_question_with_its_answer_in_another_language_chosen_by_hbnb(run, xquad) -> None:
    folder, written = run
    (widget,) = ModelCard(written).data.widget
    table = xquad.to_pandas()
    asked = table[(table.lang == "en") & (table.question == widget["source_sentence"])]
    assert len(asked) == 1  # an English question of the training data
    answers = table[table.item_id == asked.item_id.iloc[0]].set_index("lang").sentence
    assert widget["sentences"][0] == answers["de"]  # its answer in German, the run's other language
    distractor = table[(table.lang == "en") & (table.sentence == widget["sentences"][1])]
    assert len(widget["sentences"]) == 2 and asked.item_id.iloc[0] not in set(distractor.item_id)


def test_push_dry_run_lists_the_upload_and_refreshes_the_card_with_the_evaluation(run, capsys) -> None:
    folder, _ = run
    model = folder / "train" / "model"
    assert cli.main(["push", str(folder), "--repo-id", "my-org/use-m-hybrid", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("repo: my-org/use-m-hybrid (public") and "nothing uploaded, no network used" in out
    listed = dict(re.findall(r"^  (\S+) +([\d,]+) bytes$", out, flags=re.MULTILINE))
    on_disk = {p.name: p.stat().st_size for p in model.iterdir() if p.is_file()}
    assert {k: int(v.replace(",", "")) for k, v in listed.items()} == on_disk  # README.md as refreshed
    assert {"README.md", "model.safetensors", "modules.json"} <= set(listed)
    assert f"total: {sum(on_disk.values()):,} bytes" in out and "left out" not in out

    text = (model / "README.md").read_text(encoding="utf-8")
    ours = section(text)
    assert text.count(card.START) == 1 and "Strategy **hybrid**" in ours  # the training part is kept
    assert 'SentenceTransformer("my-org/use-m-hybrid")' in text
    assert "30 items only: not comparable with the full set" in ours
    metrics = pd.read_parquet(folder / "eval" / "xquad-r" / "metrics.parquet")
    overall = metrics[metrics.query_lang == "all"].set_index(["setting", "metric"])
    shown = table(ours, "figure")
    index = {}
    for label, setting, metric, digits in (
        ("monolingual mAP", "mono", "map", 3),
        ("cross-lingual mAP", "cross", "map", 3),
        ("multilingual mAP", "pool", "map", 3),
        ("rank distance", "pool", "rank_distance", 1),
    ):
        row = overall.loc[(setting, metric)]
        assert shown[label] == [f"{row.value:.{digits}f}", f"[{row.ci_low:.{digits}f}, {row.ci_high:.{digits}f}]"]
        index[label] = round(row.value, 6)
    results = ModelCard(text).data.eval_results
    assert {r.metric_name: r.metric_value for r in results} == index
    assert {r.dataset_type for r in results} == {"xquad-r"}

    assert cli.main(["push", str(folder / "train"), "--repo-id", "my-org/use-m-hybrid", "--dry-run"]) == 0
    assert capsys.readouterr().out == out  # the training output folder finds the same model and evaluations
    assert (model / "README.md").read_text(encoding="utf-8") == text  # a refresh is idempotent


def test_a_checkpoint_pushes_without_its_training_state(run, capsys) -> None:
    folder, _ = run
    checkpoint = folder / "train" / "checkpoint-6"
    state = {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "training_args.bin"}
    assert state <= {p.name for p in checkpoint.iterdir()}
    plan = hub.push(checkpoint, "my-org/ckpt", private=True, dry_run=True, eval_dirs=(folder / "eval" / "xquad-r",))
    assert plan.private and {name for name, _ in plan.files}.isdisjoint(state) and plan.evaluations == ("xquad-r",)
    assert {name for name, _ in plan.excluded} == state and "model.safetensors" in dict(plan.files)
    text = hub.format_plan(plan, dry_run=True)
    assert "(private" in text and all(name in text.split("left out")[1] for name in state)
    written = (checkpoint / "README.md").read_text()
    assert "Training data and design" not in written and "#### XQuAD-R (`xquad-r`)" in written  # run.json: model/


def test_a_real_push_refuses_clearly_and_changes_nothing(run, capsys, monkeypatch, tmp_path) -> None:
    from huggingface_hub import constants

    folder, _ = run
    readme = folder / "train" / "model" / "README.md"
    before = readme.read_text(encoding="utf-8")
    assert cli.main(["push", str(folder), "--repo-id", "my-org/other-name"]) == 2  # HF_HUB_OFFLINE=1 (conftest)
    assert "hbnb: error: the hub is switched off here (HF_HUB_OFFLINE" in capsys.readouterr().err
    assert readme.read_text(encoding="utf-8") == before

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(hub.HubError, match=r"no Hugging Face token: log in with `hf auth login`.*HF_TOKEN"):
        hub.push(folder, "my-org/other-name")

    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(hub.HubError, match=rf"cannot reach the hub \(http://127.0.0.1:{port}\)"):
        hub.push(folder, "my-org/other-name")

    class Refuse(BaseHTTPRequestHandler):
        def deny(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            body = json.dumps({"error": "You don't have the rights to create a model under this namespace"}).encode()
            self.send_response(403)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = deny

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(hub.HubError, match=r"failed \(403\): the token may not write to my-org.*rights"):
            hub.push(folder, "my-org/other-name")
    finally:
        server.shutdown()
        server.server_close()


def test_push_refuses_a_folder_without_a_model_and_a_bad_repo_id(run, tmp_path, capsys) -> None:
    folder, _ = run
    baseline = tmp_path / "baseline-use-m"
    shutil.copytree(folder / "eval", baseline / "eval")
    with pytest.raises(ModelNotFoundError, match=r"holds no trained model \(an untuned baseline.*train/model/modules"):
        hub.push(baseline, "my-org/x", dry_run=True)
    assert cli.main(["push", str(tmp_path / "nowhere"), "--repo-id", "my-org/x", "--dry-run"]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(ParamsError, match="give the namespace too, as ORG/NAME"):
        hub.push(folder, "just-a-name", dry_run=True)
    with pytest.raises(ParamsError, match="is not a hub repo id"):
        hub.push(folder, "my org/x", dry_run=True)
