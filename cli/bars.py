"""Horizontal bars for the terminal (`cost report --by day`, `status`): a value's
share of the largest value, drawn in block characters to an eighth of a cell."""

from __future__ import annotations

FULL = "█"
EIGHTHS = " ▏▎▍▌▋▊▉"  # index n: n/8 of a cell


def bar(value: float, maximum: float, width: int) -> str:
    """`value` as a bar `width` cells long at `maximum`: whole cells of FULL and,
    when the remainder is at least an eighth, one partial cell; at least one
    eighth for any value above 0, "" for 0 (or a non-positive maximum)."""
    if value <= 0 or maximum <= 0 or width <= 0:
        return ""
    eighths = round(min(value, maximum) / maximum * width * 8)
    eighths = max(eighths, 1)
    whole, rest = divmod(eighths, 8)
    return FULL * whole + (EIGHTHS[rest] if rest else "")


def cells(drawn: str) -> float:
    """The length of a bar drawn by `bar`, in cells (for tests and alignment)."""
    if not drawn:
        return 0.0
    partial = drawn[-1] if drawn[-1] != FULL else ""
    return drawn.count(FULL) + (EIGHTHS.index(partial) / 8 if partial else 0.0)
