"""Synaptic operations and estimated energy of SNASNet, per layer, counted while it runs.

Every convolution and Linear layer is counted where it computes (forward hooks), once per
call, so that the counts are what the network computed, step by step or all steps at once:

- a layer fed by spikes (the cells' edge convolutions, the transition's convolution, the
  classifier's last Linear) does one accumulate (AC) per spike and output it reaches: a
  synaptic operation (SynOp). A spike's fan-out is exact at the borders: a spike at a corner
  of a 3x3 convolution with zero padding reaches 4 output positions, not 9;
- a layer fed by real values (the stem's convolution, which sees pixels, once per image; the
  classifier's first Linear, which sees pooled spikes) does its dense multiply-accumulates
  (MACs), as such a layer computes them: every output's full kernel, padding included.

BatchNorm, pooling, biases, neuron updates and the sums of a cell's nodes are not counted
(BatchNorm as if folded into the convolutions). In eval mode a backward cell skips its last
step's feedback convolutions, which reach no later step: they are not counted either. The
energy is SynOps x ac_pj + MACs x mac_pj (45 nm, Horowitz 2014). The same network as an ANN
(ReLU for LIF, T = 1) runs every layer once, densely, but the feedback convolutions, which at
T = 1 reach nothing: its MACs x mac_pj. docs/energy.md has the conventions and the comparison
with SpikingJelly 2.0's counters.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from snnzoo._options import number_at_least
from snnzoo.models.cells import conv_output_size
from snnzoo.models.snasnet import SNASNet

__all__ = ["AC_PJ", "MAC_PJ", "EnergyCosts", "EnergyCounter", "synaptic_layers",
           "spike_counts", "conv_synops", "dense_macs", "add_energy_options", "energy_costs_of"]

AC_PJ = 0.9
"""pJ of one 32-bit float addition in 45 nm CMOS (Horowitz, ISSCC 2014)."""
MAC_PJ = 4.6
"""pJ of one 32-bit float multiplication (3.7) and addition (0.9) in 45 nm (Horowitz 2014)."""
SPIKES, VALUES = "spikes", "values"  # what a layer reads


@dataclass(frozen=True)
class EnergyCosts:
    """Energy of one accumulate (ac_pj) and one multiply-accumulate (mac_pj), in picojoules."""

    ac_pj: float = AC_PJ
    mac_pj: float = MAC_PJ

    def __post_init__(self):
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}={value!r} is not an energy: give a finite number of "
                                 f"picojoules, at least 0 (45 nm: ac_pj={AC_PJ}, "
                                 f"mac_pj={MAC_PJ})")


@dataclass(frozen=True)
class SynapticLayer:
    """A layer that energy counts: what it reads (SPIKES or VALUES) and whether the same
    network as an ANN computes it (not a backward cell's feedback convolution)."""

    module: nn.Module
    reads: str
    in_ann: bool


def synaptic_layers(model: nn.Module) -> dict[str, SynapticLayer]:
    """Every convolution and Linear layer of a SNASNet (fused by timm's reparameterize_model
    or not), by name in the model's order: the stem's convolution and pre_fc read values,
    the others spikes."""
    if not isinstance(model, SNASNet):
        raise TypeError(f"energy counts know SNASNet's layers (which read spikes, which read "
                        f"values); got a {type(model).__name__}. Count a model of "
                        f"snnzoo.create_model, before torch.compile")
    feedback = {f"{cell}.edges.{source}_{target}"
                for cell in ("cell1", "cell2")
                for source, target, _ in getattr(model, cell).genotype.feedback_edges}
    layers = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        reads = VALUES if name in ("stem.0", "pre_fc") else SPIKES
        in_ann = name.rpartition(".")[0] not in feedback
        layers[name] = SynapticLayer(module, reads, in_ann)
    return layers


def _computed(x: Tensor) -> Tensor:
    """The images a layer computed from x: [T, B, ...] as T*B of them, a static input
    repeated over T (stride 0, which snnzoo's layers compute once) as B."""
    if x.dim() == 5:
        return x[0] if x.stride(0) == 0 else x.flatten(0, 1)
    return x


def _reach(size: int, out_size: int, kernel: int, stride: int, padding: int,
           dilation: int) -> Tensor:
    """For each input position along one axis, how many (output position, kernel tap) pairs
    read it: the outputs that a spike there reaches (zero padding reads no input)."""
    taps = (torch.arange(out_size)[:, None] * stride - padding
            + torch.arange(kernel)[None, :] * dilation).flatten()
    return torch.bincount(taps[(taps >= 0) & (taps < size)], minlength=size)


def spike_counts(spikes: Tensor, keep: int, what: str = "the input") -> Tensor:
    """How many spikes each position of the last `keep` dimensions of spikes holds, summed
    over the others (int64); a ValueError naming `what` if spikes holds anything but 0 and 1."""
    others = tuple(range(spikes.dim() - keep))
    summed = math.prod(spikes.shape[:len(others)])
    # float32 sums of 0 and 1 are exact below 2**24 (and much faster than counting nonzeros)
    exact = torch.float32 if summed < 2 ** 24 else torch.float64
    counts = spikes.sum(dim=others, dtype=exact)
    low, high = torch.aminmax(spikes)
    # values within [0, 1] sum to their count of nonzeros only where every nonzero one is 1
    if low < 0 or high > 1 or int(counts.sum(dtype=torch.float64)) != torch.count_nonzero(spikes):
        bad = spikes[(spikes != 0) & (spikes != 1)][0].item()
        raise ValueError(f"{what} should be spikes (0 or 1) but holds {bad}: its synaptic "
                         f"operations cannot be counted. Count a SNASNet whose layers are as "
                         f"snnzoo builds them")
    return counts.to(torch.int64)


def conv_synops(conv: nn.Conv2d, spikes: Tensor) -> int:
    """Accumulates that conv does for spikes [N, C, H, W] (each spike times the outputs it
    reaches, exact at the borders) when it computes only on spikes."""
    return _reached(conv, spike_counts(spikes, 2))


def _reached(conv: nn.Conv2d, per_position: Tensor) -> int:
    """conv_synops from the spikes at each input position [H, W]."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ValueError(f"energy counts take convolutions with zero padding given in pixels; "
                         f"{conv} has padding={conv.padding!r}, padding_mode="
                         f"{conv.padding_mode!r}")
    height, width = per_position.shape
    out_height, out_width = conv_output_size(conv, (height, width))
    rows = _reach(height, out_height, conv.kernel_size[0], conv.stride[0], conv.padding[0],
                  conv.dilation[0])
    columns = _reach(width, out_width, conv.kernel_size[1], conv.stride[1], conv.padding[1],
                     conv.dilation[1])
    # every input channel reaches out_channels / groups output channels
    reached = int((rows[:, None] * per_position.cpu() * columns[None, :]).sum())
    return reached * (conv.out_channels // conv.groups)


def dense_macs(layer: nn.Module, output: Tensor) -> int:
    """Multiply-accumulates per image of a convolution or Linear layer computed densely, for
    one output of it (one image's [C, H, W], or one row of a Linear's)."""
    if isinstance(layer, nn.Conv2d):
        per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        return per_output * math.prod(output.shape[-3:])
    return layer.in_features * layer.out_features


class EnergyCounter:
    """Counts the synaptic operations and MACs of every layer of a SNASNet while active (a
    context manager), and the images it sees.

    synops[name], macs[name]: integers over all images; ann_macs[name]: per image, dense,
    0 for the feedback convolutions; report(costs) gives them per image with the energy, the
    ANN's and the firing rate of each spike-fed layer's input.
    """

    def __init__(self, model: nn.Module):
        self.layers = synaptic_layers(model)
        self.model = model
        self.synops = {name: 0 for name in self.layers}
        self.macs = {name: 0 for name in self.layers}
        self.input_spikes = {name: 0 for name in self.layers}
        self.input_elements = {name: 0 for name in self.layers}
        self.ann_macs: dict[str, Optional[int]] = {name: None for name in self.layers}
        self.images = 0
        self._handles = []

    def _count_images(self, model, args):
        x = args[0]
        self.images += x.shape[1] if x.dim() == 5 else x.shape[0]

    def _hook(self, name: str, layer: SynapticLayer):
        def count(module, inputs, output):
            x, out = _computed(inputs[0].detach()), _computed(output.detach())
            per_image = dense_macs(module, out)
            if self.ann_macs[name] is None:
                self.ann_macs[name] = per_image if layer.in_ann else 0
            linear = isinstance(module, nn.Linear)
            if layer.reads == VALUES:
                rows = out.numel() // (out.shape[-1] if linear else math.prod(out.shape[-3:]))
                self.macs[name] += rows * per_image
                return
            counts = spike_counts(x, 1 if linear else 2, f"the input of {name}")
            spikes = int(counts.sum())
            self.input_spikes[name] += spikes
            self.input_elements[name] += x.numel()
            if linear:
                self.synops[name] += spikes * module.out_features
            else:
                self.synops[name] += _reached(module, counts)
        return count

    def __enter__(self):
        self._handles = [self.model.register_forward_pre_hook(self._count_images)]
        self._handles += [layer.module.register_forward_hook(self._hook(name, layer))
                          for name, layer in self.layers.items()]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def report(self, costs: EnergyCosts = EnergyCosts()) -> dict:
        """Per image: each layer's reads, synops, macs, input_firing_rate (spikes per input
        element, None for value-fed or uncalled layers), energy_pj, ann_macs, ann_energy_pj;
        the totals of those; the costs used."""
        if self.images == 0 or any(macs is None for name, macs in self.ann_macs.items()
                                   if self.layers[name].in_ann):
            raise ValueError("nothing to report: run the model on at least one image within "
                             "the counter (with EnergyCounter(model): model(images))")
        layers = {}
        for name, layer in self.layers.items():
            synops, macs = self.synops[name] / self.images, self.macs[name] / self.images
            ann_macs = self.ann_macs[name] or 0
            elements = self.input_elements[name]
            layers[name] = dict(
                reads=layer.reads, synops=synops, macs=macs,
                input_firing_rate=self.input_spikes[name] / elements if elements else None,
                energy_pj=synops * costs.ac_pj + macs * costs.mac_pj,
                ann_macs=ann_macs, ann_energy_pj=ann_macs * costs.mac_pj)
        totals = {key: sum(layer[key] for layer in layers.values())
                  for key in ("synops", "macs", "energy_pj", "ann_macs", "ann_energy_pj")}
        return dict(**totals, ac_pj=costs.ac_pj, mac_pj=costs.mac_pj, images=self.images,
                    layers=layers)


def add_energy_options(parser: argparse.ArgumentParser) -> None:
    """--energy-ac-pj and --energy-mac-pj, the costs of the energy estimate (energy_costs_of)."""
    picojoules = number_at_least(0.0, float)
    parser.add_argument("--energy-ac-pj", type=picojoules, default=AC_PJ, metavar="PJ",
                        help=f"energy of one accumulate, a synaptic operation, in picojoules "
                             f"(default: {AC_PJ}, a 32-bit float addition in 45 nm)")
    parser.add_argument("--energy-mac-pj", type=picojoules, default=MAC_PJ, metavar="PJ",
                        help=f"energy of one multiply-accumulate in picojoules (default: "
                             f"{MAC_PJ}, 32-bit float in 45 nm)")


def energy_costs_of(args: argparse.Namespace) -> EnergyCosts:
    return EnergyCosts(args.energy_ac_pj, args.energy_mac_pj)
