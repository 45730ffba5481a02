"""Thin wrappers around timm's factory and registry, with friendly errors."""

from __future__ import annotations

import difflib

import timm

_PATTERN = "snasnet*"


def list_models(filter: str = _PATTERN, pretrained: bool = False) -> list[str]:
    """snnzoo's model names (timm's registry, filtered to snnzoo's architectures)."""
    names = timm.list_models(filter, pretrained=pretrained)
    return [name for name in names if name.split(".")[0] in _snnzoo_names()]


def list_pretrained(filter: str = _PATTERN) -> list[str]:
    """Names whose pretrained weights have a Hub repo and a recorded sha256."""
    from timm.models import get_pretrained_cfg
    published = []
    for name in list_models(filter):
        cfg = get_pretrained_cfg(name)
        if cfg is not None and getattr(cfg, "hf_hub_sha256", None):
            published.append(name)
    return published


def _snnzoo_names() -> set[str]:
    from timm.models._registry import _model_to_module
    return {name for name, module in _model_to_module.items() if module == "snasnet"}


def create_model(model_name: str, pretrained: bool = False, **kwargs):
    """timm.create_model for snnzoo's models; unknown names suggest the closest ones.

    ``hf-hub:org/repo`` names build the architecture of the repo's config.json."""
    if not model_name.startswith(("hf-hub:", "hf_hub:")):
        architecture = model_name.split(".")[0]
        known = sorted(_snnzoo_names())
        if architecture not in known:
            close = difflib.get_close_matches(architecture, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(f"unknown model {model_name!r}.{hint} snnzoo.list_models() lists "
                             f"all {len(known)}: {', '.join(known)}")
    return timm.create_model(model_name, pretrained=pretrained, **kwargs)
