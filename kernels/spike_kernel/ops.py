"""The Hamming spike kernel as a ``torch.library`` custom op that accumulates into K in place,
and ``_IMPLEMENTATIONS``, the one dispatch table between the Triton kernels and their torch
implementation."""

from __future__ import annotations

import torch
from torch import Tensor

from .torch_kernels import _accumulate_torch, _pairwise_hamming_torch
from .triton_kernels import _accumulate_triton, _pairwise_hamming_triton


_IMPLEMENTATIONS = {
    "triton": (_accumulate_triton, _pairwise_hamming_triton),
    "torch": (_accumulate_torch, _pairwise_hamming_torch),
}


@torch.library.custom_op("snnzoo::hamming_kernel_accumulate", mutates_args=("kernel",))
def _accumulate_op(kernel: Tensor, spikes: Tensor, implementation: str,
                   binary: bool = False) -> None:
    """kernel [B, B] float64 += the term of spikes [B, ...], in place on the device. binary
    promises that spikes hold only 0 and 1."""
    accumulate, _ = _IMPLEMENTATIONS[implementation]
    accumulate(kernel, spikes, binary)


@_accumulate_op.register_fake
def _(kernel, spikes, implementation, binary=False):
    return None
