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

This package holds one module per job, each read top to bottom:

- ``params``: ``LIFParams`` (the validated constants), the surrogate ids, the input check and
  the rule of what the forward saves for the backward;
- ``triton_kernels``: the ``@triton.jit`` device functions and kernels, then their launchers;
- ``torch_kernels``: the torch implementation of the same two kernels (the CPU path) and its
  compiled wrappers;
- ``ops``: the ``torch.library`` custom ops with their autograd formula and the dispatch
  between the implementations;
- ``reference``: the per-timestep autograd reference;

and here the functional API, ``lif_multistep`` and ``lif_step``, which re-exports the public
names of the others.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from .._layout import flatten_in_memory_order, restore_order
from .._triton import BACKENDS, check_backend, triton, triton_available
from .ops import _lif_forward
from .params import (DEFAULT_ALPHA, MAX_RECOMPUTE_STEPS, SURROGATES,  # noqa: F401 (re-exported)
                     LIFParams, _check_time_major)
from .reference import lif_multistep_reference, lif_step_reference

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
