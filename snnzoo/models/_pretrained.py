"""Pretrained cfgs of SNASNet: the cfg class timm's registry holds for every variant, reading
one from a Hub config.json, and the errors raised when a cfg's weights are missing or do not
fit the model."""

from __future__ import annotations

import dataclasses
from typing import Optional

from timm.models import PretrainedCfg

__all__ = ["SNASNetPretrainedCfg", "WeightsNotPublishedError", "WeightsMismatchError",
           "CFG_FIELDS", "as_snasnet_cfg", "split_revision"]


@dataclasses.dataclass
class SNASNetPretrainedCfg(PretrainedCfg):
    """timm's pretrained cfg plus what defines an SNASNet variant and its weights' digest."""

    timesteps: int = 5
    genotype: str = ""
    cell: str = "backward"
    hf_hub_sha256: Optional[str] = None

    @property
    def has_weights(self) -> bool:
        """Whether pretrained=True has weights to load; timm's registry reads it for
        timm.list_pretrained and list_models(pretrained=True). A snnzoo/ repo has them once
        they are published, which records their sha256."""
        unpublished = self.hf_hub_sha256 is None and (self.hf_hub_id or "").startswith("snnzoo/")
        return bool(self.url or self.file or (self.hf_hub_id and not unpublished))


CFG_FIELDS = frozenset(field.name for field in dataclasses.fields(SNASNetPretrainedCfg))


class WeightsNotPublishedError(RuntimeError):
    pass


class WeightsMismatchError(ValueError):
    """The weights do not fit the model they are loaded into; the message lists what differs."""


def as_snasnet_cfg(pretrained_cfg):
    """A dict cfg (from a Hub config.json) as SNASNetPretrainedCfg, unknown keys dropped; a
    cfg object (or None) is returned as it is."""
    if isinstance(pretrained_cfg, dict):
        return SNASNetPretrainedCfg(**{key: value for key, value in pretrained_cfg.items()
                                       if key in CFG_FIELDS})
    return pretrained_cfg


def split_revision(hf_hub_id: str) -> tuple[str, str | None]:
    """"org/repo@revision" -> ("org/repo", "revision"); no "@" -> (hf_hub_id, None)."""
    repo_id, _, revision = hf_hub_id.partition("@")
    return repo_id, revision or None
