"""Convert the SNASNet authors' released checkpoints into snnzoo weights.

    python -m snnzoo.convert save_cifar100_bw.pth.tar --model snasnet_cifar100 --out DIR
    python -m snnzoo.convert CKPT --model snasnet_cifar10 --genotype "0303 0030 2002 0200" \
        --cell backward --out DIR

Reads ``{'state_dict': ...}`` with ``torch.load(weights_only=True)``, maps every key of the
authors' layout onto snnzoo's SNASNet, refuses missing or unexpected keys (listing them), and
writes ``DIR/model.safetensors`` and ``DIR/config.json`` (timm's Hub layout).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from snnzoo.models.genotype import Genotype, parse_genotype
from snnzoo.models.reference import feedback_slots, forward_slots

__all__ = ["authors_key_map", "convert_state_dict", "convert_checkpoint", "main"]

_FIXED = {
    "downconv1.0.": "transition.0.", "downconv1.2.": "transition.2.",
    "downconv1.3.": "transition.3.", "last_act.0.": "final_act.0.",
    "classifier.1.": "pre_fc.", "classifier.3.": "fc.", "stem.0.": "stem.0.", "stem.1.": "stem.1.",
}
_OPS_WITH_WEIGHTS = {2, 3}


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
        raise ValueError(
            f"the checkpoint does not match SNASNet with genotype {genotype} ({genotype.cell} "
            f"cell): missing keys {missing or 'none'}; unexpected keys {unexpected or 'none'}. "
            f"Pass the --genotype and --cell the checkpoint was trained with")
    return converted


def convert_checkpoint(checkpoint: Path, model_name: str, out_dir: Path, genotype=None, cell=None):
    """Convert, check that the weights load strictly, and write the model folder."""
    import snnzoo
    from snnzoo.hub import save_pretrained

    try:
        loaded = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist") from None
    except Exception as error:
        raise ValueError(f"{checkpoint} is not a readable PyTorch checkpoint of tensors "
                         f"({type(error).__name__}: {error})") from None
    state_dict = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state_dict, dict) or not all(torch.is_tensor(v) for v in state_dict.values()):
        raise ValueError(f"{checkpoint} holds no state dict of tensors (expected "
                         f"{{'state_dict': {{name: tensor}}}} as the authors save)")
    overrides = {}
    if genotype is not None:
        overrides["genotype"] = genotype
    if cell is not None:
        overrides["cell"] = cell
    model = snnzoo.create_model(model_name, **overrides)
    spec = parse_genotype(model.genotype, model.model_args["cell"])
    converted = convert_state_dict(state_dict, spec, model.state_dict().keys())
    for key, value in converted.items():
        if value.shape != model.state_dict()[key].shape:
            raise ValueError(f"{key}: the checkpoint's tensor has shape {tuple(value.shape)}, "
                             f"{model_name} needs {tuple(model.state_dict()[key].shape)}; check "
                             f"--model, --genotype and --cell")
    model.load_state_dict(converted, strict=True)
    return save_pretrained(model, out_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m snnzoo.convert", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, help="the authors' .pth.tar file")
    parser.add_argument("--model", required=True, help="snnzoo model name, e.g. snasnet_cifar100")
    parser.add_argument("--genotype", help='cell of the checkpoint, e.g. "0302 0030 3003 0000" '
                                           "(default: the model's)")
    parser.add_argument("--cell", choices=["forward", "backward"], help="cell type (default: the model's)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        folder = convert_checkpoint(args.checkpoint, args.model, args.out, args.genotype, args.cell)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {folder}/model.safetensors and {folder}/config.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
