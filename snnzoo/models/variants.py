"""Searched SNASNet variants: registered at import from folders on disk.

``python -m snnzoo.search`` writes each winner as a folder in the model_cards layout
(config.json, README.md, cell.png) under the variants directory: ``$SNNZOO_VARIANTS_DIR`` if
set (several directories separated by ``os.pathsep``), else ``~/.cache/snnzoo/variants``.
``import snnzoo`` registers every ``<dir>/<name>/config.json`` found there as a timm
entrypoint, so ``snnzoo.create_model(name)`` and ``timm.create_model(name)`` build it.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

from timm.models import generate_default_cfgs, register_model
from timm.models._registry import _model_entrypoints

from . import snasnet
from .snasnet import SNASNetPretrainedCfg

__all__ = ["VARIANTS_ENV", "VARIANT_ARGS", "variants_dirs", "register_variant", "load_variants",
           "write_variant_config"]

VARIANTS_ENV = "SNNZOO_VARIANTS_DIR"
VARIANT_ARGS: dict[str, dict] = {}
_CFG_KEYS = set(SNASNetPretrainedCfg.__dataclass_fields__)


def variants_dirs() -> list[Path]:
    """Where variants are looked for; the first one is where the search writes."""
    configured = os.environ.get(VARIANTS_ENV)
    if configured:
        return [Path(part).expanduser() for part in configured.split(os.pathsep) if part]
    return [Path("~/.cache/snnzoo/variants").expanduser()]


def register_variant(name: str, model_args: dict, pretrained_cfg: dict) -> None:
    """Register name as a timm entrypoint building SNASNet(**model_args)."""
    if not name.startswith("snasnet_") or not name.replace("_", "").isalnum():
        raise ValueError(f"variant name {name!r} must start with 'snasnet_' and contain only "
                         f"letters, digits and underscores")
    if name in snasnet.MODEL_ARGS:
        raise ValueError(f"variant name {name!r} is a built-in snnzoo model; choose another --name")
    if name in _model_entrypoints and name not in VARIANT_ARGS:
        raise ValueError(f"variant name {name!r} is already a timm model; choose another --name")
    VARIANT_ARGS[name] = dict(model_args)
    cfg = {key: value for key, value in pretrained_cfg.items() if key in _CFG_KEYS}
    cfg.update(architecture=name, hf_hub_id=cfg.get("hf_hub_id") or None)
    snasnet.default_cfgs.update(generate_default_cfgs({name: SNASNetPretrainedCfg(**cfg)}))

    def entrypoint(pretrained: bool = False, **kwargs):
        return snasnet._create_snasnet(name, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = snasnet.__name__
    entrypoint.__doc__ = f"Searched SNASNet variant {name} (genotype {model_args.get('genotype')})."
    with warnings.catch_warnings():  # re-registering the same variant is expected
        warnings.simplefilter("ignore")
        register_model(entrypoint)


def load_variants(directories=None) -> list[str]:
    """Register every variant folder found; a broken one is skipped with a warning."""
    names = []
    for directory in directories or variants_dirs():
        if not directory.is_dir():
            continue
        for config_path in sorted(directory.glob("*/config.json")):
            try:
                config = json.loads(config_path.read_text())
                args = dict(config["model_args"], num_classes=config["num_classes"])
                register_variant(config["architecture"], args, config.get("pretrained_cfg", {}))
                names.append(config["architecture"])
            except Exception as error:  # never let one bad folder break `import snnzoo`
                warnings.warn(f"snnzoo: skipping the variant in {config_path.parent}: "
                              f"{type(error).__name__}: {error}", RuntimeWarning)
    return names


def write_variant_config(folder: Path, name: str, model, pretrained_cfg: dict) -> Path:
    """config.json (timm's Hub layout) of an untrained variant, written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    model_args = {key: value for key, value in model.model_args.items()}
    model_args["in_chans"] = model.in_chans
    config = dict(architecture=name, num_classes=model.num_classes,
                  num_features=model.num_features,
                  pretrained_cfg={key: value for key, value in pretrained_cfg.items()
                                  if key in _CFG_KEYS and value is not None},
                  model_args=model_args)
    config["pretrained_cfg"]["architecture"] = name
    handle, tmp = tempfile.mkstemp(dir=folder, prefix=".config.", suffix=".json")
    with os.fdopen(handle, "w") as file:
        json.dump(config, file, indent=2)
        file.write("\n")
    os.replace(tmp, folder / "config.json")
    return folder / "config.json"
