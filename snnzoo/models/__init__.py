"""snnzoo's models: SNASNet variants registered in timm's registry.

Importing registers the built-in entrypoints only and reads nothing from disk; the variants
that searches wrote into the variants directory are registered by ``load_variants()``, which
``create_model`` and ``list_models`` call when they need them."""

from . import snasnet  # noqa: F401  (registers the entrypoints with timm)
from .genotype import CELL_TYPES, OPERATIONS, Genotype, parse_genotype
from .snasnet import SNASNet
from ._factory import create_model, list_models, list_pretrained
from .variants import load_variants, register_variant

__all__ = ["SNASNet", "Genotype", "parse_genotype", "OPERATIONS", "CELL_TYPES", "create_model",
           "list_models", "list_pretrained", "load_variants", "register_variant"]
