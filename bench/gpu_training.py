"""Benchmark: training throughput and model FLOP utilisation through hbnb's own `train`.

Each configuration is one hbnb training run (hybrid batches, XQuAD, paragraph positives as
the paper's main runs) in a fresh process: plain MNRL at batch 64 and 256, cached MNRL
(GradCache, mini-batches of 64) at batch 1,024; fp32 and bf16. The batch log's step times
give the steady state after `--warmup` steps: pairs/s and tokens/s (the tokens the encoder
saw, queries and passages, padding not counted).

MFU = 6 x non-embedding parameters x tokens/s / peak FLOP/s (the usual estimate of training
FLOPs, forward + backward; attention's sequence-length term and cached MNRL's second forward
pass are not counted, so MFU is a lower bound for cached runs). The peak is the GPU's dense
bf16/fp32 figure from its datasheet (H100/H200 SXM: 989 / 67 TFLOP/s; A100: 312 / 19.5;
`--peak-tflops` to give another), and on CPU the fp32 matmul rate measured here (2048^3),
so CPU MFU is against what this machine's matmul reaches, not a datasheet.

    .venv/bin/python bench/gpu_training.py               # CUDA: me5-small, the real settings
    .venv/bin/python bench/gpu_training.py --tiny        # CPU: me5-small:layers=2, batches / 8, few steps

Last line: `training: <pairs/s> pairs/s, MFU <x>% (<device>, <precision>, batch <b>)` for
the fastest configuration.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

PEAK_TFLOPS = {  # dense, from the datasheets
    "H100": {"bf16": 989.0, "fp32": 67.0},
    "H200": {"bf16": 989.0, "fp32": 67.0},
    "A100": {"bf16": 312.0, "fp32": 19.5},
}


def _cpu_peak_tflops() -> float:
    a = torch.randn(2048, 2048)
    a @ a
    start = time.perf_counter()
    for _ in range(5):
        a @ a
    return 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e12


def _peak(precision: str, given: float | None) -> tuple[float, str]:
    if given:
        return given, "given"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for key, peaks in PEAK_TFLOPS.items():
            if key in name:
                return peaks[precision], f"{key} datasheet"
        raise SystemExit(f"no datasheet peak for {name}: pass --peak-tflops")
    return _cpu_peak_tflops(), "measured fp32 matmul"


def _one(folder: Path, model: str, batch: int, loss: str, mini: int, precision: str, steps: int) -> dict:
    """One training run in this process; its steady-state figures from the batch log."""
    from hbnb.params import TrainParams
    from hbnb.training import train

    options = {"loss": "cached-mnrl", "mini_batch_size": mini} if loss == "cached-mnrl" else {}
    params = TrainParams.model_validate(
        {
            "model": model,
            "data": "xquad",
            "output_dir": str(folder / "run"),
            "max_steps": steps,
            "save_steps": steps,
            "bf16": precision == "bf16",
            "batching": {"strategy": "hybrid", "batch_size": batch, "positive": "sentence+paragraph"},
            **options,
        }
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    train(params)
    rows = [json.loads(line) for line in (folder / "run" / "batches.jsonl").read_text().splitlines()]
    run = json.loads((folder / "run" / "run.json").read_text())
    peak = torch.cuda.max_memory_allocated() / 1024**3 if torch.cuda.is_available() else _vm_hwm_gb()
    return {
        "rows": [(r["step"], r["time"], r["size"], r.get("tokens", 0)) for r in rows],
        "non_embedding": run["parameters"]["non_embedding"],
        "peak_gb": peak,
    }


def _vm_hwm_gb() -> float:
    for line in open("/proc/self/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU-sized: me5-small:layers=2, batches 8/32/128")
    parser.add_argument("--steps", type=int, help="steps per run (default 30; --tiny 6)")
    parser.add_argument("--warmup", type=int, help="steps not timed (default 5; --tiny 2)")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--peak-tflops", type=float)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec = json.loads(args.one)
        print(json.dumps(_one(Path(spec.pop("folder")), **spec)))
        return
    tiny = args.tiny or not torch.cuda.is_available()
    model = "me5-small:layers=2" if tiny else "me5-small"
    steps, warmup = args.steps or (6 if tiny else 30), args.warmup or (2 if tiny else 5)
    scale = 8 if tiny else 1
    configs = [(64 // scale, "mnrl", 0), (256 // scale, "mnrl", 0), (1024 // scale, "cached-mnrl", 64 // scale)]
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    best: tuple[float, str] | None = None
    for precision in args.precisions:
        peak, source = _peak(precision, args.peak_tflops)
        print(f"{device}, {precision}: peak {peak:.2f} TFLOP/s ({source})", flush=True)
        for batch, loss, mini in configs:
            with tempfile.TemporaryDirectory(prefix="hbnb-bench-train-") as tmp:
                spec = {"folder": tmp, "model": model, "batch": batch, "loss": loss, "mini": mini}
                spec.update(precision=precision, steps=steps)
                out = subprocess.run(
                    [sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True
                )
                if out.returncode != 0:
                    print(f"  batch {batch} {loss}: failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
            timed = [row for row in r["rows"] if row[0] > warmup]
            start = max(row[1] for row in r["rows"] if row[0] == warmup)
            seconds = max(row[1] for row in timed) - start
            pairs, tokens = sum(row[2] for row in timed) / seconds, sum(row[3] for row in timed) / seconds
            mfu = 6 * r["non_embedding"] * tokens / (peak * 1e12)
            line = (
                f"training: {pairs:.1f} pairs/s, MFU {100 * mfu:.2f}% ({device}, {precision}, batch {batch}"
                f"{', cached, mini-batch ' + str(mini) if mini else ''})"
            )
            print(f"  {line}; {tokens:,.0f} tokens/s, peak memory {r['peak_gb']:.2f} GB", flush=True)
            if best is None or pairs > best[0]:
                best = (pairs, line)
    if best is not None:
        print(best[1])


if __name__ == "__main__":
    main()
