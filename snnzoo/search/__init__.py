"""Training-free architecture search for SNASNet cells (``python -m snnzoo.search``)."""

from .scoring import authors_score, score
from .space import draw_connection_matrix, prune, sample_genotype, sample_genotypes

__all__ = ["score", "authors_score", "draw_connection_matrix", "prune", "sample_genotype", "sample_genotypes"]
