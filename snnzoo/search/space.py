"""The SNASNet search space and the authors' sampler.

Forward cells draw an operation for every entry above the diagonal. Backward cells draw, for
every node pair, either a forward edge (i -> j) or a feedback edge (j -> i) and its operation.
Nodes that cannot reach the output, or cannot be reached from the input, are then removed,
and only cells with a direct input -> output edge are kept (the authors' sanity check).
"""

from __future__ import annotations

from typing import Iterator, Optional

import torch

from snnzoo.models.genotype import NUM_NODES, OPERATIONS, Genotype

__all__ = ["draw_connection_matrix", "prune", "sample_genotype", "sample_genotypes"]


def draw_connection_matrix(cell: str, generator: torch.Generator) -> torch.Tensor:
    """One raw 4x4 matrix, drawn as the authors' connection_matrix_gen draws it."""
    size = (NUM_NODES, NUM_NODES)
    upper = torch.triu(torch.randint(len(OPERATIONS), size, generator=generator), diagonal=1)
    if cell == "forward":
        return upper
    lower = torch.tril(torch.randint(len(OPERATIONS), size, generator=generator), diagonal=-1)
    forward_chosen = torch.triu(torch.randint(2, size, generator=generator), diagonal=1)
    return forward_chosen * upper + (1 - forward_chosen.T) * lower


def prune(matrix: torch.Tensor) -> Optional[torch.Tensor]:
    """The authors' pruning: drop nodes with no path to the output or from the input (paths of
    up to 4 edges, feedback edges included, on the matrix as drawn); None unless the pruned
    cell keeps a direct input -> output edge."""
    matrix = matrix.clone()
    paths = matrix.clone()
    power = matrix.clone()
    for _ in range(NUM_NODES - 1):
        power = power @ matrix
        paths += power
    output = NUM_NODES - 1
    for node in range(output):
        if paths[node, output] == 0:
            matrix[:, node] = 0
            matrix[node, :] = 0
    for node in range(1, NUM_NODES):
        if paths[0, node] == 0:
            matrix[:, node] = 0
            matrix[node, :] = 0
    return matrix if matrix[0, output] != 0 else None


def sample_genotype(cell: str, generator: torch.Generator) -> Genotype:
    """Draw until a matrix survives pruning (the authors' inner while loop)."""
    while True:
        pruned = prune(draw_connection_matrix(cell, generator))
        if pruned is not None:
            return Genotype(tuple(tuple(int(op) for op in row) for row in pruned.tolist()), cell)


def sample_genotypes(cell: str, count: int, seed: int) -> Iterator[Genotype]:
    """count samples from a generator seeded with seed: the same sequence on every run."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(count):
        yield sample_genotype(cell, generator)
