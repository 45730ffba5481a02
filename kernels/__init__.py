"""Triton kernels of snnzoo, installed as ``snnzoo.kernels``.

Each module holds one kernel family: its ``@triton.jit`` kernels, their launchers, the
``torch.library`` custom ops and the PyTorch reference the tests compare against.
"""

from ._compiled import avg_pool2d
from .lif import (BACKENDS, SURROGATES, LIFParams, lif_multistep, lif_multistep_reference,
                  lif_step, lif_step_reference, triton_available)
from .spike_kernel import (HammingKernelScorer, hamming_kernel, hamming_kernel_reference,
                           pairwise_hamming, pairwise_hamming_reference)

__all__ = ["avg_pool2d", "BACKENDS", "SURROGATES", "LIFParams", "lif_multistep", "lif_multistep_reference",
           "lif_step", "lif_step_reference", "triton_available", "HammingKernelScorer",
           "hamming_kernel", "hamming_kernel_reference", "pairwise_hamming",
           "pairwise_hamming_reference"]
