"""Which process this is under DDP (torchrun), read one way everywhere."""

from __future__ import annotations

import os


def _initialised():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def process_rank() -> int:
    """This process's global rank: 0 without DDP, and in the process that writes shared files."""
    dist = _initialised()
    return dist.get_rank() if dist is not None else int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """The number of training processes: 1 without DDP."""
    dist = _initialised()
    return dist.get_world_size() if dist is not None else int(os.environ.get("WORLD_SIZE", "1"))
