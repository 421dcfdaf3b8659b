"""How the app shows numbers: probabilities as percentages with one decimal, everywhere."""

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
