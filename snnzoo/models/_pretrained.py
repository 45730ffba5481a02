"""Where an SNASNet's pretrained weights come from: a local file or the Hub, always checked."""

from __future__ import annotations

from pathlib import Path


class WeightsNotPublishedError(RuntimeError):
    pass


def pretrained_state_dict(variant: str, pretrained_cfg, overlay: dict) -> dict:
    """The state dict for create_model(variant, pretrained=True): overlay's file if given,
    else model.safetensors of the cfg's Hub repo, sha256-checked where it is recorded."""
    from snnzoo import hub

    if overlay.get("state_dict") is not None:
        return overlay["state_dict"]
    if overlay.get("file"):
        return hub.load_state_dict(Path(overlay["file"]), sha256=overlay.get("hf_hub_sha256"))
    repo_id = overlay.get("hf_hub_id") or pretrained_cfg.hf_hub_id
    filename = overlay.get("hf_hub_filename") or pretrained_cfg.hf_hub_filename or "model.safetensors"
    sha256 = overlay.get("hf_hub_sha256", pretrained_cfg.hf_hub_sha256)
    if not repo_id or (sha256 is None and repo_id == f"snnzoo/{variant}"):
        raise WeightsNotPublishedError(
            f"no pretrained weights are published for {variant} yet. Train them with "
            f"`python -m snnzoo.train {variant} ...`, or convert the SNASNet authors' released "
            f"checkpoint with `python -m snnzoo.convert CHECKPOINT --model {variant} --out DIR`, "
            f"then load the file: create_model({variant!r}, pretrained=True, "
            f"pretrained_cfg_overlay=dict(file='DIR/model.safetensors'))")
    path = hub.download_weights(repo_id, filename, sha256=sha256, model_name=variant)
    return hub.load_state_dict(path, sha256=sha256, source=f"{repo_id}/{filename}")
