"""Measure a model the way SNN papers report it.

    python -m snnzoo.validate snasnet_fmnist --pretrained --dataset fashion-mnist
    python -m snnzoo.validate snasnet_fmnist --checkpoint runs/fmnist/model.safetensors \\
        --dataset fashion-mnist-sample --json results.json

Prints top-1 and top-5 accuracy, the firing rate of every LIF layer, the spikes per image
(the paper's energy measure), and per layer the synaptic operations, MACs and estimated energy
per image beside the same network as an ANN's (snnzoo.energy, docs/energy.md), as tables and
as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from timm.utils import reparameterize_model

import snnzoo
from snnzoo import hub
from snnzoo._files import write_json_atomically
from snnzoo._options import (add_data_options, add_debug_option, add_device_option, cli_errors,
                             positive_integer)
from snnzoo.data import dataset_info, evaluation_batches, exit_on_data_error, load_dataset
from snnzoo._messages import format_count, format_energy
from snnzoo.energy import add_energy_options, energy_costs_of
from snnzoo.evaluate import evaluate
from snnzoo.memory import keep_freed_memory
from snnzoo.precision import add_precision_option
from snnzoo.train import CHECKPOINT, read_training_checkpoint, typed_saved_args


def _weights_file(path: Path) -> Path:
    """The weights file that --checkpoint PATH names (a folder's model.safetensors)."""
    path = Path(path)
    if path.is_dir():
        weights = path / hub.WEIGHTS_FILENAME
        if weights.exists():
            return weights
        if (path / CHECKPOINT).is_file():
            raise SystemExit(f"error: --checkpoint {path} holds no {hub.WEIGHTS_FILENAME} (the run has "
                             f"not finished); to measure its last checkpoint pass --checkpoint "
                             f"{path / CHECKPOINT}")
        raise SystemExit(f"error: --checkpoint {path} holds no {hub.WEIGHTS_FILENAME}; pass a model "
                         f"folder, a .safetensors file or a snnzoo.train {CHECKPOINT}")
    if not path.exists():
        raise SystemExit(f"error: --checkpoint {path} does not exist")
    return path


def _read_training_checkpoint(path: Path) -> dict:
    """A snnzoo.train checkpoint.pt with at least its weights, or an error naming the file."""
    return read_training_checkpoint(path, required=("model",))


def load_weights(path: Path) -> dict:
    """A state dict from model.safetensors, a model folder, or a training checkpoint.pt."""
    path = _weights_file(path)
    if path.suffix == ".safetensors":
        try:
            return hub.load_state_dict(path)
        except (hub.WeightsIntegrityError, ValueError, OSError) as error:
            raise SystemExit(f"error: {path} cannot be loaded ({error}); pass an intact "
                             f"{hub.WEIGHTS_FILENAME}") from None
    return _read_training_checkpoint(path)["model"]


def recorded_model(path: Path) -> tuple[str | None, dict, str]:
    """The architecture and create_model keyword arguments recorded with the weights at `path`
    (config.json beside model.safetensors, or a checkpoint's training options) and the file
    that records them; (None, {}, "") if nothing is recorded."""
    path = _weights_file(path)
    if path.suffix != ".safetensors":
        options = typed_saved_args(_read_training_checkpoint(path).get("args") or {})
        if "model" not in options:
            return None, {}, ""
        kwargs = {key: options[key] for key in ("timesteps", "genotype", "cell", "width")
                  if options.get(key) is not None}
        try:
            info = dataset_info(options["dataset"])
            kwargs.update(num_classes=info.num_classes, in_chans=info.input_size[0])
        except (KeyError, ValueError, OSError):
            pass  # the training data set is not here: the model's defaults
        return options["model"], kwargs, str(path)
    config = path.parent / hub.CONFIG_FILENAME
    if not config.is_file():
        return None, {}, ""
    try:
        recorded = json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise SystemExit(f"error: {config} is not valid JSON ({error}); restore it or pass "
                         f"the weights without it") from None
    kwargs = dict(recorded.get("model_args") or {})
    if recorded.get("num_classes") is not None:
        kwargs["num_classes"] = recorded["num_classes"]
    return recorded.get("architecture"), kwargs, str(config)


def model_input_size(model) -> tuple:
    """(C, H, W) the built model takes: its in_chans and img_size, else its pretrained_cfg's."""
    size = getattr(model, "model_args", {}).get("img_size")
    if size is not None and hasattr(model, "in_chans"):
        height, width = (size, size) if isinstance(size, int) else size
        return (model.in_chans, height, width)
    return tuple(model.pretrained_cfg["input_size"])


def _check_json_path(parser, path: Path | None):
    if path is None:
        return
    if path.is_dir():
        parser.error(f"--json {path} is a folder; give a file name, e.g. {path / 'results.json'}")
    if not path.parent.is_dir():
        parser.error(f"--json {path}: the folder {path.parent} does not exist; create it first or "
                     f"choose another path")
    try:  # found now, not after the whole evaluation
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as error:
        parser.error(f"--json {path}: cannot write in {path.parent} ({error.strerror}); choose "
                     f"another path")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model's name and where its weights come from (one of three, required)."""
    parser.add_argument("model", help="a registered model or hf-hub:org/repo")
    source = parser.add_mutually_exclusive_group(required=True)  # never random weights unasked
    source.add_argument("--pretrained", action="store_true", help="the published weights")
    source.add_argument("--checkpoint", type=Path,
                        help="model.safetensors, a model folder, or a snnzoo.train checkpoint.pt")
    source.add_argument("--untrained", action="store_true",
                        help="the network as initialised, with no weights loaded (a baseline)")


def load_model(args, prog: str = "python -m snnzoo.validate"):
    """The model that add_model_options' arguments name, with its weights: the published ones,
    a checkpoint's (built with the architecture recorded beside it), or none. prog: the
    command that a refusal tells the user to run again."""
    recorded_kwargs = {}
    if args.checkpoint is not None:
        architecture, recorded_kwargs, record = recorded_model(args.checkpoint)
        if architecture is not None and architecture != args.model \
                and not args.model.startswith(("hf-hub:", "hf_hub:")):
            raise SystemExit(f"error: {record} records the architecture {architecture}, not "
                             f"{args.model}; run `{prog} {architecture} --checkpoint "
                             f"{args.checkpoint} ...`")
    model = snnzoo.create_model(args.model, pretrained=args.pretrained, **recorded_kwargs)
    if args.checkpoint is not None:
        weights = load_weights(args.checkpoint)
        problems = hub.state_dict_problems(weights, model.state_dict())
        if problems:
            raise SystemExit(f"error: the weights in {args.checkpoint} do not fit {args.model}"
                             f"{' built with ' + str(recorded_kwargs) if recorded_kwargs else ''}: "
                             f"{'; '.join(problems)} (check the model name and its "
                             f"config.json)")
        model.load_state_dict(weights, strict=True)
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnzoo.validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(parser)
    add_data_options(parser)
    parser.add_argument("--split", choices=["train", "test"], default="test",
                        help="(default: test)")
    parser.add_argument("--batch-size", type=positive_integer, default=256, help="(default: 256)")
    add_device_option(parser)
    add_debug_option(parser)
    add_precision_option(parser, deprecated_amp=("--amp",))
    parser.add_argument("--channels-last", action="store_true",
                        help="compute in the channels_last memory format (faster on the CPU)")
    parser.add_argument("--reparam", action="store_true",
                        help="fold each convolution's BatchNorm into it for inference, as timm's "
                             "reparameterize_model does (faster; equal up to float rounding)")
    add_energy_options(parser)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    _check_json_path(parser, args.json)
    keep_freed_memory()  # large activations reuse memory (snnzoo.memory)
    with cli_errors(args.debug):
        return validate(args)


def validate(args) -> int:
    """Measure the model on the data set as the options say; print and return 0."""
    with exit_on_data_error():  # before the weights: missing data fails at once
        info = dataset_info(args.dataset)
        data = load_dataset(args.dataset, args.split, args.data_dir, args.download)
    model = load_model(args)
    input_size = model_input_size(model)
    if input_size != tuple(info.input_size) or model.num_classes != info.num_classes:
        raise SystemExit(f"error: {args.model} takes {input_size} images in {model.num_classes} "
                         f"classes; {args.dataset} has {tuple(info.input_size)} in "
                         f"{info.num_classes}: choose the data set the model was trained on")
    device = torch.device(args.device)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    if args.reparam:
        model = reparameterize_model(model.eval(), inplace=True)
    loader = evaluation_batches(data, info, args.batch_size, device)
    result = evaluate(model, loader, device, args.precision, count_spikes=True, energy=True,
                      energy_costs=energy_costs_of(args))
    result.update(model=args.model, dataset=args.dataset, split=args.split,
                  channels_last=args.channels_last, precision=args.precision,
                  reparam=args.reparam, device=str(device))

    print(f"{args.model} on {args.dataset} ({args.split}, {result['images']} images)")
    print(f"  top-1 {result['top1']:.2f}%   top-5 {result['top5']:.2f}%   "
          f"loss {result['loss']:.4f}   spikes per image {result['spikes_per_image']:.0f}")
    width = max(len(name) for name in result["firing_rates"])
    print(f"\n  {'LIF layer':{width}}  firing rate")
    for name, rate in result["firing_rates"].items():
        print(f"  {name:{width}}  {rate:.4f}")
    print_energy(result["energy"])
    print(json.dumps(result, indent=2))
    if args.json is not None:
        write_json_atomically(args.json, result)
    return 0


def print_energy(energy: dict) -> None:
    """The per-layer table of evaluate's energy report, per image, and its totals."""
    layers = energy["layers"]
    width = max(len(name) for name in [*layers, "total"])
    print(f"\n  {'layer':{width}}  reads   {'SynOps':>9}  {'MACs':>9}  input rate  "
          f"{'energy':>9}  {'ANN MACs':>9}  {'ANN energy':>10}")
    for name, layer in [*layers.items(), ("total", dict(energy, reads="", input_firing_rate=None))]:
        rate = layer["input_firing_rate"]
        print(f"  {name:{width}}  {layer['reads']:6}  {format_count(layer['synops']):>9}  "
              f"{format_count(layer['macs']):>9}  {'' if rate is None else f'{rate:.4f}':>10}  "
              f"{format_energy(layer['energy_pj']):>9}  "
              f"{format_count(layer['ann_macs']):>9}  "
              f"{format_energy(layer['ann_energy_pj']):>10}")
    print(f"  per image, at {energy['ac_pj']} pJ per accumulate (SynOp) and {energy['mac_pj']} pJ "
          f"per MAC; all LIF neurons fire at {energy['firing_rate']:.4f}; the SNN spends "
          f"{energy['energy_pj'] / energy['ann_energy_pj']:.3f} of the ANN's energy")


if __name__ == "__main__":
    sys.exit(main())
