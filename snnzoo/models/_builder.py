"""Building an SNASNet variant through timm's builder, with checked pretrained weights.

The model class and its architecture arguments are parameters: this module imports no model,
so that the model file and the variants registry both build through it."""

from __future__ import annotations

from pathlib import Path

from timm.models import build_model_with_cfg, get_pretrained_cfg

from ._pretrained import as_snasnet_cfg
from ._weights import check_model_folder_config, load_pretrained_checked, pretrained_state_dict

__all__ = ["build_snasnet"]

# Keyword arguments that are ours rather than the architecture's.
_BUILDER_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "pretrained_strict",
                   "cache_dir", "pretrained_model_args")


def build_snasnet(model_cls: type, variant: str, pretrained: bool = False, *, model_args: dict,
                  **kwargs):
    """model_cls(**model_args, **kwargs) built as variant through timm's builder; with
    pretrained, its weights loaded checked (see snnzoo.models._weights): the classifier is
    adapted only when num_classes is passed, the first convolution only when in_chans is.
    model_args are the variant's registered architecture arguments, or those of a variant
    saved elsewhere (its config.json); kwargs override them."""
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
    pretrained_cfg = as_snasnet_cfg(builder_kwargs.pop("pretrained_cfg", None)
                                    or get_pretrained_cfg(variant))
    overlay = dict(builder_kwargs.pop("pretrained_cfg_overlay", None) or {})
    timesteps = {}
    if pretrained_cfg is not None and "timesteps" not in {**model_args, **kwargs}:
        timesteps["timesteps"] = overlay.get("timesteps", pretrained_cfg.timesteps)
    weights = source = None
    if pretrained:
        weights, source = pretrained_state_dict(variant, pretrained_cfg, overlay,
                                                builder_kwargs.get("cache_dir"))
    overlay.pop("state_dict", None)  # loaded below, not kept in the model's pretrained_cfg
    model = build_model_with_cfg(model_cls, variant, False, pretrained_cfg=pretrained_cfg,
                                 pretrained_cfg_overlay=overlay, **builder_kwargs,
                                 **{**model_args, **kwargs, **timesteps})
    if pretrained:
        if overlay.get("file"):
            check_model_folder_config(Path(overlay["file"]), model)
        load_pretrained_checked(model, weights, source, adapt_classes="num_classes" in kwargs,
                                adapt_in_chans="in_chans" in kwargs)
    return model
