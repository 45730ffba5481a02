"""Train any snnzoo model with the SNASNet authors' recipe.

    python -m snnzoo.train snasnet_fmnist --dataset fashion-mnist --epochs 300 --out runs/fmnist
    python -m snnzoo.train snasnet_fmnist --dataset fashion-mnist --out runs/fmnist --resume
    torchrun --nproc-per-node 2 -m snnzoo.train snasnet_fmnist --dataset fashion-mnist ...

Defaults are the authors' recipe: SGD lr 0.1, momentum 0.9, weight decay 5e-4, a cosine
schedule down to lr/100 over the epochs, 300 epochs, batch 64, random crop and (CIFAR)
horizontal flip, cross-entropy on the vote averaged over T.

The output folder gets log.csv (one row per epoch) and curves.png, checkpoint.pt (written
atomically every epoch, every --checkpoint-minutes and on Ctrl-C or SIGTERM; --resume
continues exactly where it stopped), and at the end the model folder: model.safetensors
(final weights), config.json and README.md, with best/ holding the weights that scored best
on the --val-split hold-out. The test set is measured and logged, never used to choose.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import Subset
from tqdm.auto import tqdm

import snnzoo
from snnzoo import hub
from snnzoo.distributed import init_distributed
from snnzoo.data import (dataset_info, draw_crops, evaluation_batches, load_dataset,
                         tensor_source, transform_batch)
from snnzoo.evaluate import autocast, evaluate
from snnzoo.kernels import BACKENDS
from snnzoo.memory import keep_freed_memory

CHECKPOINT = "checkpoint.pt"
LOG_FIELDS = ["epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "test_loss",
              "test_top1", "test_top5", "seconds"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m snnzoo.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a registered model, e.g. snasnet_fmnist (snnzoo.list_models())")
    parser.add_argument("--dataset", default="fashion-mnist-sample",
                        help="fashion-mnist-sample (embedded), fashion-mnist, cifar10, cifar100, "
                             "tinyimagenet or an image folder")
    parser.add_argument("--data-dir", help="where the data set lies")
    parser.add_argument("--download", action="store_true", help="download the data set if missing")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64, help="per process")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--timesteps", type=int, help="T (default: the model's)")
    parser.add_argument("--genotype", help='cell genotype, e.g. "0302 0030 3003 0000"')
    parser.add_argument("--cell", choices=["forward", "backward"])
    parser.add_argument("--width", type=int, help="channels of cell 1 (default: the model's)")
    parser.add_argument("--val-split", type=float, default=0.0,
                        help="fraction of the training set held out to choose the best epoch")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/MODEL)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--torchcompile", nargs="?", const="inductor", default=None,
                        metavar="BACKEND",
                        help="torch.compile the training step with BACKEND (default inductor; the "
                             "first steps compile; on the CPU the neurons fuse into the graph); "
                             "evaluation stays eager")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="LIF implementation (see snnzoo.layers.LIF)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0,
                        help="data loader workers for evaluating image folders (in-memory data "
                             "sets are batched on the device)")
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0,
                        help="also checkpoint within an epoch this often")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop after this many optimiser steps per epoch (smoke tests)")
    parser.add_argument("--eval-batch-size", type=int, default=256)
    args = parser.parse_args(argv)
    args.command = "python -m snnzoo.train " + " ".join(
        shlex.quote(arg) for arg in (sys.argv[1:] if argv is None else argv))
    if args.out is None:
        args.out = Path("runs") / args.model
    if not 0.0 <= args.val_split < 1.0:
        parser.error(f"--val-split {args.val_split} must be in [0, 1)")
    return args


class _StopRequest:
    """SIGINT/SIGTERM set a flag; the loop checkpoints after the current step and exits."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _atomic_save(obj, path: Path):
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _build_model(args, info, device):
    overrides = dict(num_classes=info.num_classes, in_chans=info.input_size[0], backend=args.backend)
    for key in ("timesteps", "genotype", "cell", "width"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    model = snnzoo.create_model(args.model, **overrides)
    expected = model.pretrained_cfg.get("input_size")
    if expected and tuple(expected[1:]) != tuple(info.input_size[1:]):
        raise SystemExit(f"error: {args.model} takes {expected[1]}x{expected[2]} images, "
                         f"{args.dataset} has {info.input_size[1]}x{info.input_size[2]}")
    model.to(device)
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def _splits(args, info):
    train_augmented = load_dataset(args.dataset, "train", args.data_dir, args.download, augment=True)
    test = load_dataset(args.dataset, "test", args.data_dir, args.download)
    if not args.val_split:
        return train_augmented, None, test
    plain = load_dataset(args.dataset, "train", args.data_dir, args.download)
    order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(args.seed))
    held_out = int(round(args.val_split * len(plain)))
    return (Subset(train_augmented, order[held_out:].tolist()),
            Subset(plain, order[:held_out].tolist()), test)


def _epoch_batches(n_images, batch_size, seed, epoch, rank, world):
    """This process's batches of an epoch: a permutation fixed by (seed, epoch), split by rank."""
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    per_step = batch_size * world
    steps = n_images // per_step  # drop the last incomplete batch, like the authors' loader
    return [order[s * per_step + rank * batch_size:s * per_step + (rank + 1) * batch_size].tolist()
            for s in range(steps)]


class _TrainingBatches:
    """Augmented training batches. An in-memory data set is moved to the device once and each
    batch is gathered, cropped and flipped there, its random draws seeded by (seed, epoch,
    step) so that a resumed run sees the same images; any other data set is read image by
    image with the global random state (saved in checkpoints)."""

    def __init__(self, dataset, info, device, seed):
        self.dataset, self.info, self.device, self.seed = dataset, info, device, seed
        source = tensor_source(dataset)
        self.on_device = None if source is None else tuple(t.to(device) for t in source)

    def __call__(self, indices, epoch, step):
        if self.on_device is None:
            images, labels = zip(*(self.dataset[i] for i in indices))
            return torch.stack(images).to(self.device), torch.tensor(labels).to(self.device)
        images, labels = self.on_device
        index = torch.tensor(indices, device=self.device)
        draws = torch.Generator().manual_seed((self.seed * 100003 + epoch) * 100003 + step)
        return (transform_batch(images[index], self.info, draw_crops(len(indices), self.info, draws)),
                labels[index])


def _write_log(out: Path, rows):
    tmp = out / "log.csv.tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / "log.csv")


def plot_curves(rows, path: Path):
    """Loss and top-1 accuracy per epoch (train, val, test) as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in rows]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for split in ("train", "val", "test"):
        losses = [row[f"{split}_loss"] for row in rows]
        if any(value != "" for value in losses):
            loss_axis.plot(epochs, [float(v) if v != "" else math.nan for v in losses], label=split)
            accuracy_axis.plot(epochs, [float(row[f"{split}_top1"]) if row[f"{split}_top1"] != ""
                                        else math.nan for row in rows], label=split)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axis.set(xlabel="epoch", ylabel="top-1 %", title="accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    os.replace(tmp, path)


def train(args) -> dict:
    rank, world = init_distributed()
    device = torch.device(args.device if world == 1 or args.device == "cpu"
                          else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    if device.type == "cuda":
        torch.cuda.set_device(device.index or 0)
    info = dataset_info(args.dataset)
    torch.manual_seed(args.seed)
    model = _build_model(args, info, device)
    train_set, val_set, test_set = _splits(args, info)
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs,
                                                           eta_min=args.lr * 0.01)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    state = dict(epoch=0, step=0, rows=[], best=None)
    if args.resume:
        state = _restore(out / CHECKPOINT, model, optimizer, scheduler, device)
    elif (out / CHECKPOINT).exists():
        raise SystemExit(f"error: {out / CHECKPOINT} exists; pass --resume to continue that run "
                         f"or choose another --out")
    network = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if args.torchcompile:  # after DDP, as timm does; model keeps the state dict's names
        network = torch.compile(network, backend=args.torchcompile)
    eval_loader = lambda dataset: evaluation_batches(  # noqa: E731
        dataset, info, args.eval_batch_size, device, args.workers)
    training_batch = _TrainingBatches(train_set, info, device, args.seed)

    def checkpoint(epoch, step, rng):
        if rank == 0:
            _atomic_save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(),
                              scheduler=scheduler.state_dict(), epoch=epoch, step=step, rng=rng,
                              rows=state["rows"], best=state["best"],
                              args={k: str(v) for k, v in vars(args).items()}), out / CHECKPOINT)

    last_checkpoint = time.monotonic()
    with _StopRequest() as stop:
        for epoch in range(state["epoch"], args.epochs):
            started = time.monotonic()
            batches = _epoch_batches(len(train_set), args.batch_size, args.seed, epoch, rank, world)
            if args.max_steps is not None:
                batches = batches[:args.max_steps]
            model.train()
            loss_sum = correct = seen = 0
            bar = tqdm(range(state["step"], len(batches)), desc=f"epoch {epoch + 1}/{args.epochs}",
                       disable=rank != 0, dynamic_ncols=True)
            for step in bar:
                images, labels = training_batch(batches[step], epoch, step)
                with autocast(device, args.amp):
                    logits = network(images).float()
                loss = F.cross_entropy(logits, labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * labels.numel()
                correct += int((logits.argmax(1) == labels).sum())
                seen += labels.numel()
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", top1=f"{100 * correct / seen:.1f}",
                                lr=f"{scheduler.get_last_lr()[0]:.4f}")
                if stop.requested or time.monotonic() - last_checkpoint > 60 * args.checkpoint_minutes:
                    checkpoint(epoch, step + 1, torch.get_rng_state())
                    last_checkpoint = time.monotonic()
                    if stop.requested:
                        print(f"\nstopped: checkpoint at epoch {epoch + 1}, step {step + 1}; "
                              f"continue with --resume", file=sys.stderr)
                        raise SystemExit(130)
            state["step"] = 0
            lr = scheduler.get_last_lr()[0]
            scheduler.step()
            row = dict(epoch=epoch + 1, lr=lr, train_loss=loss_sum / max(seen, 1),
                       train_top1=100.0 * correct / max(seen, 1), val_loss="", val_top1="")
            if rank == 0:
                if val_set is not None:
                    val = evaluate(model, eval_loader(val_set), device, args.amp, description="val")
                    row.update(val_loss=val["loss"], val_top1=val["top1"])
                    if state["best"] is None or val["top1"] > state["best"]["val_top1"]:
                        state["best"] = dict(epoch=epoch + 1, val_top1=val["top1"])
                        _save_model_folder(model, out / "best", args, state, None)
                test = evaluate(model, eval_loader(test_set), device, args.amp, description="test")
                row.update(test_loss=test["loss"], test_top1=test["top1"], test_top5=test["top5"],
                           seconds=round(time.monotonic() - started, 1))
                state["rows"].append(row)
                _write_log(out, state["rows"])
                plot_curves(state["rows"], out / "curves.png")
                print(f"epoch {epoch + 1}: train {row['train_top1']:.2f}%  "
                      + (f"val {row['val_top1']:.2f}%  " if val_set is not None else "")
                      + f"test {row['test_top1']:.2f}%", file=sys.stderr)
            checkpoint(epoch + 1, 0, torch.get_rng_state())
            last_checkpoint = time.monotonic()
            if world > 1:
                dist.barrier()
    if rank == 0:
        final = evaluate(model, eval_loader(test_set), device, args.amp, count_spikes=True,
                         description="final test")
        _save_model_folder(model, out, args, state, final)
        print(f"final weights: test top-1 {final['top1']:.2f}%, top-5 {final['top5']:.2f}%, "
              f"{final['spikes_per_image']:.0f} spikes per image; model folder {out}",
              file=sys.stderr)
    if world > 1:
        dist.destroy_process_group()
    return dict(rows=state["rows"], best=state["best"])


def _save_model_folder(model, directory: Path, args, state, final):
    """Weights, config.json and a card with what was measured, replacing only those files."""
    extra = {}
    if final is not None:
        extra["results.json"] = (json.dumps(training_results(args, state, final), indent=2)
                                 + "\n").encode()
    hub.save_pretrained(model, directory, model_card=training_card(model, args, state, final),
                        extra_files=extra, replace_folder=False)


def training_results(args, state, final) -> dict:
    """What the run measured, in the results.json schema of scripts/make_model_cards.py."""
    import platform
    device = (torch.cuda.get_device_name() if args.device.startswith("cuda")
              else f"{platform.machine()} CPU, {torch.get_num_threads()} threads")
    seconds = sum(float(row["seconds"] or 0) for row in state["rows"])
    return dict(top1=round(final["top1"], 2), top5=round(final["top5"], 2), split="test",
                images=final["images"], spikes_per_image=round(final["spikes_per_image"], 1),
                firing_rates={k: round(v, 5) for k, v in final["firing_rates"].items()},
                command=args.command, hardware=device,
                training_time=f"{seconds / 3600:.1f} h", epochs=len(state["rows"]),
                weights="final weights of the run (nothing chosen on the test split)")


def training_card(model, args, state, final) -> str:
    """The model card of a trained model: recipe, command, measured accuracy and firing."""
    rows = state["rows"]
    last = rows[-1] if rows else {}
    name = model.pretrained_cfg.get("architecture", args.model)
    lines = ["---", "library_name: timm", "license: mit", "tags:", "- snnzoo",
             "- spiking-neural-network", "- image-classification", "datasets:", f"- {args.dataset}",
             "---", "", f"# {name} trained on {args.dataset}", "",
             f"SNASNet (arXiv:2201.10355), genotype `{model.genotype}` "
             f"({model.model_args['cell']} cell), T={model.timesteps}, trained with "
             f"`python -m snnzoo.train`.", "",
             "```", args.command, "```", "",
             f"- epochs run: {len(rows)} of {args.epochs}; batch {args.batch_size}; SGD lr "
             f"{args.lr}, momentum {args.momentum}, weight decay {args.weight_decay}; cosine to "
             f"lr/100", f"- device: {args.device}"]
    if final is not None:
        lines += ["", "## Measured", "",
                  f"Final weights on the {args.dataset} test split (nothing was chosen on it): "
                  f"top-1 {final['top1']:.2f}%, top-5 {final['top5']:.2f}%, "
                  f"{final['spikes_per_image']:.0f} spikes per image.", "",
                  "| LIF layer | firing rate |", "|---|---|"]
        lines += [f"| {layer} | {rate:.4f} |" for layer, rate in final["firing_rates"].items()]
    if state["best"] is not None:
        lines += ["", f"best/ holds the weights of epoch {state['best']['epoch']}, chosen on the "
                      f"{args.val_split:.0%} validation hold-out (val top-1 "
                      f"{state['best']['val_top1']:.2f}%)."]
    if last:
        lines += ["", f"Log: log.csv and curves.png; last epoch train top-1 "
                      f"{float(last['train_top1']):.2f}%."]
    return "\n".join(lines) + "\n"


def _restore(path: Path, model, optimizer, scheduler, device) -> dict:
    if not path.exists():
        raise SystemExit(f"error: --resume but {path} does not exist; run without --resume to start")
    saved = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"].cpu())
    print(f"resuming from epoch {saved['epoch'] + 1}, step {saved['step']}", file=sys.stderr)
    return dict(epoch=saved["epoch"], step=saved["step"], rows=saved["rows"], best=saved["best"])


def main(argv=None) -> int:
    args = parse_args(argv)
    keep_freed_memory()  # large activations reuse memory (snnzoo.memory)
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
