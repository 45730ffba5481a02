"""What every path of the spike convolution shares: the limb split of the weights, the spike
dtypes it accepts, the check of its arguments and the folding of [T, B, ...] into [N, ...]."""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import Tensor

SPIKE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.bool,
                torch.uint8)


def split_limbs(weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(w1, w2, w3), three bfloat16 tensors of weight's shape whose sum is the float32 weight:

        w1 = bf16(w),  w2 = bf16(w - w1),  w3 = bf16(w - w1 - w2)

    (bf16() rounds to nearest even; each subtraction is exact in float32). A float32 has a
    24-bit significand and a bfloat16 an 8-bit one, so each limb takes the next 8 (or 9, the
    rounding's sign giving one bit) significant bits, and the third leaves no residual:
    w1 + w2 + w3 == w exactly (in float64, and also in float32 summed in this order) for
    every w with 2^-110 <= |w| < 3.39e38. Below 2^-110, w3 may be a bfloat16 subnormal
    (spacing 2^-133): an absolute error of at most 2^-134. From 3.3961e38 (bfloat16's largest
    finite number plus half a unit) w1 rounds to infinity and the limbs are inf and nan."""
    if not isinstance(weight, Tensor) or weight.dtype != torch.float32:
        raise ValueError(f"split_limbs needs a float32 tensor, got "
                         f"{getattr(weight, 'dtype', type(weight).__name__)}")
    first = weight.to(torch.bfloat16)
    residual = weight - first.float()
    second = residual.to(torch.bfloat16)
    third = (residual - second.float()).to(torch.bfloat16)
    return first, second, third


class ConvGeometry(NamedTuple):
    """A checked call: spikes folded to [N, C, H, W], the leading shape to unfold the output
    to ([N] or [T, B]), and the convolution's integer pairs."""
    spikes: Tensor
    leading: tuple[int, ...]
    stride: tuple[int, int]
    padding: tuple[int, int]


def _pair(value, name: str) -> tuple[int, int]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name}={value!r} must be an int or a pair of ints")
    return pair


def check_conv(spikes: Tensor, weight: Tensor, bias: Optional[Tensor], stride, padding,
               dilation, groups, scale: Optional[Tensor], shift: Optional[Tensor]) -> ConvGeometry:
    """Check a call of spike_conv2d; raise with what was wrong and what to do instead."""
    if not isinstance(spikes, Tensor) or not isinstance(weight, Tensor):
        raise TypeError(f"spikes and weight must be tensors, got {type(spikes).__name__} and "
                        f"{type(weight).__name__}")
    if spikes.dtype not in SPIKE_DTYPES:
        raise ValueError(f"spikes dtype {spikes.dtype} is unsupported; use one of "
                         f"{[str(dtype) for dtype in SPIKE_DTYPES]} holding only 0 and 1")
    if spikes.dim() not in (4, 5):
        raise ValueError(f"spikes must be [N, C, H, W] or [T, B, C, H, W], got shape "
                         f"{tuple(spikes.shape)}")
    if weight.dtype != torch.float32 or weight.dim() != 4:
        raise ValueError(f"weight must be float32 [K, C, R, S], got {weight.dtype} of shape "
                         f"{tuple(weight.shape)}")
    if groups != 1:
        raise ValueError(f"groups={groups!r} is unsupported: the spike convolution is dense "
                         f"(groups=1); use torch.nn.functional.conv2d")
    if _pair(dilation, "dilation") != (1, 1):
        raise ValueError(f"dilation={dilation!r} is unsupported (only 1); use "
                         f"torch.nn.functional.conv2d")
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    if min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"stride={stride} must be positive and padding={padding} not negative")
    channels = spikes.shape[-3]
    if weight.shape[1] != channels:
        raise ValueError(f"weight {tuple(weight.shape)} expects {weight.shape[1]} input channels, "
                         f"spikes {tuple(spikes.shape)} have {channels}")
    out_channels = weight.shape[0]
    if (scale is None) != (shift is None):
        raise ValueError("scale and shift come together (an eval BatchNorm's linear terms, see "
                         "batch_norm_scale_shift); pass both or neither")
    for name, vector in (("bias", bias), ("scale", scale), ("shift", shift)):
        if vector is not None and (vector.dtype != torch.float32
                                   or tuple(vector.shape) != (out_channels,)):
            raise ValueError(f"{name} must be float32 [{out_channels}], got "
                             f"{vector.dtype} of shape {tuple(vector.shape)}")
    for name, tensor in (("weight", weight), ("bias", bias), ("scale", scale), ("shift", shift)):
        if tensor is not None and tensor.device != spikes.device:
            raise ValueError(f"{name} is on {tensor.device} but spikes are on {spikes.device}")
    if torch.is_grad_enabled() and any(
            tensor is not None and tensor.requires_grad
            for tensor in (spikes, weight, bias, scale, shift)):
        raise RuntimeError(
            "spike_conv2d is for inference and has no backward; call it under torch.no_grad() "
            "or torch.inference_mode(), or train with torch.nn.functional.conv2d")
    height, width = spikes.shape[-2] + 2 * padding[0], spikes.shape[-1] + 2 * padding[1]
    if height < weight.shape[2] or width < weight.shape[3]:
        raise ValueError(f"spikes {tuple(spikes.shape)} padded by {padding} are smaller than "
                         f"the kernel {tuple(weight.shape[2:])}")
    leading = tuple(spikes.shape[:-3])
    folded = spikes.flatten(0, 1) if spikes.dim() == 5 else spikes
    if folded.numel() == 0:
        raise ValueError(f"spikes of shape {tuple(spikes.shape)} are empty")
    return ConvGeometry(folded, leading, stride, padding)


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1
