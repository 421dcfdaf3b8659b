"""How the app shows numbers: probabilities as percentages with one decimal, value axes zoomed to the data."""

from __future__ import annotations

from typing import Any

import pandas as pd

#: The one format of a probability on screen (0.6894 -> "68.9%").
PERCENT = "{:.1%}"


def percent(probability: float | None) -> str:
    """A probability as a percentage with one decimal; empty when there is none."""
    return "" if probability is None else PERCENT.format(probability)


def percent_columns(df: pd.DataFrame, columns: list[str], precision: int = 1) -> Any:
    """`df` for a gr.Dataframe, the probability `columns` shown as percentages and other numbers with
    `precision` decimals (the values stay numbers: API clients still get the exact figures)."""
    styler = df.style.format(precision=precision)
    return styler.format(PERCENT, subset=[c for c in columns if c in df.columns])


def zoomed_range(values: pd.Series, margin: float = 0.25) -> tuple[float, float]:
    """A value axis around the data: its span plus `margin` of it on each side (at least 0.005, or
    5% of the value when all are equal), kept within [0, 1] for values that lie there."""
    lo, hi = float(values.min()), float(values.max())
    pad = max((hi - lo) * margin, 0.005 if hi - lo else max(abs(hi) * 0.05, 0.005))
    low, high = lo - pad, hi + pad * 2  # room above for the printed values
    if lo >= 0 and hi <= 1:
        low, high = max(low, 0.0), min(high, 1.0)
    return low, high
