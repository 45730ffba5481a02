"""Train any snnzoo model with the SNASNet authors' recipe.

    python -m snnzoo.train snasnet_fmnist --dataset fashion-mnist --epochs 300 --out runs/fmnist
    python -m snnzoo.train snasnet_fmnist --dataset fashion-mnist --out runs/fmnist --resume
    torchrun --nproc-per-node 2 -m snnzoo.train snasnet_fmnist --dataset fashion-mnist ...

Defaults are the authors' recipe as their code ran it: SGD lr 0.1, momentum 0.9, dampening
5e-4 and no weight decay (their search_snn.py passes its 5e-4 positionally, where SGD takes
dampening; --weight-decay 5e-4 --dampening 0 is the recipe as written), a cosine schedule
down to lr/100 over the epochs, 300 epochs, batch 64, random crop and (CIFAR, Tiny
ImageNet) horizontal flip, cross-entropy on the vote averaged over T.

The output folder gets log.csv (one row per epoch) and curves.png, checkpoint.pt (written
atomically every epoch, every --checkpoint-minutes and on Ctrl-C or SIGTERM; --resume
continues exactly where it stopped, with the options of the run: options not given again are
taken from the checkpoint, and changing one that defines the run is refused), and at the end
the model folder: model.safetensors (final weights), config.json and README.md, with best/
holding the weights that scored best on the --val-split hold-out. The test set is measured and
logged, never used to choose. A finished run replaces checkpoint.pt with the hidden
.training_run.json (its options and log, no weights), so the folder publishes as it is.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import pickle
import shlex
import signal
import sys
import time
import warnings
import zipfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import Subset
from tqdm.auto import tqdm

import snnzoo
from snnzoo import hub
from snnzoo._files import visible_entries, write_atomically, write_json_atomically
from snnzoo._messages import abbreviated_list
from snnzoo.cards import ARXIV_ID, LICENSE, front_matter
from snnzoo._options import (add_data_options, add_debug_option, add_device_option, cli_errors,
                             number_at_least, positive_integer)
from snnzoo.distributed import init_distributed, process_device
from snnzoo.data import (DATASETS, dataset_info, draw_crops, evaluation_batches,
                         exit_on_data_error, load_dataset, tensor_source, transform_batch)
from snnzoo.data.datasets import names_a_folder
from snnzoo.evaluate import evaluate
from snnzoo.kernels import BACKENDS
from snnzoo.memory import keep_freed_memory
from snnzoo.precision import add_precision_option
from snnzoo.viz import training_curves

CHECKPOINT = "checkpoint.pt"
# A finished run's record (options, log, best epoch) replaces its checkpoint; hidden, never published.
FINISHED_RUN = ".training_run.json"
RUN_FILES = (CHECKPOINT, FINISHED_RUN, "log.csv", hub.WEIGHTS_FILENAME, "best")
# What runs recorded before an option existed used: dampening was always 0 then.
SAVED_BEFORE_RECORDED = {"dampening": 0.0}
# Options that define what a run trains: a resumed run must keep them.
RUN_DEFINING_OPTIONS = ("model", "dataset", "epochs", "batch_size", "lr", "momentum", "dampening",
                        "weight_decay", "timesteps", "genotype", "cell", "width", "val_split",
                        "seed", "max_steps")
# Options of this machine or this invocation: never taken from the checkpoint.
INVOCATION_OPTIONS = ("out", "resume", "device", "download", "command")
LOG_FIELDS = ["epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "test_loss",
              "test_top1", "test_top5", "seconds"]


def _fraction(below_one: bool):
    """An argparse type: a finite number in [0, 1) (below_one) or [0, 1]."""
    def convert(text):
        value = number_at_least(0.0, float)(text)
        if value > 1 or (below_one and value == 1):
            raise argparse.ArgumentTypeError(
                f"{text} must be at least 0 and {'below' if below_one else 'at most'} 1")
        return value
    return convert


SEED_LIMIT = 2 ** 29  # a step's draws are seeded by (seed x 100003 + epoch) x 100003 + step


def _seed(text: str) -> int:
    seed = number_at_least(-SEED_LIMIT + 1)(text)
    if seed >= SEED_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{text} is too large: each step's images are drawn with the seed (seed x 100003 + "
            f"epoch) x 100003 + step, which must fit in 64 bits; use a seed between "
            f"{-SEED_LIMIT + 1} and {SEED_LIMIT - 1}")
    return seed


def _compile_backend(name: str) -> str:
    backends = torch.compiler.list_backends(exclude_tags=())
    if name not in backends:
        raise argparse.ArgumentTypeError(f"{name!r} is not a torch.compile backend here; use one "
                                         f"of {', '.join(backends)}")
    return name


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m snnzoo.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a registered model, e.g. snasnet_fmnist (snnzoo.list_models())")
    add_data_options(parser)
    parser.add_argument("--epochs", type=positive_integer, default=300,
                        help="length of the cosine schedule (default: 300)")
    parser.add_argument("--batch-size", type=positive_integer, default=64,
                        help="per process (default: 64)")
    parser.add_argument("--lr", type=number_at_least(0.0, float, above=True), default=0.1,
                        help="SGD's initial learning rate (default: 0.1)")
    parser.add_argument("--momentum", type=_fraction(below_one=True), default=0.9,
                        help="SGD momentum (default: 0.9)")
    parser.add_argument("--dampening", type=_fraction(below_one=False), default=5e-4,
                        help="SGD dampening (default: 5e-4, as the authors' code ran)")
    parser.add_argument("--weight-decay", type=number_at_least(0.0, float), default=0.0,
                        help="SGD weight decay (default: 0, as the authors' code ran; their "
                             "intended 5e-4 with --dampening 0)")
    parser.add_argument("--timesteps", type=positive_integer, help="T (default: the model's)")
    parser.add_argument("--genotype", help='cell genotype, e.g. "0302 0030 3003 0000"')
    parser.add_argument("--cell", choices=["forward", "backward"],
                        help="cell type (default: the model's)")
    parser.add_argument("--width", type=positive_integer, help="channels of cell 1 (default: the model's)")
    parser.add_argument("--val-split", type=float, default=0.0,
                        help="fraction of the training set held out to choose the best epoch "
                             "(default: 0, none)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/MODEL)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in OUT (its checkpoint.pt) with its options: those "
                             "left out are the run's; one that changes what it trains is refused")
    add_precision_option(parser, deprecated_amp=("--amp", "--no-amp"))
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=False,
                        help="channels_last memory format")
    parser.add_argument("--torchcompile", nargs="?", const="inductor", default=None,
                        type=_compile_backend,
                        metavar="BACKEND",
                        help="torch.compile the training step with BACKEND (default inductor; the "
                             "first steps compile; on the CPU the neurons fuse into the graph); "
                             "evaluation stays eager")
    add_device_option(parser)
    add_debug_option(parser)
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="LIF implementation (see snnzoo.layers.LIF; default: auto)")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seeds the weights, the batches and their augmentation (default: 0)")
    parser.add_argument("--workers", type=number_at_least(0), default=0,
                        help="data loader workers for evaluating image folders (in-memory data "
                             "sets are batched on the device)")
    parser.add_argument("--checkpoint-minutes", type=number_at_least(0.0, float, above=True),
                        default=5.0,
                        help="also checkpoint within an epoch this often (default: 5)")
    parser.add_argument("--max-steps", type=positive_integer, default=None,
                        help="stop after this many optimiser steps per epoch (smoke tests)")
    parser.add_argument("--eval-batch-size", type=positive_integer, default=256,
                        help="images per evaluation batch (default: 256)")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """The options; args.given names those given on the command line (a resume keeps the rest)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser()
    args = parser.parse_args(argv)
    args.command = "python -m snnzoo.train " + " ".join(shlex.quote(arg) for arg in argv)
    if args.out is None:
        args.out = Path("runs") / args.model
    args.dataset = _dataset_option(args.dataset)
    if not 0.0 <= args.val_split < 1.0:
        parser.error(f"--val-split {args.val_split} must be in [0, 1): the fraction of the "
                     "training set held out, e.g. 0.05")
    only_given = _build_parser()
    for action in only_given._actions:
        action.default = argparse.SUPPRESS
    args.given = set(vars(only_given.parse_args(argv)))
    return args


def _option(name: str) -> str:
    return name if name == "model" else "--" + name.replace("_", "-")


def _saved_args(args) -> dict:
    """The options as the checkpoint stores them: plain values, the folder as a string."""
    return {key: str(value) if isinstance(value, Path) else value
            for key, value in vars(args).items() if key != "given"}


def typed_saved_args(saved: dict) -> dict:
    """A checkpoint's options with their parsed types (checkpoints before this stored strings)."""
    actions = {action.dest: action for action in _build_parser()._actions}
    typed = {}
    for key, value in saved.items():
        action = actions.get(key)
        if isinstance(value, str) and action is not None and key != "model":
            if value == "None":
                value = None
            elif isinstance(action.default, bool):
                value = value == "True"
            elif action.type is not None:
                value = action.type(value)
        typed[key] = value
    return typed


def _original_command(command: str) -> str:
    """The command that started the run (older checkpoints recorded the last --resume)."""
    words = shlex.split(command)
    return " ".join(shlex.quote(word) for word in words if word != "--resume")


def _same_option(key: str, old, new, saved: dict) -> bool:
    """Whether two values of a run-defining option mean the same: a genotype however written,
    a data set folder however reached."""
    if old == new:
        return True
    if key == "genotype" and old is not None and new is not None:
        from snnzoo.models import parse_genotype
        cell = saved.get("cell") or "backward"
        try:
            return str(parse_genotype(old, cell)) == str(parse_genotype(new, cell))
        except (TypeError, ValueError):
            return False
    if key == "dataset" and isinstance(old, str) and isinstance(new, str):
        return _dataset_option(old) == _dataset_option(new)
    return False


def _dataset_option(dataset: str) -> str:
    """--dataset as the run records it: a known data set's name, or an image folder's absolute
    path (so that a resume from another directory finds it, however it is written). Any other
    name is kept, for dataset_info to refuse as an unknown data set."""
    if dataset in DATASETS or not names_a_folder(dataset):
        return dataset
    return str(Path(dataset).expanduser().resolve())


def resumed_args(args, saved: dict, path: Path) -> argparse.Namespace:
    """`args` for continuing the run saved at `path`: the options not given again come from the
    checkpoint; a given option that defines the run and differs is refused."""
    saved = {**SAVED_BEFORE_RECORDED, **typed_saved_args(saved)}
    if "precision" not in saved:  # recorded before --precision: the --amp flag
        saved["precision"] = "bf16" if saved.pop("amp", False) in (True, "True") else "fp32"
    given = getattr(args, "given", set(vars(args)))  # args not from parse_args: all given
    changed = [f"{_option(key)} {saved[key]!r} -> {getattr(args, key)!r}"
               for key in RUN_DEFINING_OPTIONS if key in given and key in saved
               and not _same_option(key, saved[key], getattr(args, key), saved)]
    if changed:
        hint = (" (a longer --epochs would stretch the cosine schedule that the run has already "
                "followed: start a new run with another --out to train longer)"
                if any(change.startswith("--epochs ") for change in changed) else "")
        raise SystemExit(f"error: --resume continues the run in {path}, which was started with other "
                         f"options: {'; '.join(changed)}{hint}. Leave these options out (the "
                         f"checkpoint's are used) or choose another --out for a new run")
    for key, value in saved.items():
        if key not in given and key not in INVOCATION_OPTIONS and hasattr(args, key):
            setattr(args, key, value)
    args.command = _original_command(saved.get("command", args.command))
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
    write_atomically(path, lambda tmp: torch.save(obj, tmp))


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
    return model.set_precision(args.precision)


def _splits(args, info, world=1):
    """The training, hold-out (None without --val-split) and test sets, checked to be usable."""
    with exit_on_data_error():
        train_augmented = load_dataset(args.dataset, "train", args.data_dir, args.download,
                                       augment=True)
        test = load_dataset(args.dataset, "test", args.data_dir, args.download)
        plain = (load_dataset(args.dataset, "train", args.data_dir, args.download)
                 if args.val_split else None)
    train_set, val_set = train_augmented, None
    if args.val_split:
        order = torch.randperm(len(plain), generator=torch.Generator().manual_seed(args.seed))
        held_out = int(round(args.val_split * len(plain)))
        if held_out == 0:
            raise SystemExit(f"error: --val-split {args.val_split} of the {len(plain)} training images "
                             f"holds out none; use at least {1 / len(plain):.2g}, or 0 for no hold-out")
        train_set = Subset(train_augmented, order[held_out:].tolist())
        val_set = Subset(plain, order[:held_out].tolist())
    per_step = args.batch_size * world
    if val_set is not None and len(train_set) < world:
        raise SystemExit(f"error: --val-split {args.val_split} holds out {len(val_set)} of the "
                         f"{len(val_set) + len(train_set)} training images of {args.dataset}, "
                         f"leaving {len(train_set)} to train on; use a smaller --val-split, "
                         f"e.g. 0.05")
    if len(train_set) < per_step:
        held = f" after --val-split {args.val_split} holds some out" if val_set is not None else ""
        processes = f" x {world} processes" if world > 1 else ""
        raise SystemExit(f"error: --batch-size {args.batch_size}{processes} is more than the "
                         f"{len(train_set)} training images of {args.dataset}{held}, so not one step "
                         f"would run; use --batch-size {len(train_set) // world} or less")
    if len(test) == 0:
        raise SystemExit(f"error: the test split of {args.dataset} is empty; check --data-dir")
    return train_set, val_set, test


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


def _stop_unless_finite(loss, epoch: int, step: int, lr: float, world: int):
    """End the run before a non-finite loss reaches the weights: the last checkpoint stays as
    it was, with finite weights. Every process stops together (one process's loss decides)."""
    finite = torch.isfinite(loss.detach()).to(torch.int32)
    if world > 1:
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if not bool(finite):
        if world > 1 and dist.get_rank() != 0:  # rank 0 says why, once
            raise SystemExit(1)
        raise SystemExit(
            f"error: the training loss is not finite at epoch {epoch + 1}, step {step + 1} (lr "
            f"{lr:g}): the run diverged, and no weights were saved from this step. Start a new "
            f"run with a smaller --lr (e.g. {lr / 10:g}) and another --out; the last "
            f"checkpoint, if any, holds the weights from before")


def _stop_unless_finite_weights(model, epoch: int, step: int, lr: float):
    """End the run before weights with NaN or infinity are saved (a step can overflow them
    with a finite loss); the last checkpoint keeps the weights from before."""
    problem = hub.non_finite_problem(model.state_dict(), "the model")
    if problem:
        where = f"at the end of epoch {epoch}" if step == 0 else f"at epoch {epoch + 1}, step {step}"
        raise SystemExit(f"error: {where} (lr {lr:g}), {problem}; nothing was saved, and the "
                         f"last checkpoint, if any, holds the weights from before")


def _write_log(out: Path, rows):
    def write(tmp: Path):
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    write_atomically(out / "log.csv", write)


def _run_folder_problem(out: Path) -> str | None:
    """Why a new run must not start in `out` (it holds an earlier run), or None."""
    if (out / CHECKPOINT).exists():
        return (f"{out / CHECKPOINT} exists; pass --resume to continue that run or choose another "
                f"--out")
    if (out / FINISHED_RUN).exists():
        return (f"{out} holds a finished run ({FINISHED_RUN}); choose another --out for a new run")
    earlier = [name for name in RUN_FILES if (out / name).exists()]
    if earlier:
        return (f"{out} holds files of an earlier run ({', '.join(earlier)}) and no checkpoint to "
                f"continue from; choose another --out, or delete them to start again there")
    if out.exists() and not out.is_dir():
        return f"--out {out} is a file; choose a folder for the run"
    others = visible_entries(out)
    if others:
        return (f"--out {out} holds {abbreviated_list(others)}: a run writes only into a new or empty "
                f"folder (or continues its own with --resume); choose another --out")
    return None


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "step", "rng", "rows", "best",
                   "args")


def read_training_checkpoint(path: Path, device="cpu", required=CHECKPOINT_KEYS) -> dict:
    """A snnzoo.train checkpoint.pt (tensors and plain values only, weights_only), holding the
    `required` entries and a state dict of tensors under "model", or an error naming the file:
    the one reader of training checkpoints (train --resume, validate --checkpoint)."""
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except (OSError, EOFError, RuntimeError, KeyError, ValueError, pickle.UnpicklingError,
            zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else ""
        raise SystemExit(f"error: {path} is corrupted or truncated, or not a snnzoo.train "
                         f"checkpoint ({type(error).__name__}: {reason}); put back an intact "
                         f"copy of it, or pass the run's model.safetensors (an authors' "
                         f"checkpoint converts with python -m snnzoo.convert)") from None
    missing = [key for key in required if not isinstance(saved, dict) or key not in saved]
    weights = saved.get("model") if isinstance(saved, dict) else None
    if not missing and not (isinstance(weights, dict) and weights
                            and all(isinstance(t, torch.Tensor) for t in weights.values())):
        missing = ["a 'model' state dict of tensors"]
    if missing:
        raise SystemExit(f"error: {path} is not a snnzoo.train checkpoint (it lacks "
                         f"{', '.join(missing)}); put back the run's own checkpoint.pt, or pass its "
                         f"model.safetensors (an authors' checkpoint converts with python -m "
                         f"snnzoo.convert)")
    return saved


def _finished_run(out: Path, saved: dict | None) -> dict | None:
    """The record of a finished run in `out`: its .training_run.json, or (runs from before it) a
    checkpoint that has reached its last epoch beside the run's results.json."""
    if (out / FINISHED_RUN).exists():
        return json.loads((out / FINISHED_RUN).read_text())
    if saved is not None and not saved.get("step") and (out / "results.json").is_file() \
            and saved["epoch"] >= int(typed_saved_args(saved["args"])["epochs"]):
        return dict(args=saved["args"], rows=saved["rows"], best=saved["best"])
    return None


def _finish(out: Path, args, state):
    """Replace the checkpoint with the run's record, so that the folder publishes as it is."""
    write_json_atomically(out / FINISHED_RUN, dict(args=_saved_args(args), rows=state["rows"],
                                                   best=state["best"]))
    (out / CHECKPOINT).unlink(missing_ok=True)


def _scheduler_step(scheduler, stepped: bool):
    """scheduler.step(); an epoch resumed at its end runs no optimiser step, and torch's warning
    that the schedule skipped one does not apply."""
    with warnings.catch_warnings():
        if not stepped:
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
        scheduler.step()


def train(args) -> dict:
    """Train as the options say (or continue the run in --out); the log rows and best epoch."""
    rank, world = init_distributed()
    device = process_device(args.device, world)
    args, saved, finished = _open_run(args, device, world)
    if finished is not None:
        _leave_process_group(world)
        return finished
    run = _start_run(args, saved, device, rank, world)
    with _StopRequest() as stop:
        for epoch in range(run.state["epoch"], args.epochs):
            started = time.monotonic() - run.state["epoch_seconds"]  # an epoch resumed keeps its time
            totals = _train_epoch(run, epoch, started, stop)
            _end_epoch(run, epoch, started, *totals)
    if rank == 0:
        _finish_run(run)
    _leave_process_group(world)
    return dict(rows=run.state["rows"], best=run.state["best"])


def _leave_process_group(world: int):
    if world > 1:
        dist.destroy_process_group()


def _open_run(args, device, world: int):
    """(the run's options, the checkpoint to continue or None, the result of a run that has
    finished already or None); refuses an --out that holds something else."""
    out = args.out
    if not args.resume:
        problem = _run_folder_problem(out)
        if problem is not None:
            raise SystemExit(f"error: {problem}")
        return args, None, None
    saved = None
    if (out / CHECKPOINT).exists():
        saved = read_training_checkpoint(out / CHECKPOINT, device)
        args = resumed_args(args, saved["args"], out / CHECKPOINT)
    elif not (out / FINISHED_RUN).exists():
        raise SystemExit(f"error: --resume but {out / CHECKPOINT} does not exist; run without "
                         f"--resume to start")
    finished = _finished_run(out, saved)
    if finished is not None:
        if saved is None:
            args = resumed_args(args, finished["args"], out / FINISHED_RUN)
        leftover = (f"; its {CHECKPOINT} is no longer needed (delete it before publishing the "
                    f"folder)" if (out / CHECKPOINT).exists() else "")
        print(f"{out} holds a finished run ({len(finished['rows'])} epochs); nothing to do"
              f"{leftover}", file=sys.stderr)
        return args, saved, dict(rows=finished["rows"], best=finished["best"])
    if saved.get("world_size", world) != world:
        raise SystemExit(f"error: {out / CHECKPOINT} was written by {saved['world_size']} "
                         f"processes; resume it with {saved['world_size']} (each has its share "
                         f"of every batch), not {world}")
    return args, saved, None


@dataclasses.dataclass
class _Run:
    """What the steps of a training run share: its options, model, optimiser, data and state
    (epoch, step, log rows, best epoch, and the totals of an epoch stopped partway)."""
    args: argparse.Namespace
    model: torch.nn.Module
    network: torch.nn.Module  # the model as the steps call it: under DDP, compiled
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    device: torch.device
    rank: int
    world: int
    info: object
    train_set: object
    val_set: object
    test_set: object
    state: dict
    last_checkpoint: float = dataclasses.field(default_factory=lambda: time.monotonic())

    def __post_init__(self):
        self.training_batch = _TrainingBatches(self.train_set, self.info, self.device, self.args.seed)

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def evaluation(self, dataset, **options) -> dict:
        batches = evaluation_batches(dataset, self.info, self.args.eval_batch_size, self.device,
                                     self.args.workers)
        return evaluate(self.model, batches, self.device, self.args.precision, **options)

    def checkpoint(self, epoch, step, loss_sum=0.0, correct=0, seen=0, epoch_seconds=0.0):
        """Save everything the run needs to continue at (epoch, step); rank 0 writes it."""
        _stop_unless_finite_weights(self.model, epoch, step, self.lr)
        if self.rank == 0:
            cuda_rng = torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None
            _atomic_save(dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                              scheduler=self.scheduler.state_dict(), epoch=epoch, step=step,
                              rng=torch.get_rng_state(), cuda_rng=cuda_rng,
                              rows=self.state["rows"], best=self.state["best"], loss_sum=loss_sum,
                              correct=correct, seen=seen, epoch_seconds=epoch_seconds,
                              world_size=self.world, args=_saved_args(self.args)),
                         self.args.out / CHECKPOINT)
        self.last_checkpoint = time.monotonic()


def _start_run(args, saved: dict | None, device, rank: int, world: int) -> _Run:
    """Build the model, data, optimiser and schedule; load the checkpoint being continued."""
    with exit_on_data_error():
        info = dataset_info(args.dataset)
    torch.manual_seed(args.seed)
    model = _build_model(args, info, device)
    train_set, val_set, test_set = _splits(args, info, world)
    optimizer = torch.optim.SGD(model.parameters(), args.lr, momentum=args.momentum,
                                dampening=args.dampening, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs,
                                                           eta_min=args.lr * 0.01)
    args.out.mkdir(parents=True, exist_ok=True)
    state = dict(epoch=0, step=0, rows=[], best=None, loss_sum=0.0, correct=0, seen=0,
                 epoch_seconds=0.0)
    if saved is not None:
        state = _restore(saved, model, optimizer, scheduler, device)
    network = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if args.torchcompile:  # after DDP, as timm does; model keeps the state dict's names
        network = torch.compile(network, backend=args.torchcompile)
    return _Run(args, model, network, optimizer, scheduler, device, rank, world, info,
                train_set, val_set, test_set, state)


def _train_epoch(run: _Run, epoch: int, started: float, stop) -> tuple[float, int, int, bool]:
    """The optimiser steps of one epoch (from where a resumed one stopped), checkpointing every
    --checkpoint-minutes and on a stop request; (loss sum, correct, seen, whether any step ran)."""
    args, state = run.args, run.state
    batches = _epoch_batches(len(run.train_set), args.batch_size, args.seed, epoch, run.rank, run.world)
    if args.max_steps is not None:
        batches = batches[:args.max_steps]
    run.model.train()
    loss_sum, correct, seen = state["loss_sum"], state["correct"], state["seen"]
    stepped = False
    bar = tqdm(range(state["step"], len(batches)), desc=f"epoch {epoch + 1}/{args.epochs}",
               disable=run.rank != 0, dynamic_ncols=True)
    for step in bar:
        images, labels = run.training_batch(batches[step], epoch, step)
        logits = run.network(images).float()  # in the model's precision (--precision)
        loss = F.cross_entropy(logits, labels)
        _stop_unless_finite(loss, epoch, step, run.lr, run.world)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        stepped = True
        loss_sum += float(loss.detach()) * labels.numel()
        correct += int((logits.argmax(1) == labels).sum())
        seen += labels.numel()
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", top1=f"{100 * correct / seen:.1f}",
                        lr=f"{run.lr:.4f}")
        if stop.requested or time.monotonic() - run.last_checkpoint > 60 * args.checkpoint_minutes:
            run.checkpoint(epoch, step + 1, loss_sum, correct, seen, time.monotonic() - started)
            if stop.requested:
                print(f"\nstopped: checkpoint at epoch {epoch + 1}, step {step + 1}; "
                      f"continue with --resume", file=sys.stderr)
                raise SystemExit(130)
    return loss_sum, correct, seen, stepped


def _end_epoch(run: _Run, epoch: int, started: float, loss_sum: float, correct: int, seen: int,
               stepped: bool):
    """Step the schedule; on rank 0 evaluate, log and keep the best weights; checkpoint."""
    _stop_unless_finite_weights(run.model, epoch + 1, 0, run.lr)
    run.state.update(step=0, loss_sum=0.0, correct=0, seen=0, epoch_seconds=0.0)
    lr = run.lr
    _scheduler_step(run.scheduler, stepped)
    row = dict(epoch=epoch + 1, lr=lr, train_loss=loss_sum / max(seen, 1),
               train_top1=100.0 * correct / max(seen, 1), val_loss="", val_top1="")
    if run.rank == 0:
        _evaluate_epoch(run, epoch, started, row)
    run.checkpoint(epoch + 1, 0)
    if run.world > 1:
        dist.barrier()


def _evaluate_epoch(run: _Run, epoch: int, started: float, row: dict):
    """Measure the hold-out and test sets into the epoch's row, log it, and save best/."""
    args, state = run.args, run.state
    improved = False
    if run.val_set is not None:
        val = run.evaluation(run.val_set, description="val")
        row.update(val_loss=val["loss"], val_top1=val["top1"])
        improved = state["best"] is None or val["top1"] > state["best"]["val_top1"]
        if improved:
            state["best"] = dict(epoch=epoch + 1, val_top1=val["top1"])
    test = run.evaluation(run.test_set, description="test")
    row.update(test_loss=test["loss"], test_top1=test["top1"], test_top5=test["top5"],
               seconds=round(time.monotonic() - started, 1))
    state["rows"].append(row)
    if improved:  # after the row, so that best/'s card counts this epoch
        _save_model_folder(run.model, args.out / "best", args, state, None)
    _write_log(args.out, state["rows"])
    training_curves(state["rows"], args.out / "curves.png")
    print(f"epoch {epoch + 1}: train {row['train_top1']:.2f}%  "
          + (f"val {row['val_top1']:.2f}%  " if run.val_set is not None else "")
          + f"test {row['test_top1']:.2f}%", file=sys.stderr)


def _finish_run(run: _Run):
    """Measure the final weights on the test set and write the model folder."""
    final = run.evaluation(run.test_set, count_spikes=True, description="final test")
    _save_model_folder(run.model, run.args.out, run.args, run.state, final)
    _finish(run.args.out, run.args, run.state)
    print(f"final weights: test top-1 {final['top1']:.2f}%, top-5 {final['top5']:.2f}%, "
          f"{final['spikes_per_image']:.0f} spikes per image; model folder {run.args.out}",
          file=sys.stderr)


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
                weights="final weights of the run")  # the card adds: nothing chosen on the test split


def training_card(model, args, state, final) -> str:
    """The model card of a trained model: recipe, command, measured accuracy and firing."""
    rows = state["rows"]
    last = rows[-1] if rows else {}
    name = model.pretrained_cfg.get("architecture", args.model)
    data = DATASETS.get(args.dataset)  # an image folder has no Hub id
    hub_id = data.hub_id if data is not None else None
    license = model.pretrained_cfg.get("license") or LICENSE
    lines = [f"# {name} trained on {args.dataset}", "",
             f"SNASNet (arXiv:{ARXIV_ID}), genotype `{model.genotype}` "
             f"({model.model_args['cell']} cell), T={model.timesteps}, trained with "
             f"`python -m snnzoo.train`.", "",
             "```", args.command, "```", "",
             f"- epochs run: {len(rows)} of {args.epochs}; batch {args.batch_size}; SGD lr "
             f"{args.lr}, momentum {args.momentum}, dampening {args.dampening}, weight decay "
             f"{args.weight_decay}; cosine to "
             f"lr/100", f"- device: {args.device}; precision {args.precision}"]
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
    return front_matter(license, datasets=[hub_id] if hub_id else ()) + "\n" + "\n".join(lines) + "\n"


def _restore(saved: dict, model, optimizer, scheduler, device) -> dict:
    """Load a checkpoint read by _read_checkpoint into the run; the training state to continue."""
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError as error:
        raise SystemExit(f"error: the checkpoint's weights do not fit {type(model).__name__} built "
                         f"from its options ({error}); put back the run's checkpoint") from None
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"].cpu())
    if saved.get("cuda_rng") is not None and device.type == "cuda":
        torch.cuda.set_rng_state_all([state.cpu() for state in saved["cuda_rng"]])
    print(f"resuming from epoch {saved['epoch'] + 1}, step {saved['step']}", file=sys.stderr)
    return dict(epoch=saved["epoch"], step=saved["step"], rows=saved["rows"], best=saved["best"],
                loss_sum=saved.get("loss_sum", 0.0), correct=saved.get("correct", 0),
                seen=saved.get("seen", 0), epoch_seconds=saved.get("epoch_seconds", 0.0))


def main(argv=None) -> int:
    args = parse_args(argv)
    keep_freed_memory()  # large activations reuse memory (snnzoo.memory)
    with cli_errors(args.debug):
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
