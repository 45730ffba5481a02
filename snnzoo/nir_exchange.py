"""SNASNet models to and from NIR, the Neuromorphic Intermediate Representation (PyPI ``nir``).

    snnzoo.export_nir(model, "model.nir")     # or: python -m snnzoo.export_nir MODEL --out F.nir
    model = snnzoo.import_nir("model.nir")    # an snnzoo model again, for inference

The graph is built from the model's own structure (a tracer cannot follow its time loop), one
NIR node per layer, named by the layer's module path ("cell1.edges.0_1.conv"):

- convolutions and Linear layers with the BatchNorm after them folded in (eval mode: the
  running statistics); a BatchNorm with no convolution before it (the transition's and the
  last one, which normalise a cell's output) as a 1x1 convolution with a diagonal weight;
- LIF neurons as NIR's continuous-time LIF, tau dv/dt = (v_leak - v) + r I, discretised with
  the step dt that the file records (DEFAULT_DT, 1e-4 s, what SpikingJelly's and snnTorch's
  importers assume): tau = snnzoo's tau x dt, r = 1 (input decays with the membrane; r = tau
  otherwise), v_leak = v_reset. NIR fires on v > v_threshold, snnzoo on v >= threshold, so the
  file holds the largest float32 below snnzoo's threshold: for a float32 membrane the two
  rules then fire on exactly the same values;
- the sum of a cell node's inputs as NIR sums edges: every edge into a node is added, so each
  layer that reads a cell node has an edge from every layer that feeds it (a skip connection
  passes its source's feeders on; a feeder reached by k parallel paths goes through a Scale
  by k, as NIR allows one edge per pair of nodes); layers whose output reaches nothing, and
  pools or delays of a node that receives nothing, are left out (they add nothing);
- a backward cell's feedback edge as its operation followed by a Delay of one step (dt);
- the classifier: Flatten, pre_fc (Linear), its LIF, fc (Affine), and "vote" (Linear) that
  averages each class's group of output neurons. The logits are the output averaged over the
  timesteps; the input is the image, presented at every step (direct encoding).

The file's metadata records dt, the timesteps, these conventions and the architecture (the
model's arguments), from which import_nir rebuilds the network, checks that the file's nodes,
edges and shapes are that network's, and loads the parameters. What NIR cannot express (a soft
reset, a layer of another kind, an input that depends on nothing) is refused, naming the layer.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from timm import is_model
from torch import nn

from snnzoo._files import write_atomically
from snnzoo._messages import abbreviated_list, first_line
from snnzoo.layers import LIF
from snnzoo.models.cells import (AvgPoolEdge, ConvBNSequential, SharedDropout, Skip,
                                 SNASCell, SpikingConvBN, _SpikingEdge, conv_output_size,
                                 fuse_conv_bn)
from snnzoo.models import create_model
from snnzoo.models.snasnet import SNASNet

__all__ = ["DEFAULT_DT", "NIRExportError", "NIRImportError", "export_nir", "from_nir",
           "import_nir", "nir_form", "to_nir"]

DEFAULT_DT = 1e-4
FORMAT_VERSION = 1
_CONVENTIONS = dict(
    input="the image [C, H, W], presented at every one of `timesteps` steps (direct encoding)",
    readout="logits = the output averaged over the timesteps",
    threshold="v_threshold is the largest float32 below snnzoo's threshold, so that NIR's "
              "v > v_threshold fires where snnzoo's v >= threshold does (float32 membranes)",
    batchnorm="folded into the convolution before it (running statistics); a BatchNorm with "
              "none before it is a 1x1 convolution with a diagonal weight",
    avgpool="AvgPool2d divides by the whole window, zero padding included (torch's "
            "count_include_pad=True, as nirtorch maps it; NIR does not say)",
)


class NIRExportError(ValueError):
    """The model holds something NIR cannot express; the message names the layer."""


class NIRImportError(ValueError):
    """The file is not a NIR graph of an snnzoo model, or does not fit the architecture it
    records; the message names the node."""


@dataclass
class _Site:
    """One NIR node: what it is (kind), the modules it comes from, its per-sample shapes."""

    kind: str
    modules: tuple
    in_shape: tuple
    out_shape: tuple


@dataclass
class _Graph:
    """The sites and edges of an SNASNet's NIR graph (see _walk)."""

    dt: float
    sites: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)

    def add(self, name: str, kind: str, modules: tuple, in_shape: tuple, out_shape: tuple,
            feeders: list) -> list:
        """Add site name fed by every name in feeders (a name twice: its output counts twice);
        returns [name], its output as a sum."""
        self.sites[name] = _Site(kind, modules, tuple(in_shape), tuple(out_shape))
        self.edges.extend((feeder, name) for feeder in feeders)
        return [name]

    def finish(self) -> "_Graph":
        """The graph as NIR holds it: without the sites that receive nothing (a delay or pool
        of zero adds nothing) or whose output reaches nothing (a cell node no edge leaves), and
        with a Scale node for a feeder counted k > 1 times (parallel skip paths), since NIR
        allows one edge per pair of nodes."""
        while True:  # a site fed nothing outputs 0, or a constant NIR has no node for
            fed = {target for _, target in self.edges}
            empty = [name for name, site in self.sites.items()
                     if name not in fed and site.kind != "input"]
            if not empty:
                break
            for name in empty:
                if self.sites[name].kind not in ("delay", "avgpool"):
                    raise NIRExportError(
                        f"{name} receives no input: the cell node it reads has no operation "
                        f"into it, so it computes a constant, which NIR has no node for; export "
                        f"another genotype")
                del self.sites[name]
            self.edges = [edge for edge in self.edges if edge[0] not in empty]
        live, frontier = {"output"}, ["output"]  # the sites the output depends on
        while frontier:
            target = frontier.pop()
            for source, to in self.edges:
                if to == target and source not in live:
                    live.add(source)
                    frontier.append(source)
        if "input" not in live:
            raise NIRExportError("the output depends on no input (no path through the cells' "
                                 "operations leads from the input to the output); export another "
                                 "genotype")
        self.sites = {name: site for name, site in self.sites.items() if name in live}
        edges = [edge for edge in self.edges if edge[0] in live and edge[1] in live]
        self.edges = []
        for (source, target), count in Counter(edges).items():
            if count == 1:
                self.edges.append((source, target))
                continue
            scale = f"{target}.{count}x.{source}"
            shape = self.sites[source].out_shape
            self.sites[scale] = _Site("scale", (count,), shape, shape)
            self.edges += [(source, scale), (scale, target)]
        return self

    def layer(self, module: nn.Module, name: str, feeders: list, shape: tuple,
              bn: Optional[nn.BatchNorm2d] = None) -> tuple[list, tuple]:
        """One layer of the model (and the BatchNorm folded into it): (its output, shape)."""
        if isinstance(module, nn.Conv2d):
            out = _conv_shape(module, shape)
            return self.add(name, "conv", (module, bn), shape, out, feeders), out
        if isinstance(module, nn.BatchNorm2d):
            return self.add(name, "batchnorm", (module,), shape, shape, feeders), shape
        if isinstance(module, LIF):
            return self.add(name, "lif", (module,), shape, shape, feeders), shape
        if isinstance(module, nn.AvgPool2d):
            out = _pool_shape(module, shape)
            return self.add(name, "avgpool", (module,), shape, out, feeders), out
        if isinstance(module, nn.Linear):
            kind, out = ("linear" if module.bias is None else "affine"), (module.out_features,)
            return self.add(name, kind, (module,), shape, out, feeders), out
        raise NIRExportError(f"{name} is a {type(module).__name__}, which has no NIR node; "
                             f"export_nir knows SNASNet's layers (convolutions, BatchNorm, LIF, "
                             f"average pooling, Linear)")

    def chain(self, layers: nn.Sequential, prefix: str, feeders: list,
              shape: tuple) -> tuple[list, tuple]:
        """The layers of a Sequential in turn, each convolution's BatchNorm folded into it."""
        layers = list(layers)
        k = 0
        while k < len(layers):
            module, name = layers[k], f"{prefix}.{k}"
            bn = layers[k + 1] if k + 1 < len(layers) else None
            if isinstance(module, (nn.Identity, SharedDropout)):
                k += 1
                continue
            if isinstance(module, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                feeders, shape = self.layer(module, name, feeders, shape, bn)
                k += 2
                continue
            feeders, shape = self.layer(module, name, feeders, shape)
            k += 1
        return feeders, shape

    def edge(self, cell: SNASCell, prefix: str, source: int, target: int, feeders: list,
             shape: tuple) -> list:
        """What the cell's edge source -> target adds to its target (a list of feeders)."""
        module, name = cell._edge(source, target), f"{prefix}.edges.{source}_{target}"
        if isinstance(module, Skip):
            return list(feeders)
        if isinstance(module, AvgPoolEdge):
            return self.layer(module.pool, f"{name}.pool", feeders, shape)[0]
        if isinstance(module, _SpikingEdge):
            spikes, _ = self.layer(module.lif, f"{name}.lif", feeders, shape)
            bn = module.bn if isinstance(module, SpikingConvBN) else None
            return self.layer(module.conv, f"{name}.conv", spikes, shape, bn)[0]
        raise NIRExportError(f"{name} is a {type(module).__name__}, which has no NIR node")

    def cell(self, cell: SNASCell, prefix: str, feeders: list, shape: tuple) -> list:
        """A cell: node 0 is fed by feeders (and feedback), node 3 is returned."""
        genotype = cell.genotype
        delays = {(source, target): f"{prefix}.edges.{source}_{target}.delay"
                  for source, target, _ in genotype.feedback_edges}
        fed_back = defaultdict(list)
        for (source, target), name in delays.items():
            fed_back[target].append(name)
        nodes = {0: list(feeders) + fed_back[0]}
        last = len(genotype.matrix) - 1
        for target in range(1, last + 1):
            total = []
            for source, to, _ in genotype.forward_edges:
                if to == target:
                    total += self.edge(cell, prefix, source, target, nodes[source], shape)
            nodes[target] = total + fed_back[target]
        for (source, target), name in delays.items():  # one fed nothing goes in finish()
            sent = self.edge(cell, prefix, source, target, nodes[source], shape)
            self.add(name, "delay", (), shape, shape, sent)
        return nodes[last]


def _conv_shape(conv: nn.Conv2d, shape: tuple) -> tuple:
    return (conv.out_channels, *conv_output_size(conv, shape[1:]))


def _pool_shape(pool: nn.AvgPool2d, shape: tuple) -> tuple:
    kernel, stride, padding = (_pair(pool.kernel_size), _pair(pool.stride or pool.kernel_size),
                               _pair(pool.padding))
    sides = [(size + 2 * p - k) // s + 1 for size, p, k, s in zip(shape[1:], padding, kernel, stride)]
    return (shape[0], *sides)


def _pair(value) -> tuple:
    """(height, width) of a size given as one number, a pair or a NIR array."""
    if isinstance(value, str):
        return value
    values = np.atleast_1d(np.asarray(value)).tolist()
    return tuple(values) if len(values) == 2 else (values[0], values[0])


def _walk(model: SNASNet, dt: float) -> _Graph:
    """Every NIR node of model and the edges between them, from its modules."""
    if not isinstance(model, SNASNet):
        raise NIRExportError(f"export_nir takes an SNASNet (snnzoo.create_model('snasnet_...')); "
                             f"got a {type(model).__name__}")
    if not isinstance(model.fc, nn.Linear):
        raise NIRExportError("the model has no classifier (num_classes=0): its output, the "
                             "classifier's hidden spikes, is not a NIR output; build it with "
                             "num_classes or reset_classifier(num_classes)")
    graph = _Graph(dt)
    size = model.model_args["img_size"]
    shape = (model.in_chans, *_pair(size))
    feeders = graph.add("input", "input", (), shape, shape, [])
    feeders, shape = graph.chain(model.stem, "stem", feeders, shape)
    feeders = graph.cell(model.cell1, "cell1", feeders, shape)
    feeders, shape = graph.chain(model.transition, "transition", feeders, shape)
    feeders = graph.cell(model.cell2, "cell2", feeders, shape)
    feeders, shape = graph.chain(model.final_act, "final_act", feeders, shape)
    feeders, shape = graph.layer(model.pool2, "pool2", feeders, shape)
    flat = (math.prod(shape),)
    feeders = graph.add("flatten", "flatten", (), shape, flat, feeders)
    feeders, shape = graph.layer(model.pre_fc, "pre_fc", feeders, flat)
    feeders, shape = graph.layer(model.pre_lif, "pre_lif", feeders, shape)
    feeders, shape = graph.layer(model.fc, "fc", feeders, shape)
    feeders = graph.add("vote", "vote", (model,), shape, (model.num_classes,), feeders)
    graph.add("output", "output", (), (model.num_classes,), (model.num_classes,), feeders)
    return graph.finish()


# ---- export -----------------------------------------------------------------------------------

def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().to("cpu").contiguous().numpy().copy()


def _batchnorm_scale_shift(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """An eval-mode BatchNorm as x * scale + shift per channel, in float64."""
    if bn.running_mean is None:
        raise NIRExportError(f"{bn} keeps no running statistics (track_running_stats=False), "
                             f"so it is no fixed affine map NIR can hold")
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale.cpu(), shift.cpu()


def _threshold_below(threshold: float) -> float:
    """The largest float32 below threshold: NIR's v > it is snnzoo's v >= threshold."""
    return float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))


def _node(name: str, site: _Site, dt: float):
    import nir

    dtype = np.float32
    if site.kind == "input":
        return nir.Input(input_type={"input": np.array(site.in_shape)})
    if site.kind == "output":
        return nir.Output(output_type={"output": np.array(site.out_shape)})
    if site.kind == "conv":
        conv, bn = site.modules
        if conv.padding_mode != "zeros":
            raise NIRExportError(f"{name} pads with {conv.padding_mode!r}; NIR's Conv2d pads "
                                 f"with zeros")
        fused = fuse_conv_bn(conv, bn) if bn is not None else conv
        weight = _array(fused.weight)
        dtype = weight.dtype
        bias = (_array(fused.bias) if fused.bias is not None
                else np.zeros(conv.out_channels, dtype))
        padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
        return nir.Conv2d(input_shape=site.in_shape[1:], weight=weight, stride=conv.stride,
                          padding=padding, dilation=conv.dilation, groups=conv.groups,
                          bias=bias)
    if site.kind == "batchnorm":
        (bn,) = site.modules
        scale, shift = _batchnorm_scale_shift(bn)
        dtype = _array(bn.running_var).dtype
        weight = torch.diag(scale).reshape(*scale.shape, scale.shape[0], 1, 1)
        return nir.Conv2d(input_shape=site.in_shape[1:], weight=weight.numpy().astype(dtype),
                          stride=1, padding=0, dilation=1, groups=1,
                          bias=shift.numpy().astype(dtype))
    if site.kind == "lif":
        return _lif_node(name, site.modules[0], site.in_shape, dt)
    if site.kind == "avgpool":
        (pool,) = site.modules
        if pool.ceil_mode or not pool.count_include_pad or pool.divisor_override:
            raise NIRExportError(f"{name}: NIR's AvgPool2d divides by the whole window, zero "
                                 f"padding included, and rounds sizes down; {pool} does not")
        return nir.AvgPool2d(kernel_size=np.array(_pair(pool.kernel_size)),
                             stride=np.array(_pair(pool.stride or pool.kernel_size)),
                             padding=np.array(_pair(pool.padding)))
    if site.kind == "flatten":
        return nir.Flatten(input_type={"input": np.array(site.in_shape)}, start_dim=0,
                           end_dim=-1)
    if site.kind == "linear":
        return nir.Linear(weight=_array(site.modules[0].weight))
    if site.kind == "affine":
        linear = site.modules[0]
        return nir.Affine(weight=_array(linear.weight), bias=_array(linear.bias))
    if site.kind == "vote":
        return nir.Linear(weight=_vote_matrix(site.modules[0]))  # float64: 1/10 is inexact
    if site.kind == "delay":
        return nir.Delay(delay=np.full(site.in_shape, dt))
    if site.kind == "scale":
        return nir.Scale(scale=np.full(site.in_shape, float(site.modules[0])))
    raise AssertionError(site.kind)


def _lif_node(name: str, lif: LIF, shape: tuple, dt: float):
    import nir

    params = lif.params
    if params.v_reset is None:
        raise NIRExportError(f"{name} resets softly (v_reset=None: the threshold is subtracted); "
                             f"NIR's LIF resets to v_reset")

    def full(value):
        return np.full(shape, value, dtype=np.float64)

    return nir.LIF(tau=full(params.tau * dt), r=full(1.0 if params.decay_input else params.tau),
                   v_leak=full(params.v_reset), v_threshold=full(_threshold_below(params.v_threshold)),
                   v_reset=full(params.v_reset))


def _vote_matrix(model: SNASNet) -> np.ndarray:
    """[num_classes, num_classes * neurons_per_class]: each class averages its group."""
    group = model.neurons_per_class
    return np.kron(np.eye(model.num_classes), np.full((1, group), 1.0 / group))


def _architecture(model: SNASNet) -> dict:
    args = dict(model.model_args, num_classes=model.num_classes, in_chans=model.in_chans)
    name = (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
    return dict(architecture=name, model_args=args)


def nir_form(model: SNASNet, fold_pool: bool = False, inplace: bool = False) -> SNASNet:
    """model as its NIR graph computes, for inference: each convolution's BatchNorm folded into
    it (fuse_conv_bn; the transition's average pool too with fold_pool), and the other
    BatchNorms as x * scale + shift (running mean 0, variance 1, eps 0, scale and shift
    computed in float64 as the export does). import_nir(export_nir(model)) computes exactly
    what nir_form(model) does; model itself differs from both by float rounding only (a
    float32 membrane within rounding of the threshold may fire differently). A copy unless
    inplace; in eval mode (the fused layers refuse train mode)."""
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    if isinstance(model.stem, ConvBNSequential):
        model.stem = model.stem.fuse()
    if isinstance(model.transition, ConvBNSequential):
        model.transition = model.transition.fuse(fold_pool=fold_pool)
    for cell in (model.cell1, model.cell2):
        for key, edge in cell.edges.items():
            if isinstance(edge, SpikingConvBN):
                cell.edges[key] = edge.fuse()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                scale, shift = _batchnorm_scale_shift(module)
                module.weight.copy_(scale)
                module.bias.copy_(shift)
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
                module.eps = 0.0
    return model


def to_nir(model: SNASNet, dt: float = DEFAULT_DT):
    """model as a nir.NIRGraph (see this module's docstring), its metadata recording dt, the
    timesteps, the conventions and the architecture. The model is not changed; BatchNorms
    fold in with their running statistics, as in eval mode."""
    import nir

    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt={dt!r} must be a positive number of seconds (NIR's importers "
                         f"mostly assume {DEFAULT_DT})")
    graph = _walk(model, float(dt))
    was_training = model.training
    model.eval()  # BatchNorm folds with its running statistics in eval mode
    try:
        with torch.no_grad():
            nodes = {name: _node(name, site, graph.dt) for name, site in graph.sites.items()}
    finally:
        model.train(was_training)
    layers = {name: site.kind for name, site in graph.sites.items()}
    metadata = dict(_CONVENTIONS, dt=float(dt), timesteps=int(model.timesteps),
                    generator="snnzoo", snnzoo_format=FORMAT_VERSION,
                    snnzoo_architecture=json.dumps(_architecture(model)),
                    snnzoo_pool_folded=not any(isinstance(layer, nn.AvgPool2d)
                                               for layer in model.transition),
                    snnzoo_layers=json.dumps(layers))
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=metadata)


def export_nir(model: SNASNet, path: Union[str, Path], dt: float = DEFAULT_DT) -> Path:
    """Write model as a NIR graph (to_nir) to path (HDF5, nir.write), atomically: a reader
    sees the old file or the whole new one. Returns path."""
    import nir

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name, e.g. {path / 'model.nir'}")
    graph = to_nir(model, dt)
    return write_atomically(path, lambda tmp: nir.write(tmp, graph))


# ---- import -----------------------------------------------------------------------------------

def _metadata(graph, where: str) -> dict:
    """The file's metadata, checked: dt, timesteps, format, and the architecture recorded
    (its name and SNASNet's arguments, no others)."""
    metadata = {key: value.decode() if isinstance(value, bytes) else value
                for key, value in (getattr(graph, "metadata", None) or {}).items()}
    if "snnzoo_architecture" not in metadata:
        raise NIRImportError(
            f"{where} records no snnzoo architecture (metadata 'snnzoo_architecture'): it was not "
            f"written by snnzoo.export_nir, and import_nir rebuilds only the SNASNet models it "
            f"exported; read it with the tool that wrote it")

    def bad(key: str, wanted: str) -> NIRImportError:
        return NIRImportError(f"{where}: metadata {key!r} = {metadata.get(key)!r} is not "
                              f"{wanted}; the file is damaged or was edited")

    def number(key: str, kind, default):
        value = metadata.get(key, default)
        try:
            converted = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise bad(key, f"a number") from None
        if isinstance(value, str) or converted != value or not math.isfinite(converted):
            raise bad(key, f"a finite {kind.__name__}")
        return converted

    checked = dict(dt=number("dt", float, DEFAULT_DT),
                   timesteps=number("timesteps", int, 5),
                   format=number("snnzoo_format", int, 0),
                   pool_folded=bool(metadata.get("snnzoo_pool_folded", False)))
    if checked["dt"] <= 0:
        raise bad("dt", "a positive number of seconds")
    if checked["timesteps"] < 1:
        raise bad("timesteps", "a positive number of steps")
    if checked["format"] > FORMAT_VERSION:
        raise NIRImportError(f"{where} is in snnzoo's NIR format {checked['format']}, newer "
                             f"than this snnzoo's {FORMAT_VERSION}; upgrade snnzoo")
    try:
        recorded = json.loads(metadata["snnzoo_architecture"])
        name, args = recorded.get("architecture"), dict(recorded["model_args"])
    except (TypeError, ValueError, KeyError, AttributeError):
        raise bad("snnzoo_architecture", "a JSON object with model_args") from None
    known = set(inspect.signature(SNASNet.__init__).parameters) - {"self", "backend"}
    unknown = sorted(set(args) - known)
    if unknown or not (name is None or isinstance(name, str)):
        raise bad("snnzoo_architecture", f"SNASNet's arguments (unknown: {unknown})")
    return dict(checked, architecture=name, model_args=args)


def _check_size(graph, args: dict, where: str) -> None:
    """The widths and the input the metadata records are those of the file's nodes (checked
    before a network of that size is built)."""
    size = _pair(args.get("img_size", 32))
    recorded = {("input", "input_type"): (args.get("in_chans", 3), *size),
                ("stem.0", "weight"): args.get("width", 128),
                ("pre_fc", "weight"): args.get("classifier_width", 1024)}
    for (name, attribute), expected in recorded.items():
        node = graph.nodes.get(name)
        value = getattr(node, attribute, None)
        if isinstance(value, dict):
            value = value.get("input")
        found = np.shape(value)[:1] if attribute == "weight" else value
        found = tuple(np.atleast_1d(np.asarray(found)).tolist()) if found is not None else None
        if found != tuple(np.atleast_1d(expected).tolist()):
            raise NIRImportError(
                f"{where}: node {name!r} does not fit the architecture the metadata records "
                f"({attribute} {found} where it records {expected}); the file is damaged or "
                f"was edited")


def _build(metadata: dict, where: str) -> SNASNet:
    """The fresh network the metadata records, in the form its NIR graph has (nir_form; the
    transition's pool folded where the file's was). Draws no random numbers from the caller's
    generators."""
    name, args = metadata["architecture"], metadata["model_args"]
    try:
        with torch.random.fork_rng(devices=[]):  # a registered name brings its pretrained_cfg
            model = (create_model(name, pretrained=False, **args) if name and is_model(name)
                     else SNASNet(**args))
    except (ValueError, TypeError) as error:
        raise NIRImportError(f"{where}: the architecture it records cannot be built "
                             f"({first_line(error)})") from None
    return nir_form(model, fold_pool=metadata["pool_folded"], inplace=True)


def _check_structure(graph, expected: _Graph, where: str) -> None:
    missing = [name for name in expected.sites if name not in graph.nodes]
    extra = [name for name in graph.nodes if name not in expected.sites]
    if missing or extra:
        raise NIRImportError(
            f"{where} does not hold the network its metadata records: "
            + "; ".join(part for part in (
                missing and f"nodes missing: {abbreviated_list(missing)}",
                extra and f"nodes not in it: {abbreviated_list(extra)}") if part))
    edges = {tuple(edge) for edge in graph.edges}
    missing = sorted(set(expected.edges) - edges)
    extra = sorted(edges - set(expected.edges))
    if missing or extra:
        raise NIRImportError(
            f"{where}: the edges differ from the network its metadata records: "
            + "; ".join(part for part in (
                missing and f"missing {abbreviated_list([f'{a} -> {b}' for a, b in missing])}",
                extra and f"not in it {abbreviated_list([f'{a} -> {b}' for a, b in extra])}")
                if part))


_NODE_TYPES = dict(input="Input", output="Output", conv="Conv2d", batchnorm="Conv2d",
                   lif="LIF", avgpool="AvgPool2d", flatten="Flatten", linear="Linear",
                   affine="Affine", vote="Linear", delay="Delay", scale="Scale")


class _Loader:
    """Checks each NIR node against the site the architecture has there and loads it."""

    def __init__(self, where: str, dt: float):
        self.where, self.dt = where, dt

    def error(self, name: str, message: str) -> NIRImportError:
        return NIRImportError(f"{self.where}: node {name!r} {message}")

    def array(self, name: str, node, attribute: str, shape: tuple) -> np.ndarray:
        try:
            value = np.asarray(getattr(node, attribute))
        except (AttributeError, ValueError, TypeError):
            raise self.error(name, f"has no array {attribute}") from None
        if value.dtype.kind not in "fiu":
            raise self.error(name, f"has {attribute} of dtype {value.dtype}; the architecture "
                                   f"has real numbers there")
        if value.shape != tuple(shape):
            raise self.error(name, f"has {attribute} of shape {value.shape}; the architecture "
                                   f"has {tuple(shape)} there")
        if not np.isfinite(value).all():
            raise self.error(name, f"has non-finite values in {attribute}")
        return value

    def uniform(self, name: str, node, attribute: str, shape: tuple) -> float:
        value = self.array(name, node, attribute, shape)
        if value.size and (value != value.flat[0]).any():
            raise self.error(name, f"has {attribute} that differs between neurons; an snnzoo "
                                   f"LIF layer has one value for all of its neurons")
        return float(value.flat[0])

    def same(self, name: str, what: str, found, expected) -> None:
        try:
            found_values = tuple(np.atleast_1d(np.asarray(found)).tolist())
        except (ValueError, TypeError):
            found_values = None
        if found_values != tuple(np.atleast_1d(expected).tolist()):
            raise self.error(name, f"has {what} {found!r}; the architecture has {expected!r}")

    def load(self, name: str, site: _Site, node) -> None:
        expected = _NODE_TYPES[site.kind]
        if type(node).__name__ != expected:
            raise self.error(name, f"is a {type(node).__name__}; the architecture has a "
                                   f"{expected} there")
        getattr(self, f"load_{site.kind}")(name, site, node)

    def load_input(self, name, site, node):
        self.same(name, "input shape", node.input_type.get("input"), site.in_shape)

    def load_output(self, name, site, node):
        self.same(name, "output shape", node.output_type.get("output"), site.out_shape)

    def load_flatten(self, name, site, node):
        self.same(name, "input shape", node.input_type.get("input"), site.in_shape)
        self.same(name, "flattened dimensions", (node.start_dim, node.end_dim), (0, -1))

    def load_conv(self, name, site, node):
        conv = site.modules[0]
        self.same(name, "input_shape", node.input_shape, site.in_shape[1:])
        for attribute in ("stride", "padding", "dilation"):
            self.same(name, attribute, _pair(getattr(node, attribute)),
                      _pair(getattr(conv, attribute)))
        self.same(name, "groups", node.groups, conv.groups)
        _copy(conv.weight, self.array(name, node, "weight", tuple(conv.weight.shape)))
        _copy(conv.bias, self.array(name, node, "bias", (conv.out_channels,)))

    def load_batchnorm(self, name, site, node):
        (bn,) = site.modules
        channels = bn.num_features
        weight = self.array(name, node, "weight", (channels, channels, 1, 1))[:, :, 0, 0]
        if (weight - np.diag(np.diag(weight))).any():
            raise self.error(name, "has a 1x1 convolution that mixes channels; the architecture "
                                   "has a BatchNorm there (a diagonal 1x1 convolution)")
        for attribute, expected in (("stride", 1), ("padding", 0), ("dilation", 1)):
            self.same(name, attribute, _pair(getattr(node, attribute)), _pair(expected))
        _copy(bn.weight, np.diag(weight))  # x * scale + shift, as nir_form holds it
        _copy(bn.bias, self.array(name, node, "bias", (channels,)))

    def load_lif(self, name, site, node):
        (lif,) = site.modules
        shape = site.in_shape
        tau = self.uniform(name, node, "tau", shape) / self.dt
        r = self.uniform(name, node, "r", shape)
        v_leak = self.uniform(name, node, "v_leak", shape)
        v_reset = self.uniform(name, node, "v_reset", shape)
        threshold = self.uniform(name, node, "v_threshold", shape)
        if not tau > 1.0:
            raise self.error(name, f"has tau / dt = {tau:g}; snnzoo's LIF needs it above 1 "
                                   f"(check the dt the file records, {self.dt:g} s)")
        if v_leak != v_reset:
            raise self.error(name, f"leaks to v_leak={v_leak:g} but resets to {v_reset:g}; "
                                   f"snnzoo's LIF leaks to its reset value")
        if math.isclose(r, 1.0, rel_tol=1e-6):
            decay_input = True
        elif math.isclose(r, tau, rel_tol=1e-6):
            decay_input = False
        else:
            raise self.error(name, f"has r={r:g}; snnzoo's LIF has r = 1 (the input decays) or "
                                   f"r = tau / dt = {tau:g}")
        try:  # LIFParams checks each (a threshold that overflows float32, say)
            lif.tau, lif.v_reset, lif.decay_input = tau, v_reset, decay_input
            lif.v_threshold = float(np.nextafter(np.float32(threshold), np.float32(np.inf)))
        except ValueError as error:
            raise self.error(name, f"has neuron constants snnzoo's LIF refuses: "
                                   f"{first_line(error)}") from None

    def load_avgpool(self, name, site, node):
        (pool,) = site.modules
        self.same(name, "kernel_size", node.kernel_size, _pair(pool.kernel_size))
        self.same(name, "stride", node.stride, _pair(pool.stride or pool.kernel_size))
        self.same(name, "padding", node.padding, _pair(pool.padding))

    def load_linear(self, name, site, node):
        linear = site.modules[0]
        _copy(linear.weight, self.array(name, node, "weight", tuple(linear.weight.shape)))

    def load_affine(self, name, site, node):
        self.load_linear(name, site, node)
        linear = site.modules[0]
        _copy(linear.bias, self.array(name, node, "bias", tuple(linear.bias.shape)))

    def load_vote(self, name, site, node):
        expected = _vote_matrix(site.modules[0])
        weight = self.array(name, node, "weight", expected.shape)
        if not np.allclose(weight, expected, rtol=1e-6, atol=0.0):
            raise self.error(name, f"is not the average over groups of "
                                   f"{site.modules[0].neurons_per_class} output neurons that "
                                   f"the architecture votes with")

    def load_scale(self, name, site, node):
        count = self.uniform(name, node, "scale", site.in_shape)
        if count != site.modules[0]:
            raise self.error(name, f"scales by {count:g}; the architecture counts that input "
                                   f"{site.modules[0]} times there")

    def load_delay(self, name, site, node):
        delay = self.uniform(name, node, "delay", site.in_shape)
        if not math.isclose(delay, self.dt, rel_tol=1e-6):
            raise self.error(name, f"delays by {delay:g} s; a feedback edge delays by one step, "
                                   f"dt = {self.dt:g} s")


def _copy(parameter: torch.Tensor, value: np.ndarray) -> None:
    with torch.no_grad():
        parameter.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(parameter.dtype))


def from_nir(graph, where: str = "the NIR graph") -> SNASNet:
    """The SNASNet that graph (written by to_nir) holds, for inference: built from the
    architecture its metadata records, checked node by node and edge by edge against it,
    with the file's parameters loaded (BatchNorms folded, so train mode is refused)."""
    metadata = _metadata(graph, where)
    dt = metadata["dt"]
    _check_size(graph, metadata["model_args"], where)
    model = _build(metadata, where)
    model.timesteps = metadata["timesteps"]
    expected = _walk(model, dt)
    _check_structure(graph, expected, where)
    loader = _Loader(where, dt)
    for name, site in expected.sites.items():
        loader.load(name, site, graph.nodes[name])
    return model.eval()


def import_nir(path: Union[str, Path]) -> SNASNet:
    """Read an snnzoo NIR file (export_nir) back into an SNASNet for inference (from_nir)."""
    import nir

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file; pass a .nir file "
                                f"written by snnzoo.export_nir")
    try:
        graph = nir.read(path)
    except Exception as error:  # h5py, nir and numpy all raise their own
        raise NIRImportError(f"{path} is not a NIR graph that nir {nir.__version__} can read "
                             f"({type(error).__name__}: {first_line(error)}); is it a .nir "
                             f"file, whole and not damaged?") from None
    return from_nir(graph, str(path))
