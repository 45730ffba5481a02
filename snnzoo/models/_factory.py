"""Thin wrappers around timm's factory and registry, with friendly errors."""

from __future__ import annotations

import difflib

import timm

from snnzoo import hub

from ._builder import build_snasnet
from ._pretrained import split_revision
from .snasnet import SNASNet
from .variants import load_variants, registered_args

__all__ = ["create_model", "list_models", "list_pretrained"]

_PATTERN = "snasnet*"
# timm's registry keys each entrypoint by the last part of its module's name: the built-in
# models are in snasnet, the searched variants in variants.
_MODULES = ["snasnet", "variants"]


def list_models(filter: str = _PATTERN, pretrained: bool = False) -> list[str]:
    """snnzoo's model names (timm's registry, filtered to snnzoo's architectures), with the
    searched variants in the variants directory registered first (load_variants)."""
    load_variants()
    names = timm.list_models(filter, pretrained=pretrained)
    return [name for name in names if name.split(".")[0] in _snnzoo_names()]


def list_pretrained(filter: str = _PATTERN) -> list[str]:
    """Names whose pretrained weights are published (a Hub repo with a recorded sha256), as
    timm.list_pretrained lists them."""
    return list_models(filter, pretrained=True)


def _snnzoo_names() -> set[str]:
    return set(timm.list_models(_PATTERN, module=_MODULES))


def create_model(model_name: str, pretrained: bool = False, **kwargs):
    """timm.create_model for snnzoo's models; unknown names suggest the closest ones.

    ``hf-hub:org/repo[@revision]`` names build the architecture that the repo's config.json
    names, with its model_args (a searched variant needs no registration here), and load the
    repo's model.safetensors: only safetensors, only snnzoo's architectures."""
    if model_name.startswith(("hf-hub:", "hf_hub:")):
        return _create_from_hub(model_name.split(":", 1)[1], pretrained, **kwargs)
    architecture = model_name.split(".")[0]
    known = sorted(_snnzoo_names())
    if architecture not in known and architecture.startswith("snasnet_"):
        load_variants()  # a searched variant, registered on first use
        known = sorted(_snnzoo_names())
    if architecture not in known:
        close = difflib.get_close_matches(architecture, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {model_name!r}.{hint} snnzoo.list_models() lists "
                         f"all {len(known)}: {', '.join(known)}")
    return timm.create_model(model_name, pretrained=pretrained, **kwargs)


def _create_from_hub(hf_hub_id: str, pretrained: bool, **kwargs):
    repo_id, revision = split_revision(hf_hub_id)
    config = hub.download_config(repo_id, revision, cache_dir=kwargs.get("cache_dir"))
    architecture = config.get("architecture")
    model_args = config.get("model_args") or {}
    registered = architecture in _snnzoo_names()
    if not registered and not (isinstance(architecture, str) and architecture.startswith("snasnet")
                               and isinstance(model_args, dict) and "genotype" in model_args):
        raise ValueError(f"hf-hub:{hf_hub_id} holds a {architecture!r} model (its config.json), "
                         f"which is not one of snnzoo's SNASNets: build it with "
                         f"timm.create_model('hf-hub:{hf_hub_id}') if it is a timm model")
    pretrained_cfg = {**(config.get("pretrained_cfg") or {}), "architecture": architecture,
                      "hf_hub_id": hf_hub_id, "hf_hub_filename": hub.WEIGHTS_FILENAME}
    architecture_args = {**(registered_args(architecture) if registered else {}), **model_args}
    if "num_classes" in config:
        architecture_args["num_classes"] = config["num_classes"]
    input_size = pretrained_cfg.get("input_size")
    if input_size and "in_chans" not in architecture_args:
        architecture_args["in_chans"] = input_size[0]
    return build_snasnet(SNASNet, architecture, pretrained, model_args=architecture_args,
                         pretrained_cfg=pretrained_cfg, **kwargs)
