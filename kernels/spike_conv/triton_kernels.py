"""The spike convolution's Triton kernel and its launcher.

An implicit GEMM: the output [N, K, P, Q] is the product of a virtual [N P Q, R S C] matrix of
spikes (each row the receptive field of one output pixel, gathered from the input as it is
read, zero in the padding) and the [R S C, K] weight matrix, here as three bfloat16 limbs.
Each program computes a [BLOCK_M pixels, BLOCK_K channels] tile of the output, looping over
the R S taps and, within each, over blocks of BLOCK_C input channels: one loop of
R S cdiv(C, BLOCK_C) steps, each three tl.dot of the same spike tile with the three limbs
into one float32 accumulator. The epilogue adds the bias, then applies scale and shift.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
from torch import Tensor

from .._triton import require_triton, tl, triton
from .limbs import output_size, split_limbs

if triton is not None:

    @triton.jit
    def _spike_conv_kernel(spikes_ptr, limbs_ptr, bias_ptr, scale_ptr, shift_ptr, out_ptr,
                           images, channels, height, width, out_channels, out_height, out_width,
                           kernel_height, kernel_width, stride_height, stride_width,
                           padding_height, padding_width,
                           spikes_stride_n, spikes_stride_c, spikes_stride_h, spikes_stride_w,
                           out_stride_n, out_stride_k, out_stride_p, out_stride_q,
                           HAS_BIAS: tl.constexpr, HAS_AFFINE: tl.constexpr,
                           UPCAST: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr,
                           BLOCK_C: tl.constexpr):
        """One [BLOCK_M, BLOCK_K] tile of out = conv2d(spikes, w1 + w2 + w3), then the epilogue.

        spikes_ptr: [N, C, H, W] float32/float16/bfloat16/float64/uint8 holding 0 and 1, any
                    strides (NCHW and channels_last alike)
        limbs_ptr:  [3, R, S, C, K] bfloat16, contiguous: the limbs w1, w2, w3 of the weight
        bias_ptr, scale_ptr, shift_ptr: [K] float32, read when HAS_BIAS / HAS_AFFINE
        out_ptr:    [N, K, P, Q] float32, any strides
        The grid is (cdiv(N P Q, BLOCK_M), cdiv(K, BLOCK_K)); rows of the tile are output
        pixels in (n, p, q) order. UPCAST (the interpreter only, whose tl.dot multiplies
        bfloat16 bit patterns as integers) converts both operands to float32 for an IEEE dot:
        the products are the same, exact either way.
        """
        pixels = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        outs = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
        pixel_in_range = pixels < images * out_height * out_width
        out_in_range = outs < out_channels
        column = pixels % out_width
        row = (pixels // out_width) % out_height
        image = (pixels // (out_width * out_height)).to(tl.int64)
        top = row * stride_height - padding_height
        left = column * stride_width - padding_width
        image_ptrs = spikes_ptr + image * spikes_stride_n                       # [BLOCK_M]
        limb_size = kernel_height * kernel_width * channels * out_channels
        channel_blocks = tl.cdiv(channels, BLOCK_C)
        accumulator = tl.zeros([BLOCK_M, BLOCK_K], dtype=tl.float32)
        for step in range(0, kernel_height * kernel_width * channel_blocks):
            tap = step // channel_blocks
            first_channel = (step % channel_blocks) * BLOCK_C
            tap_row = tap // kernel_width
            tap_column = tap % kernel_width
            y = top + tap_row
            x = left + tap_column
            inside = pixel_in_range & (y >= 0) & (y < height) & (x >= 0) & (x < width)
            pixel_ptrs = (image_ptrs + y.to(tl.int64) * spikes_stride_h
                          + x.to(tl.int64) * spikes_stride_w)
            input_channels = first_channel + tl.arange(0, BLOCK_C)
            channel_in_range = input_channels < channels
            spikes = tl.load(pixel_ptrs[:, None]
                             + input_channels[None, :].to(tl.int64) * spikes_stride_c,
                             mask=inside[:, None] & channel_in_range[None, :], other=0)
            weight_rows = tap * channels + input_channels                      # [BLOCK_C]
            limb_ptrs = limbs_ptr + weight_rows[:, None] * out_channels + outs[None, :]
            limb_mask = channel_in_range[:, None] & out_in_range[None, :]
            first = tl.load(limb_ptrs, mask=limb_mask, other=0.0)
            second = tl.load(limb_ptrs + limb_size, mask=limb_mask, other=0.0)
            third = tl.load(limb_ptrs + 2 * limb_size, mask=limb_mask, other=0.0)
            if UPCAST:
                spikes = spikes.to(tl.float32)
                first, second = first.to(tl.float32), second.to(tl.float32)
                third = third.to(tl.float32)
                accumulator = tl.dot(spikes, first, accumulator, input_precision="ieee")
                accumulator = tl.dot(spikes, second, accumulator, input_precision="ieee")
                accumulator = tl.dot(spikes, third, accumulator, input_precision="ieee")
            else:
                # 0/1 are exact in bfloat16, and so is each spike-limb product in float32
                spikes = spikes.to(tl.bfloat16)
                accumulator = tl.dot(spikes, first, accumulator)
                accumulator = tl.dot(spikes, second, accumulator)
                accumulator = tl.dot(spikes, third, accumulator)
        if HAS_BIAS:
            accumulator += tl.load(bias_ptr + outs, mask=out_in_range, other=0.0)[None, :]
        if HAS_AFFINE:
            scale = tl.load(scale_ptr + outs, mask=out_in_range, other=0.0)
            shift = tl.load(shift_ptr + outs, mask=out_in_range, other=0.0)
            accumulator = accumulator * scale[None, :] + shift[None, :]
        out_ptrs = (out_ptr + (image * out_stride_n + row.to(tl.int64) * out_stride_p
                               + column.to(tl.int64) * out_stride_q)[:, None]
                    + outs[None, :].to(tl.int64) * out_stride_k)
        tl.store(out_ptrs, accumulator, mask=pixel_in_range[:, None] & out_in_range[None, :])


# Block sizes, a fixed rule (not yet tuned on a GPU; docs/kernels.md). tl.dot needs every
# dimension >= 16. 128 output pixels by up to 64 output channels keeps the float32 accumulator
# at 64 registers a thread with 4 warps; 64 input channels a step makes each limb's product
# four k=16 MMA steps. Channels below a block are masked: the smallest block that holds them.
BLOCK_PIXELS = 128
MAX_BLOCK_OUT_CHANNELS = 64
MAX_BLOCK_IN_CHANNELS = 64
NUM_WARPS = 4


def _channel_block(count: int, largest: int) -> int:
    """The smallest power of two >= count, between 16 and largest."""
    return max(16, min(largest, triton.next_power_of_2(count)))


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def prepare_limbs(weight: Tensor) -> Tensor:
    """[3, R, S, C, K] bfloat16, contiguous: the limbs of weight [K, C, R, S] as the kernel
    reads them (a row of K output channels per tap and input channel)."""
    return torch.stack(split_limbs(weight)).permute(0, 3, 4, 2, 1).contiguous()


def spike_conv2d_triton(spikes: Tensor, weight: Tensor, bias: Optional[Tensor], stride: tuple,
                        padding: tuple, scale: Optional[Tensor], shift: Optional[Tensor]) -> Tensor:
    """The launcher: float32 [N, K, P, Q] for checked spikes [N, C, H, W], in spikes' memory
    format (channels_last in, channels_last out)."""
    require_triton(spikes, "spike-conv")
    if spikes.dtype == torch.bool:
        spikes = spikes.view(torch.uint8)
    images, channels, height, width = spikes.shape
    out_channels, _, kernel_height, kernel_width = weight.shape
    out_height = output_size(height, kernel_height, stride[0], padding[0])
    out_width = output_size(width, kernel_width, stride[1], padding[1])
    channels_last = (spikes.is_contiguous(memory_format=torch.channels_last)
                     and not spikes.is_contiguous())
    out = torch.empty((images, out_channels, out_height, out_width), dtype=torch.float32,
                      device=spikes.device,
                      memory_format=(torch.channels_last if channels_last
                                     else torch.contiguous_format))
    limbs = prepare_limbs(weight)
    block_out = _channel_block(out_channels, MAX_BLOCK_OUT_CHANNELS)
    grid = (triton.cdiv(images * out_height * out_width, BLOCK_PIXELS),
            triton.cdiv(out_channels, block_out))
    _spike_conv_kernel[grid](
        spikes, limbs, out if bias is None else bias, out if scale is None else scale,
        out if shift is None else shift, out,
        images, channels, height, width, out_channels, out_height, out_width,
        kernel_height, kernel_width, stride[0], stride[1], padding[0], padding[1],
        *spikes.stride(), *out.stride(),
        HAS_BIAS=bias is not None, HAS_AFFINE=scale is not None, UPCAST=_interpreting(),
        BLOCK_M=BLOCK_PIXELS, BLOCK_K=block_out,
        BLOCK_C=_channel_block(channels, MAX_BLOCK_IN_CHANNELS), num_warps=NUM_WARPS)
    return out
