"""The Hamming spike kernel's Triton kernels and their launchers.

The Triton path runs two kernels per LIF output. The first computes the Gram matrix
G = x x^T exactly (int8 tiles, int32 accumulation): each program takes one [BLOCK_B, BLOCK_B]
tile on or above the diagonal and one slice of the neurons, and adds its partial sums
atomically, so that a batch of 256 still gives the GPU hundreds of programs. The second,
elementwise, reads n_i = G[i, i] and H = n_i + n_j - 2 G[i, j], evaluates the formula in
float32 in the same order as the authors' torch code and adds it to the float64 K on the
device, so nothing is copied to the host per layer.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._triton import require_triton, tl, triton
from .spikes import _as_rows

EPILOGUES = {"kernel": 0, "hamming": 1}


if triton is not None:

    @triton.jit
    def _spike_gram_kernel(spikes_ptr, gram_ptr, batch_size, neuron_count, neurons_per_split,
                           stride_row, stride_neuron, BLOCK_B: tl.constexpr,
                           BLOCK_N: tl.constexpr):
        """One [BLOCK_B, BLOCK_B] tile of the Gram matrix G = x x^T of the binary spike rows,
        over one slice of the neurons, added atomically into gram (exact integers).

        spikes_ptr: [B, N] float32/float16/bfloat16/float64/uint8, strides (stride_row,
                    stride_neuron), any layout; a neuron counts as spiking where spikes > 0
        gram_ptr:   [B, B] int32, zeroed by the caller; tiles on or above the diagonal are
                    written (G is symmetric, and its diagonal holds the row counts n_i)
        The grid is (cdiv(B, BLOCK_B), cdiv(B, BLOCK_B), splits): program (r, c, s) sums
        neurons [s * neurons_per_split, (s + 1) * neurons_per_split); programs below the
        diagonal exit. Splitting the neurons keeps the GPU busy at SNASNet's small B.
        """
        tile_row = tl.program_id(0)
        tile_col = tl.program_id(1)
        if tile_row > tile_col:
            return
        first = tl.program_id(2) * neurons_per_split
        last = tl.minimum(first + neurons_per_split, neuron_count)
        rows = tile_row * BLOCK_B + tl.arange(0, BLOCK_B)
        cols = tile_col * BLOCK_B + tl.arange(0, BLOCK_B)
        neurons = first + tl.arange(0, BLOCK_N)
        row_ptrs = (spikes_ptr + rows[:, None].to(tl.int64) * stride_row
                    + neurons[None, :].to(tl.int64) * stride_neuron)      # [BLOCK_B, BLOCK_N]
        col_ptrs = (spikes_ptr + cols[None, :].to(tl.int64) * stride_row
                    + neurons[:, None].to(tl.int64) * stride_neuron)      # [BLOCK_N, BLOCK_B]
        shared = tl.zeros([BLOCK_B, BLOCK_B], dtype=tl.int32)
        for start in range(first, last, BLOCK_N):
            in_range = start - first + neurons < last
            row_mask = (rows[:, None] < batch_size) & in_range[None, :]
            col_mask = (cols[None, :] < batch_size) & in_range[:, None]
            x_rows = (tl.load(row_ptrs, mask=row_mask, other=0) > 0).to(tl.int8)
            x_cols = (tl.load(col_ptrs, mask=col_mask, other=0) > 0).to(tl.int8)
            # x_i . x_j, exact: int8 products summed in int32
            shared = tl.dot(x_rows, x_cols, shared, out_dtype=tl.int32)
            row_ptrs += BLOCK_N * stride_neuron
            col_ptrs += BLOCK_N * stride_neuron
        out_mask = (rows[:, None] < batch_size) & (cols[None, :] < batch_size)
        tl.atomic_add(gram_ptr + rows[:, None].to(tl.int64) * batch_size + cols[None, :],
                      shared, mask=out_mask)

    @triton.jit
    def _hamming_epilogue_kernel(gram_ptr, out_ptr, batch_size, neuron_count,
                                 EPILOGUE: tl.constexpr, BLOCK: tl.constexpr):
        """Elementwise over out [B, B] from the upper triangle of the Gram matrix gram [B, B]
        int32: H[i, j] = n_i + n_j - 2 G[i, j] with n_i = G[i, i]. EPILOGUE 0: out is the
        float64 K and the term N - 0.5 / (q + 1e-3) H (q = m N) is added in place. EPILOGUE 1: out is
        int64 and H is stored."""
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < batch_size * batch_size
        row = offsets // batch_size
        col = offsets % batch_size
        low = tl.minimum(row, col).to(tl.int64)
        high = tl.maximum(row, col).to(tl.int64)
        shared = tl.load(gram_ptr + low * batch_size + high, mask=mask, other=0)
        row_count = tl.load(gram_ptr + row.to(tl.int64) * (batch_size + 1), mask=mask, other=0)
        col_count = tl.load(gram_ptr + col.to(tl.int64) * (batch_size + 1), mask=mask, other=0)
        hamming = row_count + col_count - 2 * shared
        if EPILOGUE == 0:
            # The authors' float32 operations, in their order (fp fusion is off at launch):
            # p = n / N;  m = p_i (1 - p_j) + (1 - p_i) p_j;  r = 0.5 / (m N + 1e-3);  N - r H
            neurons_float = tl.zeros([BLOCK], dtype=tl.float32) + neuron_count
            row_rate = tl.math.div_rn(row_count.to(tl.float32), neurons_float)
            col_rate = tl.math.div_rn(col_count.to(tl.float32), neurons_float)
            rate_product = row_rate * (1.0 - col_rate) + (1.0 - row_rate) * col_rate
            expected_distance = rate_product * neurons_float
            half = tl.full([BLOCK], 0.5, dtype=tl.float32)
            rescale = tl.math.div_rn(half, expected_distance + 1e-3)
            term = (neurons_float - rescale * hamming.to(tl.float32)).to(tl.float64)
            tl.store(out_ptr + offsets, tl.load(out_ptr + offsets, mask=mask) + term, mask=mask)
        else:
            tl.store(out_ptr + offsets, hamming.to(tl.int64), mask=mask)


# Block sizes. Launches keep Triton's default of 4 warps, 128 threads a program.
GRAM_BLOCK_N = 128  # neurons per step of a program's loop: the depth of each tl.dot
# The epilogue is elementwise over B x B: 1024 entries = 128 threads x 8 entries each.
EPILOGUE_BLOCK = 1024
PROGRAMS_PER_SM = 4  # the neuron split aims at several programs per SM to switch between
INTERPRETER_PROGRAMS = 16  # splits under TRITON_INTERPRET=1, so that tests cross slice edges
# Each program adds its tile atomically once: it loops over at least this many steps of
# GRAM_BLOCK_N neurons, so that its sums outweigh its atomic add.
MIN_STEPS_PER_PROGRAM = 4


def _block_rows(batch_size: int) -> int:
    """Rows per tile: 64, or the smallest of 16 and 32 (tl.dot's minimum is 16) that holds B.
    64 rows at most: the [64, 64] int32 accumulator is 4096 values, 32 registers per thread."""
    return 16 if batch_size <= 16 else 32 if batch_size <= 32 else 64


def _neurons_per_split(batch_size: int, neuron_count: int, device: torch.device,
                       splits: Optional[int] = None) -> int:
    """Neurons each program sums: enough programs to fill the GPU (PROGRAMS_PER_SM per SM), a
    whole number of loop steps each, and never fewer than MIN_STEPS_PER_PROGRAM steps per
    program."""
    tiles = triton.cdiv(batch_size, _block_rows(batch_size))
    active_tiles = tiles * (tiles + 1) // 2
    if splits is None:
        programs = (PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count
                    if device.type == "cuda" else INTERPRETER_PROGRAMS)
        splits = min(triton.cdiv(programs, active_tiles),
                     triton.cdiv(neuron_count, MIN_STEPS_PER_PROGRAM * GRAM_BLOCK_N))
    per_split = triton.cdiv(neuron_count, max(1, splits))
    return triton.cdiv(per_split, GRAM_BLOCK_N) * GRAM_BLOCK_N


def _launch(rows: Tensor, out: Tensor, epilogue: str, splits: Optional[int] = None):
    """out (K or H) from rows [B, N]: the Gram matrix by neuron slices, then the epilogue."""
    batch_size, neuron_count = rows.shape
    block_rows = _block_rows(batch_size)
    tiles = triton.cdiv(batch_size, block_rows)
    per_split = _neurons_per_split(batch_size, neuron_count, rows.device, splits)
    gram = torch.zeros((batch_size, batch_size), dtype=torch.int32, device=rows.device)
    _spike_gram_kernel[(tiles, tiles, triton.cdiv(neuron_count, per_split))](
        rows, gram, batch_size, neuron_count, per_split, rows.stride(0), rows.stride(1),
        BLOCK_B=block_rows, BLOCK_N=GRAM_BLOCK_N)
    _hamming_epilogue_kernel[(triton.cdiv(batch_size * batch_size, EPILOGUE_BLOCK),)](
        gram, out, batch_size, neuron_count, EPILOGUE=EPILOGUES[epilogue], BLOCK=EPILOGUE_BLOCK,
        enable_fp_fusion=False)


def _accumulate_triton(kernel: Tensor, spikes: Tensor, binary: bool = False):
    require_triton(spikes, "spike-kernel")  # the kernel thresholds in registers: binary is moot
    _launch(_as_rows(spikes), kernel, "kernel")


def _pairwise_hamming_triton(spikes: Tensor) -> Tensor:
    require_triton(spikes, "spike-kernel")
    rows = _as_rows(spikes)
    hamming = rows.new_empty((rows.shape[0], rows.shape[0]), dtype=torch.int64)
    _launch(rows, hamming, "hamming")
    return hamming
