"""SNASNet cell genotypes: the 4x4 connection matrix of operations between a cell's nodes.

Row = from node, column = to node, as in the authors' ``--cnt_mat``: "0303 0030 2002 0200".
Entries above the diagonal are forward edges (node i -> node j within a timestep); entries
below it are temporal feedback (what node i sends back to node j is added to node j's input
at the next timestep), allowed in backward cells only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence, Union

__all__ = ["OPERATIONS", "CELL_TYPES", "NUM_NODES", "Genotype", "parse_genotype"]

OPERATIONS = {0: "zero", 1: "skip", 2: "conv1x1", 3: "conv3x3", 4: "avgpool3x3"}
CELL_TYPES = ("forward", "backward")
NUM_NODES = 4

GenotypeLike = Union[str, Sequence[str], Sequence[Sequence[int]], "Genotype"]


@dataclass(frozen=True)
class Genotype:
    """A validated cell: ``matrix[i][j]`` is the operation on the edge from node i to node j."""

    matrix: tuple[tuple[int, ...], ...]
    cell: str = "backward"

    def __post_init__(self):
        _validate(self.matrix, self.cell)

    def __str__(self) -> str:
        return " ".join("".join(str(op) for op in row) for row in self.matrix)

    @property
    def forward_edges(self) -> Iterator[tuple[int, int, int]]:
        """(from, to, op) above the diagonal, nonzero, in the authors' order (by column)."""
        for j in range(1, NUM_NODES):
            for i in range(j):
                if self.matrix[i][j]:
                    yield i, j, self.matrix[i][j]

    @property
    def feedback_edges(self) -> Iterator[tuple[int, int, int]]:
        """(from, to, op) below the diagonal, nonzero, in the authors' order (by column)."""
        for j in range(NUM_NODES - 1):
            for i in range(j + 1, NUM_NODES):
                if self.matrix[i][j]:
                    yield i, j, self.matrix[i][j]

    @property
    def has_feedback(self) -> bool:
        return any(True for _ in self.feedback_edges)


def _validate(matrix, cell):
    if cell not in CELL_TYPES:
        raise ValueError(f"cell={cell!r} is unknown; choose 'forward' or 'backward'")
    if len(matrix) != NUM_NODES or any(len(row) != NUM_NODES for row in matrix):
        raise ValueError(f"a genotype is a {NUM_NODES}x{NUM_NODES} matrix; got rows of lengths "
                         f"{[len(row) for row in matrix]}")
    for i, row in enumerate(matrix):
        for j, op in enumerate(row):
            where = f"entry (row {i}, column {j}) = {op!r}"
            if not isinstance(op, int) or isinstance(op, bool) or op not in OPERATIONS:
                raise ValueError(f"{where} is not an operation; use 0-4: "
                                 + ", ".join(f"{k} {name}" for k, name in OPERATIONS.items()))
            if i == j and op:
                raise ValueError(f"{where} is on the diagonal: a node has no edge to "
                                 f"itself, write 0 there")
            if cell == "forward" and i > j and op:
                raise ValueError(f"{where} is below the diagonal, a feedback edge, but "
                                 f"cell='forward'; use cell='backward' or write 0 there")


def parse_genotype(genotype: GenotypeLike, cell: str = "backward") -> Genotype:
    """A Genotype from "0303 0030 2002 0200", "0303-0030-2002-0200", the authors' list of row
    strings, a nested list of ints, or a Genotype (whose own cell type must match)."""
    if isinstance(genotype, Genotype):
        if genotype.cell != cell:
            return Genotype(genotype.matrix, cell)
        return genotype
    if isinstance(genotype, str):
        rows = [row for row in re.split(r"[\s,_\-/]+", genotype.strip()) if row]
        if len(rows) == 1 and len(rows[0]) == NUM_NODES * NUM_NODES:
            rows = [rows[0][k:k + NUM_NODES] for k in range(0, NUM_NODES * NUM_NODES, NUM_NODES)]
    else:
        rows = list(genotype)
    matrix = []
    for index, row in enumerate(rows):
        if isinstance(row, str):
            if not row.isdigit():
                raise ValueError(f"genotype {genotype!r}: row {index} ({row!r}) must be digits 0-4, "
                                 f"e.g. '0303 0030 2002 0200'")
            row = [int(char) for char in row]
        matrix.append(tuple(int(op) if hasattr(op, "__index__") else op for op in row))
    try:
        return Genotype(tuple(matrix), cell)
    except ValueError as error:
        raise ValueError(f"genotype {genotype!r}: {error}") from None
