"""Markdown pieces shared by the model card and the pull-request report."""

from __future__ import annotations

import math
from typing import Any


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A GitHub-flavoured Markdown table as lines (cells rendered with `str`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def number(value: Any, digits: int = 4) -> str:
    """A figure: `digits` decimals; missing or NaN as an em dash; booleans as yes / no."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def interval(node: dict[str, float] | None, digits: int = 4) -> str:
    """A confidence interval `low – high`, or an em dash when there is none."""
    if not node:
        return "—"
    return f"{number(node.get('low'), digits)} – {number(node.get('high'), digits)}"
