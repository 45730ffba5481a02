"""The convolution of spikes, exact to float32 on bfloat16 tensor cores.

Every convolution of SNASNet whose input is a LIF's output (a cell edge's conv, the
transition's conv; not the stem, which sees pixels) multiplies weights by 0 and 1. Spikes are
then exact in bfloat16, and a float32 weight is the exact sum of three bfloat16 limbs
(``split_limbs``):

    w1 = bf16(w),  w2 = bf16(w - w1),  w3 = bf16(w - w1 - w2),   w1 + w2 + w3 = w

Each spike-limb product is exact, so three bfloat16 tensor-core products (``tl.dot``) with
float32 accumulation give the float32 convolution up to the order of the summation: the
result differs from float32 ``F.conv2d`` as two float32 summation orders differ (a few units
in the last place of the largest partial sum), not as bfloat16 autocast does (2^-9 relative
per weight). An eval BatchNorm after the convolution is fused as y = conv * scale + shift per
output channel (``batch_norm_scale_shift``, ``spike_conv_bn``).

For inference only: there is no backward, and a call that autograd would record is refused.

This package holds one module per job, each read top to bottom:

- ``limbs``: the limb split, the accepted spike dtypes, the argument check;
- ``triton_kernels``: the ``@triton.jit`` implicit-GEMM kernel, then its launcher and block sizes;
- ``reference``: the same limb split with torch's float32 convolution (the CPU path);

and here the public API: ``spike_conv2d``, ``spike_conv_bn``, ``batch_norm_scale_shift`` and
``split_limbs``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .._triton import BACKENDS, check_backend, triton
from .limbs import SPIKE_DTYPES, check_conv, split_limbs
from .reference import spike_conv2d_reference
from .triton_kernels import spike_conv2d_triton

__all__ = ["BACKENDS", "SPIKE_DTYPES", "batch_norm_scale_shift", "spike_conv2d",
           "spike_conv2d_reference", "spike_conv_bn", "split_limbs"]

_IMPLEMENTATIONS = {"triton": spike_conv2d_triton, "torch": spike_conv2d_reference}


def _implementation(backend: str, spikes: Tensor) -> str:
    """Triton for CUDA tensors, the torch reference elsewhere (backend "auto")."""
    if backend == "auto":
        return "triton" if spikes.is_cuda and triton is not None else "torch"
    return backend


def spike_conv2d(spikes: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride=1,
                 padding=0, dilation=1, groups=1, *, scale: Optional[Tensor] = None,
                 shift: Optional[Tensor] = None, backend: str = "auto") -> Tensor:
    """float32 conv2d of spikes, then the optional epilogue: (conv + bias) * scale + shift.

    spikes: [N, C, H, W] or [T, B, C, H, W] (folded to N = T B and unfolded again), float32,
        float16, bfloat16, float64, bool or uint8, holding only 0 and 1 (other values are
        rounded to bfloat16 by the Triton kernel: the result is then not float32's); NCHW or
        channels_last, any strides.
    weight: float32 [K, C, R, S]; bias, scale, shift: float32 [K] or None (scale and shift
        together). Any kernel size, stride and padding; dilation and groups only 1.
    backend: "triton" (the kernel; on the CPU only under TRITON_INTERPRET=1), "torch" (the
        reference: the same limbs through torch's float32 conv) or "auto" (Triton for CUDA
        tensors, the reference elsewhere).

    Returns float32 [N, K, P, Q] (or [T, B, K, P, Q]) in spikes' memory format. Inference only:
    with grad mode on and an input that requires grad, it raises; use F.conv2d for training.
    """
    check_backend(backend)
    spikes_nchw, leading, stride, padding = check_conv(spikes, weight, bias, stride, padding,
                                                       dilation, groups, scale, shift)
    out = _IMPLEMENTATIONS[_implementation(backend, spikes)](
        spikes_nchw, weight, bias, stride, padding, scale, shift)
    return out.view(*leading, *out.shape[1:])


def batch_norm_scale_shift(bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """(scale, shift), float32 [C], of an eval-mode BatchNorm2d: bn(x) = x * scale + shift.

    Each step in float32, in this order: invstd = 1 / sqrt(running_var + eps),
    scale = invstd * weight, shift = bias - running_mean * scale (weight 1 and bias 0 without
    affine). The Triton epilogue computes x * scale + shift with one fused multiply-add; torch's
    CPU and cuDNN kernels order these operations their own ways, so the results agree to within
    a few units of 2^-24 of |x scale| + |shift| (tested against the CPU kernel), not bit for bit.
    """
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"expected an nn.BatchNorm2d, got {type(bn).__name__}")
    if bn.training or bn.running_mean is None:
        raise ValueError(f"{bn!r} must be in eval mode with running statistics "
                         f"(track_running_stats=True), so that it is a fixed per-channel "
                         f"scale and shift; call .eval()")
    with torch.no_grad():
        mean, var = bn.running_mean.float(), bn.running_var.float()
        invstd = 1 / torch.sqrt(var + bn.eps)
        scale = invstd * bn.weight.float() if bn.affine else invstd
        shift = (bn.bias.float() if bn.affine else torch.zeros_like(mean)) - mean * scale
    return scale, shift


def spike_conv_bn(spikes: Tensor, conv: nn.Conv2d, bn: Optional[nn.BatchNorm2d] = None, *,
                  backend: str = "auto") -> Tensor:
    """bn(conv(spikes)) by spike_conv2d, conv's bias and bn's eval statistics fused into the
    epilogue (bn None: conv(spikes) alone). conv must be a dense float32 Conv2d with zero
    padding_mode and numeric padding; spikes as for spike_conv2d."""
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"expected an nn.Conv2d, got {type(conv).__name__}")
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"{conv!r}: padding={conv.padding!r} with padding_mode="
                         f"{conv.padding_mode!r} is unsupported; use numeric zero padding")
    scale, shift = batch_norm_scale_shift(bn) if bn is not None else (None, None)
    with torch.no_grad():
        return spike_conv2d(spikes, conv.weight, conv.bias, conv.stride, conv.padding,
                            conv.dilation, conv.groups, scale=scale, shift=shift,
                            backend=backend)
