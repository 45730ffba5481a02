"""The Hamming spike kernel of SNASNet's training-free architecture search, fused.

SNASNet (Kim et al., ECCV 2022) scores an untrained candidate network by how differently its
LIF layers respond to the inputs of one batch. Every LIF output at every timestep, flattened to
binary rows x_i = (out_i > 0) in {0, 1}^N (B rows, N neurons), adds to a [B, B] matrix

    p_i     = n_i / N                                  firing rate, n_i = x_i . 1
    q[i,j]  = p_i (1 - p_j) + (1 - p_i) p_j            chance that rows with these rates differ
    H[i,j]  = n_i + n_j - 2 x_i . x_j                  Hamming distance
    K      += N - 0.5 / (q + 1e-3) * H

and the score is log|det(K / count)|, count being the number of LIF outputs added. This follows
the authors' code (``model_snn.py``, ``find_best_neuroncell``), which divides by q + 1e-3 and not
by N q + 1e-3 as the paper's normalisation would suggest.

Layout of this file: the ``@triton.jit`` kernel and its launchers, the torch implementation of
the same kernel (the CPU path), the ``torch.library`` custom op that accumulates into K in
place, the reference written with the authors' own float32 operations, and the public API.

The kernel computes x_i . x_j exactly (int8 tiles, int32 accumulation) for one [BLOCK_B, BLOCK_B]
tile of the B x B output and the row counts n_i alongside, then evaluates the formula in float32
in the same order as the authors' torch code and adds it to the float64 K on the device, so
nothing is copied to the host per layer. H and the term are symmetric: only tiles on or above
the diagonal run, and each also writes its mirror image.
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Optional

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton is declared for Linux only
    triton = None
    tl = None

__all__ = [
    "BACKENDS",
    "HammingKernelScorer",
    "hamming_kernel",
    "hamming_kernel_reference",
    "pairwise_hamming",
    "pairwise_hamming_reference",
]

BACKENDS = ("auto", "triton", "torch")
SPIKE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.bool,
                torch.uint8)
EPILOGUES = {"kernel": 0, "hamming": 1}
RATE_EPSILON = 1e-3  # the authors' guard against q = 0


# ----------------------------------------------------------------------------- Triton

if triton is not None:

    @triton.jit
    def _hamming_kernel_kernel(spikes_ptr, out_ptr, batch_size, neuron_count, stride_row,
                               stride_neuron, EPILOGUE: tl.constexpr, BLOCK_B: tl.constexpr,
                               BLOCK_N: tl.constexpr):
        """One [BLOCK_B, BLOCK_B] tile of the pairwise comparison of spike rows, and its mirror.

        spikes_ptr: [B, N] float32/float16/bfloat16/float64/uint8, strides (stride_row,
                    stride_neuron), any layout; a neuron counts as spiking where spikes > 0
        out_ptr:    [B, B] contiguous. EPILOGUE 0: float64 K, the term N - 0.5 / (q + 1e-3) H
                    is added in place. EPILOGUE 1: int64, H is stored.
        The grid is (cdiv(B, BLOCK_B), cdiv(B, BLOCK_B)); programs below the diagonal exit.
        """
        tile_row = tl.program_id(0)
        tile_col = tl.program_id(1)
        if tile_row > tile_col:
            return
        rows = tile_row * BLOCK_B + tl.arange(0, BLOCK_B)
        cols = tile_col * BLOCK_B + tl.arange(0, BLOCK_B)
        neurons = tl.arange(0, BLOCK_N)
        row_ptrs = (spikes_ptr + rows[:, None].to(tl.int64) * stride_row
                    + neurons[None, :].to(tl.int64) * stride_neuron)      # [BLOCK_B, BLOCK_N]
        col_ptrs = (spikes_ptr + cols[None, :].to(tl.int64) * stride_row
                    + neurons[:, None].to(tl.int64) * stride_neuron)      # [BLOCK_N, BLOCK_B]
        shared = tl.zeros([BLOCK_B, BLOCK_B], dtype=tl.int32)
        row_counts = tl.zeros([BLOCK_B], dtype=tl.int32)
        col_counts = tl.zeros([BLOCK_B], dtype=tl.int32)
        for start in range(0, neuron_count, BLOCK_N):
            in_range = start + neurons < neuron_count
            row_mask = (rows[:, None] < batch_size) & in_range[None, :]
            col_mask = (cols[None, :] < batch_size) & in_range[:, None]
            x_rows = (tl.load(row_ptrs, mask=row_mask, other=0) > 0).to(tl.int8)
            x_cols = (tl.load(col_ptrs, mask=col_mask, other=0) > 0).to(tl.int8)
            # x_i . x_j, exact: int8 products summed in int32
            shared = tl.dot(x_rows, x_cols, shared, out_dtype=tl.int32)
            row_counts += tl.sum(x_rows.to(tl.int32), axis=1)
            col_counts += tl.sum(x_cols.to(tl.int32), axis=0)
            row_ptrs += BLOCK_N * stride_neuron
            col_ptrs += BLOCK_N * stride_neuron
        # H = n_i + n_j - 2 x_i . x_j
        hamming = row_counts[:, None] + col_counts[None, :] - 2 * shared
        out_mask = (rows[:, None] < batch_size) & (cols[None, :] < batch_size)
        out_ptrs = out_ptr + rows[:, None].to(tl.int64) * batch_size + cols[None, :]
        mirror_ptrs = out_ptr + cols[None, :].to(tl.int64) * batch_size + rows[:, None]
        if EPILOGUE == 0:
            # The authors' float32 operations, in their order (fp fusion is off at launch):
            # p = n / N;  q = p_i (1 - p_j) + (1 - p_i) p_j;  r = 0.5 / (q + 1e-3);  N - r H
            neurons_float = tl.zeros([BLOCK_B], dtype=tl.float32) + neuron_count
            row_rate = tl.math.div_rn(row_counts.to(tl.float32), neurons_float)
            col_rate = tl.math.div_rn(col_counts.to(tl.float32), neurons_float)
            rate_product = (row_rate[:, None] * (1.0 - col_rate[None, :])
                            + (1.0 - row_rate[:, None]) * col_rate[None, :])
            half = tl.full([BLOCK_B, BLOCK_B], 0.5, dtype=tl.float32)
            rescale = tl.math.div_rn(half, rate_product + 1e-3)
            term = (neurons_float[:, None] - rescale * hamming.to(tl.float32)).to(tl.float64)
            tl.store(out_ptrs, tl.load(out_ptrs, mask=out_mask) + term, mask=out_mask)
            if tile_row != tile_col:
                tl.store(mirror_ptrs, tl.load(mirror_ptrs, mask=out_mask) + term, mask=out_mask)
        else:
            tl.store(out_ptrs, hamming.to(tl.int64), mask=out_mask)
            if tile_row != tile_col:
                tl.store(mirror_ptrs, hamming.to(tl.int64), mask=out_mask)


def _require_triton(spikes: Tensor):
    if triton is None:
        raise RuntimeError(
            "the Triton spike-kernel backend needs the 'triton' package (Linux); install it, or "
            "use backend='torch' or backend='auto'")
    if not spikes.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"backend='triton' needs CUDA tensors, got spikes on {spikes.device}; use "
            f"backend='auto' (torch on the CPU), or set TRITON_INTERPRET=1 before importing "
            f"triton to run the kernel under the interpreter")


def _block_sizes(batch_size: int) -> tuple[int, int]:
    """(BLOCK_B, BLOCK_N): small output tiles keep enough programs busy at SNASNet's B=256."""
    if batch_size <= 256:
        return 16, 256
    return (32, 128) if batch_size <= 1024 else (64, 64)


def _launch(rows: Tensor, out: Tensor, epilogue: str):
    batch_size, neuron_count = rows.shape
    block_b, block_n = _block_sizes(batch_size)
    tiles = triton.cdiv(batch_size, block_b)
    _hamming_kernel_kernel[(tiles, tiles)](
        rows, out, batch_size, neuron_count, rows.stride(0), rows.stride(1),
        EPILOGUE=EPILOGUES[epilogue], BLOCK_B=block_b, BLOCK_N=block_n, enable_fp_fusion=False)


def _accumulate_triton(kernel: Tensor, spikes: Tensor):
    _require_triton(spikes)
    _launch(_as_rows(spikes), kernel, "kernel")


def _pairwise_hamming_triton(spikes: Tensor) -> Tensor:
    _require_triton(spikes)
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
    trailing = sorted(range(1, spikes.dim()), key=lambda dim: -spikes.stride(dim))
    return spikes.permute(0, *trailing).reshape(spikes.shape[0], -1)


# ----------------------------------------------------------------------------- torch (CPU)
# The kernel's algorithm with torch ops: one Gram matrix x x^T (exact in float32 below 2^24
# neurons) instead of the authors' two products with 1 - x, then the same float32 epilogue.


def _counts_torch(rows: Tensor) -> tuple[Tensor, Tensor]:
    """(row counts n [B], Hamming distances H [B, B]) of rows [B, N], both float32 and exact."""
    x = (rows > 0).to(torch.float32)
    counts = x.sum(1)
    return counts, counts[:, None] + counts[None, :] - 2 * (x @ x.t())


def _accumulate_torch(kernel: Tensor, spikes: Tensor):
    rows = _as_rows(spikes)
    counts, hamming = _counts_torch(rows)
    neuron_count = hamming.new_full((), float(rows.shape[1]))
    rate = counts / neuron_count
    rate_product = rate[:, None] * (1 - rate[None, :]) + (1 - rate[:, None]) * rate[None, :]
    rescale = torch.div(torch.full_like(rate_product, 0.5), rate_product + RATE_EPSILON)
    kernel += neuron_count - rescale * hamming


def _pairwise_hamming_torch(spikes: Tensor) -> Tensor:
    return _counts_torch(_as_rows(spikes))[1].to(torch.int64)


# ----------------------------------------------------------------------------- custom op

_IMPLEMENTATIONS = {
    "triton": (_accumulate_triton, _pairwise_hamming_triton),
    "torch": (_accumulate_torch, _pairwise_hamming_torch),
}


@torch.library.custom_op("snnzoo::hamming_kernel_accumulate", mutates_args=("kernel",))
def _accumulate_op(kernel: Tensor, spikes: Tensor, implementation: str) -> None:
    """kernel [B, B] float64 += the term of spikes [B, ...], in place on the device."""
    accumulate, _ = _IMPLEMENTATIONS[implementation]
    accumulate(kernel, spikes)


@_accumulate_op.register_fake
def _(kernel, spikes, implementation):
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
    rate_product = (rate @ (1 - rate.t())) + ((1 - rate) @ rate.t())
    rescale = torch.div(0.5 * torch.ones((batch_size, batch_size), device=x.device),
                        rate_product + RATE_EPSILON)
    hamming = x @ (1 - x.t()) + (1 - x) @ x.t()
    return full_matrix - rescale * hamming


# ----------------------------------------------------------------------------- public API


def _check_backend(backend: str):
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is unknown; choose one of {list(BACKENDS)}")


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
    _check_backend(backend)
    _check_spikes(spikes)
    _, hamming = _IMPLEMENTATIONS[_implementation(backend, spikes)]
    return hamming(spikes)


def hamming_kernel(spikes: Tensor, backend: str = "auto") -> Tensor:
    """The term [B, B] float64 one LIF output spikes [B, ...] adds to K (float32 values)."""
    _check_backend(backend)
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
        _check_backend(backend)
        self.backend = backend
        self.kernel: Optional[Tensor] = None  # [B, B] float64, sum of the added terms
        self.count = 0

    def reset(self):
        self.kernel, self.count = None, 0

    def add(self, spikes: Tensor):
        """Add the term of one LIF output spikes [B, ...] to K, in place, and count it."""
        _check_spikes(spikes)
        batch_size = spikes.shape[0]
        if self.kernel is None:
            self.kernel = torch.zeros((batch_size, batch_size), dtype=torch.float64,
                                      device=spikes.device)
        elif self.kernel.shape[0] != batch_size:
            raise ValueError(
                f"spikes of shape {tuple(spikes.shape)} have batch size {batch_size}, but K was "
                f"started with batch size {self.kernel.shape[0]}; feed every layer the same "
                f"batch, or call reset() before scoring a new one")
        elif self.kernel.device != spikes.device:
            raise ValueError(f"spikes are on {spikes.device} but K is on {self.kernel.device}; "
                             f"call reset() before moving to another device")
        _accumulate_op(self.kernel, spikes, _implementation(self.backend, spikes))
        self.count += 1

    def hook(self, module, inputs, output):
        """A forward hook: ``lif.register_forward_hook(scorer.hook)`` adds every output."""
        self.add(output[0] if isinstance(output, tuple) else output)

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
        sign, log_abs_det = torch.linalg.slogdet(mean_kernel)
        if sign.item() == 0 or not math.isfinite(log_abs_det.item()):
            warnings.warn(f"the spike kernel K ({self.kernel.shape[0]} x {self.kernel.shape[0]}, "
                          f"{self.count} outputs added) is singular; the score is -inf",
                          RuntimeWarning, stacklevel=2)
            return -math.inf
        return log_abs_det.item()
