"""Searched SNASNet variants: registered from folders on disk when asked, never at import.

``python -m snnzoo.search`` writes each winner as a folder in the model_cards layout
(config.json, README.md, cell.png) under the variants directory: ``$SNNZOO_VARIANTS_DIR`` if
set (several directories separated by ``os.pathsep``), else ``~/.cache/snnzoo/variants``.
``load_variants()`` registers every ``<dir>/<name>/config.json`` found there as a timm
entrypoint; ``snnzoo.create_model(name)`` calls it for a name it does not know yet, and
``snnzoo.list_models()`` before listing. After either, ``timm.create_model(name)`` builds the
variant too (a bare ``import snnzoo`` does not register it).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import warnings
from pathlib import Path

import timm
from timm.models import generate_default_cfgs, register_model

from snnzoo._files import write_text_atomically

from ._builder import build_snasnet
from ._pretrained import CFG_FIELDS, SNASNetPretrainedCfg
from .genotype import parse_genotype
from .snasnet import MODEL_ARGS, SNASNet

# timm's register_model appends each variant's name here, and the entrypoint is set as an
# attribute of this module beside it, so that `from snnzoo.models.variants import *` works.
__all__ = ["VARIANTS_ENV", "VARIANT_ARGS", "variants_dirs", "check_variant_name",
           "check_variant_args", "register_variant", "load_variants", "registered_args",
           "write_variant_config"]

VARIANTS_ENV = "SNNZOO_VARIANTS_DIR"
VARIANT_ARGS: dict[str, dict] = {}  # architecture arguments of each registered variant
# The cfgs of the registered variants: timm's register_model reads the default_cfgs of the
# module its entrypoint names, as in timm's model files.
default_cfgs: dict = {}


def variants_dirs() -> list[Path]:
    """Where variants are looked for; the first one is where the search writes."""
    configured = os.environ.get(VARIANTS_ENV)
    if configured:
        return [Path(part).expanduser() for part in configured.split(os.pathsep) if part]
    return [Path("~/.cache/snnzoo/variants").expanduser()]


_VARIANT_NAME = re.compile(r"snasnet_[A-Za-z0-9_]+")
_SNASNET_ARGS = set(inspect.signature(SNASNet.__init__).parameters) - {"self"}


def check_variant_name(name: str) -> None:
    """Raise ValueError unless name can be registered as a variant: 'snasnet_' then ASCII
    letters, digits and underscores only (it names a folder and a timm entrypoint), and
    neither a built-in snnzoo model nor another timm model."""
    if not isinstance(name, str) or not _VARIANT_NAME.fullmatch(name):
        raise ValueError(f"variant name {name!r} must start with 'snasnet_' and contain only "
                         f"letters, digits and underscores (e.g. 'snasnet_my_cells')")
    if name in MODEL_ARGS:
        raise ValueError(f"variant name {name!r} is a built-in snnzoo model; choose another --name")
    if timm.is_model(name) and name not in VARIANT_ARGS:
        raise ValueError(f"variant name {name!r} is already a timm model; choose another --name")


def check_variant_args(model_args: dict) -> None:
    """Raise ValueError unless model_args are SNASNet arguments with a valid genotype."""
    unknown = sorted(set(model_args) - _SNASNET_ARGS)
    if unknown:
        raise ValueError(f"model_args {unknown} are not arguments of SNASNet; it takes "
                         f"{sorted(_SNASNET_ARGS)}")
    if "genotype" in model_args:
        with warnings.catch_warnings():  # an unreachable output warns at model build instead
            warnings.simplefilter("ignore", UserWarning)
            parse_genotype(model_args["genotype"], model_args.get("cell", "backward"))


def register_variant(name: str, model_args: dict, pretrained_cfg: dict) -> None:
    """Register name as a timm entrypoint building SNASNet(**model_args), in this module (not
    in snnzoo.models.snasnet, whose entrypoints are the built-in models)."""
    check_variant_name(name)
    check_variant_args(model_args)
    VARIANT_ARGS[name] = dict(model_args)
    cfg = {key: value for key, value in pretrained_cfg.items() if key in CFG_FIELDS}
    cfg.update(architecture=name, hf_hub_id=cfg.get("hf_hub_id") or None)
    default_cfgs.update(generate_default_cfgs({name: SNASNetPretrainedCfg(**cfg)}))

    def entrypoint(pretrained: bool = False, **kwargs) -> SNASNet:
        return _create_variant(name, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"Searched SNASNet variant {name} (genotype {model_args.get('genotype')})."
    globals()[name] = entrypoint
    if name in __all__:  # registered again: register_model appends the name once more
        __all__.remove(name)
    with warnings.catch_warnings():  # re-registering the same variant is expected
        warnings.simplefilter("ignore")
        register_model(entrypoint)


def _create_variant(name: str, pretrained: bool = False, **kwargs) -> SNASNet:
    # As for the built-in models (MODEL_ARGS), the pretrained cfg (or pretrained_cfg_overlay)
    # sets the number of timesteps unless the caller passes timesteps.
    model_args = {key: value for key, value in VARIANT_ARGS[name].items() if key != "timesteps"}
    return build_snasnet(SNASNet, name, pretrained, model_args=model_args, **kwargs)


def registered_args(name: str) -> dict:
    """The registered architecture arguments of a model, built-in or searched variant."""
    return dict(MODEL_ARGS[name] if name in MODEL_ARGS else VARIANT_ARGS[name])


def load_variants(directories=None) -> list[str]:
    """Register every variant folder found; a broken one is skipped with a warning. With
    several directories the first one holding a name wins (the search writes there); the
    same name in a later directory is skipped with a warning."""
    names, folders = [], {}
    for directory in directories or variants_dirs():
        if not directory.is_dir():
            continue
        for config_path in sorted(directory.glob("*/config.json")):
            try:
                config = json.loads(config_path.read_text())
                name = config["architecture"]
                if name in folders:
                    warnings.warn(f"snnzoo: skipping the variant {name} in {config_path.parent}: "
                                  f"{folders[name]} (an earlier variants directory) defines it "
                                  f"already; rename or delete one of them", RuntimeWarning)
                    continue
                args = dict(config["model_args"], num_classes=config["num_classes"])
                register_variant(name, args, config.get("pretrained_cfg", {}))
                folders[name] = config_path.parent
                names.append(name)
            except Exception as error:  # never let one bad folder break the others
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
                                  if key in CFG_FIELDS and value is not None},
                  model_args=model_args)
    config["pretrained_cfg"]["architecture"] = name
    return write_text_atomically(folder / "config.json", json.dumps(config, indent=2) + "\n")
