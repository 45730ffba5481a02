"""Convert the SNASNet authors' released checkpoints into snnzoo weights.

    python -m snnzoo.convert save_cifar100_bw.pth.tar --model snasnet_cifar100 --out DIR
    python -m snnzoo.convert CKPT --model snasnet_cifar10 --genotype "0303 0030 2002 0200" \\
        --cell backward --out DIR

Reads {'state_dict': ...} with torch.load(weights_only=True), maps every key of the authors'
layout onto snnzoo's SNASNet, refuses missing or unexpected keys (listing them), and writes
DIR/model.safetensors, DIR/config.json and a model card, DIR/README.md (timm's Hub layout).
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
from pathlib import Path

import torch

from snnzoo import hub
from snnzoo._files import visible_entries
from snnzoo._options import add_debug_option
from snnzoo._messages import abbreviated_list
from snnzoo.hub import dtype_mismatches, non_finite_problem
from snnzoo.models.genotype import Genotype, parse_genotype
from snnzoo.models.reference import feedback_slots, forward_slots

__all__ = ["authors_key_map", "authors_network", "convert_state_dict", "convert_checkpoint",
           "main"]

_FIXED = {
    "downconv1.0.": "transition.0.", "downconv1.2.": "transition.2.",
    "downconv1.3.": "transition.3.", "last_act.0.": "final_act.0.",
    "classifier.1.": "pre_fc.", "classifier.3.": "fc.", "stem.0.": "stem.0.", "stem.1.": "stem.1.",
}
_OPS_WITH_WEIGHTS = {2, 3}
_AUTHORS_CONV = re.compile(r"cell1\.(cell_architecture|cell_architecture_back)\.(\d+)\.1\.weight")
_ACCEPTED = """\
Accepted checkpoints: {'state_dict': {name: tensor}} as the authors save it (other entries,
such as 'epoch' or 'optimizer', are ignored), a bare state dict, and keys with DataParallel's
'module.' prefix. Only tensors and plain Python values are read (torch.load(weights_only=True)):
a file that also holds other Python objects (an argparse.Namespace, say) is refused, with the
command that saves its weights alone.

A checkpoint does not record its genotype, and its weights show only the convolution edges:
pass the --genotype (the authors' --cnt_mat) and --cell it was trained with whenever they are
not the model's. Missing or unexpected keys and other tensor shapes are refused, with what
differs; nothing is written then. An existing --out folder is replaced only if it is a model
folder (it holds config.json).

Exit status: 0 when the folder was written, 1 otherwise."""


def authors_key_map(genotype: Genotype) -> dict[str, str]:
    """Prefix in the authors' layout -> prefix in snnzoo's, for every module with weights."""
    mapping = dict(_FIXED)
    for cell in ("cell1", "cell2"):
        slots = [("cell_architecture", forward_slots())]
        if genotype.cell == "backward":
            slots.append(("cell_architecture_back", feedback_slots()))
        for list_name, edges in slots:
            for slot, (i, j) in enumerate(edges):
                if genotype.matrix[i][j] in _OPS_WITH_WEIGHTS:
                    mapping[f"{cell}.{list_name}.{slot}.1."] = f"{cell}.edges.{i}_{j}.conv."
                    mapping[f"{cell}.{list_name}.{slot}.2."] = f"{cell}.edges.{i}_{j}.bn."
    return mapping


def authors_network(model) -> "AuthorsSNASNet":
    """The authors' per-timestep network (snnzoo.models.reference) with model's weights and
    buffers: snnzoo's SNASNet mapped back onto their key layout."""
    from snnzoo.models.reference import AuthorsSNASNet
    mapping = {ours: theirs for theirs, ours in authors_key_map(model.genotype_spec).items()}
    state_dict = {}
    for key, value in model.state_dict().items():
        prefix = next(p for p in mapping if key.startswith(p))
        state_dict[mapping[prefix] + key[len(prefix):]] = value
    twin = AuthorsSNASNet(**model.model_args, num_classes=model.num_classes,
                          in_chans=model.in_chans)
    twin.load_state_dict(state_dict)
    return twin.to(next(model.parameters()).device).train(model.training)


def _convolution_entries(state_dict: dict) -> str:
    """The genotype entries that hold a convolution in a checkpoint of the authors' layout,
    "(row,column)=op ..." with op 2 (1x1) or 3 (3x3); empty if it has none."""
    entries = {}
    for key, value in state_dict.items():
        match = _AUTHORS_CONV.fullmatch(key)
        if match is None or value.dim() != 4:
            continue
        slots = forward_slots() if match[1] == "cell_architecture" else feedback_slots()
        if int(match[2]) < len(slots):
            entries[slots[int(match[2])]] = 2 if value.shape[-1] == 1 else 3
    return " ".join(f"({i},{j})={op}" for (i, j), op in sorted(entries.items()))


def convert_state_dict(state_dict: dict, genotype: Genotype, expected_keys) -> dict:
    """The authors' state dict in snnzoo's key layout; every key must map onto expected_keys."""
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    mapping = authors_key_map(genotype)
    converted, unexpected = {}, []
    for key, value in state_dict.items():
        prefix = next((p for p in mapping if key.startswith(p)), None)
        if prefix is None:
            unexpected.append(key)
            continue
        converted[mapping[prefix] + key[len(prefix):]] = value
    expected_keys = set(expected_keys)
    unexpected += sorted(set(converted) - expected_keys)
    missing = sorted(expected_keys - set(converted))
    if missing or unexpected:
        found = _convolution_entries(state_dict)
        wanted = " ".join(f"({i},{j})={op}" for i, row in enumerate(genotype.matrix)
                          for j, op in enumerate(row) if op in _OPS_WITH_WEIGHTS)
        entries = (f"its convolutions sit at the genotype entries (row,column) {found}, "
                   f"genotype {genotype} has them at {wanted}; " if found else "")
        raise ValueError(
            f"the checkpoint does not match SNASNet with genotype {genotype} ({genotype.cell} "
            f"cell): {entries}missing keys {abbreviated_list(missing) if missing else 'none'}; unexpected "
            f"keys {abbreviated_list(unexpected) if unexpected else 'none'}. Pass the --genotype and --cell "
            f"the checkpoint was trained with (the authors' --cnt_mat and --celltype)")
    return converted


def _load_checkpoint(checkpoint: Path) -> dict:
    """The state dict in a checkpoint file; an error saying what the file is otherwise."""
    if checkpoint.is_dir():
        raise ValueError(f"{checkpoint} is a directory: pass the checkpoint file in it "
                         f"(e.g. {checkpoint / 'save_cifar100_bw.pth.tar'})")
    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist") from None
    except OSError as error:
        raise OSError(f"cannot read checkpoint {checkpoint}: {error.strerror or error}") from None
    except Exception as error:
        raise ValueError(_unreadable(checkpoint, error)) from None
    wrapped = isinstance(loaded, dict) and "state_dict" in loaded
    state_dict = loaded["state_dict"] if wrapped else loaded
    if _is_state_dict(state_dict):
        return state_dict
    if wrapped:
        problem = f"its 'state_dict' is {_describe_value(state_dict)}"
    else:
        problem = (f"it has no 'state_dict' entry and is no state dict itself: it is "
                   f"{_describe_value(loaded)}")
    inner = [key for key, value in (loaded.items() if isinstance(loaded, dict) else ())
             if _is_state_dict(value)]
    hint = (f" Its entry {inner[0]!r} is a state dict: if those are the weights, save them as the "
            f"authors do and convert that file: python -c \"import torch; c = torch.load("
            f"'{checkpoint}', weights_only=True); torch.save({{'state_dict': c[{inner[0]!r}]}}, "
            f"'weights.pth.tar')\"" if inner and not wrapped else "")
    raise ValueError(f"{checkpoint} is not a checkpoint of the authors' form: {problem}. Expected "
                     f"{{'state_dict': {{name: tensor}}}} as the authors save it, or a bare state "
                     f"dict {{name: tensor}}.{hint}")


def _is_state_dict(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(map(torch.is_tensor, value.values()))


def _describe_value(value) -> str:
    """A dict as its keys and their types, anything else as its type."""
    if not isinstance(value, dict):
        return f"a {type(value).__name__}"
    if not value:
        return "an empty dict"
    return "a dict of " + abbreviated_list([f"{key!r} ({type(item).__name__})" for key, item in value.items()])


def _unreadable(checkpoint: Path, error: Exception) -> str:
    """Why torch.load could not read a checkpoint, and what to do about it."""
    refused = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
    if isinstance(error, pickle.UnpicklingError) and refused:
        return (f"{checkpoint} holds Python objects besides tensors ({refused[1]}), which snnzoo "
                f"does not load: unpickling them can run code. If you trust the file, save its "
                f"weights alone once and convert that file: python -c \"import torch; "
                f"c = torch.load('{checkpoint}', weights_only=False); "
                f"torch.save({{'state_dict': c['state_dict']}}, 'weights.pth.tar')\"")
    with open(checkpoint, "rb") as file:
        start = file.read(4)
    reason = (str(error).strip() or type(error).__name__).splitlines()[0].split(". ")[0]
    if start.startswith((b"PK", b"\x80")):  # torch.save's zip archive, or its legacy pickle
        return (f"{checkpoint} is truncated or corrupted ({type(error).__name__}: {reason}): "
                f"download it again, or copy it again from where it was trained")
    return (f"{checkpoint} is not a PyTorch checkpoint (it does not start as torch.save's files "
            f"do; torch.load says {type(error).__name__}: {reason}): pass the .pth.tar file "
            f"the authors' code saved")


def _shape_problem(converted: dict, expected: dict, model_name: str) -> str | None:
    """What differs when the converted tensors do not have the model's shapes, or None."""
    mismatched = [f"{key} {tuple(value.shape)} vs {tuple(expected[key].shape)}"
                  for key, value in converted.items() if value.shape != expected[key].shape]
    if not mismatched:
        return None
    width, needed = converted["stem.0.weight"].shape[0], expected["stem.0.weight"].shape[0]
    wide = (f"the checkpoint's network is {width} channels wide, {model_name} {needed}: "
            if width != needed else "")
    return (f"{len(mismatched)} tensor(s) of the checkpoint have other shapes than {model_name}'s "
            f"(checkpoint vs model): {abbreviated_list(mismatched)}; {wide}it was trained as another "
            f"network. Pass the --model it was trained as (and its --genotype and --cell)")


def output_folder_problem(out: Path) -> str | None:
    """None if convert may write to out: it does not exist, is empty, or holds what convert
    wrote there before (weights, config.json and the card it generates, nothing else). Any
    other folder (a trained model's, with its card, pictures and measured claims) is refused."""
    out = Path(out)
    if not out.exists():
        return None
    if not out.is_dir():
        return f"--out {out} is a file; choose a folder"
    names = visible_entries(out)
    written = sorted([hub.WEIGHTS_FILENAME, hub.CONFIG_FILENAME, hub.CARD_FILENAME])
    if not names or (names == written and hub.has_default_card(out)):
        return None
    if hub.CONFIG_FILENAME not in names:
        return (f"--out {out} holds {abbreviated_list(names)}: not a model folder, and convert writes only "
                f"into a new or empty folder or one it wrote; choose a new or empty --out")
    return (f"--out {out} holds {abbreviated_list(names)}, which convert did not write (a trained model's "
            f"folder, say: its card, pictures and measured claims would stand beside these "
            f"weights); choose a new or empty --out")


def convert_checkpoint(checkpoint: Path, model_name: str, out_dir: Path, genotype=None, cell=None):
    """Convert, check that the weights load strictly, and write the model folder."""
    import snnzoo
    from snnzoo.hub import save_pretrained

    state_dict = _load_checkpoint(Path(checkpoint))
    overrides = {}
    if genotype is not None:
        overrides["genotype"] = genotype
    if cell is not None:
        overrides["cell"] = cell
    model = snnzoo.create_model(model_name, **overrides)
    spec = parse_genotype(model.genotype, model.model_args["cell"])
    expected = model.state_dict()
    converted = convert_state_dict(state_dict, spec, expected.keys())
    problem = _shape_problem(converted, expected, model_name)
    if problem:
        raise ValueError(problem)
    problems = dtype_mismatches(converted, expected)
    if problems:
        raise ValueError(f"{checkpoint}: {problems[0]}; convert a checkpoint of the authors' "
                         f"network as saved")
    problem = non_finite_problem(converted, str(checkpoint))
    if problem:
        raise ValueError(problem)
    model.load_state_dict(converted, strict=True)
    try:
        return save_pretrained(model, out_dir)
    except OSError as error:
        raise OSError(f"cannot write the model folder {out_dir} ({error}): choose an --out "
                      f"where you can write") from None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snnzoo.convert", description=__doc__, epilog=_ACCEPTED,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="the authors' .pth.tar file")
    parser.add_argument("--model", required=True, help="snnzoo model name, e.g. snasnet_cifar100")
    parser.add_argument("--genotype", help='cell of the checkpoint, e.g. "0302 0030 3003 0000" '
                                           "(default: the model's)")
    parser.add_argument("--cell", choices=["forward", "backward"], help="cell type (default: the model's)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_debug_option(parser)
    args = parser.parse_args(argv)
    problem = output_folder_problem(args.out)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        folder = convert_checkpoint(args.checkpoint, args.model, args.out, args.genotype, args.cell)
    except (ValueError, OSError) as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    config = json.loads((folder / "config.json").read_text())
    print(f"wrote {folder}/model.safetensors, config.json and README.md: {args.model} with "
          f"genotype {config['model_args']['genotype']} ({config['model_args']['cell']} cell). "
          f"A checkpoint does not record its skip, avg-pool and zero edges: if it was trained "
          f"with another --cnt_mat, convert it again with that --genotype")
    return 0


if __name__ == "__main__":
    sys.exit(main())
