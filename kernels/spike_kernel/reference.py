"""The Hamming spike kernel's PyTorch reference: the authors' float32 torch operations in their
order (``computing_K_eachtime``), and the Hamming distances they compute. Tests and benchmarks
compare the other paths against it."""

from __future__ import annotations

import torch
from torch import Tensor

from .spikes import RATE_EPSILON


def pairwise_hamming_reference(spikes: Tensor) -> Tensor:
    """H [B, B] int64: the number of neurons in which rows i and j of (spikes > 0) differ."""
    x = (spikes.reshape(spikes.shape[0], -1) > 0).double()  # exact; CUDA has no int64 matmul
    return (x @ (1 - x.t()) + (1 - x) @ x.t()).to(torch.int64)


def hamming_kernel_reference(spikes: Tensor) -> Tensor:
    """The term [B, B] float32 one LIF output spikes [B, ...] adds to K, computed with the
    authors' float32 torch operations in their order (``computing_K_eachtime``)."""
    x = (spikes.reshape(spikes.shape[0], -1) > 0).float()
    batch_size, neuron_count = x.shape
    full_matrix = torch.ones((batch_size, batch_size), device=x.device) * neuron_count
    rate = (x.sum(1) / neuron_count).unsqueeze(1)
    expected_distance = ((rate @ (1 - rate.t())) + ((1 - rate) @ rate.t())) * neuron_count
    rescale = torch.div(0.5 * torch.ones((batch_size, batch_size), device=x.device),
                        expected_distance + RATE_EPSILON)
    hamming = x @ (1 - x.t()) + (1 - x) @ x.t()
    return full_matrix - rescale * hamming
