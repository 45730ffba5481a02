"""The Hamming spike kernel of SNASNet's training-free architecture search, fused.

SNASNet (Kim et al., ECCV 2022) scores an untrained candidate network by how differently its
LIF layers respond to the inputs of one batch. Every LIF output at every timestep, flattened to
binary rows x_i = (out_i > 0) in {0, 1}^N (B rows, N neurons), adds to a [B, B] matrix

    p_i     = n_i / N                                  firing rate, n_i = x_i . 1
    m[i,j]  = p_i (1 - p_j) + (1 - p_i) p_j            chance that a neuron differs between
                                                       independent rows with these rates
    q[i,j]  = m[i,j] N                                 their expected Hamming distance
    H[i,j]  = n_i + n_j - 2 x_i . x_j                  Hamming distance
    K      += N - 0.5 / (q + 1e-3) * H

and the score is log|det(K / count)|, count being the number of LIF outputs added. This is
the authors' code (``model_snn.py``, ``find_best_neuroncell``, the hook
``computing_K_eachtime``): the rate mismatch is multiplied by N before 1e-3 is added, in
float32, in the order rate, product, times N, plus 1e-3, then 0.5 / (...). Each term is
N - 0.5 H / q: N minus half the observed distance over the expected one, so its informative
part lies in the low bits of a number of size N.

This package holds one module per job, each read top to bottom:

- ``spikes``: the accepted spike dtypes, the input check and the ``[B, N]`` row view;
- ``triton_kernels``: the ``@triton.jit`` kernels, then their launchers;
- ``torch_kernels``: the torch implementation of the same kernel (the CPU path);
- ``ops``: the ``torch.library`` custom op that accumulates into K in place, and the dispatch
  between the implementations;
- ``reference``: the reference written with the authors' own float32 operations;

and here the public API: ``pairwise_hamming``, ``hamming_kernel`` and ``HammingKernelScorer``.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from torch import Tensor

from .._triton import BACKENDS, check_backend, triton
from .ops import _IMPLEMENTATIONS, _accumulate_op
from .reference import hamming_kernel_reference, pairwise_hamming_reference
from .spikes import SPIKE_DTYPES, _check_spikes  # noqa: F401 (SPIKE_DTYPES re-exported)

__all__ = [
    "BACKENDS",
    "HammingKernelScorer",
    "hamming_kernel",
    "hamming_kernel_reference",
    "pairwise_hamming",
    "pairwise_hamming_reference",
]


def _implementation(backend: str, spikes: Tensor) -> str:
    """The implementation behind a backend: Triton for CUDA tensors, torch ops elsewhere."""
    if backend == "auto":
        return "triton" if spikes.is_cuda and triton is not None else "torch"
    return backend


def pairwise_hamming(spikes: Tensor, backend: str = "auto") -> Tensor:
    """H [B, B] int64 of spikes [B, ...] (a neuron spikes where spikes > 0), computed exactly."""
    check_backend(backend)
    _check_spikes(spikes)
    _, hamming = _IMPLEMENTATIONS[_implementation(backend, spikes)]
    return hamming(spikes)


def hamming_kernel(spikes: Tensor, backend: str = "auto") -> Tensor:
    """The term [B, B] float64 one LIF output spikes [B, ...] adds to K (float32 values)."""
    check_backend(backend)
    _check_spikes(spikes)
    kernel = torch.zeros((spikes.shape[0],) * 2, dtype=torch.float64, device=spikes.device)
    _accumulate_op(kernel, spikes, _implementation(backend, spikes))
    return kernel


class HammingKernelScorer:
    """SNASNet's training-free score of a candidate network: K accumulated on the device.

    Call ``add`` with every LIF output at every timestep of one batch (or register ``hook`` as
    a forward hook on the LIF modules), then ``score()``. K is allocated at the first ``add``,
    on the device of the spikes, with their batch size.

    backend: "triton" (the fused kernel), "torch" (the same arithmetic with torch ops), or
    "auto" (Triton for CUDA tensors, torch otherwise).
    """

    def __init__(self, backend: str = "auto"):
        check_backend(backend)
        self.backend = backend
        self.kernel: Optional[Tensor] = None  # [B, B] float64, sum of the added terms
        self.count = 0

    def reset(self):
        self.kernel, self.count = None, 0

    def add(self, spikes: Tensor, binary: bool = False):
        """Add the term of one LIF output spikes [B, ...] to K, in place, and count it.

        binary=True promises that spikes hold only 0 and 1 (as snnzoo's LIF outputs do): the
        CPU path then converts them to int8 as they are, without thresholding them first."""
        _check_spikes(spikes)
        batch_size = spikes.shape[0]
        kernel = self.kernel
        if kernel is None:  # kept only once the term is added: a failed add leaves no K
            kernel = torch.zeros((batch_size, batch_size), dtype=torch.float64,
                                 device=spikes.device)
        elif self.kernel.shape[0] != batch_size:
            raise ValueError(
                f"spikes of shape {tuple(spikes.shape)} have batch size {batch_size}, but K was "
                f"started with batch size {self.kernel.shape[0]}; feed every layer the same "
                f"batch, or call reset() before scoring a new one")
        elif self.kernel.device != spikes.device:
            raise ValueError(f"spikes are on {spikes.device} but K is on {self.kernel.device}; "
                             f"call reset() before moving to another device")
        _accumulate_op(kernel, spikes, _implementation(self.backend, spikes), binary)
        self.kernel = kernel
        self.count += 1

    def hook(self, module, inputs, output):
        """A forward hook for per-timestep neurons, whose output is one step [B, ...] (the
        authors' network): ``neuron.register_forward_hook(scorer.hook)`` adds every output.
        For snnzoo's LIF, whose multi-step output is [T, B, ...], use spike_hook."""
        self.add(output[0] if isinstance(output, tuple) else output)

    def spike_hook(self, lif, spikes, multistep: bool):
        """A spike hook for snnzoo's LIF, ``lif.register_spike_hook(scorer.spike_hook)``: adds
        each timestep of a multi-step output [T, B, ...] and each single step [B, ...]; an
        snnzoo LIF fires only 0 and 1, so spikes are added as they are (binary)."""
        for spikes_t in (spikes if multistep else (spikes,)):
            self.add(spikes_t, binary=True)

    def score(self) -> float:
        """log|det(K / count)| in float64 (the authors' sign-blind slogdet). -inf, with a
        warning, when nothing was added or K is singular or not finite."""
        if self.kernel is None:
            warnings.warn("no LIF output was added to the spike kernel; the score is -inf",
                          RuntimeWarning, stacklevel=2)
            return -math.inf
        mean_kernel = self.kernel / self.count
        if not bool(torch.isfinite(mean_kernel).all()):
            warnings.warn("the spike kernel K has non-finite entries; the score is -inf",
                          RuntimeWarning, stacklevel=2)
            return -math.inf
        distinct = torch.unique(mean_kernel, dim=0).shape[0]
        if distinct < mean_kernel.shape[0]:  # images that spiked alike in every output
            warnings.warn(f"the spike kernel K ({self.kernel.shape[0]} x {self.kernel.shape[0]}, "
                          f"{self.count} outputs added) has {mean_kernel.shape[0] - distinct} "
                          f"repeated row(s): some images spiked identically in every output, so "
                          f"K is singular; the score is -inf", RuntimeWarning, stacklevel=2)
            return -math.inf
        sign, log_abs_det = torch.linalg.slogdet(mean_kernel)
        if sign.item() == 0 or not math.isfinite(log_abs_det.item()):
            warnings.warn(f"the spike kernel K ({self.kernel.shape[0]} x {self.kernel.shape[0]}, "
                          f"{self.count} outputs added) is singular; the score is -inf",
                          RuntimeWarning, stacklevel=2)
            return -math.inf
        return log_abs_det.item()
