"""The LIF neuron's two kernels written with torch ops, for devices Triton does not compile for,
and their compiled wrappers.

Like the Triton kernels they loop over time without an autograd graph and keep one fp32 tensor
(h). On the CPU "auto" runs them through torch.compile, which fuses the unrolled time loop into
one C++ loop per pass; SNNZOO_COMPILE_CPU=0 keeps them eager.
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from .._compiled import run_compiled
from .params import MAX_RECOMPUTE_STEPS, SURROGATES, _empty, _saves_h

def _run_neuron_torch(x, v_in, tau: float, v_threshold: float, v_reset: Optional[float],
                      decay_input: bool, keep_h: bool):
    """(spikes, list of T h tensors or None, final v) by the update rule of the package
    docstring (snnzoo.kernels.lif). h stays a list: stacked, inductor would write it out
    instead of fusing."""
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
    MAX_RECOMPUTE_STEPS run eagerly."""
    if x.shape[0] > MAX_RECOMPUTE_STEPS:
        return _forward_torch(x, *args)
    return run_compiled(_forward_torch, x, *args)


def _backward_compiled(grad_spikes, *args):
    if grad_spikes.shape[0] > MAX_RECOMPUTE_STEPS:
        return _backward_torch(grad_spikes, *args)
    return run_compiled(_backward_torch, grad_spikes, *args)
