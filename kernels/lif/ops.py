"""The LIF neuron as ``torch.library`` custom ops, with its autograd formula.

``_IMPLEMENTATIONS`` is the one dispatch table between the Triton kernels and their torch
implementation (eager, or compiled on the CPU). The forward and backward ops, their fake
(meta) implementations and the autograd registration follow; then ``_EagerLIF``, the same
forward and backward without the dispatcher for eager calls, and ``_lif_forward``, which picks
between the two.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .params import MAX_RECOMPUTE_STEPS, _empty, _saves_h
from .torch_kernels import _backward_compiled, _backward_torch, _forward_compiled, _forward_torch
from .triton_kernels import _backward_triton, _forward_triton

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
    context and saved tensors, for eager calls. The dispatcher costs a fixed time per call,
    forward and backward, which adds up in cells that call a neuron per edge and timestep.
    torch.compile traces the custom op instead for the Triton kernels, and this Function over
    the torch implementation on the CPU."""

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
