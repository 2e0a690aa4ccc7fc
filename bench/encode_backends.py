"""Benchmark: me5-small encoding on CPU with torch vs OpenVINO (fp32, bf16), and what it does to mAP.

1. Throughput: the same MLQA texts (questions with the query prompt, answer sentences with the
   passage prompt; sorted by length in batches of 32, as sentence-transformers does) encoded by
   each backend after one warm-up batch: texts/s and the speedup over torch fp32.
2. Quality: MLQA-R with sentence candidates (a language subset, `--max-items` items, no embedding
   cache) evaluated with each backend: monolingual / cross-lingual / multilingual mAP and the
   largest difference from torch.

The OpenVINO conversion (once per model, then cached) is timed apart and not counted in texts/s.
OpenVINO's bf16 needs AVX512-BF16 or AMX; elsewhere it runs fp32 and the line says so.

    .venv/bin/python bench/encode_backends.py [--texts 2000] [--langs en de es] [--max-items 100]

Last line: `encode speedup best/torch: <x>x (<backend>), mAP delta <d>`.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from hbnb import models
from hbnb.data import load_retrieval
from hbnb.data.tables import column
from hbnb.evaluation import evaluate
from hbnb.models.backends import backend_of, with_backend

BACKENDS = ("torch", "openvino", "openvino-bf16")


def _texts(n: int, langs: list[str]) -> tuple[list[str], list[str]]:
    """n/2 MLQA questions and n/2 answer sentences, spread over `langs`."""
    queries, passages = [], []
    per = max(1, n // (2 * len(langs)))
    for lang in langs:
        data = load_retrieval("mlqa-r", [lang])
        queries += column(data.queries, "text")[:per]
        passages += data.candidate_texts("sentence")[:per]
    return queries, passages


def _speed(model, queries: list[str], passages: list[str]) -> float:
    model.encode_query(queries[:32], batch_size=32)  # warm-up: allocations, OpenVINO's first shapes
    start = time.perf_counter()
    model.encode_query(queries, batch_size=32)
    model.encode_document(passages, batch_size=32)
    return (len(queries) + len(passages)) / (time.perf_counter() - start)


def _figures(model, langs: list[str], max_items: int) -> dict[str, float]:
    result = evaluate(model, "mlqa-r", candidates="sentence", langs=langs, cache=False, max_items=max_items)
    return {k: v for k, v in result.summary().items() if "map" in k.lower()}  # mono, cross, multilingual


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="me5-small")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--langs", nargs="+", default=["en", "de", "es"])
    parser.add_argument("--max-items", type=int, default=100)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}")
    queries, passages = _texts(args.texts, args.langs)
    speed: dict[str, float] = {}
    quality: dict[str, dict[str, float]] = {}
    for backend in BACKENDS:
        began = time.perf_counter()
        model = with_backend(models.load(args.model), backend, args.model)
        ready = time.perf_counter() - began
        name = backend_of(model)
        if backend != "torch" and name == "torch":
            continue  # unavailable: the line above said why
        if name in speed:
            print(f"{backend}: runs as {name} on this CPU (measured above)")
            continue
        speed[name] = _speed(model, queries, passages)
        ratio = speed[name] / speed["torch"]
        line = f"{name}: {speed[name]:.1f} texts/s ({ratio:.2f}x torch); loaded in {ready:.1f} s"
        if not args.skip_quality:
            quality[name] = _figures(model, args.langs, args.max_items)
            line += "; " + ", ".join(f"{k} {v:.4f}" for k, v in quality[name].items())
        print(line, flush=True)
    best = max((b for b in speed if b != "torch"), key=speed.get, default="torch")
    delta = max(abs(quality[best][k] - quality["torch"][k]) for k in quality["torch"]) if quality else float("nan")
    print(f"encode speedup best/torch: {speed[best] / speed['torch']:.2f}x ({best}), mAP delta {delta:.4f}")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
