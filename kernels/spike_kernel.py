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

Layout of this file: the ``@triton.jit`` kernel and its launchers, the torch implementation of
the same kernel (the CPU path), the ``torch.library`` custom op that accumulates into K in
place, the reference written with the authors' own float32 operations, and the public API.

The Triton path runs two kernels per LIF output. The first computes the Gram matrix
G = x x^T exactly (int8 tiles, int32 accumulation): each program takes one [BLOCK_B, BLOCK_B]
tile on or above the diagonal and one slice of the neurons, and adds its partial sums
atomically, so that a batch of 256 still gives the GPU hundreds of programs. The second,
elementwise, reads n_i = G[i, i] and H = n_i + n_j - 2 G[i, j], evaluates the formula in
float32 in the same order as the authors' torch code and adds it to the float64 K on the
device, so nothing is copied to the host per layer.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Optional

import torch
from torch import Tensor

from ._layout import flatten_in_memory_order
from ._triton import BACKENDS, check_backend, require_triton, tl, triton

__all__ = [
    "BACKENDS",
    "HammingKernelScorer",
    "hamming_kernel",
    "hamming_kernel_reference",
    "pairwise_hamming",
    "pairwise_hamming_reference",
]

SPIKE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.bool,
                torch.uint8)
EPILOGUES = {"kernel": 0, "hamming": 1}
RATE_EPSILON = 1e-3  # the authors' guard against q = 0 (rows that cannot differ)


# ----------------------------------------------------------------------------- Triton

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


GRAM_BLOCK_N = 128  # neurons per step of a program's loop
EPILOGUE_BLOCK = 1024
PROGRAMS_PER_SM = 4
INTERPRETER_PROGRAMS = 16  # splits under TRITON_INTERPRET=1, so that tests cross slice edges


def _block_rows(batch_size: int) -> int:
    """Rows per tile: 64, or the smallest of 16 and 32 (tl.dot's minimum is 16) that holds B."""
    return 16 if batch_size <= 16 else 32 if batch_size <= 32 else 64


def _neurons_per_split(batch_size: int, neuron_count: int, device: torch.device,
                       splits: Optional[int] = None) -> int:
    """Neurons each program sums: enough programs to fill the GPU (PROGRAMS_PER_SM per SM), a
    whole number of loop steps each, and never fewer than 4 steps per program."""
    tiles = triton.cdiv(batch_size, _block_rows(batch_size))
    active_tiles = tiles * (tiles + 1) // 2
    if splits is None:
        programs = (PROGRAMS_PER_SM * torch.cuda.get_device_properties(device).multi_processor_count
                    if device.type == "cuda" else INTERPRETER_PROGRAMS)
        splits = min(triton.cdiv(programs, active_tiles),
                     triton.cdiv(neuron_count, 4 * GRAM_BLOCK_N))
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


def _as_rows(spikes: Tensor) -> Tensor:
    """[B, N] view of spikes [B, ...]; bool is viewed as uint8. The neuron order does not
    matter, so the trailing dimensions are first sorted by stride: a channels-last or
    transposed layout flattens without a copy. Only layouts that cannot are copied, unconverted."""
    if spikes.dtype == torch.bool:
        spikes = spikes.view(torch.uint8)
    return flatten_in_memory_order(spikes)[0]


# ----------------------------------------------------------------------------- torch (CPU)
# The kernel's algorithm with torch ops: one Gram matrix x x^T instead of the authors' two
# products with 1 - x, then the same float32 epilogue. On the CPU the Gram matrix is exact
# integer arithmetic, as in the Triton kernel: blocks of the neurons as int8, multiplied with
# int32 accumulation (torch._int_mm, which VNNI speeds up; benchmarks/scorer.py records the
# gain). Elsewhere (the torch backend on CUDA) it is a float32 product, exact below
# 2^24 neurons.

GRAM_BLOCK_NEURONS = 16384  # neurons per int8 block: B x 16 KiB at a time


@functools.lru_cache(maxsize=None)
def _cpu_int8_products() -> bool:
    """Whether this torch multiplies int8 matrices on the CPU (torch._int_mm)."""
    try:
        one = torch.ones((1, 1), dtype=torch.int8)
        return int(torch._int_mm(one, one.t())) == 1
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def _gram_torch(rows: Tensor, binary: bool) -> Tensor:
    """G = x x^T [B, B] int32 of the binary rows x = (rows > 0) [B, N], exact. binary: rows
    hold only 0 and 1, so they are converted as they are (no thresholding)."""
    if rows.device.type != "cpu" or not _cpu_int8_products():
        x = rows if binary and rows.dtype == torch.float32 else (rows > 0).to(torch.float32)
        return (x @ x.t()).to(torch.int32)
    batch_size, neuron_count = rows.shape
    gram = torch.zeros((batch_size, batch_size), dtype=torch.int32)
    for start in range(0, neuron_count, GRAM_BLOCK_NEURONS):
        block = rows[:, start:start + GRAM_BLOCK_NEURONS]
        x = block.to(torch.int8) if binary else (block > 0).to(torch.int8)
        if x.shape[1] < 8:  # torch._int_mm on the CPU misreads [B, 1] operands: zero columns
            x = torch.nn.functional.pad(x, (0, 8 - x.shape[1]))
        gram += torch._int_mm(x, x.t())
    return gram


def _counts_torch(rows: Tensor, binary: bool = False) -> tuple[Tensor, Tensor]:
    """(row counts n [B], Hamming distances H [B, B]) of rows [B, N], int32 and exact:
    n_i = G[i, i] and H = n_i + n_j - 2 G."""
    gram = _gram_torch(rows, binary)
    counts = gram.diagonal()
    return counts, counts[:, None] + counts[None, :] - 2 * gram


def _accumulate_torch(kernel: Tensor, spikes: Tensor, binary: bool = False):
    rows = _as_rows(spikes)
    counts, hamming = (values.to(torch.float32) for values in _counts_torch(rows, binary))
    neuron_count = hamming.new_full((), float(rows.shape[1]))
    rate = counts / neuron_count
    rate_product = rate[:, None] * (1 - rate[None, :]) + (1 - rate[:, None]) * rate[None, :]
    expected_distance = rate_product * neuron_count
    rescale = torch.div(torch.full_like(rate_product, 0.5), expected_distance + RATE_EPSILON)
    kernel += neuron_count - rescale * hamming


def _pairwise_hamming_torch(spikes: Tensor) -> Tensor:
    return _counts_torch(_as_rows(spikes))[1].to(torch.int64)


# ----------------------------------------------------------------------------- custom op

_IMPLEMENTATIONS = {
    "triton": (_accumulate_triton, _pairwise_hamming_triton),
    "torch": (_accumulate_torch, _pairwise_hamming_torch),
}


@torch.library.custom_op("snnzoo::hamming_kernel_accumulate", mutates_args=("kernel",))
def _accumulate_op(kernel: Tensor, spikes: Tensor, implementation: str,
                   binary: bool = False) -> None:
    """kernel [B, B] float64 += the term of spikes [B, ...], in place on the device. binary
    promises that spikes hold only 0 and 1."""
    accumulate, _ = _IMPLEMENTATIONS[implementation]
    accumulate(kernel, spikes, binary)


@_accumulate_op.register_fake
def _(kernel, spikes, implementation, binary=False):
    return None


# ----------------------------------------------------------------------------- reference


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


# ----------------------------------------------------------------------------- public API


def _implementation(backend: str, spikes: Tensor) -> str:
    """The implementation behind a backend: Triton for CUDA tensors, torch ops elsewhere."""
    if backend == "auto":
        return "triton" if spikes.is_cuda and triton is not None else "torch"
    return backend


def _check_spikes(spikes):
    if not isinstance(spikes, Tensor):
        raise TypeError(f"expected spikes as a torch.Tensor, got {type(spikes).__name__}")
    if spikes.dim() < 2:
        raise ValueError(
            f"spikes must be a batch [B, ...] with at least 2 dimensions, got shape "
            f"{tuple(spikes.shape)}; for a single row of neurons use spikes.unsqueeze(0)")
    if spikes.dtype not in SPIKE_DTYPES:
        raise ValueError(f"spikes dtype {spikes.dtype} is unsupported; use one of "
                         f"{[str(dtype) for dtype in SPIKE_DTYPES]}")
    if spikes.numel() == 0:
        raise ValueError(f"spikes of shape {tuple(spikes.shape)} are empty; K needs at least "
                         f"one row and one neuron")


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
