"""Model performance in production: live metrics from outcomes, and a label-free estimate (CBPE).

Live: once outcomes are recorded (`churn monitor feedback`), each prediction is joined to what
happened to its customer, and accuracy, ROC-AUC and calibration are computed per time window.

Label-free: confidence-based performance estimation (CBPE, as in NannyML). If the model's
probabilities are calibrated, a prediction with probability p is right with probability p (when it
says "churn") or 1 − p (when it says "stays"), so the expected accuracy of a window is the mean of
those; the expected ROC-AUC counts each prediction as a positive with weight p and a negative with
weight 1 − p. Raw model scores are first calibrated on held-out labelled customers (isotonic
regression on the test split).

Assumptions, stated plainly: (1) only the customer mix changes (covariate shift) — the relation
between features and churn, P(churn | customer), stays what it was (no concept drift: CBPE cannot
see, e.g., a competitor's offer that makes everyone likelier to leave); (2) the calibration learned
on the test split holds for the customers now seen, including regions the test split covers
thinly; (3) windows are large enough (hundreds of predictions) for the averages to settle.
When outcomes exist, compare the estimate with the live figures: a gap means (1) or (2) broke.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from churn import metrics

log = logging.getLogger(__name__)

FREQUENCIES = {"hour": "h", "day": "D", "week": "W-SUN", "month": "MS"}


def _proba(values: np.ndarray | pd.Series, name: str = "probabilities") -> np.ndarray:
    p = np.asarray(values, dtype="float64")
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise ValueError(f"{name} must be a 1-D list of numbers in [0, 1]")
    return p


def calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean predicted − observed rate| per equal-width bin, weighted by size."""
    y = np.asarray(y_true, dtype="float64")
    p = _proba(proba)
    if p.size == 0:
        return float("nan")
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(index):
        mask = index == b
        total += mask.sum() * abs(p[mask].mean() - y[mask].mean())
    return float(total / p.size)


def live_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5, bins: int = 10) -> dict:
    """Accuracy, ROC-AUC (NaN with one class), Brier, calibration error and rates of labelled predictions."""
    p = _proba(proba)
    y = np.asarray(y_true, dtype="int64")
    figures = metrics.classification(y, p, threshold)
    keep = ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "n", "positive_rate")
    out = {k: figures[k] for k in keep}
    out["calibration_error"] = calibration_error(y, p, bins)
    out["mean_probability"] = float(p.mean()) if p.size else float("nan")
    return out


def over_time(
    frame: pd.DataFrame,
    figures,
    unit: str = "week",
    time_column: str = "created_at",
    min_rows: int = 1,
) -> pd.DataFrame:
    """Apply `figures(group) -> dict` to each time window of `frame` (oldest first), with `start` and `n`.

    Windows with fewer than `min_rows` rows are left out.
    """
    if unit not in FREQUENCIES:
        raise ValueError(f"time unit must be one of {list(FREQUENCIES)}, got {unit!r}")
    if frame.empty:
        return pd.DataFrame(columns=["start", "n"])
    stamps = pd.to_datetime(frame[time_column])
    rows = []
    for start, group in frame.groupby(stamps.dt.to_period(FREQUENCIES[unit]).dt.start_time, sort=True):
        if len(group) >= min_rows:
            rows.append({"start": start, **figures(group), "n": len(group)})
    return pd.DataFrame(rows)


def live_over_time(labelled: pd.DataFrame, unit: str = "week", threshold: float = 0.5, min_rows: int = 1):
    """Live metrics per time window of predictions joined to outcomes (`PredictionStore.labelled`)."""
    return over_time(
        labelled,
        lambda g: live_metrics(g["churned"].to_numpy(), g["probability"].to_numpy(), threshold),
        unit,
        min_rows=min_rows,
    )


def fit_calibrator(proba: np.ndarray, y_true: np.ndarray) -> IsotonicRegression:
    """Isotonic map from raw model probabilities to calibrated ones, fitted on labelled held-out rows."""
    p = _proba(proba, "reference probabilities")
    y = np.asarray(y_true, dtype="int64")
    if p.size != y.size or p.size < 20 or len(np.unique(y)) != 2:
        raise ValueError("calibration needs ≥ 20 held-out predictions with both outcomes present")
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)


def expected_roc_auc(
    calibrated: np.ndarray, scores: np.ndarray | None = None, weights: np.ndarray | None = None
) -> float:
    """ROC-AUC expected when each row is a churner with probability `calibrated`, ranked by `scores`.

    Sum over pairs of distinct rows i ≠ j of c_i·(1 − c_j)·[s_i > s_j] (ties ½), divided by the
    sum of c_i·(1 − c_j). `weights` count repeated rows (a window summarised as value counts).
    """
    c = _proba(calibrated)
    s = c if scores is None else np.asarray(scores, dtype="float64")
    w = np.ones_like(c) if weights is None else np.asarray(weights, dtype="float64")
    pos, neg = float(np.sum(w * c)), float(np.sum(w * (1 - c)))
    self_pairs = float(np.sum(w * c * (1 - c)))
    if c.size == 0 or pos * neg - self_pairs <= 0:
        return float("nan")
    y = np.concatenate([np.ones(c.size), np.zeros(c.size)])
    auc = roc_auc_score(y, np.concatenate([s, s]), sample_weight=np.concatenate([w * c, w * (1 - c)]))
    # the weighted AUC also pairs each row with itself (a tie, counted ½): take those pairs out
    return float((auc * pos * neg - 0.5 * self_pairs) / (pos * neg - self_pairs))


def estimate(
    proba: np.ndarray,
    calibrator: IsotonicRegression | None = None,
    threshold: float = 0.5,
    weights: np.ndarray | None = None,
) -> dict:
    """CBPE: expected accuracy and ROC-AUC of predictions whose outcomes are not known yet.

    `weights` (optional) are counts of each probability value, for windows summarised by SQL.
    """
    p = _proba(proba)
    w = np.ones_like(p) if weights is None else np.asarray(weights, dtype="float64")
    if p.size == 0 or w.sum() <= 0:
        raise ValueError("no predictions to estimate performance on")
    c = np.clip(calibrator.predict(p), 0.0, 1.0) if calibrator is not None else p
    expected_correct = np.where(p >= threshold, c, 1 - c)
    return {
        "accuracy": float(np.sum(w * expected_correct) / w.sum()),
        "roc_auc": expected_roc_auc(c, p, w),
        "expected_churn_rate": float(np.sum(w * c) / w.sum()),
        "n": round(float(w.sum())),
    }


def estimate_over_time(
    frame: pd.DataFrame, calibrator: IsotonicRegression | None, unit: str = "week", threshold: float = 0.5
) -> pd.DataFrame:
    """CBPE per time window of logged predictions (`created_at`, `probability`)."""
    return over_time(frame, lambda g: estimate(g["probability"].to_numpy(), calibrator, threshold), unit)


def compare(estimated: dict, live: dict) -> dict:
    """Estimated minus live, per metric both have (positive: the estimate was optimistic)."""
    out = {}
    for metric in ("accuracy", "roc_auc"):
        a, b = estimated.get(metric), live.get(metric)
        if a is not None and b is not None and a == a and b == b:
            out[metric] = {"estimated": a, "live": b, "difference": a - b}
    return out
