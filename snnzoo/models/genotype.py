"""SNASNet cell genotypes: the 4x4 connection matrix of operations between a cell's nodes.

Row = from node, column = to node, as in the authors' ``--cnt_mat``: "0303 0030 2002 0200".
Entries above the diagonal are forward edges (node i -> node j within a timestep); entries
below it are temporal feedback (what node i sends back to node j is added to node j's input
at the next timestep), allowed in backward cells only.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Iterator, Sequence, Union

from snnzoo._warnings import warn_at_caller

__all__ = ["OPERATIONS", "CELL_TYPES", "NUM_NODES", "Genotype", "output_reachable", "parse_genotype"]

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
    strings, a nested list of ints, or a Genotype (whose own cell type must match).

    Warns (UserWarning) when the cell's output, node 3, has no path from its input, node 0:
    the network builds, as the authors' does, but its logits are the same for every image."""
    if isinstance(genotype, Genotype):
        parsed = genotype if genotype.cell == cell else Genotype(genotype.matrix, cell)
    else:
        parsed = _parse(genotype, cell)
    if not output_reachable(parsed):
        warn_at_caller(f"genotype {str(parsed)!r}: node {NUM_NODES - 1} (the cell's output) has "
                       f"no path from node 0 (its input), so the cell outputs zeros and the "
                       f"network's logits are constant, whatever the image; give it a path of "
                       f"nonzero operations from node 0 to node {NUM_NODES - 1}")
    return parsed


def _parse(genotype, cell: str) -> Genotype:
    example = "e.g. '0303 0030 2002 0200' or [[0, 3, 0, 3], [0, 0, 3, 0], [2, 0, 0, 2], [0, 2, 0, 0]]"
    if isinstance(genotype, str):
        rows = [row for row in re.split(r"[\s,_\-/]+", genotype.strip()) if row]
        if len(rows) == 1 and len(rows[0]) == NUM_NODES * NUM_NODES:
            rows = [rows[0][k:k + NUM_NODES] for k in range(0, NUM_NODES * NUM_NODES, NUM_NODES)]
    elif _is_sequence(genotype):
        rows = list(genotype)
    else:
        raise TypeError(f"genotype {genotype!r} is of type {type(genotype).__name__}; give a string, "
                        f"a list of 4 row strings or a 4x4 nested list of ints, {example}")
    matrix = []
    for index, row in enumerate(rows):
        if isinstance(row, str):
            if not re.fullmatch(r"[0-9]+", row):  # ASCII only: str.isdigit() takes "²"
                raise ValueError(f"genotype {genotype!r}: row {index} ({row!r}) must be digits 0-4, "
                                 f"{example}")
            row = [int(char) for char in row]
        elif not _is_sequence(row):
            raise TypeError(f"genotype {genotype!r}: row {index} ({row!r}) is of type "
                            f"{type(row).__name__}; each row is a string of digits or a list of "
                            f"ints, {example}")
        # bools and floats stay as they are, for _validate to refuse them by position
        matrix.append(tuple(int(op) if _is_integer(op) else op for op in row))
    try:
        return Genotype(tuple(matrix), cell)
    except ValueError as error:
        raise ValueError(f"genotype {genotype!r}: {error}") from None


def _is_sequence(value) -> bool:
    """A list, tuple, array or tensor: iterable, not text or bytes, not a mapping."""
    return (hasattr(value, "__iter__") and hasattr(value, "__len__")
            and not isinstance(value, (str, bytes, bytearray, dict)))


def _is_integer(value) -> bool:
    """An int or numpy/torch integer, not a bool (True is not operation 1)."""
    if isinstance(value, bool) or type(value).__name__ in ("bool_", "bool"):
        return False
    try:
        return hasattr(value, "__index__") and operator.index(value) == value
    except TypeError:
        return False


def output_reachable(genotype: Genotype) -> bool:
    """Whether node 3 (the output) has a path from node 0 (the input) over nonzero edges,
    forward or feedback (a feedback edge carries a node's output to the next timestep)."""
    reached, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for target, op in enumerate(genotype.matrix[node]):
            if op and target not in reached:
                reached.add(target)
                frontier.append(target)
    return NUM_NODES - 1 in reached
