"""The spike convolution's PyTorch reference: the same limb split as the Triton kernel, each
limb convolved in float32 by torch and the three results summed, then the epilogue. Tests and
benchmarks compare the Triton kernel against it; backend="torch" (and "auto" off CUDA) runs it.
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from .limbs import split_limbs


def spike_conv2d_reference(spikes: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                           stride=1, padding=0, scale: Optional[Tensor] = None,
                           shift: Optional[Tensor] = None) -> Tensor:
    """float32 [N, K, P, Q] from spikes [N, C, H, W] (0/1 in any dtype) and a float32 weight
    [K, C, R, S]: sum over the limbs of split_limbs(weight) of conv2d(spikes, limb) in
    float32, plus bias, then times scale plus shift (per output channel), each rounded to
    float32 in that order. Arguments are not checked (spike_conv2d checks them)."""
    x = spikes.float()
    out = None
    for limb in split_limbs(weight):
        term = F.conv2d(x, limb.float(), None, stride, padding)
        out = term if out is None else out + term
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    if scale is not None:
        out = out * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)
    return out
