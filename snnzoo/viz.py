"""Pictures of searched cells and of architecture-search scores, written as PNG files.

``draw_cell`` draws a cell's 4 nodes in a row: forward edges (same timestep) as solid arcs
above the row, feedback edges (delivered at the next timestep) as dashed arcs below it, each
labelled with its operation. ``score_histogram`` shows how a search's scores are spread,
``training_curves`` a training run's loss and accuracy per epoch, and ``firing_rate_chart``
the firing rate of each LIF layer.

All use matplotlib's Agg canvas directly (no pyplot, no global backend change) and write
atomically: to a temporary file in the target folder, then renamed into place.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Optional, Union

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch, Patch
from matplotlib.path import Path as CurvePath
from matplotlib.ticker import MaxNLocator

from snnzoo._files import write_atomically
from snnzoo.models.genotype import NUM_NODES, OPERATIONS, Genotype, parse_genotype

__all__ = ["draw_cell", "score_histogram", "training_curves", "firing_rate_chart", "save_figure",
           "OPERATION_DESCRIPTIONS"]

OPERATION_DESCRIPTIONS = {
    "skip": "identity",
    "conv1x1": "LIF \u2192 conv 1\u00d71 \u2192 BN",
    "conv3x3": "LIF \u2192 conv 3\u00d73 \u2192 BN",
    "avgpool3x3": "avg-pool 3\u00d73, stride 1",
}
FORWARD_COLOUR = "#1f4e9c"
FEEDBACK_COLOUR = "#d95f02"
NODE_SPACING = 3.0
NODE_RADIUS = 0.5
ARC_HEIGHT_PER_SPAN = 0.95  # peak height of an arc per node it spans, in data units
_TILT_FROM_VERTICAL = (58.0, 30.0, 4.0)  # degrees, where an arc of span 1, 2, 3 meets a node
# The same PNG bytes for the same picture: no matplotlib version stamp in the file.
_PNG_METADATA = {"Software": None}

CellLike = Union[Genotype, str, tuple]


def draw_cell(genotype: CellLike, path: Union[str, Path], title: Optional[str] = None) -> Path:
    """Save a PNG of a cell and return its path.

    genotype: a Genotype, a (genotype string, cell type) pair such as
        ("0302 0030 3003 0000", "backward"), or a genotype string (read as a backward cell).
    title: the first line of the title; the genotype and cell type are always on the second.
    """
    genotype = _as_genotype(genotype)
    figure = Figure(figsize=(9.0, 5.6), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.02, 0.14, 0.96, 0.72))
    axes.set_aspect("equal")
    axes.axis("off")

    node_x = [index * NODE_SPACING for index in range(NUM_NODES)]
    for index, x in enumerate(node_x):
        axes.add_patch(Circle((x, 0.0), NODE_RADIUS, facecolor="#f2f2f2", edgecolor="#333333",
                              linewidth=1.6, zorder=3))
        axes.text(x, 0.0, str(index), ha="center", va="center", fontsize=15, fontweight="bold",
                  zorder=4)
    arrow = dict(arrowstyle="-|>", color="#333333", shrinkA=0, shrinkB=0)
    input_start = node_x[0] - NODE_RADIUS - 0.9
    output_end = node_x[-1] + NODE_RADIUS + 0.9
    axes.annotate("", xy=(node_x[0] - NODE_RADIUS, 0.0), xytext=(input_start, 0.0),
                  arrowprops=arrow)
    axes.annotate("", xy=(output_end, 0.0), xytext=(node_x[-1] + NODE_RADIUS, 0.0),
                  arrowprops=arrow)
    axes.text(input_start - 0.1, 0.0, "input", ha="right", va="center", fontsize=11)
    axes.text(output_end + 0.1, 0.0, "output", ha="left", va="center", fontsize=11)

    highest = lowest = NODE_RADIUS
    for source, target, op in genotype.forward_edges:
        highest = max(highest, _draw_edge(axes, node_x, source, target, op, above=True))
    for source, target, op in genotype.feedback_edges:
        lowest = max(lowest, _draw_edge(axes, node_x, source, target, op, above=False))
    if not genotype.has_feedback and genotype.cell == "backward":
        axes.text(sum(node_x) / NUM_NODES, -0.9, "no feedback edges", ha="center", va="center",
                  fontsize=10, color="#777777", style="italic")
        lowest = max(lowest, 1.1)

    axes.set_xlim(node_x[0] - NODE_RADIUS - 2.1, node_x[-1] + NODE_RADIUS + 2.3)
    axes.set_ylim(-lowest - 0.45, highest + 0.45)

    first_line = title if title else "SNASNet cell"
    figure.suptitle(f"{first_line}\ngenotype {genotype}  ({genotype.cell} cell)", fontsize=13,
                    y=0.975)
    handles = [Line2D([], [], color=FORWARD_COLOUR, linewidth=2.0,
                      label="solid: forward edge (same timestep)")]
    if genotype.cell == "backward":
        handles.append(Line2D([], [], color=FEEDBACK_COLOUR, linewidth=2.0, linestyle=(0, (5, 3)),
                              label="dashed: feedback edge (step t \u2192 t+1)"))
    figure.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.02, 0.015), fontsize=10,
                  frameon=False)
    used = sorted({op for _, _, op in (*genotype.forward_edges, *genotype.feedback_edges)})
    definitions = "\n".join(f"{OPERATIONS[op]} = {OPERATION_DESCRIPTIONS[OPERATIONS[op]]}"
                            for op in used)
    figure.text(0.98, 0.03, definitions, ha="right", va="bottom", fontsize=9.5,
                color="#333333", linespacing=1.4)
    return save_figure(figure, Path(path))


def score_histogram(scores: Iterable[float], path: Union[str, Path], best: Optional[float] = None,
                    title: Optional[str] = None) -> Path:
    """Save a PNG histogram of architecture scores and return its path.

    Finite scores are binned; -inf scores (architectures the scorer rejects) and any other
    non-finite ones are not drawn but counted in the legend. best, when finite, is marked
    with a vertical line.
    """
    values = [float(score) for score in scores]
    finite = [value for value in values if math.isfinite(value)]
    minus_inf = sum(1 for value in values if value == -math.inf)
    other = len(values) - len(finite) - minus_inf

    figure = Figure(figsize=(7.0, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    handles = []
    if finite:
        bins = max(5, min(40, round(math.sqrt(len(finite)) * 1.5)))
        low, high = min(finite), max(finite)
        if not high - low > 1e-9 * max(1.0, abs(low), abs(high)):  # (nearly) equal: one bar
            bins, low, high = 1, low - 0.5, high + 0.5
        counts, _, _ = axes.hist(finite, bins=bins, range=(low, high), color="#4c72b0",
                                 edgecolor="white", linewidth=0.6)
        axes.set_ylim(0, max(counts.max(), 1) * 1.45)  # room for the legend above the bars
        handles.append(Patch(color="#4c72b0", label=_count(len(finite), "finite score")))
    else:
        axes.text(0.5, 0.5, "no finite scores", transform=axes.transAxes, ha="center",
                  va="center", fontsize=12, color="#777777")
    if minus_inf:
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label=f"{minus_inf} scored -inf (not drawn)"))
    if other:
        handles.append(Patch(facecolor="none", edgecolor="none",
                             label=f"{other} NaN or +inf (not drawn)"))
    if best is not None and math.isfinite(float(best)):
        handles.append(axes.axvline(float(best), color="#c44e52", linewidth=2.0,
                                    label=f"best {float(best):.4g}"))
    shown = finite + ([float(best)] if best is not None and math.isfinite(float(best)) else [])
    if shown:
        pad = 0.06 * (max(shown) - min(shown)) or 1.0
        axes.set_xlim(min(shown) - pad, max(shown) + pad)
    axes.set_xlabel("score")
    axes.set_ylabel("architectures")
    axes.set_title(title if title else f"Architecture scores ({_count(len(values), 'candidate')})")
    if handles:
        axes.legend(handles=handles, loc="upper left", fontsize=9, frameon=False)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def training_curves(rows: Iterable[dict], path: Union[str, Path]) -> Path:
    """Save a PNG of loss and top-1 accuracy per epoch (train, val, test) and return its path.

    rows: train's log rows, {"epoch": ..., "<split>_loss": ..., "<split>_top1": ...}, where ""
    means not measured that epoch. Every measured epoch is marked, so that one epoch shows.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("training_curves needs the log of at least one epoch; got no rows")
    figure = Figure(figsize=(10.0, 4.0), dpi=110)
    FigureCanvasAgg(figure)
    loss_axis, accuracy_axis = figure.subplots(1, 2)
    epochs = [int(row["epoch"]) for row in rows]
    for split in ("train", "val", "test"):
        if all(row.get(f"{split}_loss", "") == "" for row in rows):
            continue
        for axis, column in ((loss_axis, f"{split}_loss"), (accuracy_axis, f"{split}_top1")):
            axis.plot(epochs, [float(row[column]) if row.get(column, "") != "" else math.nan
                               for row in rows], marker="o", markersize=3.5, label=split)
    loss_axis.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    accuracy_axis.set(xlabel="epoch", ylabel="top-1 %", title="accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if min(epochs) == max(epochs):  # else the ticks are fractions of an epoch
            axis.set_xlim(epochs[0] - 1, epochs[0] + 1)
        axis.grid(alpha=0.3)
        if axis.get_lines():
            axis.legend()
    figure.tight_layout()
    return save_figure(figure, Path(path))


def firing_rate_chart(firing_rates: dict, path: Union[str, Path],
                      title: Optional[str] = None) -> Path:
    """Save a PNG bar chart of the firing rate of each LIF layer (spikes per neuron per
    timestep, {layer name: rate} in network order, top to bottom) and return its path."""
    rates = {str(name): float(rate) for name, rate in firing_rates.items()}
    bad = {name: rate for name, rate in rates.items() if not 0.0 <= rate <= 1.0}
    if not rates or bad:
        raise ValueError(f"firing_rate_chart needs firing rates in [0, 1] of at least one layer; "
                         f"got {bad or 'none'}")
    figure = Figure(figsize=(7.0, 0.8 + 0.32 * len(rates)), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    rows = range(len(rates))
    axes.barh(rows, list(rates.values()), color="#4c72b0", height=0.7)
    axes.set_yticks(rows, list(rates), fontsize=9, family="monospace")
    axes.invert_yaxis()  # the first layer on top
    largest = max(rates.values())
    for row, rate in zip(rows, rates.values()):
        axes.text(rate + 0.01 * max(largest, 1e-3), row, f"{rate:.4f}", va="center", fontsize=8.5)
    axes.set_xlim(0, max(largest, 1e-3) * 1.18)
    axes.set_xlabel("firing rate (spikes per neuron per timestep)")
    axes.set_title(title if title else "Firing rate of each LIF layer")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, Path(path))


def _as_genotype(genotype: CellLike) -> Genotype:
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, str):
        return parse_genotype(genotype)
    if isinstance(genotype, tuple) and len(genotype) == 2 and isinstance(genotype[1], str):
        return parse_genotype(genotype[0], genotype[1])
    raise TypeError(f"draw_cell takes a Genotype, a (genotype, cell) pair such as "
                    f"(\"0302 0030 3003 0000\", \"backward\") or a genotype string; "
                    f"got {genotype!r}")


def _draw_edge(axes, node_x: list, source: int, target: int, op: int, above: bool) -> float:
    """Draw one labelled arc; return how far from the row it reaches."""
    sign = 1.0 if above else -1.0
    colour = FORWARD_COLOUR if above else FEEDBACK_COLOUR
    span = abs(target - source)
    height = ARC_HEIGHT_PER_SPAN * span + 0.25
    # Leave and enter the nodes on their upper (forward) or lower (feedback) side, longer
    # arcs nearer the top (bottom), so that arrowheads meeting at one node stay apart.
    tilt = math.radians(_TILT_FROM_VERTICAL[min(span, len(_TILT_FROM_VERTICAL)) - 1])
    dx = NODE_RADIUS * math.sin(tilt) * (1.0 if target > source else -1.0)
    dy = sign * NODE_RADIUS * math.cos(tilt)
    start = (node_x[source] + dx, dy)
    end = (node_x[target] - dx, dy)
    middle = (start[0] + end[0]) / 2.0
    control = (middle, 2.0 * sign * height - dy)  # a quadratic Bezier peaks halfway to it
    curve = CurvePath([start, control, end], [CurvePath.MOVETO, CurvePath.CURVE3,
                                              CurvePath.CURVE3])
    axes.add_patch(FancyArrowPatch(path=curve, arrowstyle="-|>", mutation_scale=16,
                                   color=colour, linewidth=2.0,
                                   linestyle="-" if above else (0, (5, 3)), zorder=2))
    axes.text(middle, sign * height, OPERATIONS[op], ha="center", va="center", fontsize=10.5,
              color=colour, zorder=5,
              bbox=dict(boxstyle="round,pad=0.25", facecolor="white", edgecolor=colour,
                        linewidth=1.0))
    return height + 0.3


def save_figure(figure: Figure, path: Path) -> Path:
    """Write figure to path as PNG, atomically (a temporary file in the folder, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda tmp: figure.savefig(tmp, format="png",
                                                             metadata=_PNG_METADATA))


def _count(number: int, noun: str) -> str:
    """'1 candidate', '2 candidates'."""
    return f"{number} {noun}" + ("" if number == 1 else "s")
