"""Pretrained weights for an SNASNet: where they come from (a local file or the Hub, always
checked) and loading them: every key, shape and dtype must fit, and only the classifier and
the first convolution are adapted, where the caller asked for another number of classes or
input channels. Nothing is loaded unless all of it fits."""

from __future__ import annotations

import json
from pathlib import Path

from timm.models import adapt_input_conv

from snnzoo import hub
from snnzoo._warnings import warn_at_caller

from ._pretrained import WeightsMismatchError, WeightsNotPublishedError, split_revision
from .genotype import parse_genotype

__all__ = ["FREE_ARGS", "pretrained_state_dict", "check_model_folder_config",
           "load_pretrained_checked"]

# model_args that may differ from those recorded with the weights: the number of timesteps a
# network runs, and what only training or initialisation uses. Every other recorded argument
# (genotype, cell, neurons_per_class, tau, v_threshold, ...) must be the model's: many change
# what the network computes without changing a tensor's shape.
FREE_ARGS = ("timesteps", "drop_rate", "head_init_std")


def pretrained_state_dict(variant: str, pretrained_cfg, overlay: dict,
                          cache_dir=None) -> tuple[dict, str]:
    """(state dict, where it came from) for create_model(variant, pretrained=True): overlay's
    state_dict or file if given, else the file of the Hub repo that overlay or the cfg names.
    A file is sha256-checked against overlay's hf_hub_sha256, or against the cfg's when it is
    the cfg's own repo and file."""
    if overlay.get("state_dict") is not None:
        return overlay["state_dict"], "the state_dict of pretrained_cfg_overlay"
    if overlay.get("file"):
        path = Path(overlay["file"])
        return hub.load_state_dict(path, sha256=overlay.get("hf_hub_sha256")), str(path)
    own = (pretrained_cfg.hf_hub_id, pretrained_cfg.hf_hub_filename or hub.WEIGHTS_FILENAME)
    hf_hub_id = overlay.get("hf_hub_id") or own[0]
    filename = overlay.get("hf_hub_filename") or own[1]
    if "hf_hub_sha256" in overlay:
        sha256 = overlay["hf_hub_sha256"]
    else:  # a recorded digest is that of its own repo's file, not of another repo's
        sha256 = pretrained_cfg.hf_hub_sha256 if (hf_hub_id, filename) == own else None
    if not hf_hub_id or (sha256 is None and hf_hub_id == f"snnzoo/{variant}"):
        raise WeightsNotPublishedError(
            f"no pretrained weights are published for {variant} yet. Train them with "
            f"`python -m snnzoo.train {variant} ...`, or convert the SNASNet authors' released "
            f"checkpoint with `python -m snnzoo.convert CHECKPOINT --model {variant} --out DIR`, "
            f"then load the file: create_model({variant!r}, pretrained=True, "
            f"pretrained_cfg_overlay=dict(file='DIR/model.safetensors'))")
    repo_id, revision = split_revision(hf_hub_id)
    if sha256 is None and filename == hub.WEIGHTS_FILENAME:  # the digest the repo records
        try:
            config = hub.download_config(repo_id, revision, cache_dir=cache_dir)
        except hub.WeightsNotFoundError:  # a repo without config.json records no digest
            config = {}
        sha256 = (config.get("pretrained_cfg") or {}).get(hub.WEIGHTS_SHA256_KEY)
    path = hub.download_weights(repo_id, filename, revision=revision, sha256=sha256,
                                cache_dir=cache_dir, model_name=variant)
    source = f"{filename} from {hf_hub_id}"
    return hub.load_state_dict(path, sha256=sha256, source=source), source


def check_model_folder_config(path: Path, model) -> None:
    """A local weights file whose folder's config.json (as save_pretrained writes it) records
    other model_args than the model's (FREE_ARGS aside) is refused: its tensors may have the
    model's shapes and still compute another network."""
    config_path = Path(path).parent / "config.json"
    try:
        recorded = json.loads(config_path.read_text(encoding="utf-8")).get("model_args") or {}
    except (OSError, ValueError, AttributeError):
        return  # no model folder around the file: its keys and shapes are still checked
    ours = model.model_args
    differing = {}
    for key, value in recorded.items():
        if key in FREE_ARGS or key not in ours:
            continue
        if key == "genotype":
            try:
                value = str(parse_genotype(value, recorded.get("cell", ours["cell"])))
            except (TypeError, ValueError):
                pass
        if not _same_arg(value, ours[key]):
            differing[key] = value
    if differing:
        raise WeightsMismatchError(
            f"{path} was saved from a network with "
            + ", ".join(f"{key} {value!r} (the model: {ours[key]!r})"
                        for key, value in differing.items())
            + f", as {config_path} records: build the model it was trained as (create_model(..., "
            + ", ".join(f"{key}={value!r}" for key, value in differing.items())
            + ", pretrained=True, ...))")


def _same_arg(recorded, ours) -> bool:
    """Equal as model arguments: JSON lists are tuples, and a pair of equal sizes is one size."""
    def normal(value):
        if isinstance(value, (list, tuple)):
            value = tuple(normal(item) for item in value)
            return value[0] if len(value) == 2 and value[0] == value[1] else value
        return value
    return normal(recorded) == normal(ours)


def load_pretrained_checked(model, state_dict: dict, source: str, *, adapt_classes: bool,
                            adapt_in_chans: bool) -> None:
    """Load state_dict into model, all or nothing. Keys, shapes and kinds of dtype (floating or
    not) must be the model's. Where the file's classifier has another number of classes,
    adapt_classes (the caller asked for num_classes) keeps the model's newly initialised
    classifier (none with num_classes=0: the file's is dropped, without a warning, as timm
    does); where its first convolution takes other input channels, adapt_in_chans adapts it
    as timm does (adapt_input_conv). Both warn, once all of it has loaded. Raises
    WeightsMismatchError, naming source."""
    expected = model.state_dict()
    cfg = model.pretrained_cfg
    state_dict = dict(state_dict)
    name = cfg.get("architecture") or type(model).__name__
    head = f"{cfg.get('classifier') or 'fc'}."
    first = f"{cfg.get('first_conv') or 'stem.0'}.weight"
    _refuse_mismatches(source, model, name, *({key: value for key, value in tensors.items()
                                              if not key.startswith(head) and key != first}
                                             for tensors in (state_dict, expected)))
    adaptations = [  # warned once everything fits
        _adapt_classifier(model, name, state_dict, expected, head, source, adapt_classes),
        _adapt_first_conv(name, state_dict, expected, first, source, adapt_in_chans)]
    _refuse_mismatches(source, model, name, state_dict, expected)
    model.load_state_dict(state_dict, strict=True)
    for message in filter(None, adaptations):
        warn_at_caller(message)


def _adapt_classifier(model, name: str, state_dict: dict, expected: dict, head: str,
                      source: str, adapt: bool) -> str | None:
    """Where the file's classifier (keys under head) does not fit the model's: with adapt,
    put the model's own in state_dict and return the warning to give (None with
    num_classes=0: there is no classifier to train); without, raise WeightsMismatchError."""
    file_head = {key: value for key, value in state_dict.items() if key.startswith(head)}
    model_head = {key: value for key, value in expected.items() if key.startswith(head)}
    if not file_head or all(key in model_head and value.shape == model_head[key].shape
                            for key, value in file_head.items()):
        return None
    weight = file_head.get(f"{head}weight")
    outputs = weight.shape[0] if weight is not None and weight.dim() == 2 else None
    per_class = model.neurons_per_class
    ours = f"{model.num_classes * per_class} ({model.num_classes} classes x {per_class} neurons)"
    if not adapt:
        whole = (f"pass num_classes={outputs // per_class} to load it whole (if it has "
                 f"{per_class} neurons per class, else that and its neurons_per_class)"
                 if outputs and outputs % per_class == 0 else
                 "pass the num_classes and neurons_per_class it was trained with to load "
                 "it whole")
        raise WeightsMismatchError(
            f"{source} has {outputs or 'another number of'} output neurons ({head}weight "
            f"{tuple(weight.shape) if weight is not None else 'missing'}), {name} "
            f"{ours}: {whole}, or num_classes={model.num_classes} to train a new "
            f"classifier on the rest")
    for key in file_head:
        del state_dict[key]
    state_dict.update(model_head)
    if model.num_classes <= 0:
        return None
    return (f"{name}: the weights ({source}) have {outputs} output neurons, the model {ours}; "
            f"its last layer ({head[:-1]}) is newly initialised and needs training")


def _adapt_first_conv(name: str, state_dict: dict, expected: dict, first: str, source: str,
                      adapt: bool) -> str | None:
    """Where the file's first convolution (weight key first) takes other input channels than
    the model's: with adapt, replace it in state_dict as timm adapts it and return the warning
    to give; without, raise WeightsMismatchError."""
    if not (first in state_dict and first in expected and state_dict[first].dim() == 4
            and state_dict[first].shape[1] != expected[first].shape[1]
            and state_dict[first].shape[0] == expected[first].shape[0]):
        return None
    theirs, ours = state_dict[first].shape[1], expected[first].shape[1]
    if not adapt:
        raise WeightsMismatchError(
            f"{source} takes {theirs} input channels ({first}), {name} {ours}: pass "
            f"in_chans={ours} to adapt its first convolution, or in_chans={theirs}")
    state_dict[first] = adapt_input_conv(ours, state_dict[first], base_chans=theirs)
    return (f"{name}: the weights ({source}) take {theirs} input channels, the model {ours}; "
            f"its first convolution ({first}) is adapted as timm adapts it")


def _refuse_mismatches(source: str, model, name: str, state_dict: dict, expected: dict) -> None:
    problems = hub.state_dict_problems(state_dict, expected)
    if problems:
        raise WeightsMismatchError(
            f"{source} does not fit {name} built with {model.model_args}: "
            + "; ".join(problems) + ". Load weights saved from this architecture (the "
            "config.json beside them names its model_args), or build the model they were "
            "saved from; nothing was loaded")
