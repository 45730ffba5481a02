"""Triton kernels of snnzoo, installed as ``snnzoo.kernels``.

Each subpackage holds one kernel family (``lif``, the neuron; ``spike_kernel``, SNASNet's
Hamming scorer; ``spike_conv``, the float32-exact convolution of spikes on bfloat16 tensor
cores), one module per job: the ``@triton.jit`` kernels with their launchers, the
torch implementation of the same kernels, the ``torch.library`` custom ops and the PyTorch
reference the tests compare against; its ``__init__`` holds the public API. The private
modules hold what both families share: the optional Triton import (``_triton``), the
``[T, N]`` flattening (``_layout``) and torch.compile for the CPU paths (``_compiled``).
"""

from ._compiled import avg_pool2d
from .lif import (BACKENDS, SURROGATES, LIFParams, lif_multistep, lif_multistep_reference,
                  lif_step, lif_step_reference, triton_available)
from .spike_conv import (batch_norm_scale_shift, spike_conv2d, spike_conv2d_reference,
                         spike_conv_bn, split_limbs)
from .spike_kernel import (HammingKernelScorer, hamming_kernel, hamming_kernel_reference,
                           pairwise_hamming, pairwise_hamming_reference)

__all__ = ["avg_pool2d", "BACKENDS", "SURROGATES", "LIFParams", "lif_multistep", "lif_multistep_reference",
           "lif_step", "lif_step_reference", "triton_available", "HammingKernelScorer",
           "hamming_kernel", "hamming_kernel_reference", "pairwise_hamming",
           "pairwise_hamming_reference", "batch_norm_scale_shift", "spike_conv2d",
           "spike_conv2d_reference", "spike_conv_bn", "split_limbs"]
