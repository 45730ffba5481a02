"""The LIF neuron's PyTorch reference: the per-timestep loop with an autograd surrogate, as
SpikingJelly's torch path and the SNASNet authors' code run it. Tests and benchmarks compare
the fused paths against it; backend="torch" runs it, float64 included."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from .params import LIFParams, _check_time_major

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
    """One timestep of the neuron exactly as the package docstring (snnzoo.kernels.lif) writes
    it, with autograd."""
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
