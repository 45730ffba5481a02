"""snnzoo's models: SNASNet variants registered in timm's registry."""

from . import snasnet  # noqa: F401  (registers the entrypoints with timm)
from .genotype import CELL_TYPES, OPERATIONS, Genotype, parse_genotype
from .snasnet import SNASNet
from ._factory import create_model, list_models, list_pretrained
from .variants import load_variants

load_variants()

__all__ = ["SNASNet", "Genotype", "parse_genotype", "OPERATIONS", "CELL_TYPES", "create_model",
           "list_models", "list_pretrained"]
