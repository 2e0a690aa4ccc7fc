"""Which arithmetic a training run uses: `training.bf16` resolved against the device.

`auto` (the default): bf16 mixed precision on a GPU that has it (Ampere and later), fp16
mixed precision (with the trainer's loss scaling) on an older GPU, fp32 on a CPU (torch's
bf16 autocast is several times slower than fp32 on CPUs without AVX512-BF16/AMX, measured
here). TF32 matmuls are allowed for the fp32 parts on GPUs that have them. Attention is
torch's fused scaled-dot-product kernel (transformers' default `sdpa` for BERT/XLM-R).
"""

from __future__ import annotations

from typing import Literal

import torch


def mixed_precision(bf16: Literal["auto"] | bool) -> dict[str, bool | None]:
    """The trainer arguments `bf16`, `fp16` and `tf32` for the `training.bf16` setting (and
    `use_cpu`, without which the trainer refuses bf16 on a CPU)."""
    cuda = torch.cuda.is_available()
    tf32 = True if cuda and torch.cuda.get_device_capability()[0] >= 8 else None  # None: leave torch's default
    if bf16 is True and not cuda:
        return {"bf16": True, "fp16": False, "tf32": None, "use_cpu": True}
    if isinstance(bf16, bool):
        return {"bf16": bf16, "fp16": False, "tf32": tf32}
    if not cuda:
        return {"bf16": False, "fp16": False, "tf32": None}
    supported = torch.cuda.is_bf16_supported()
    return {"bf16": supported, "fp16": not supported, "tf32": tf32}


def precision_name(settings: dict[str, bool | None]) -> str:
    """ "bf16", "fp16" or "fp32", with "+tf32" where TF32 matmuls are on: what run.json records."""
    name = "bf16" if settings["bf16"] else "fp16" if settings["fp16"] else "fp32"
    return name + ("+tf32" if settings["tf32"] else "")
