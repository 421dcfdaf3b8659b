"""Time series of the prediction log for the app's Monitoring tab: volume, risk levels, probabilities."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd

from churn.monitoring.queries import Selection, Window
from churn.monitoring.store import PredictionStore
from churn.schema import RISK_LEVELS

log = logging.getLogger(__name__)

UNITS = ("hour", "day")


def volume(
    store: PredictionStore, unit: str = "day", window: Window | Selection | None = None
) -> pd.DataFrame:
    """Predictions per hour or day: columns `bucket` (UTC, text) and `n`, oldest first."""
    return store.bucket_counts(unit, window)


def risk_breakdown(
    store: PredictionStore, unit: str = "day", window: Window | Selection | None = None
) -> pd.DataFrame:
    """Low / Medium / High counts and shares per hour or day (columns bucket, Low, Medium, High, n, *_share)."""
    long = store.bucket_counts(unit, window, by="risk_level")
    wide = long.pivot_table(index="bucket", columns="risk_level", values="n", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=list(RISK_LEVELS), fill_value=0).astype("int64")
    wide["n"] = wide.sum(axis=1)
    for level in RISK_LEVELS:
        wide[f"{level}_share"] = wide[level] / wide["n"]
    return wide.reset_index().rename_axis(columns=None)


def probability_distribution(
    store: PredictionStore, unit: str = "day", bins: int = 10, window: Window | Selection | None = None
) -> pd.DataFrame:
    """Histogram of churn probabilities per hour or day, by SQL.

    Columns: bucket, bin (0 … bins-1; bin b holds [b/bins, (b+1)/bins), 1.0 in the last), n, share.
    """
    frame = store.probability_histogram(unit, bins, window)
    frame["share"] = frame["n"] / frame.groupby("bucket")["n"].transform("sum") if len(frame) else []
    return frame


def probability_summary(
    store: PredictionStore, unit: str = "day", window: Window | Selection | None = None
) -> pd.DataFrame:
    """Per hour or day: n, mean, min and max churn probability (by SQL)."""
    return store.probability_stats(unit, window)


def bin_labels(bins: int = 10) -> list[str]:
    """Readable labels of the probability bins ("0–0.1", …)."""
    edges = np.linspace(0, 1, bins + 1)
    return [f"{lo:g}–{hi:g}" for lo, hi in itertools.pairwise(edges)]
