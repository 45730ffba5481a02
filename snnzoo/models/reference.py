"""The SNASNet authors' network, step by step: the reference snnzoo's SNASNet must equal.

A reimplementation (not a copy) of the authors' ``model_snn.SNASNet`` and
``search_cell_snn.Neuronal_Cell[_backward]``: every layer runs once per timestep in the
authors' order, the LIF neurons are snnzoo's autograd reference stepped one step per call,
and the module tree has the authors' names, so that ``state_dict()`` has the key layout of
their released checkpoints (``stem.0.weight``, ``cell1.cell_architecture.0.1.weight``, ...).
It serves the tests, the checkpoint converter's checks and the benchmarks' eager baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from snnzoo.layers import LIF

from .genotype import NUM_NODES, Genotype, parse_genotype

__all__ = ["AuthorsSNASNet", "excite", "forward_slots", "feedback_slots"]


def forward_slots():
    """(from, to) of the authors' cell_architecture entries, in order."""
    return [(i, j) for j in range(1, NUM_NODES) for i in range(j)]


def feedback_slots():
    """(from, to) of the authors' cell_architecture_back entries, in order."""
    return [(i, j) for j in range(NUM_NODES - 1) for i in range(j + 1, NUM_NODES)]


class _StepLIF(LIF):
    """One call, one timestep (the authors' stateful LIFNode)."""

    def forward(self, x: Tensor) -> Tensor:
        return self.step(x)


class _Zero(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x * 0.0


class _StepDropout(nn.Module):
    """One mask per forward, drawn at the first step and reused (SpikingJelly's Dropout)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.mask = None

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        if self.mask is None:
            self.mask = F.dropout(torch.ones_like(x), self.p, training=True)
        return x * self.mask


def _op(op: int, channels: int, neuron: dict) -> nn.Module:
    if op == 0:
        return _Zero()
    if op == 1:
        return nn.Identity()
    if op == 4:
        return nn.AvgPool2d(3, stride=1, padding=1)
    kernel = 1 if op == 2 else 3
    return nn.Sequential(_StepLIF(**neuron),
                         nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(channels))


class _AuthorsCell(nn.Module):
    def __init__(self, genotype: Genotype, channels: int, neuron: dict):
        super().__init__()
        matrix = genotype.matrix
        self.backward_cell = genotype.cell == "backward"
        self.cell_architecture = nn.ModuleList(
            _op(matrix[i][j], channels, neuron) for i, j in forward_slots())
        if self.backward_cell:
            self.cell_architecture_back = nn.ModuleList(
                _op(matrix[i][j], channels, neuron) for i, j in feedback_slots())
        self.last = [0.0, 0.0, 0.0]

    def forward(self, x_in: Tensor) -> Tensor:
        f, last = self.cell_architecture, self.last
        if not self.backward_cell:
            x1 = f[0](x_in)
            x2 = f[1](x_in) + f[2](x1)
            return f[3](x_in) + f[4](x1) + f[5](x2)
        b = self.cell_architecture_back
        in0 = x_in + last[0]
        x1 = f[0](in0)
        in1 = x1 + last[1]
        x2 = f[1](in0) + f[2](in1)
        in2 = x2 + last[2]
        x3 = f[3](in0) + f[4](in1) + f[5](in2)
        self.last = [b[0](in1) + b[1](in2) + b[2](x3), b[3](in2) + b[4](x3), b[5](x3)]
        return x3


class AuthorsSNASNet(nn.Module):
    """The authors' network for a genotype; arguments as snnzoo's SNASNet."""

    def __init__(self, genotype="0302 0030 3003 0000", cell="backward", width=128,
                 second_pool=2, num_classes=100, neurons_per_class=5, classifier_width=1024,
                 in_chans=3, img_size=32, stem_stride=1, timesteps=5, tau=4.0 / 3.0,
                 v_threshold=1.0, drop_rate=0.5, head_init_std=0.01, backend="torch"):
        super().__init__()
        genotype = parse_genotype(genotype, cell)
        neuron = dict(tau=tau, v_threshold=v_threshold, v_reset=0.0, surrogate="atan",
                      alpha=2.0, detach_reset=True, backend=backend)
        self.timesteps = timesteps
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(width))
        self.cell1 = _AuthorsCell(genotype, width, neuron)
        self.downconv1 = nn.Sequential(nn.BatchNorm2d(width), _StepLIF(**neuron),
                                       nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
                                       nn.BatchNorm2d(2 * width))
        self.resdownsample1 = nn.AvgPool2d(2, 2)
        self.cell2 = _AuthorsCell(genotype, 2 * width, neuron)
        self.last_act = nn.Sequential(nn.BatchNorm2d(2 * width), _StepLIF(**neuron))
        self.resdownsample2 = nn.AvgPool2d(second_pool, second_pool)
        height, width_px = (img_size, img_size) if isinstance(img_size, int) else img_size
        feature_size = (height // (stem_stride * 2 * second_pool)) * (width_px // (stem_stride * 2 * second_pool))
        self.classifier = nn.Sequential(
            _StepDropout(drop_rate),
            nn.Linear(2 * width * feature_size, classifier_width, bias=False),
            _StepLIF(**neuron),
            nn.Linear(classifier_width, num_classes * neurons_per_class))
        self.boost = nn.AvgPool1d(neurons_per_class, neurons_per_class)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=2)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, head_init_std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    rest_on_call = True
    """False: a call starts from the membranes and dropout mask that the last one left, as the
    authors' search runs its networks (it never calls reset_net); the cells' feedback is
    cleared on every call either way (their neuron_init)."""

    def _rest(self):
        for module in self.modules():
            if isinstance(module, LIF) and self.rest_on_call:
                module.reset()
            elif isinstance(module, _StepDropout) and self.rest_on_call:
                module.mask = None
            elif isinstance(module, _AuthorsCell):
                module.last = [0.0, 0.0, 0.0]

    def forward(self, x: Tensor) -> Tensor:
        self._rest()
        static = self.stem(x) if x.dim() == 4 else None
        steps = self.timesteps if x.dim() == 4 else x.shape[0]
        votes = 0.0
        for t in range(steps):
            h = self.cell1(static if static is not None else self.stem(x[t]))
            h = self.resdownsample1(self.downconv1(h))
            h = self.resdownsample2(self.last_act(self.cell2(h)))
            h = self.classifier(h.view(h.shape[0], -1))
            votes = votes + self.boost(h.unsqueeze(1)).squeeze(1)
        return votes / steps


@torch.no_grad()
def excite(model: nn.Module, seed: int = 0) -> nn.Module:
    """Draw BatchNorm statistics and affines, and Linear weights, so that every layer of an
    untrained network spikes through to its output (the authors' init leaves it silent in
    eval mode): networks compared on it (tests, benchmarks) agree or differ visibly."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(tensor, low, high):
        tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)

    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            uniform(module.running_mean, -0.5, 0.5)
            uniform(module.running_var, 0.5, 2.0)
            uniform(module.weight, 0.8, 2.0)
            uniform(module.bias, 0.0, 0.5)
        elif isinstance(module, nn.Linear):
            module.weight.copy_(torch.randn(module.weight.shape, generator=generator)
                                * (3.0 / module.in_features ** 0.5))
    return model
