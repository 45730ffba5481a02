"""Process groups for the command-line tools under torchrun."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init_distributed"]


def init_distributed() -> tuple[int, int]:
    """(rank, world size); under torchrun (WORLD_SIZE > 1) the process group is initialised,
    nccl where CUDA is available, gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)
