"""What every path of the Hamming spike kernel shares: the spike dtypes it accepts, the check
of a batch of spikes, its ``[B, N]`` row view, and the authors' guard against q = 0."""

from __future__ import annotations

import torch
from torch import Tensor

from .._layout import flatten_in_memory_order

SPIKE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.bool,
                torch.uint8)
RATE_EPSILON = 1e-3  # the authors' guard against q = 0 (rows that cannot differ)


def _check_spikes(spikes):
    if not isinstance(spikes, Tensor):
        raise TypeError(f"expected spikes as a torch.Tensor, got {type(spikes).__name__}")
    if spikes.dim() < 2:
        raise ValueError(
            f"spikes must be a batch [B, ...] with at least 2 dimensions, got shape "
            f"{tuple(spikes.shape)}; for a single row of neurons use spikes.unsqueeze(0)")
    if spikes.dtype not in SPIKE_DTYPES:
        raise ValueError(f"spikes dtype {spikes.dtype} is unsupported; use one of "
                         f"{[str(dtype) for dtype in SPIKE_DTYPES]}")
    if spikes.numel() == 0:
        raise ValueError(f"spikes of shape {tuple(spikes.shape)} are empty; K needs at least "
                         f"one row and one neuron")


def _as_rows(spikes: Tensor) -> Tensor:
    """[B, N] view of spikes [B, ...]; bool is viewed as uint8. The neuron order does not
    matter, so the trailing dimensions are first sorted by stride: a channels-last or
    transposed layout flattens without a copy. Only layouts that cannot are copied, unconverted."""
    if spikes.dtype == torch.bool:
        spikes = spikes.view(torch.uint8)
    return flatten_in_memory_order(spikes)[0]
