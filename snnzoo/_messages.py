"""Pieces of the error messages that every module writes the same way."""

from __future__ import annotations


def abbreviated_list(items: list[str], limit: int = 5) -> str:
    """The first `limit` items joined by commas, then how many more: 'a, b, c and 4 more'."""
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name where it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
