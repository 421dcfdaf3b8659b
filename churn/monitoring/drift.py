"""Drift statistics between a reference sample and a current sample (PSI; pure functions)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from churn import schema

log = logging.getLogger(__name__)

#: Proportions below this are clipped before taking logs, so an empty bin gives a large, finite PSI.
PSI_EPS = 1e-4


def numeric_bins(reference: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """Bin edges at the reference's quantiles, deduplicated, with outer edges -inf and +inf.

    Bins are left-closed, `[edge_i, edge_i+1)`. Ties in the reference (e.g. many customers at the
    same tenure) merge quantiles, so fewer than `n_bins` bins can come back. NaNs are ignored.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    values = np.asarray(reference, dtype="float64")
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("reference has no finite values to take quantile bins from")
    inner = np.quantile(values, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.concatenate(([-np.inf], np.unique(inner), [np.inf]))


def _bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype="float64")
    values = values[~np.isnan(values)]
    index = np.searchsorted(edges[1:-1], values, side="right")
    return np.bincount(index, minlength=len(edges) - 1)


def psi_from_counts(
    ref_counts: Sequence[float] | np.ndarray, cur_counts: Sequence[float] | np.ndarray, eps: float = PSI_EPS
) -> float:
    """Population stability index of two histograms over the same bins.

    PSI = sum((c - r) * ln(c / r)) over the bins' proportions r (reference) and c (current);
    proportions are clipped below at `eps` (no renormalisation) so empty bins stay finite.
    Rule of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 major shift.
    """
    ref = np.asarray(ref_counts, dtype="float64")
    cur = np.asarray(cur_counts, dtype="float64")
    if ref.shape != cur.shape or ref.ndim != 1 or ref.size == 0:
        raise ValueError(f"counts must be two 1-D arrays of the same length, got {ref.shape} and {cur.shape}")
    if (ref < 0).any() or (cur < 0).any():
        raise ValueError("counts must not be negative")
    if ref.sum() == 0 or cur.sum() == 0:
        raise ValueError("counts must not all be zero (an empty sample has no distribution)")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    r = np.clip(ref / ref.sum(), eps, None)
    c = np.clip(cur / cur.sum(), eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, n_bins: int = 10) -> float:
    """PSI of a numeric feature over `n_bins` quantile bins fixed from the reference."""
    edges = numeric_bins(reference, n_bins)
    return psi_from_counts(_bin_counts(reference, edges), _bin_counts(current, edges))


def psi_categorical(
    reference: Sequence[object] | np.ndarray, current: Sequence[object] | np.ndarray
) -> float:
    """PSI of a categorical feature: one bin per reference level plus an "unseen" bucket.

    Values are compared as strings; levels that occur only in `current` all fall in the unseen bucket
    (reference count 0, so they weigh in through the `eps` clipping).
    """
    ref = np.asarray(reference, dtype=object).astype(str)
    cur = np.asarray(current, dtype=object).astype(str)
    levels, ref_counts = np.unique(ref, return_counts=True)
    cur_levels, cur_level_counts = np.unique(cur, return_counts=True)
    found = dict(zip(cur_levels.tolist(), cur_level_counts.tolist(), strict=True))
    cur_counts = [found.pop(level, 0) for level in levels.tolist()]
    unseen = sum(found.values())
    return psi_from_counts([*ref_counts.tolist(), 0], [*cur_counts, unseen])


def column_psi(reference: pd.DataFrame, current: pd.DataFrame, n_bins: int = 10) -> dict[str, float]:
    """PSI of every Telco column but the id between two raw frames (blank TotalCharges count as 0).

    Numbers (tenure, MonthlyCharges, TotalCharges) use `n_bins` quantile bins of the reference;
    everything else, SeniorCitizen and Churn included, one bin per level plus an unseen bucket.
    """
    numeric = ("tenure", "MonthlyCharges", "TotalCharges")
    out = {}
    for col in schema.COLUMNS[1:]:
        if col in numeric:
            ref, cur = (
                pd.to_numeric(f[col], errors="coerce").fillna(0.0).to_numpy() for f in (reference, current)
            )
            out[col] = psi_numeric(ref, cur, n_bins)
        else:
            out[col] = psi_categorical(reference[col].to_numpy(), current[col].to_numpy())
    return out
