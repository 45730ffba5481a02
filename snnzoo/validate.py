"""Measure a model the way SNN papers report it.

    python -m snnzoo.validate snasnet_fmnist --pretrained --dataset fashion-mnist
    python -m snnzoo.validate snasnet_fmnist --checkpoint runs/fmnist/model.safetensors \\
        --dataset fashion-mnist-sample --json results.json

Prints top-1 and top-5 accuracy, the firing rate of every LIF layer and the spikes per image
(the paper's energy measure), as a table and as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from timm.utils import reparameterize_model

import snnzoo
from snnzoo import hub
from snnzoo.data import dataset_info, evaluation_batches, load_dataset
from snnzoo.evaluate import evaluate
from snnzoo.memory import keep_freed_memory


def load_weights(path: Path) -> dict:
    """A state dict from model.safetensors, a model folder, or a training checkpoint.pt."""
    path = Path(path)
    if path.is_dir():
        path = path / hub.WEIGHTS_FILENAME
    if not path.exists():
        raise SystemExit(f"error: --checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        return hub.load_state_dict(path)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(saved, dict) and "model" in saved:
        return saved["model"]
    raise SystemExit(f"error: {path} is neither a .safetensors file nor a snnzoo.train checkpoint")


def _folder_model_args(checkpoint) -> dict:
    """The architecture recorded in config.json beside the weights, if there is one."""
    if checkpoint is None:
        return {}
    folder = Path(checkpoint) if Path(checkpoint).is_dir() else Path(checkpoint).parent
    config = folder / hub.CONFIG_FILENAME
    if not config.is_file():
        return {}
    recorded = json.loads(config.read_text())
    return dict(recorded.get("model_args", {}), num_classes=recorded.get("num_classes"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnzoo.validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a registered model or hf-hub:org/repo")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pretrained", action="store_true", help="the published weights")
    source.add_argument("--checkpoint", type=Path,
                        help="model.safetensors, a model folder, or a snnzoo.train checkpoint.pt")
    parser.add_argument("--dataset", default="fashion-mnist-sample")
    parser.add_argument("--data-dir")
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--split", choices=["train", "test"], default="test")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast")
    parser.add_argument("--channels-last", action="store_true",
                        help="compute in the channels_last memory format (faster on the CPU)")
    parser.add_argument("--reparam", action="store_true",
                        help="fold each convolution's BatchNorm into it for inference, as timm's "
                             "reparameterize_model does (faster; equal up to float rounding)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    keep_freed_memory()  # large activations reuse memory (snnzoo.memory)

    info = dataset_info(args.dataset)
    model = snnzoo.create_model(args.model, pretrained=args.pretrained,
                                **_folder_model_args(args.checkpoint))
    if args.checkpoint is not None:
        model.load_state_dict(load_weights(args.checkpoint), strict=True)
    if tuple(model.pretrained_cfg["input_size"]) != tuple(info.input_size) or \
            model.num_classes != info.num_classes:
        raise SystemExit(f"error: {args.model} takes {tuple(model.pretrained_cfg['input_size'])} "
                         f"images in {model.num_classes} classes; {args.dataset} has "
                         f"{tuple(info.input_size)} in {info.num_classes}")
    device = torch.device(args.device)
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    if args.reparam:
        model = reparameterize_model(model.eval(), inplace=True)
    data = load_dataset(args.dataset, args.split, args.data_dir, args.download)
    loader = evaluation_batches(data, info, args.batch_size, device)
    result = evaluate(model, loader, device, args.amp, count_spikes=True)
    result.update(model=args.model, dataset=args.dataset, split=args.split,
                  channels_last=args.channels_last, amp=args.amp, reparam=args.reparam)

    print(f"{args.model} on {args.dataset} ({args.split}, {result['images']} images)")
    print(f"  top-1 {result['top1']:.2f}%   top-5 {result['top5']:.2f}%   "
          f"loss {result['loss']:.4f}   spikes per image {result['spikes_per_image']:.0f}")
    width = max(len(name) for name in result["firing_rates"])
    print(f"\n  {'LIF layer':{width}}  firing rate")
    for name, rate in result["firing_rates"].items():
        print(f"  {name:{width}}  {rate:.4f}")
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
