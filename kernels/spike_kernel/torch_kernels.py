"""The Hamming spike kernel's torch implementation: the CPU path, and backend="torch".

The kernel's algorithm with torch ops: one Gram matrix x x^T instead of the authors' two
products with 1 - x, then the same float32 epilogue. On the CPU the Gram matrix is exact
integer arithmetic, as in the Triton kernel: blocks of the neurons as int8, multiplied with
int32 accumulation (torch._int_mm, which VNNI speeds up; benchmarks/scorer.py records the
gain). Elsewhere (the torch backend on CUDA) it is a float32 product, exact below
2^24 neurons.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .spikes import RATE_EPSILON, _as_rows

GRAM_BLOCK_NEURONS = 16384  # neurons per int8 block: B x 16 KiB at a time


@functools.lru_cache(maxsize=None)
def _cpu_int8_products() -> bool:
    """Whether this torch multiplies int8 matrices on the CPU (torch._int_mm)."""
    try:
        one = torch.ones((1, 1), dtype=torch.int8)
        return int(torch._int_mm(one, one.t())) == 1
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def _gram_torch(rows: Tensor, binary: bool) -> Tensor:
    """G = x x^T [B, B] int32 of the binary rows x = (rows > 0) [B, N], exact. binary: rows
    hold only 0 and 1, so they are converted as they are (no thresholding)."""
    if rows.device.type != "cpu" or not _cpu_int8_products():
        x = rows if binary and rows.dtype == torch.float32 else (rows > 0).to(torch.float32)
        return (x @ x.t()).to(torch.int32)
    batch_size, neuron_count = rows.shape
    gram = torch.zeros((batch_size, batch_size), dtype=torch.int32)
    for start in range(0, neuron_count, GRAM_BLOCK_NEURONS):
        block = rows[:, start:start + GRAM_BLOCK_NEURONS]
        x = block.to(torch.int8) if binary else (block > 0).to(torch.int8)
        if x.shape[1] < 8:  # torch._int_mm on the CPU misreads [B, 1] operands: zero columns
            x = torch.nn.functional.pad(x, (0, 8 - x.shape[1]))
        gram += torch._int_mm(x, x.t())
    return gram


def _counts_torch(rows: Tensor, binary: bool = False) -> tuple[Tensor, Tensor]:
    """(row counts n [B], Hamming distances H [B, B]) of rows [B, N], int32 and exact:
    n_i = G[i, i] and H = n_i + n_j - 2 G."""
    gram = _gram_torch(rows, binary)
    counts = gram.diagonal()
    return counts, counts[:, None] + counts[None, :] - 2 * gram


def _accumulate_torch(kernel: Tensor, spikes: Tensor, binary: bool = False):
    rows = _as_rows(spikes)
    counts, hamming = (values.to(torch.float32) for values in _counts_torch(rows, binary))
    neuron_count = hamming.new_full((), float(rows.shape[1]))
    rate = counts / neuron_count
    rate_product = rate[:, None] * (1 - rate[None, :]) + (1 - rate[:, None]) * rate[None, :]
    expected_distance = rate_product * neuron_count
    rescale = torch.div(torch.full_like(rate_product, 0.5), expected_distance + RATE_EPSILON)
    kernel += neuron_count - rescale * hamming


def _pairwise_hamming_torch(spikes: Tensor) -> Tensor:
    return _counts_torch(_as_rows(spikes))[1].to(torch.int64)
