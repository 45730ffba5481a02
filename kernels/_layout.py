"""Flattening [D0, ...] tensors to [D0, N] in the order their elements lie in memory.

Both kernel families treat dimension 0 (time for the neuron, the batch for the scorer) apart
and the trailing dimensions as one row of N elements whose order does not matter to them. In
memory order that row is a view for every dense layout (channels_last included), so that no
layout is copied into another and results can be handed back in the caller's layout.
"""

from __future__ import annotations

from torch import Tensor


def flatten_in_memory_order(x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    """(x as [x.shape[0], N] with the trailing dimensions sorted by decreasing stride, and the
    order of those dimensions). A view for a dense layout, a copy otherwise."""
    order = tuple(sorted(range(1, x.dim()), key=lambda dim: -x.stride(dim)))
    return x.permute(0, *order).reshape(x.shape[0], -1), order


def restore_order(flat: Tensor, shape, order: tuple[int, ...]) -> Tensor:
    """The inverse of flatten_in_memory_order: [D0, N] back to shape, in the layout x had."""
    permuted = flat.view(flat.shape[0], *(shape[dim] for dim in order))
    return permuted.permute(0, *(1 + order.index(dim) for dim in range(1, len(shape))))
