"""The leaky integrate-and-fire (LIF) neuron, fused over timesteps.

Semantics are SpikingJelly's ``LIFNode`` (the neuron SNASNet uses). Per timestep t, with the
membrane ``v`` starting at ``v_reset`` (0 for a soft reset):

    charge   h[t] = v[t-1] + (x[t] - (v[t-1] - v_reset)) / tau        (decay_input=True)
             h[t] = v[t-1] - (v[t-1] - v_reset) / tau + x[t]          (decay_input=False)
    fire     s[t] = h[t] >= v_threshold
    reset    v[t] = h[t] * (1 - s[t]) + v_reset * s[t]                (hard, v_reset a number)
             v[t] = h[t] - v_threshold * s[t]                         (soft, v_reset=None)

and ds/dh = surrogate'(h - v_threshold) in the backward pass.

The fused kernels round the charge as torch rounds this expression on the same device: x / tau
is an IEEE division on the CPU, and on CUDA a multiplication by the fp32 reciprocal of tau
(torch's CUDA kernel for a tensor divided by a Python float). So they fire exactly where a
per-timestep torch network, the SNASNet authors' included, fires on that device.

Layout of this file: the ``@triton.jit`` device functions and kernels, their Python
launchers, the torch implementation of the same two kernels (the CPU path), the
``torch.library`` custom ops with their autograd formula, the per-timestep autograd
reference, and the functional API.

Kernels see every tensor flattened to ``[T, N]``: time is the outer dimension, each
program owns ``BLOCK`` neurons and walks all T steps with the membrane in registers.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from ._compiled import run_compiled
from ._layout import flatten_in_memory_order, restore_order
from ._triton import BACKENDS, check_backend, require_triton, tl, triton, triton_available

__all__ = [
    "SURROGATES",
    "BACKENDS",
    "LIFParams",
    "lif_multistep",
    "lif_step",
    "lif_multistep_reference",
    "lif_step_reference",
    "triton_available",
]

SURROGATES = {"atan": 0, "sigmoid": 1}
DEFAULT_ALPHA = {"atan": 2.0, "sigmoid": 4.0}
BLOCK = 1024


def _real_or_none(name: str, value) -> Optional[float]:
    """A neuron constant as a float (Python, NumPy or 0-d tensor numbers); None stays None."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{name}={value!r} must be a real number, not text")
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name}={value!r} must be a real number") from None


class LIFParams:
    """Validated neuron constants, shared by the module, the functional API and the ops."""

    __slots__ = ("tau", "v_threshold", "v_reset", "surrogate", "alpha", "detach_reset", "decay_input")

    def __init__(self, tau=4.0 / 3.0, v_threshold=1.0, v_reset=0.0, surrogate="atan", alpha=None,
                 detach_reset=True, decay_input=True):
        tau, v_threshold, v_reset, alpha = (_real_or_none(name, value) for name, value in (
            ("tau", tau), ("v_threshold", v_threshold), ("v_reset", v_reset), ("alpha", alpha)))
        if tau is None or not math.isfinite(tau) or tau <= 1.0:
            raise ValueError(
                f"tau={tau!r} is invalid: the membrane time constant must be a finite number > 1 "
                f"(SpikingJelly refuses tau <= 1 too); SNASNet uses tau=4/3")
        if surrogate not in SURROGATES:
            raise ValueError(
                f"surrogate={surrogate!r} is unknown; choose one of {sorted(SURROGATES)}")
        alpha = DEFAULT_ALPHA[surrogate] if alpha is None else float(alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"alpha={alpha!r} is invalid: the surrogate sharpness must be > 0")
        if v_threshold is None or not math.isfinite(v_threshold):
            raise ValueError(f"v_threshold={v_threshold!r} must be a finite number")
        if v_reset is not None and not math.isfinite(v_reset):
            raise ValueError(f"v_reset={v_reset!r} must be a finite number, or None for a soft reset")
        for name, value in (("tau", tau), ("v_threshold", v_threshold), ("v_reset", v_reset),
                            ("surrogate", surrogate), ("alpha", alpha),
                            ("detach_reset", bool(detach_reset)),
                            ("decay_input", bool(decay_input))):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(f"LIFParams are immutable ({name}={value!r}): set it on the LIF "
                             f"module (lif.{name} = ...), which checks it, or build new ones "
                             f"with params.replace({name}=...)")

    def replace(self, **changes) -> "LIFParams":
        """New, checked params with `changes`; a new surrogate brings its own default alpha
        unless alpha was set to another value or is changed too."""
        values = {name: getattr(self, name) for name in self.__slots__}
        if "surrogate" in changes and "alpha" not in changes \
                and self.alpha == DEFAULT_ALPHA[self.surrogate]:
            values["alpha"] = None
        return LIFParams(**{**values, **changes})

    def __eq__(self, other):
        return isinstance(other, LIFParams) and self.as_op_args() == other.as_op_args()

    def __hash__(self):
        return hash(self.as_op_args())

    def __reduce__(self):  # pickling, deepcopy: through __init__, which checks
        return (LIFParams, tuple(getattr(self, name) for name in self.__slots__))

    def as_op_args(self):
        return (self.tau, self.v_threshold, self.v_reset, self.decay_input,
                SURROGATES[self.surrogate], self.alpha, self.detach_reset)

    def __repr__(self):
        return ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)


# ----------------------------------------------------------------------------- Triton

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


# Up to this many steps the backward recomputes h from x in registers, so that the forward
# saves nothing new (x is kept by reference); longer sequences save h in fp32 instead.
MAX_RECOMPUTE_STEPS = 32


def _divides_by_reciprocal(tensor: Tensor) -> bool:
    """Whether torch, on tensor's device, computes float32 x / tau (tau a Python float) as
    x * fp32(1 / tau): its CUDA kernel does, the CPU divides. The kernels follow, so that the
    fused neuron fires exactly where torch's (the authors' network's) neuron fires there."""
    return tensor.is_cuda


def _saves_h(n_steps: int, needs_grad: bool) -> bool:
    return needs_grad and n_steps > MAX_RECOMPUTE_STEPS


def _as_time_major(tensor: Tensor) -> Tensor:
    """A contiguous [T, N] view (a copy only for non-contiguous input)."""
    return tensor.contiguous().view(tensor.shape[0], -1)


def _empty(like: Tensor) -> Tensor:
    return like.new_empty((0,), dtype=torch.float32)


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
    block = max(16, min(BLOCK, 4096 // steps_padded))
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


# ----------------------------------------------------------------------------- torch (CPU)
# The same two kernels written with torch ops, for devices Triton does not compile for. Like
# the kernels they loop over time without an autograd graph and keep one fp32 tensor (h). On
# the CPU "auto" runs them through torch.compile, which fuses the unrolled time loop into one
# C++ loop per pass; SNNZOO_COMPILE_CPU=0 keeps them eager.


def _run_neuron_torch(x, v_in, tau: float, v_threshold: float, v_reset: Optional[float],
                      decay_input: bool, keep_h: bool):
    """(spikes, list of T h tensors or None, final v) by the update rule of the module
    docstring. h stays a list: stacked, inductor would write it out instead of fusing."""
    reset_value = 0.0 if v_reset is None else v_reset
    if v_in is None:
        v = torch.full(x.shape[1:], reset_value, device=x.device, dtype=torch.float32)
    else:
        v = v_in.to(torch.float32, copy=True)
    spikes, charged = [], []
    for t in range(x.shape[0]):
        x_t = x[t].to(torch.float32)
        if decay_input:
            h = v + (x_t - (v - reset_value)) / tau
        else:
            h = v - (v - reset_value) / tau + x_t
        fired = h >= v_threshold
        if v_reset is None:
            v = torch.where(fired, h - v_threshold, h)
        else:
            v = torch.where(fired, reset_value, h)
        spikes.append(fired.to(x.dtype))
        charged.append(h)
    return torch.stack(spikes), charged if keep_h else None, v


def _forward_torch(x, v_in, tau: float, v_threshold: float, v_reset: Optional[float],
                   decay_input: bool, needs_grad: bool):
    save_h = _saves_h(x.shape[0], needs_grad)
    spikes, h, v = _run_neuron_torch(x, v_in, tau, v_threshold, v_reset, decay_input, save_h)
    return spikes, torch.stack(h) if save_h else _empty(x), v if v_in is not None else _empty(x)


def _surrogate_grad_torch(u, alpha: float, surrogate: int):
    if surrogate == SURROGATES["atan"]:
        z = u * (math.pi / 2 * alpha)
        return (alpha / 2) / (1.0 + z * z)
    sig = torch.sigmoid(u * alpha)
    return alpha * sig * (1.0 - sig)


def _backward_torch(grad_spikes, saved, v_in, grad_v_out, x_dtype: torch.dtype,
                    recompute: bool, tau: float, v_threshold: float, v_reset: Optional[float],
                    decay_input: bool, surrogate: int, alpha: float, detach_reset: bool):
    if recompute:
        _, h, _ = _run_neuron_torch(saved, v_in, tau, v_threshold, v_reset, decay_input, True)
    else:
        h = saved
    dh_dx = 1.0 / tau if decay_input else 1.0
    dh_dv = 1.0 - 1.0 / tau
    grad_v = (grad_v_out.to(torch.float32) if grad_v_out is not None
              else torch.zeros(grad_spikes.shape[1:], device=grad_spikes.device,
                               dtype=torch.float32))
    grad_x = []
    for t in range(len(h) - 1, -1, -1):
        h_t = h[t]
        ds_dh = _surrogate_grad_torch(h_t - v_threshold, alpha, surrogate)
        if v_reset is not None:
            dv_dh = (h_t < v_threshold).to(torch.float32)
            if not detach_reset:
                dv_dh = dv_dh + (v_reset - h_t) * ds_dh
        elif detach_reset:
            dv_dh = torch.ones_like(h_t)
        else:
            dv_dh = 1.0 - v_threshold * ds_dh
        grad_h = grad_spikes[t].to(torch.float32) * ds_dh + grad_v * dv_dh
        grad_x.append((grad_h * dh_dx).to(x_dtype))
        grad_v = grad_h * dh_dv
    grad_x.reverse()
    return torch.stack(grad_x), grad_v if v_in is not None else None


def _forward_compiled(x, *args):
    """_forward_torch through torch.compile, which unrolls the time loop: compiling takes
    seconds per step and happens again for every new T, so longer sequences than
    MAX_RECOMPUTE_STEPS run eagerly (200 steps took 4 minutes to compile on two cores)."""
    if x.shape[0] > MAX_RECOMPUTE_STEPS:
        return _forward_torch(x, *args)
    return run_compiled(_forward_torch, x, *args)


def _backward_compiled(grad_spikes, *args):
    if grad_spikes.shape[0] > MAX_RECOMPUTE_STEPS:
        return _backward_torch(grad_spikes, *args)
    return run_compiled(_backward_torch, grad_spikes, *args)


# ----------------------------------------------------------------------------- custom ops

_IMPLEMENTATIONS = {
    "triton": (_forward_triton, _backward_triton),
    "torch": (_forward_torch, _backward_torch),
    "compiled": (_forward_compiled, _backward_compiled),
}


@torch.library.custom_op("snnzoo::lif_forward", mutates_args=())
def _lif_forward_op(x: Tensor, v_in: Optional[Tensor], tau: float, v_threshold: float,
                    v_reset: Optional[float], decay_input: bool, surrogate: int, alpha: float,
                    detach_reset: bool, needs_grad: bool, implementation: str
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """(spikes [T, ...] in x.dtype, h [T, ...] fp32 when a long sequence needs it for the
    backward else empty, v after the last step fp32 when v_in is given else empty).
    surrogate, alpha and detach_reset only reach the backward, through the saved context."""
    return _forward_implementation(x, v_in, tau, v_threshold, v_reset, decay_input, surrogate,
                                   alpha, detach_reset, needs_grad, implementation)


def _forward_implementation(x, v_in, tau, v_threshold, v_reset, decay_input, surrogate, alpha,
                            detach_reset, needs_grad, implementation):
    forward, _ = _IMPLEMENTATIONS[implementation]
    return forward(x, v_in, tau, v_threshold, v_reset, decay_input, needs_grad)


@_lif_forward_op.register_fake
def _(x, v_in, tau, v_threshold, v_reset, decay_input, surrogate, alpha, detach_reset,
      needs_grad, implementation):
    h = x.new_empty(x.shape if _saves_h(x.shape[0], needs_grad) else (0,), dtype=torch.float32)
    v_out = x.new_empty(x.shape[1:] if v_in is not None else (0,), dtype=torch.float32)
    # contiguous, as every implementation returns them (empty_like would keep x's strides)
    return x.new_empty(x.shape), h, v_out


@torch.library.custom_op("snnzoo::lif_backward", mutates_args=())
def _lif_backward_op(grad_spikes: Tensor, saved: Tensor, v_in: Optional[Tensor],
                     grad_v_out: Optional[Tensor], x_dtype: torch.dtype, recompute: bool,
                     tau: float, v_threshold: float, v_reset: Optional[float],
                     decay_input: bool, surrogate: int, alpha: float, detach_reset: bool,
                     implementation: str) -> tuple[Tensor, Tensor]:
    """(dL/dx [T, ...] in x_dtype, dL/dv_in fp32 when v_in is given else empty).
    saved is x when recompute (h is recomputed from it), else the fp32 h of the forward."""
    grad_x, grad_v_in = _backward_implementation(
        grad_spikes, saved, v_in, grad_v_out, x_dtype, recompute, tau, v_threshold, v_reset,
        decay_input, surrogate, alpha, detach_reset, implementation)
    return grad_x, grad_v_in if grad_v_in is not None else _empty(saved)


def _backward_implementation(grad_spikes, saved, v_in, grad_v_out, x_dtype, recompute, tau,
                             v_threshold, v_reset, decay_input, surrogate, alpha, detach_reset,
                             implementation):
    _, backward = _IMPLEMENTATIONS[implementation]
    return backward(grad_spikes, saved, v_in, grad_v_out, x_dtype, recompute, tau, v_threshold,
                    v_reset, decay_input, surrogate, alpha, detach_reset)


@_lif_backward_op.register_fake
def _(grad_spikes, saved, v_in, grad_v_out, x_dtype, recompute, tau, v_threshold, v_reset,
      decay_input, surrogate, alpha, detach_reset, implementation):
    grad_v_in = saved.new_empty(saved.shape[1:] if v_in is not None else (0,), dtype=torch.float32)
    return saved.new_empty(saved.shape, dtype=x_dtype), grad_v_in


def _setup_context(ctx, inputs, output):
    x, v_in, *constants, needs_grad, implementation = inputs
    ctx.needs_grad = needs_grad
    if not needs_grad:
        return
    ctx.recompute = not _saves_h(x.shape[0], needs_grad)
    ctx.has_state = v_in is not None
    # Recomputing saves x itself (no new memory); long sequences save the fp32 h instead.
    ctx.save_for_backward(x if ctx.recompute else output[1], v_in)
    ctx.x_dtype = x.dtype
    ctx.constants = (*constants, implementation)


def _backward(ctx, grad_spikes, grad_h, grad_v_out, backward_op=_lif_backward_op):
    if not ctx.needs_grad:
        raise RuntimeError(
            "this LIF forward ran without keeping what its backward needs (no input required "
            "grad when it ran); run it again with requires_grad inputs under torch.enable_grad()")
    saved, v_in = ctx.saved_tensors
    grad_x, grad_v_in = backward_op(grad_spikes, saved, v_in,
                                    grad_v_out if ctx.has_state else None, ctx.x_dtype,
                                    ctx.recompute, *ctx.constants)
    return (grad_x, grad_v_in if ctx.has_state else None) + (None,) * 9


_lif_forward_op.register_autograd(_backward, setup_context=_setup_context)


class _NotDifferentiableAgain(torch.autograd.Function):
    """A gradient of the fused backward, which is computed without an autograd graph, tied to
    the tensors it came from (sources): a second backward that reaches it raises instead of
    silently treating it as a constant."""

    @staticmethod
    def forward(ctx, gradient, *sources):
        return gradient.clone()

    @staticmethod
    def backward(ctx, _):
        raise RuntimeError(
            "the LIF's fused surrogate backward (backend 'triton' or 'auto') cannot be "
            "differentiated again (double backward, create_graph=True); use backend='torch', the "
            "per-timestep reference, for higher-order gradients")


class _EagerLIF(torch.autograd.Function):
    """The custom op's forward and backward without the dispatcher: the same implementations,
    context and saved tensors, for eager calls. On the CPU the profiler put the dispatcher's
    share at about 0.1 ms per forward call and 0.3 ms per backward, which adds up in cells
    that call a neuron per edge and timestep. torch.compile traces the custom op instead
    for the Triton kernels, and this Function over the torch implementation on the CPU."""

    @staticmethod
    def forward(ctx, x, v_in, *arguments):
        output = _forward_implementation(x, v_in, *arguments)
        _setup_context(ctx, (x, v_in, *arguments), output)
        ctx.mark_non_differentiable(output[1])
        return output

    @staticmethod
    def backward(ctx, grad_spikes, grad_h, grad_v_out):
        if not torch.is_grad_enabled() or torch.compiler.is_compiling():
            return _backward(ctx, grad_spikes, grad_h, grad_v_out, _backward_implementation)
        # backward(create_graph=True): the fused backward has no graph, so its gradients are
        # tied to the tensors they came from, to raise if a second backward reaches them
        with torch.no_grad():
            gradients = _backward(ctx, grad_spikes, grad_h, grad_v_out, _backward_implementation)
        sources = [tensor for tensor in (grad_spikes, grad_v_out, *ctx.saved_tensors)
                   if tensor is not None and tensor.requires_grad]
        return tuple(_NotDifferentiableAgain.apply(gradient, *sources)
                     if gradient is not None and sources else gradient for gradient in gradients)


def _lif_forward(*arguments):
    """The neuron with autograd. Eager calls go through _EagerLIF. Under torch.compile the
    Triton kernels stay an opaque custom op, while on the CPU dynamo traces _EagerLIF over the
    torch implementation, forward and surrogate backward, so that inductor fuses the neuron
    with the layers around it (the op would be an opaque call to its own compiled code). Only
    float32 inputs (inductor may skip the rounding of a half-precision input that it fuses)
    and sequences short enough to unroll (MAX_RECOMPUTE_STEPS) are traced."""
    if not torch.compiler.is_compiling():
        return _EagerLIF.apply(*arguments)
    x, implementation = arguments[0], arguments[-1]
    if (implementation == "compiled" and x.dtype == torch.float32
            and x.shape[0] <= MAX_RECOMPUTE_STEPS):
        return _EagerLIF.apply(*arguments[:-1], "torch")
    return _lif_forward_op(*arguments)


# ----------------------------------------------------------------------------- reference


def _smooth_spike(u, alpha: float, surrogate: str):
    """The smooth function whose derivative is the surrogate gradient."""
    if surrogate == "atan":
        return torch.atan(math.pi / 2 * alpha * u) / math.pi + 0.5
    return torch.sigmoid(alpha * u)


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside forward (or the smooth function, for finite-difference checks), surrogate
    derivative backward: the spike of the autograd reference."""

    @staticmethod
    def forward(ctx, u, alpha, surrogate, smooth):
        ctx.save_for_backward(u)
        ctx.alpha, ctx.surrogate = alpha, surrogate
        return _smooth_spike(u, alpha, surrogate) if smooth else (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad_spike):
        (u,) = ctx.saved_tensors
        alpha = ctx.alpha
        if ctx.surrogate == "atan":
            grad = alpha / 2 / (1 + (math.pi / 2 * alpha * u) ** 2)
        else:
            sig = torch.sigmoid(alpha * u)
            grad = alpha * sig * (1 - sig)
        return grad_spike * grad, None, None, None


def _reference_step(x, v, params: LIFParams, smooth: bool = False):
    """One timestep of the neuron exactly as the module docstring writes it, with autograd."""
    reset_value = 0.0 if params.v_reset is None else params.v_reset
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    if params.decay_input:
        h = v + (x - (v - reset_value)) / params.tau
    else:
        h = v - (v - reset_value) / params.tau + x
    spike = _SurrogateSpike.apply(h - params.v_threshold, params.alpha, params.surrogate, smooth)
    spike_in_reset = spike.detach() if params.detach_reset else spike
    if params.v_reset is not None:
        v = h * (1.0 - spike_in_reset) + reset_value * spike_in_reset
    else:
        v = h - params.v_threshold * spike_in_reset
    return spike, v


def lif_step_reference(x: Tensor, v: Optional[Tensor], params: LIFParams):
    """One stateful step: returns (spikes in x.dtype, v fp32). v=None starts from rest."""
    if v is None:
        v = torch.full(x.shape, 0.0 if params.v_reset is None else params.v_reset,
                       device=x.device, dtype=torch.float32)
    spike, v = _reference_step(x, v, params)
    return spike.to(x.dtype), v


def lif_multistep_reference(x: Tensor, params: LIFParams, smooth: bool = False) -> Tensor:
    """The plain per-timestep PyTorch loop with an autograd surrogate (SpikingJelly's torch
    path, and how the SNASNet authors' code runs). x: [T, ...] -> spikes [T, ...].

    smooth=True replaces the Heaviside step by the smooth function whose derivative the
    surrogate is, so that finite differences can check the backward formula. float64 is
    computed in float64 (where rounding cannot move a membrane across the threshold)."""
    _check_time_major(x, allow_float64=True)
    v = torch.full(x.shape[1:], 0.0 if params.v_reset is None else params.v_reset,
                   device=x.device, dtype=torch.promote_types(x.dtype, torch.float32))
    spikes = []
    for x_t in x:
        spike, v = _reference_step(x_t, v, params, smooth)
        spikes.append(spike.to(x.dtype))
    return torch.stack(spikes)


# ----------------------------------------------------------------------------- functional API


def _check_time_major(x, allow_float64=False):
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(
            f"multi-step LIF expects a time-major input [T, ...] with at least 2 dimensions, got "
            f"shape {tuple(x.shape)}; add the time dimension (x.unsqueeze(0) for one step) or "
            f"use LIF.step for single-step input")
    if x.shape[0] == 0:
        raise ValueError(f"multi-step LIF got a sequence of 0 timesteps (shape {tuple(x.shape)}); "
                         f"the first dimension is time, T >= 1")
    supported = (torch.float32, torch.float16, torch.bfloat16) + ((torch.float64,) if allow_float64 else ())
    if x.dtype not in supported:
        raise ValueError(f"LIF input dtype {x.dtype} is unsupported; use float32, float16 or "
                         f"bfloat16 (float64 only with backend='torch', the reference: "
                         f"LIF(backend='torch'), or model.set_backend('torch') for a model)")


def _implementation(backend: str, x: Tensor) -> str:
    """The custom-op implementation behind a backend: Triton on CUDA, torch ops elsewhere."""
    if backend == "auto":
        return "triton" if x.is_cuda and triton is not None else "compiled"
    return "triton"


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def lif_multistep(x: Tensor, params: Optional[LIFParams] = None, backend: str = "auto") -> Tensor:
    """Spikes [T, ...] of a LIF neuron driven by x [T, ...], starting from rest.

    backend: "triton" (the fused kernels), "torch" (the per-timestep autograd reference), or
    "auto" (Triton for CUDA tensors, the torch implementation of the kernels otherwise).
    """
    params = params or LIFParams()
    check_backend(backend)
    _check_time_major(x, allow_float64=backend == "torch")
    if backend == "torch":
        return lif_multistep_reference(x, params)
    flat, order = flatten_in_memory_order(x)
    spikes, _, _ = _lif_forward(flat, None, *params.as_op_args(), _needs_grad(x),
                                _implementation(backend, x))
    return restore_order(spikes, x.shape, order)


def _checked_membrane(v: Optional[Tensor], x: Tensor) -> Optional[Tensor]:
    """v as the membrane of a step on x: its shape and device, in the membrane's dtype."""
    if v is None:
        return None
    if not isinstance(v, Tensor):
        raise TypeError(f"the membrane v must be a torch.Tensor or None, got {type(v).__name__}")
    if v.shape != x.shape:
        raise ValueError(f"membrane shape {tuple(v.shape)} does not match input shape "
                         f"{tuple(x.shape)}; call reset() before feeding a new shape")
    if v.device != x.device:
        raise ValueError(f"the membrane is on {v.device} but the input is on {x.device}; call "
                         f"reset() (or move the membrane) before moving the neuron's input")
    if not v.is_floating_point():
        raise ValueError(f"membrane dtype {v.dtype} is not a floating dtype; pass a float32 "
                         f"membrane, or None to start at rest")
    return v.to(torch.promote_types(x.dtype, torch.float32))


def lif_step(x: Tensor, v: Optional[Tensor], params: Optional[LIFParams] = None,
             backend: str = "auto") -> tuple[Tensor, Tensor]:
    """One stateful step: x [...] and membrane v [...] fp32 (None: at rest) -> (spikes, new v).
    Gradients flow through v, so T calls equal one multi-step call, values and gradients.
    A membrane of another floating dtype is read as fp32 (float64 with backend="torch" and
    float64 x, where the reference computes in float64)."""
    params = params or LIFParams()
    check_backend(backend)
    if isinstance(x, Tensor) and x.dim() == 0:
        raise ValueError("LIF.step expects one step of a layer's input, [...] with at least one "
                         "dimension (x.reshape(1) for a single neuron), got a 0-d tensor")
    _check_time_major(x.unsqueeze(0) if isinstance(x, Tensor) else x,
                      allow_float64=backend == "torch")
    v = _checked_membrane(v, x)
    if backend == "torch":
        return lif_step_reference(x, v, params)
    flat, order = flatten_in_memory_order(x.unsqueeze(0))
    if v is None:
        v_flat = torch.full(flat.shape[1:], 0.0 if params.v_reset is None else params.v_reset,
                            device=x.device, dtype=torch.float32)
    else:
        v_flat = v.permute(*(dim - 1 for dim in order)).reshape(-1)
    spikes, _, v_next = _lif_forward(flat, v_flat, *params.as_op_args(),
                                        _needs_grad(x, v), _implementation(backend, x))
    shape = (1, *x.shape)
    # squeeze, not [0]: indexing's backward would allocate the gradient in the default layout
    return (restore_order(spikes, shape, order).squeeze(0),
            restore_order(v_next.unsqueeze(0), shape, order).squeeze(0))
