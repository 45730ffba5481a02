"""Process groups for the command-line tools under torchrun."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init_distributed", "process_device"]


def init_distributed() -> tuple[int, int]:
    """(rank, world size); under torchrun (WORLD_SIZE > 1) the process group is initialised,
    nccl where CUDA is available, gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def process_device(name: str, world: int) -> torch.device:
    """The device this process computes on: `name`, except that under torchrun (world > 1) a
    CUDA device is the GPU of the process's LOCAL_RANK; a CUDA device is made the current one."""
    device = torch.device(name)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if device.type == "cuda":
        torch.cuda.set_device(device.index or 0)
    return device
