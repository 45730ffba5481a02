"""SNASNet: the spiking network of Kim et al., "Neural Architecture Search for Spiking Neural
Networks" (ECCV 2022, arXiv:2201.10355), as timm model entrypoints.

The macro network (the authors' ``model_snn.SNASNet``): a stem conv3x3 + BN computed once on
the static image (direct encoding), then per timestep: cell 1, a transition (BN, LIF, conv3x3
to twice the width, BN, avgpool 2), cell 2, BN + LIF, avgpool (``second_pool``), and a
classifier (dropout with one mask for all steps, Linear, LIF, Linear) whose output neurons
vote in groups, one group per class; the logits are the vote averaged over T. Everything
outside the cells runs all T steps at once on CUDA; on the CPU the transition and the final
BN + LIF run step by step through their layers (SeqSequential), which keeps a step in cache.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn
from timm.models import generate_default_cfgs, register_model
from timm.layers import to_2tuple

from snnzoo.data import DATASETS
from snnzoo.layers import LIF
from snnzoo.precision import DEFAULT_PRECISION, check_precision, precision_context

from ._builder import build_snasnet
from ._pretrained import SNASNetPretrainedCfg
from .cells import (ConvBNSequential, SeqAvgPool2d, SeqBatchNorm2d, SeqConv2d, SeqSequential,
                    SharedDropout, SNASCell)
from .genotype import Genotype, parse_genotype

__all__ = ["SNASNet", "SNASNetPretrainedCfg"]


class SNASNet(nn.Module):
    """SNASNet for [B, C, H, W] static images or [T, B, C, H, W] sequences (event data).

    Args:
        genotype: the cell's connection matrix, e.g. "0303 0030 2002 0200" (see genotype.py).
        cell: "backward" (feedback edges allowed) or "forward".
        width: channels of cell 1; cell 2 has twice as many.
        second_pool: kernel and stride of the avgpool after cell 2 (2, or 4 for CIFAR-10).
        num_classes: classes; the classifier has num_classes * neurons_per_class outputs.
        neurons_per_class: output neurons voting for each class (population coding).
        classifier_width: hidden LIF neurons of the classifier.
        in_chans: input channels.
        img_size: spatial size of the images.
        stem_stride: stride of the stem's convolution.
        timesteps: T for static images (a sequence input brings its own T).
        tau: the LIF neurons' time constant (hard reset to 0, atan surrogate).
        v_threshold: the LIF neurons' firing threshold.
        drop_rate: classifier dropout (one mask per forward, shared by all steps).
        head_init_std: std of the normal init of the classifier's Linear layers (the
            authors' 0.01; larger values let a small network's classifier spike at the start).
        backend: LIF backend, "auto", "triton" or "torch" (see snnzoo.layers.LIF).
    """

    def __init__(self, genotype: Union[str, Genotype] = "0302 0030 3003 0000",
                 cell: str = "backward", width: int = 128, second_pool: int = 2,
                 num_classes: int = 100, neurons_per_class: int = 5, classifier_width: int = 1024,
                 in_chans: int = 3, img_size: int = 32, stem_stride: int = 1, timesteps: int = 5,
                 tau: float = 4.0 / 3.0, v_threshold: float = 1.0, drop_rate: float = 0.5,
                 head_init_std: float = 0.01, backend: str = "auto"):
        super().__init__()
        for name, value in dict(width=width, second_pool=second_pool, timesteps=timesteps,
                                neurons_per_class=neurons_per_class, in_chans=in_chans,
                                classifier_width=classifier_width, stem_stride=stem_stride).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        img_size = tuple(to_2tuple(img_size))
        feature_size = [side // (stem_stride * 2 * second_pool) for side in img_size]
        if min(feature_size) < 1:
            raise ValueError(f"img_size={img_size} is too small for stem_stride={stem_stride} and "
                             f"second_pool={second_pool}: nothing is left after pooling")
        self.genotype_spec = parse_genotype(genotype, cell)
        self.timesteps = timesteps
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.neurons_per_class = neurons_per_class
        self.num_features = 2 * width
        self.head_hidden_size = classifier_width
        self.drop_rate = drop_rate
        self.check_finite = True  # refuse inputs with NaN or infinity (see _encode)
        self.precision = DEFAULT_PRECISION  # see set_precision
        self.model_args = dict(genotype=str(self.genotype_spec), cell=cell, width=width,
                               second_pool=second_pool, neurons_per_class=neurons_per_class,
                               classifier_width=classifier_width,
                               img_size=img_size[0] if img_size[0] == img_size[1] else list(img_size),
                               stem_stride=stem_stride, timesteps=timesteps, tau=tau,
                               v_threshold=v_threshold, drop_rate=drop_rate,
                               head_init_std=head_init_std)
        neuron = dict(tau=tau, v_threshold=v_threshold, v_reset=0.0, surrogate="atan",
                      alpha=2.0, detach_reset=True, backend=backend)

        self.stem = ConvBNSequential(
            SeqConv2d(in_chans, width, 3, stride=stem_stride, padding=1, bias=False),
            SeqBatchNorm2d(width))
        self.cell1 = SNASCell(self.genotype_spec, width, neuron)
        self.transition = ConvBNSequential(
            SeqBatchNorm2d(width), LIF(**neuron),
            SeqConv2d(width, 2 * width, 3, padding=1, bias=False), SeqBatchNorm2d(2 * width),
            SeqAvgPool2d(2, 2))  # reparameterize_model folds conv, BN and pool into one conv
        self.cell2 = SNASCell(self.genotype_spec, 2 * width, neuron)
        self.final_act = SeqSequential(SeqBatchNorm2d(2 * width), LIF(**neuron))
        self.pool2 = SeqAvgPool2d(second_pool, second_pool)
        self.head_drop = SharedDropout(drop_rate)
        self.pre_fc = nn.Linear(2 * width * feature_size[0] * feature_size[1], classifier_width,
                                bias=False)
        self.pre_lif = LIF(**neuron)
        self.head_init_std = head_init_std
        self.fc = self._make_fc(num_classes)
        self._init_weights()

    @property
    def genotype(self) -> str:
        return str(self.genotype_spec)

    def _make_fc(self, num_classes: int) -> nn.Module:
        if num_classes <= 0:
            return nn.Identity()
        return nn.Linear(self.head_hidden_size, num_classes * self.neurons_per_class)

    def _init_weights(self):
        # The authors' initialisation: kaiming_uniform(a=2) convs, BN 1/0, Linear N(0, 0.01).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=2)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, self.head_init_std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def set_backend(self, backend: str) -> "SNASNet":
        """Switch every LIF neuron to backend ("auto", "triton" or "torch")."""
        for module in self.modules():
            if isinstance(module, LIF):
                module.backend = backend
        return self

    def set_precision(self, precision: str) -> "SNASNet":
        """Compute in `precision` (see snnzoo.precision): "fp32" (the default, exact to the
        authors' network); "bf16" (convolutions and linear layers in bfloat16 under
        torch.autocast on the input's device, the neurons' membranes in float32, float32
        logits; forward() runs as under the user's own torch.autocast(..., torch.bfloat16));
        "bf16x3" (float32 fidelity on GPU tensor cores: outside autograd, every convolution
        whose input is spikes runs in three bfloat16 weight limbs, snnzoo.kernels.spike_conv;
        the stem, which sees pixels, and training stay float32)."""
        self.precision = check_precision(precision)
        for module in self.modules():  # every convolution after a neuron: all but the stem's
            if isinstance(module, SeqConv2d) and module is not self.stem[0]:
                module.spike_limbs = precision == "bf16x3"
        return self

    def set_by_step(self, by_step: Optional[bool]) -> "SNASNet":
        """How layers outside recurrences run a sequence: True one timestep at a time through
        each chain of layers (and forward cells step by step), False each layer on all T steps
        at once (forward hooks on neurons and cell edges then fire), None (the default) by step
        on the CPU, where a step then stays in cache, and at once elsewhere. The same results
        either way; backward cells always run step by step."""
        if by_step not in (None, True, False):
            raise ValueError(f"by_step={by_step!r} must be True, False or None (by device)")
        for module in self.modules():
            if isinstance(module, (SeqSequential, SNASCell)):
                module.by_step = by_step
        return self

    def get_classifier(self) -> nn.Module:
        return self.fc

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's parameter groups (layer-wise learning-rate decay): the stem, then the cells
        and the transition in order; the classifier is the head."""
        return dict(stem=r"^stem", blocks=[(r"^cell1", (0,)), (r"^transition", (1,)),
                                           (r"^cell2", (2,)), (r"^final_act", (3,))])

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if enable:
            raise NotImplementedError(
                "SNASNet does not checkpoint activations: its cells' neurons keep a membrane "
                "from one timestep to the next, which recomputing a step would advance twice. "
                "Lower --batch-size or timesteps to save memory instead")

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        self.fc = self._make_fc(num_classes)
        if isinstance(self.fc, nn.Linear):
            nn.init.normal_(self.fc.weight, 0.0, self.head_init_std)
            nn.init.zeros_(self.fc.bias)

    def _encode(self, x: Tensor) -> Tensor:
        if x.dim() not in (4, 5) or x.shape[-3] != self.in_chans:
            greyscale = ("convert the pictures to greyscale (PIL's image.convert('L'), timm's "
                         "create_dataset(..., input_img_mode='L')) or "
                         if self.in_chans == 1 and x.dim() in (4, 5) and x.shape[-3] == 3 else "")
            raise ValueError(
                f"SNASNet expects images [B, {self.in_chans}, H, W] or sequences "
                f"[T, B, {self.in_chans}, H, W]; got shape {tuple(x.shape)}"
                + (f" with {x.shape[-3]} channels ({greyscale}build the model with in_chans="
                   f"{x.shape[-3]} to change that)" if x.dim() in (4, 5) else ""))
        expected = self.model_args["img_size"]
        expected = tuple(expected) if isinstance(expected, list) else (expected, expected)
        if tuple(x.shape[-2:]) != expected:
            raise ValueError(
                f"SNASNet expects images of {expected[0]} x {expected[1]} (height x width); got "
                f"shape {tuple(x.shape)}: its classifier is built for that size, so resize the "
                f"images or build the model with img_size={list(x.shape[-2:])}")
        checked = self.check_finite and not x.is_meta and not _tracing()
        if checked and not bool(torch.isfinite(x).all()):
            bad = (~torch.isfinite(x)).nonzero()[0].tolist()
            raise ValueError(
                f"the input holds NaN or infinite values (the first at index {bad}: "
                f"{x[tuple(bad)].item()}); the network would silently output zeros for such "
                f"images. Check how they were loaded and normalised (a std of 0 divides by "
                f"zero), or set model.check_finite = False to skip this check")
        if x.dim() == 4:  # direct encoding: the stem sees the static image once
            static = self.stem(x)
            return static.unsqueeze(0).expand(self.timesteps, *static.shape)
        return self.stem(x)

    def forward_features(self, x: Tensor) -> Tensor:
        """Images [B, C, H, W] or sequences [T, B, C, H, W] -> spikes [T, B, 2*width, h, w]."""
        x = self.cell1(self._encode(x))
        x = self.transition(x)
        x = self.cell2(x)
        return self.pool2(self.final_act(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Features [T, B, C, h, w] -> logits [B, num_classes] (the vote averaged over T), or
        with pre_logits the classifier's hidden spikes averaged over T [B, classifier_width]."""
        x = self.pre_lif(self.pre_fc(self.head_drop(x.flatten(2))))
        if pre_logits or isinstance(self.fc, nn.Identity):
            return _mean_over_time(x)
        votes = self.fc(x)
        if votes.dtype in (torch.bfloat16, torch.float16):  # the vote is averaged in float32
            votes = votes.float()
        votes = votes.view(*votes.shape[:2], self.num_classes, self.neurons_per_class).mean(-1)
        return _mean_over_time(votes)

    def forward(self, x: Tensor) -> Tensor:
        device = x.device if isinstance(x, Tensor) else "cpu"  # _encode refuses non-tensors
        with precision_context(self.precision, device):
            return self.forward_head(self.forward_features(x))


def _tracing() -> bool:
    """Inside torch.compile, torch.export or torch.jit.trace, where a check that reads a
    tensor's values on the host would break or freeze the graph."""
    return torch.compiler.is_compiling() or torch.jit.is_tracing()


def _mean_over_time(x: Tensor) -> Tensor:
    """Sum over T in step order, then divide by T: the authors' accumulation."""
    total = x[0]
    for x_t in x[1:]:
        total = total + x_t
    return total / x.shape[0]


def _create_snasnet(variant: str, pretrained: bool = False, **kwargs) -> SNASNet:
    return build_snasnet(SNASNet, variant, pretrained, model_args=MODEL_ARGS[variant], **kwargs)


# Architecture of each entrypoint, as in the authors' code and paper (snasnet_fmnist is ours).
MODEL_ARGS = {
    "snasnet_cifar10": dict(genotype="0303 0030 2002 0200", cell="backward", width=256,
                            second_pool=4, num_classes=10, neurons_per_class=10,
                            classifier_width=1024, in_chans=3, img_size=32),
    "snasnet_cifar100": dict(genotype="0302 0030 3003 0000", cell="backward", width=128,
                             second_pool=2, num_classes=100, neurons_per_class=5,
                             classifier_width=1024, in_chans=3, img_size=32),
    "snasnet_tinyimagenet": dict(genotype="0302 0030 3003 0000", cell="backward", width=128,
                                 second_pool=2, num_classes=200, neurons_per_class=5,
                                 classifier_width=4096, in_chans=3, img_size=64, stem_stride=2),
    "snasnet_fmnist": dict(genotype="0302 0030 3003 0000", cell="backward", width=64,
                           second_pool=2, num_classes=10, neurons_per_class=10,
                           classifier_width=256, in_chans=1, img_size=28, head_init_std=0.1),
}
DATASET = {"snasnet_cifar10": "cifar10", "snasnet_cifar100": "cifar100",
           "snasnet_tinyimagenet": "tinyimagenet", "snasnet_fmnist": "fashion-mnist"}


def _cfg(name: str, **kwargs) -> SNASNetPretrainedCfg:
    args = MODEL_ARGS[name]
    data = DATASETS[DATASET[name]]  # the normalisation the model is trained and converted with
    mean, std = data.mean, data.std
    size = args["img_size"]
    return SNASNetPretrainedCfg(
        hf_hub_id=f"snnzoo/{name}", hf_hub_filename="model.safetensors",
        input_size=(args["in_chans"], size, size), fixed_input_size=True, mean=mean, std=std,
        num_classes=args["num_classes"], interpolation="bilinear", crop_pct=1.0,
        first_conv="stem.0", classifier="fc", license="mit", paper_ids="arXiv:2201.10355",
        paper_name="Neural Architecture Search for Spiking Neural Networks",
        origin_url="https://github.com/Intelligent-Computing-Lab-Yale/"
                   "Neural-Architecture-Search-for-Spiking-Neural-Networks",
        timesteps=5, genotype=args["genotype"], cell=args["cell"], **kwargs)


# sha256 of each published model.safetensors (also in model_cards/<name>/config.json and card).
PUBLISHED_SHA256 = {
    "snasnet_fmnist": "2f96c753ea24658bfd80f9e61ba0902ece2f68cde5e105b8ba79049cc3de0429",
}

default_cfgs = generate_default_cfgs({
    name: _cfg(name, hf_hub_sha256=PUBLISHED_SHA256.get(name)) for name in MODEL_ARGS})


@register_model
def snasnet_cifar10(pretrained: bool = False, **kwargs) -> SNASNet:
    """SNASNet searched on CIFAR-10 (backward cell 0303 0030 2002 0200, width 256), T=5."""
    return _create_snasnet("snasnet_cifar10", pretrained, **kwargs)


@register_model
def snasnet_cifar100(pretrained: bool = False, **kwargs) -> SNASNet:
    """SNASNet searched on CIFAR-100 (backward cell 0302 0030 3003 0000, width 128), T=5."""
    return _create_snasnet("snasnet_cifar100", pretrained, **kwargs)


@register_model
def snasnet_tinyimagenet(pretrained: bool = False, **kwargs) -> SNASNet:
    """SNASNet for TinyImageNet 64x64 (the CIFAR-100 cell, stem stride 2), T=5."""
    return _create_snasnet("snasnet_tinyimagenet", pretrained, **kwargs)


@register_model
def snasnet_fmnist(pretrained: bool = False, **kwargs) -> SNASNet:
    """A small SNASNet for Fashion-MNIST 1x28x28 (the CIFAR-100 cell at width 64), T=5."""
    return _create_snasnet("snasnet_fmnist", pretrained, **kwargs)
