"""Measuring a spiking model: accuracy, loss, firing rate of every LIF layer, spikes per image,
and synaptic operations and energy per layer (snnzoo.energy)."""

from __future__ import annotations

import contextlib
import warnings
from collections import defaultdict
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from snnzoo.energy import EnergyCosts, EnergyCounter
from snnzoo.layers import LIF
from snnzoo.precision import computing_in, precision_context

__all__ = ["SpikeCounter", "evaluate", "autocast"]


class SpikeCounter:
    """Counts spikes of every LIF module of a model while active (a context manager).

    firing_rates(): per layer name, spikes / (neurons x timesteps x images);
    firing_rate(): the same over all layers together;
    spikes_per_image(): all spikes of all layers and steps, per image.
    """

    def __init__(self, model: nn.Module):
        self.layers = {module: name for name, module in model.named_modules()
                       if isinstance(module, LIF)}
        self.spikes = defaultdict(float)
        self.neuron_steps = defaultdict(int)
        self.images = 0
        self._handles = []

    def _record(self, lif, spikes, multistep):
        name = self.layers[lif]
        # counted, not summed: a bfloat16 sum rounds counts over 256
        self.spikes[name] += int(torch.count_nonzero(spikes.detach()))
        self.neuron_steps[name] += spikes.numel()

    def __enter__(self):
        self._handles = [lif.register_spike_hook(self._record) for lif in self.layers]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()

    def firing_rates(self) -> dict[str, float]:
        return {name: self.spikes[name] / self.neuron_steps[name]
                for name in self.layers.values() if self.neuron_steps[name]}

    def firing_rate(self) -> float:
        return sum(self.spikes.values()) / max(sum(self.neuron_steps.values()), 1)

    def spikes_per_image(self) -> float:
        return sum(self.spikes.values()) / max(self.images, 1)


def autocast(device: torch.device, enabled: bool):
    """Deprecated: snnzoo.precision.precision_context("bf16" if enabled else "fp32", device)."""
    warnings.warn("snnzoo.evaluate.autocast is deprecated and will be removed in the next "
                  "release; use snnzoo.precision.precision_context(precision, device)",
                  DeprecationWarning, stacklevel=2)
    return precision_context("bf16" if enabled else "fp32", device)


def _precision_of(precision: Union[str, bool, None]) -> Optional[str]:
    """evaluate's precision; True and False are the former amp flag (deprecated)."""
    if isinstance(precision, bool):
        warnings.warn("evaluate(..., amp) is deprecated and will be removed in the next release; "
                      "pass precision='bf16' or 'fp32'", DeprecationWarning, stacklevel=3)
        return "bf16" if precision else "fp32"
    return precision


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device,
             precision: Union[str, bool, None] = None, count_spikes: bool = False,
             description: str = "eval", *, amp: Optional[bool] = None, energy: bool = False,
             energy_costs: EnergyCosts = EnergyCosts()) -> dict:
    """Top-1/top-5 accuracy (%), mean cross-entropy, and with count_spikes the firing rates
    and spikes per image, over every batch of loader, computed in `precision` ("fp32",
    "bf16" or "bf16x3", see snnzoo.precision; None: as the model is set, float32 for models
    without set_precision; amp=True is the deprecated spelling of "bf16"). Leaves the model
    in its mode and precision.

    With energy (a SNASNet; implies count_spikes), result["energy"] holds per layer and in
    total, per image, the synaptic operations, MACs and estimated energy at energy_costs,
    beside the same network as an ANN's (snnzoo.energy.EnergyCounter.report), and the firing
    rate of all LIF neurons together."""
    precision = _precision_of(precision if amp is None else amp)
    was_training = model.training
    model.eval()
    total = correct1 = correct5 = 0
    loss_sum = 0.0
    count_spikes = count_spikes or energy
    counter = SpikeCounter(model)
    operations = EnergyCounter(model) if energy else None
    with counter if count_spikes else contextlib.nullcontext(), \
            operations if energy else contextlib.nullcontext(), \
            computing_in(model, precision, device):
        for images, labels in tqdm(loader, desc=description, leave=False, dynamic_ncols=True):
            images, labels = images.to(device), labels.to(device)
            logits = model(images).float()
            loss_sum += float(F.cross_entropy(logits, labels, reduction="sum"))
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            correct1 += int((top[:, 0] == labels).sum())
            correct5 += int((top == labels[:, None]).any(dim=1).sum())
            total += labels.numel()
            counter.images += labels.numel()
    model.train(was_training)
    result = dict(images=total, top1=100.0 * correct1 / max(total, 1),
                  top5=100.0 * correct5 / max(total, 1), loss=loss_sum / max(total, 1))
    if count_spikes:
        result.update(firing_rates=counter.firing_rates(),
                      spikes_per_image=counter.spikes_per_image())
    if energy:
        result["energy"] = dict(operations.report(energy_costs), firing_rate=counter.firing_rate())
    return result
