"""The LIF neuron's Triton kernels and their launchers.

The ``@triton.jit`` device functions (surrogate derivative, charge, fire and reset) are written
once and used by both kernels; then the forward and backward kernels; then the Python launchers,
which flatten every tensor to ``[T, N]`` and pick the block size. Time is the outer dimension:
each program owns ``BLOCK`` neurons and walks all T steps with the membrane in registers.

The kernels round the charge as torch rounds it on the same device (see ``_charge``), so that
they fire exactly where a per-timestep torch network fires there.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._triton import require_triton, tl, triton
from .params import _empty, _saves_h

if triton is not None:

    @triton.jit
    def _surrogate_grad(u, alpha, SURROGATE: tl.constexpr):
        """Derivative of the smooth spike function at u = h - v_threshold (fp32)."""
        if SURROGATE == 0:
            # d/du [atan(pi/2 alpha u) / pi + 1/2] = alpha/2 / (1 + (pi/2 alpha u)^2)
            z = 1.5707963267948966 * alpha * u
            grad = alpha * 0.5 / (1.0 + z * z)
        else:
            # d/du sigmoid(alpha u) = alpha sigmoid(alpha u) (1 - sigmoid(alpha u))
            sig = 1.0 / (1.0 + tl.exp(-alpha * u))
            grad = alpha * sig * (1.0 - sig)
        return grad

    @triton.jit
    def _charge(v, x, tau, v_reset, DECAY_INPUT: tl.constexpr, RECIPROCAL: tl.constexpr):
        """The charged membrane h (fp32), rounded as torch rounds it on the same device (the
        launch turns fp fusion off, so that each operation rounds on its own as torch's do):
        on CUDA torch divides a tensor by a Python float as a multiplication by the fp32
        reciprocal (RECIPROCAL); on the CPU it divides (IEEE, div_rn). Triton's "/" would
        compile to an approximate division (div.full.f32) that matches neither."""
        tau = tl.zeros_like(v) + tau
        if RECIPROCAL:
            inverse = tl.math.div_rn(tl.zeros_like(v) + 1.0, tau)
            if DECAY_INPUT:
                h = v + (x - (v - v_reset)) * inverse
            else:
                h = v - (v - v_reset) * inverse + x
        else:
            if DECAY_INPUT:
                h = v + tl.math.div_rn(x - (v - v_reset), tau)
            else:
                h = v - tl.math.div_rn(v - v_reset, tau) + x
        return h

    @triton.jit
    def _fire_and_reset(h, v_threshold, v_reset, HARD_RESET: tl.constexpr):
        """(spike as fp32, membrane after the reset)."""
        fired = h >= v_threshold
        spike = fired.to(tl.float32)
        if HARD_RESET:
            v = tl.where(fired, v_reset, h)
        else:
            v = h - v_threshold * spike
        return spike, v

    @triton.jit
    def _lif_fwd_kernel(x_ptr, spike_ptr, h_ptr, v_in_ptr, v_out_ptr, n_neurons, n_steps,
                        tau, v_threshold, v_reset,
                        DECAY_INPUT: tl.constexpr, HARD_RESET: tl.constexpr, SAVE_H: tl.constexpr,
                        HAS_V_IN: tl.constexpr, STORE_V_OUT: tl.constexpr,
                        RECIPROCAL: tl.constexpr, BLOCK: tl.constexpr):
        """All T steps of the LIF forward for BLOCK neurons, membrane in registers.

        x_ptr:     [T, N] fp32/fp16/bf16 input current, contiguous
        spike_ptr: [T, N] same dtype as x, output spikes in {0, 1}
        h_ptr:     [T, N] fp32 charged membrane (before reset), written only if SAVE_H
        v_in_ptr:  [N] fp32 membrane before step 0, read only if HAS_V_IN (else at rest)
        v_out_ptr: [N] fp32 membrane after step T-1, written only if STORE_V_OUT
        For a soft reset v_reset is passed as 0.0 and HARD_RESET is False.
        """
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n_neurons
        if HAS_V_IN:
            v = tl.load(v_in_ptr + offsets, mask=mask, other=0.0)
        else:
            v = tl.zeros([BLOCK], dtype=tl.float32) + v_reset
        x_ptrs = x_ptr + offsets
        spike_ptrs = spike_ptr + offsets
        h_ptrs = h_ptr + offsets
        for _ in range(n_steps):
            x = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
            h = _charge(v, x, tau, v_reset, DECAY_INPUT, RECIPROCAL)
            spike, v = _fire_and_reset(h, v_threshold, v_reset, HARD_RESET)
            tl.store(spike_ptrs, spike.to(spike_ptr.dtype.element_ty), mask=mask)
            if SAVE_H:
                tl.store(h_ptrs, h, mask=mask)
            x_ptrs += n_neurons
            spike_ptrs += n_neurons
            h_ptrs += n_neurons
        if STORE_V_OUT:
            tl.store(v_out_ptr + offsets, v, mask=mask)

    @triton.jit
    def _lif_bwd_kernel(grad_spike_ptr, saved_ptr, v_in_ptr, grad_x_ptr, grad_v_out_ptr,
                        grad_v_in_ptr, n_neurons, n_steps, tau, v_threshold, v_reset, alpha,
                        DECAY_INPUT: tl.constexpr, HARD_RESET: tl.constexpr,
                        DETACH_RESET: tl.constexpr, SURROGATE: tl.constexpr,
                        RECOMPUTE: tl.constexpr, STEPS_PADDED: tl.constexpr,
                        HAS_STATE: tl.constexpr, RECIPROCAL: tl.constexpr, BLOCK: tl.constexpr):
        """All T steps of the LIF backward for BLOCK neurons, in reverse time.

        grad_spike_ptr: [T, N] any float dtype, dL/ds, contiguous
        saved_ptr:      RECOMPUTE: [T, N] the input x (fp32/fp16/bf16); the charged membrane
                        h is recomputed into a [STEPS_PADDED, BLOCK] register tile first.
                        Otherwise: [T, N] fp32 h saved by the forward (long sequences).
        v_in_ptr:       [N] fp32 membrane before step 0, read only if HAS_STATE
        grad_x_ptr:     [T, N] dtype of x, output dL/dx
        grad_v_out_ptr: [N] fp32 dL/dv after the last step, read only if HAS_STATE
        grad_v_in_ptr:  [N] fp32 output dL/dv before step 0, written only if HAS_STATE
        """
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n_neurons
        if RECOMPUTE:
            steps = tl.arange(0, STEPS_PADDED)[:, None]
            h_tile = tl.zeros([STEPS_PADDED, BLOCK], dtype=tl.float32)
            if HAS_STATE:
                v = tl.load(v_in_ptr + offsets, mask=mask, other=0.0)
            else:
                v = tl.zeros([BLOCK], dtype=tl.float32) + v_reset
            x_ptrs = saved_ptr + offsets
            for t in range(n_steps):
                x = tl.load(x_ptrs, mask=mask, other=0.0).to(tl.float32)
                h = _charge(v, x, tau, v_reset, DECAY_INPUT, RECIPROCAL)
                _, v = _fire_and_reset(h, v_threshold, v_reset, HARD_RESET)
                h_tile = tl.where(steps == t, h[None, :], h_tile)
                x_ptrs += n_neurons
        if HAS_STATE:
            grad_v = tl.load(grad_v_out_ptr + offsets, mask=mask, other=0.0)
        else:
            grad_v = tl.zeros([BLOCK], dtype=tl.float32)
        # dh/dx: 1/tau when the input decays, 1 otherwise; dh[t]/dv[t-1] = 1 - 1/tau both ways
        if DECAY_INPUT:
            dh_dx = 1.0 / tau
        else:
            dh_dx = 1.0
        dh_dv = 1.0 - 1.0 / tau
        last = (n_steps - 1) * tl.cast(n_neurons, tl.int64)  # T N may pass 2^31 elements
        grad_spike_ptrs = grad_spike_ptr + last + offsets
        h_ptrs = saved_ptr + last + offsets
        grad_x_ptrs = grad_x_ptr + last + offsets
        for step in range(n_steps):
            if RECOMPUTE:
                h = tl.sum(tl.where(steps == n_steps - 1 - step, h_tile, 0.0), axis=0)
            else:
                h = tl.load(h_ptrs, mask=mask, other=0.0)
            grad_spike = tl.load(grad_spike_ptrs, mask=mask, other=0.0).to(tl.float32)
            spike = (h >= v_threshold).to(tl.float32)
            ds_dh = _surrogate_grad(h - v_threshold, alpha, SURROGATE)
            if HARD_RESET:
                # v = h (1 - s) + v_reset s  ->  dv/dh = 1 - s [+ (v_reset - h) ds/dh]
                dv_dh = 1.0 - spike
                if not DETACH_RESET:
                    dv_dh += (v_reset - h) * ds_dh
            else:
                # v = h - v_threshold s  ->  dv/dh = 1 [- v_threshold ds/dh]
                dv_dh = tl.zeros([BLOCK], dtype=tl.float32) + 1.0
                if not DETACH_RESET:
                    dv_dh -= v_threshold * ds_dh
            grad_h = grad_spike * ds_dh + grad_v * dv_dh
            tl.store(grad_x_ptrs, (grad_h * dh_dx).to(grad_x_ptr.dtype.element_ty), mask=mask)
            grad_v = grad_h * dh_dv
            grad_spike_ptrs -= n_neurons
            h_ptrs -= n_neurons
            grad_x_ptrs -= n_neurons
        if HAS_STATE:
            tl.store(grad_v_in_ptr + offsets, grad_v, mask=mask)


# Block sizes. Launches keep Triton's default of 4 warps, 128 threads a program.
# The forward holds one fp32 membrane per neuron: 1024 neurons = 128 threads x 8 neurons each.
BLOCK = 1024
# The backward's recompute tile [STEPS_PADDED, block] fp32 lives in registers: at most 4096
# values a program, 32 registers per thread.
RECOMPUTE_TILE_VALUES = 4096
# A floor for the backward's block, should MAX_RECOMPUTE_STEPS grow: at 32 it never binds (>= 128).
MIN_BACKWARD_BLOCK = 16


def _backward_block(steps_padded: int) -> int:
    """Neurons per backward program: BLOCK, or fewer so that the recompute tile
    [steps_padded, block] stays within RECOMPUTE_TILE_VALUES fp32 values (steps_padded is 1
    when h is loaded, not recomputed). Powers of two in, a power of two out."""
    return max(MIN_BACKWARD_BLOCK, min(BLOCK, RECOMPUTE_TILE_VALUES // steps_padded))


def _divides_by_reciprocal(tensor: Tensor) -> bool:
    """Whether torch, on tensor's device, computes float32 x / tau (tau a Python float) as
    x * fp32(1 / tau): its CUDA kernel does, the CPU divides. The kernels follow, so that the
    fused neuron fires exactly where torch's (the authors' network's) neuron fires there."""
    return tensor.is_cuda


def _as_time_major(tensor: Tensor) -> Tensor:
    """A contiguous [T, N] view (a copy only for non-contiguous input)."""
    return tensor.contiguous().view(tensor.shape[0], -1)


def _forward_triton(x, v_in, tau, v_threshold, v_reset, decay_input, needs_grad):
    require_triton(x, "LIF")
    x2d = _as_time_major(x)
    n_steps, n_neurons = x2d.shape
    save_h = _saves_h(n_steps, needs_grad)
    spikes = torch.empty_like(x2d)
    h = x.new_empty(x.shape, dtype=torch.float32) if save_h else _empty(x)
    v_out = x.new_empty(x.shape[1:], dtype=torch.float32) if v_in is not None else _empty(x)
    if n_neurons and n_steps:
        _lif_fwd_kernel[(triton.cdiv(n_neurons, BLOCK),)](
            x2d, spikes, h, v_in.contiguous() if v_in is not None else v_out, v_out,
            n_neurons, n_steps, tau, v_threshold, 0.0 if v_reset is None else v_reset,
            DECAY_INPUT=decay_input, HARD_RESET=v_reset is not None, SAVE_H=save_h,
            HAS_V_IN=v_in is not None, STORE_V_OUT=v_in is not None,
            RECIPROCAL=_divides_by_reciprocal(x), BLOCK=BLOCK, enable_fp_fusion=False)
    return spikes.view(x.shape), h, v_out


def _backward_triton(grad_spikes, saved, v_in, grad_v_out, x_dtype, recompute, tau, v_threshold,
                     v_reset, decay_input, surrogate, alpha, detach_reset):
    require_triton(grad_spikes, "LIF")
    grad2d = _as_time_major(grad_spikes)
    n_steps, n_neurons = grad2d.shape
    has_state = v_in is not None
    steps_padded = triton.next_power_of_2(n_steps) if recompute else 1
    block = _backward_block(steps_padded)
    grad_x = grad2d.new_empty((n_steps, n_neurons), dtype=x_dtype)
    grad_v_in = grad2d.new_empty(grad_spikes.shape[1:], dtype=torch.float32) if has_state else None
    if n_neurons and n_steps:
        _lif_bwd_kernel[(triton.cdiv(n_neurons, block),)](
            grad2d, _as_time_major(saved), v_in.contiguous() if has_state else grad_x,
            grad_x, grad_v_out.contiguous() if has_state else grad_x,
            grad_v_in if has_state else grad_x, n_neurons, n_steps, tau, v_threshold,
            0.0 if v_reset is None else v_reset, alpha,
            DECAY_INPUT=decay_input, HARD_RESET=v_reset is not None, DETACH_RESET=detach_reset,
            SURROGATE=surrogate, RECOMPUTE=recompute, STEPS_PADDED=steps_padded,
            HAS_STATE=has_state, RECIPROCAL=_divides_by_reciprocal(grad_spikes),
            BLOCK=block, enable_fp_fusion=False)
    return grad_x.view(grad_spikes.shape), grad_v_in
