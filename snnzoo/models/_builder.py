"""Building SNASNet variants through timm's builder, with checked pretrained weights."""

from __future__ import annotations

import warnings

from timm.models import build_model_with_cfg
from timm.models._registry import get_pretrained_cfg

from .snasnet import MODEL_ARGS, SNASNet, _as_snasnet_cfg

# Keyword arguments that are ours rather than the architecture's.
_BUILDER_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict",
                   "cache_dir", "pretrained_model_args")


def variant_args(variant: str) -> dict:
    """The registered architecture arguments of a variant (built-in or searched)."""
    if variant in MODEL_ARGS:
        return dict(MODEL_ARGS[variant])
    from snnzoo.models.variants import VARIANT_ARGS
    return dict(VARIANT_ARGS[variant])


def create_snasnet(variant: str, pretrained: bool = False, **kwargs) -> SNASNet:
    builder_kwargs = {key: kwargs.pop(key) for key in _BUILDER_KWARGS if key in kwargs}
    pretrained_cfg = _as_snasnet_cfg(builder_kwargs.pop("pretrained_cfg", None)
                                     or get_pretrained_cfg(variant))
    model_args = {**variant_args(variant), **kwargs}
    if pretrained_cfg is not None and "timesteps" not in kwargs:
        model_args["timesteps"] = pretrained_cfg.timesteps
    overlay = dict(builder_kwargs.pop("pretrained_cfg_overlay", None) or {})
    if pretrained:
        from snnzoo.models._pretrained import pretrained_state_dict
        overlay["state_dict"] = pretrained_state_dict(variant, pretrained_cfg, overlay)
        overlay.pop("file", None)
        _warn_on_adaptation(variant, pretrained_cfg, model_args)
    return build_model_with_cfg(SNASNet, variant, pretrained, pretrained_cfg=pretrained_cfg,
                                pretrained_cfg_overlay=overlay, **builder_kwargs, **model_args)


def _warn_on_adaptation(variant, pretrained_cfg, model_args):
    if pretrained_cfg is None:
        return
    if model_args.get("num_classes") != pretrained_cfg.num_classes:
        warnings.warn(f"{variant}: the weights classify {pretrained_cfg.num_classes} classes, the "
                      f"model {model_args.get('num_classes')}; its last layer (fc) is newly "
                      f"initialised and needs training", UserWarning, stacklevel=4)
    weight_chans = pretrained_cfg.input_size[0] if pretrained_cfg.input_size else None
    if weight_chans and model_args.get("in_chans") != weight_chans:
        warnings.warn(f"{variant}: the weights take {weight_chans} input channels, the model "
                      f"{model_args.get('in_chans')}; timm adapts the first conv (stem.0)",
                      UserWarning, stacklevel=4)
