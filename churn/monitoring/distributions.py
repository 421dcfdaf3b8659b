"""Samples as value counts, and the statistics between two of them: PSI, KS, chi-square, Wasserstein, Jensen–Shannon.

`drift` decides with these which columns drifted; the prediction log's queries count on the same grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from churn import schema

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


# -- samples as value counts ---------------------------------------------------------------------
#
# Every statistic below is computed from value counts, not from raw rows: a numeric column becomes
# counts on a fine grid (a power of ten at most 1/1000 of the reference's standard deviation, so
# whole numbers and cents stay exact), a categorical column becomes counts per level. A window of a
# million logged predictions is summarised by SQL GROUP BY (churn.monitoring.store) in a few
# hundred kilobytes; a CSV batch by pandas. Both give the same `Summary`.

#: Name of the bucket that collects categorical values the reference never had.
UNSEEN = "<unseen>"
#: The model's output, compared like a numeric feature ("prediction drift").
PREDICTION = "churn_probability"


@dataclass(frozen=True)
class Summary:
    """A sample as value counts: `numeric[col]` is indexed by grid value, `categorical[col]` by level."""

    n: int
    numeric: dict[str, pd.Series] = field(default_factory=dict)
    categorical: dict[str, pd.Series] = field(default_factory=dict)


#: Grid step per numeric column: values are compared after rounding to it. Whole months, cents
#: and whole dollars keep the Telco data exact or nearly so (TotalCharges moves by ≤ $0.50, about
#: 1/4000 of its spread); probabilities keep four decimals.
GRID: dict[str, float] = {
    "SeniorCitizen": 1.0,
    "tenure": 1.0,
    "MonthlyCharges": 0.01,
    "TotalCharges": 1.0,
    PREDICTION: 1e-4,
}


def grid_scale(step: float) -> int:
    """Whole number of grid steps per unit (the grid steps are 1/1, 1/100, 1/10000 …)."""
    scale = round(1 / step)
    if scale < 1 or not math.isclose(scale * step, 1.0):
        raise ValueError(f"grid step must be 1 over a whole number, got {step}")
    return scale


def grid_keys(values: np.ndarray, step: float) -> np.ndarray:
    """Values as whole numbers of grid steps: floor(value · scale + ½), the same arithmetic the log's SQL does."""
    return np.floor(np.asarray(values, dtype="float64") * grid_scale(step) + 0.5).astype("int64")


def numeric_counts(values: np.ndarray | pd.Series, step: float) -> pd.Series:
    """Counts of finite `values` rounded to the grid `step`, indexed by the rounded value."""
    v = np.asarray(values, dtype="float64")
    v = v[np.isfinite(v)]
    keys, counts = np.unique(grid_keys(v, step), return_counts=True)
    return pd.Series(counts.astype("int64"), index=keys / grid_scale(step), dtype="int64")


def level_counts(values: np.ndarray | pd.Series) -> pd.Series:
    """Counts per level (values compared as text; missing values left out)."""
    s = pd.Series(values).dropna().astype(str)
    return s.value_counts().sort_index().astype("int64")


def summarize(df: pd.DataFrame, probabilities: np.ndarray | pd.Series | None = None) -> Summary:
    """Summarise the 19 features of a frame (and optionally the model's probabilities) as counts."""
    missing = [c for c in schema.FEATURES if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} are missing from the data to summarise")
    numeric = {
        c: numeric_counts(pd.to_numeric(df[c], errors="coerce"), GRID[c]) for c in schema.NUMERIC_FEATURES
    }
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype="float64")
        if proba.ndim != 1 or len(proba) != len(df) or not np.all((proba >= 0) & (proba <= 1)):
            raise ValueError("probabilities must be one number in [0, 1] per row")
        numeric[PREDICTION] = numeric_counts(proba, GRID[PREDICTION])
    return Summary(
        n=len(df), numeric=numeric, categorical={c: level_counts(df[c]) for c in schema.CATEGORICAL_FEATURES}
    )


# -- statistics on counts ------------------------------------------------------------------------


def _cdfs(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of grid values and both empirical CDFs evaluated there (right-continuous)."""
    values = np.union1d(ref.index.to_numpy(dtype="float64"), cur.index.to_numpy(dtype="float64"))
    out = []
    for counts in (ref, cur):
        dense = counts.groupby(level=0).sum().reindex(values, fill_value=0).to_numpy(dtype="float64")
        out.append(np.cumsum(dense) / dense.sum())
    return values, out[0], out[1]


def _check_nonempty(ref: pd.Series, cur: pd.Series) -> None:
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("both samples need at least one value")


def ks_from_counts(ref: pd.Series, cur: pd.Series) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic D and its asymptotic two-sided p-value.

    The p-value is Smirnov's limit `kstwo.sf(D, round(n·m/(n+m)))`, as scipy's `ks_2samp(method=
    "asymp")`; with ties (whole-number features) the test is conservative.
    """
    _check_nonempty(ref, cur)
    _, f_ref, f_cur = _cdfs(ref, cur)
    d = float(np.max(np.abs(f_ref - f_cur)))
    n, m = float(ref.sum()), float(cur.sum())
    en = n * m / (n + m)
    return d, float(stats.kstwo.sf(d, np.round(en)))


def wasserstein_from_counts(ref: pd.Series, cur: pd.Series) -> float:
    """Earth mover's (Wasserstein-1) distance of two samples given as value counts (scipy, weighted)."""
    _check_nonempty(ref, cur)
    return float(
        stats.wasserstein_distance(
            ref.index.to_numpy(dtype="float64"),
            cur.index.to_numpy(dtype="float64"),
            ref.to_numpy(dtype="float64"),
            cur.to_numpy(dtype="float64"),
        )
    )


def std_from_counts(counts: pd.Series) -> float:
    """Population standard deviation (ddof 0) of a sample given as value counts."""
    w = counts.to_numpy(dtype="float64")
    x = counts.index.to_numpy(dtype="float64")
    mean = np.sum(w * x) / w.sum()
    return float(np.sqrt(np.sum(w * (x - mean) ** 2) / w.sum()))


def aligned_levels(ref: pd.Series, cur: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Counts over the reference's levels plus an UNSEEN bucket for levels only `cur` has."""
    levels = [str(x) for x in ref.index]
    cur = cur.copy()
    cur.index = cur.index.astype(str)
    cur_counts = cur.reindex(levels, fill_value=0).to_numpy(dtype="float64")
    unseen = float(cur[~cur.index.isin(levels)].sum())
    return [*levels, UNSEEN], np.append(ref.to_numpy(dtype="float64"), 0.0), np.append(cur_counts, unseen)


def chi2_from_counts(ref: pd.Series, cur: pd.Series) -> tuple[float, float, int]:
    """Chi-square test of homogeneity on the 2×k table of level counts: statistic, p-value, dof.

    Both samples are treated as samples (the reference is not taken as exact), no Yates
    correction; levels absent from both samples are dropped.
    """
    _check_nonempty(ref, cur)
    _, r, c = aligned_levels(ref, cur)
    keep = (r + c) > 0
    table = np.vstack([r[keep], c[keep]])
    if table.shape[1] < 2:
        return 0.0, 1.0, 0
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue), int(result.dof)


def jensen_shannon_from_counts(ref: pd.Series, cur: pd.Series) -> float:
    """Jensen–Shannon distance (natural log; 0 = same, √ln2 ≈ 0.83 = disjoint) of level shares."""
    _check_nonempty(ref, cur)
    _, r, c = aligned_levels(ref, cur)
    return float(jensenshannon(r / r.sum(), c / c.sum()))


def psi_from_summary(ref: pd.Series, cur: pd.Series, edges: np.ndarray | None = None) -> float:
    """PSI of two count series: numeric ones over `edges` (left-closed), categorical ones over levels."""
    _check_nonempty(ref, cur)
    if edges is None:
        _, r, c = aligned_levels(ref, cur)
        return psi_from_counts(r, c)
    inner = edges[1:-1]
    bins = len(edges) - 1
    out = []
    for counts in (ref, cur):
        index = np.searchsorted(inner, counts.index.to_numpy(dtype="float64"), side="right")
        out.append(np.bincount(index, weights=counts.to_numpy(dtype="float64"), minlength=bins))
    return psi_from_counts(out[0], out[1])


def weighted_quantile_edges(counts: pd.Series, n_bins: int) -> np.ndarray:
    """`numeric_bins` for a sample given as value counts (same quantile definition, no expansion)."""
    x = counts.index.to_numpy(dtype="float64")
    w = counts.to_numpy(dtype="int64")
    order = np.argsort(x)
    x, w = x[order], w[order]
    total = int(w.sum())
    if total == 0:
        raise ValueError("reference has no finite values to take quantile bins from")
    # positions of numpy's default ("linear") quantile on the sorted expanded sample
    pos = np.linspace(0, 1, n_bins + 1)[1:-1] * (total - 1)
    ends = np.cumsum(w)

    def value_at(k: np.ndarray) -> np.ndarray:
        return x[np.searchsorted(ends, k, side="right")]

    lo = np.floor(pos).astype("int64")
    frac = pos - lo
    inner = value_at(lo) + frac * (value_at(np.minimum(lo + 1, total - 1)) - value_at(lo))
    return np.concatenate(([-np.inf], np.unique(inner), [np.inf]))
