"""Building SNASNet variants through timm's builder, with checked pretrained weights."""

from __future__ import annotations

from pathlib import Path

from timm.models import build_model_with_cfg
from timm.models import get_pretrained_cfg

from ._pretrained import check_model_folder_config, load_pretrained_checked, pretrained_state_dict
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


def create_snasnet(variant: str, pretrained: bool = False, *, architecture_args: dict | None = None,
                   **kwargs) -> SNASNet:
    """Build variant through timm's builder; with pretrained, load its weights checked (see
    snnzoo.models._pretrained): the classifier is adapted only when num_classes is passed, the
    first convolution only when in_chans is. architecture_args replace the registered
    arguments (a variant saved elsewhere, built from its config.json)."""
    if kwargs.pop("features_only", False):
        raise ValueError(f"{variant}: features_only=True is not supported; "
                         f"model.forward_features(x) returns the spikes [T, B, num_features, h, w] "
                         f"before the classifier, and forward_head(x, pre_logits=True) the "
                         f"classifier's input")
    builder_kwargs = {key: kwargs.pop(key) for key in _BUILDER_KWARGS if key in kwargs}
    if isinstance(builder_kwargs.get("pretrained_cfg"), str):  # a tag: snasnet_fmnist.TAG
        # timm's lookup refuses an unknown tag ("Invalid pretrained tag (TAG) for ...")
        builder_kwargs["pretrained_cfg"] = get_pretrained_cfg(
            f"{variant}.{builder_kwargs['pretrained_cfg']}")
    strict = builder_kwargs.pop("pretrained_strict", True)
    if not strict:
        raise ValueError(f"pretrained_strict={strict!r}: "
                         "snnzoo loads every tensor of its weights or none, adapting only the "
                         "classifier (pass num_classes) and the first convolution (pass in_chans)")
    pretrained_cfg = _as_snasnet_cfg(builder_kwargs.pop("pretrained_cfg", None)
                                     or get_pretrained_cfg(variant))
    model_args = {**(variant_args(variant) if architecture_args is None else architecture_args),
                  **kwargs}
    overlay = dict(builder_kwargs.pop("pretrained_cfg_overlay", None) or {})
    if pretrained_cfg is not None and "timesteps" not in {**(architecture_args or {}), **kwargs}:
        model_args["timesteps"] = overlay.get("timesteps", pretrained_cfg.timesteps)
    weights = source = None
    if pretrained:
        weights, source = pretrained_state_dict(variant, pretrained_cfg, overlay,
                                                builder_kwargs.get("cache_dir"))
    overlay.pop("state_dict", None)  # loaded below, not kept in the model's pretrained_cfg
    model = build_model_with_cfg(SNASNet, variant, False, pretrained_cfg=pretrained_cfg,
                                 pretrained_cfg_overlay=overlay, **builder_kwargs, **model_args)
    if pretrained:
        if overlay.get("file"):
            check_model_folder_config(Path(overlay["file"]), model)
        load_pretrained_checked(model, weights, source, adapt_classes="num_classes" in kwargs,
                                adapt_in_chans="in_chans" in kwargs)
    return model
