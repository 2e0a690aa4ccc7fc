"""`training.loss: cached-mnrl`: the loss and gradients of MNRL, the batches of hbnb's sampler."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
import yaml
from test_training import batch_log, write_params

from hbnb import models
from hbnb.errors import ParamsError
from hbnb.params import TrainingParams, TrainParams, validate
from hbnb.training import load_params, train
from hbnb.training.losses import build_loss


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_cached_mnrl_gives_the_loss_and_gradients_of_mnrl(xquad) -> None:
    model = models.load("use-m")
    models.freeze_word_embeddings(model)
    en = xquad.filter(lambda r: r["lang"] == "en")
    first = {}  # one question per paragraph: a batch whose positives are all different
    for i, paragraph in enumerate(en["paragraph"]):
        first.setdefault(paragraph, i)
    items = en.select(sorted(first.values())[:12])
    de = {r["item_id"]: r["paragraph"] for r in xquad.filter(lambda r: r["lang"] == "de")}
    anchors = items["question"]  # a cross-lingual batch: English queries, German paragraphs
    positives = [de[i] for i in items["item_id"]]
    results = {}
    for name, mini in (("mnrl", None), ("cached-mnrl", 5)):  # 5: chunks of 5, 5 and 2 texts
        model.zero_grad(set_to_none=True)
        params = TrainingParams(loss=name, **({"mini_batch_size": mini} if mini else {}))
        loss_fn = build_loss(model, params)
        features = [model.preprocess(anchors), model.preprocess(positives)]
        loss = loss_fn(features, None)
        loss.backward()
        results[name] = (loss.item(), _grads(model))
    (plain, g_plain), (cached, g_cached) = results["mnrl"], results["cached-mnrl"]
    assert type(build_loss(model, TrainingParams(loss="cached-mnrl"))).__name__ == "CachedMultipleNegativesRankingLoss"
    assert 0.01 < plain < 0.9 * math.log(12) and cached == pytest.approx(plain, rel=1e-5)  # learnt, not uniform
    assert g_plain.keys() == g_cached.keys() and len(g_plain) > 10
    assert not any("embed" in n.lower() and "word" in n.lower() for n in g_plain)  # the frozen table has none
    # float32 rounding differs between one pass and three chunks: compare against the gradients' scale
    scale = max(g.abs().max().item() for g in g_plain.values())
    assert scale > 1e-3
    worst = {n: ((g - g_cached[n]).abs().max().item() / scale) for n, g in g_plain.items()}
    print(f"largest gradient difference / largest gradient: {max(worst.values()):.2e} ({max(worst, key=worst.get)})")
    assert max(worst.values()) < 1e-3  # a wrong chunking gives differences of the order of 1
    flat = torch.cat([g.flatten() for g in g_plain.values()])
    flat_cached = torch.cat([g_cached[n].flatten() for n in g_plain])
    assert torch.nn.functional.cosine_similarity(flat, flat_cached, dim=0) > 0.99999


def test_a_run_with_cached_mnrl_trains_the_batches_of_mnrl(tmp_path: Path) -> None:
    runs = {}
    for loss in ("mnrl", "cached-mnrl"):
        extra = {"loss": loss, "mini_batch_size": 4} if loss == "cached-mnrl" else {}
        path = write_params(
            tmp_path, f"{loss}.yaml", output_dir=str(tmp_path / loss), max_steps=3, save_steps=3, **extra
        )
        runs[loss] = train(load_params(path)).parent
    plain, cached = runs["mnrl"], runs["cached-mnrl"]
    assert batch_log(plain) == batch_log(cached)  # the sampler decides the batch; the loss only chunks it
    losses = {
        k: [float(r["loss"]) for r in csv.DictReader((v / "loss.csv").open()) if r["loss"]] for k, v in runs.items()
    }
    assert len(losses["mnrl"]) == 3 and losses["cached-mnrl"] == pytest.approx(losses["mnrl"], rel=1e-3)
    recorded = yaml.safe_load((cached / "params.yaml").read_text())
    assert (recorded["loss"], recorded["mini_batch_size"]) == ("cached-mnrl", 4)
    assert "loss" not in yaml.safe_load((plain / "params.yaml").read_text())  # runs from before the key still match


def test_mini_batch_size_without_cached_mnrl_is_refused() -> None:
    with pytest.raises(ParamsError, match="mini_batch_size is for loss: cached-mnrl"):
        validate(TrainParams, {"output_dir": "x", "mini_batch_size": 8}, "p.yaml")
    with pytest.raises(ParamsError, match=r"loss: .*'mnrl' or 'cached-mnrl'"):
        validate(TrainParams, {"output_dir": "x", "loss": "infonce"}, "p.yaml")
