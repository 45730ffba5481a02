"""Pieces of the messages (errors, tables) that every module writes the same way."""

from __future__ import annotations


def abbreviated_list(items: list[str], limit: int = 5) -> str:
    """The first `limit` items joined by commas, then how many more: 'a, b, c and 4 more'."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name where it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def format_count(value: float) -> str:
    """A count with an SI prefix and 3 significant digits: '0', '812', '1.15 k', '37.2 M'."""
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {prefix}"
    return f"{value:.3g}"


def format_energy(picojoules: float) -> str:
    """Energy in the unit that suits it, 3 significant digits: '41.2 pJ', '3.05 \u00b5J'."""
    for scale, unit in ((1e9, "mJ"), (1e6, "\u00b5J"), (1e3, "nJ")):
        if abs(picojoules) >= scale:
            return f"{picojoules / scale:.3g} {unit}"
    return f"{picojoules:.3g} pJ"
