"""Drift between a reference sample and a current window: which columns moved, by which test, and the verdict."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churn import schema
from churn.monitoring import distributions
from churn.settings import DriftConfig

log = logging.getLogger(__name__)

# -- the drift engine ----------------------------------------------------------------------------
#
# Which test for which column and window size, and why:
# * Windows of up to `stat_test_max_rows` predictions (1,000 by default, Evidently's switch
#   point) use hypothesis tests: two-sample Kolmogorov–Smirnov for numeric columns, chi-square
#   homogeneity for categorical ones. A feature drifts when p < alpha / (number of columns
#   tested) — Bonferroni, so the chance that *any* of the 19 features (and the prediction) raises
#   a false alarm in a window without drift stays below alpha, however correlated they are.
# * Larger windows use distances with fixed thresholds: Wasserstein distance divided by the
#   reference's standard deviation for numeric columns, Jensen–Shannon distance for categorical
#   ones. With 100,000 rows a p-value flags shifts far too small to matter (KS rejects a 1%
#   price change); a distance measures *how much* the data moved, independent of sample size.
# * PSI over reference-quantile bins (levels for categories, plus an "unseen" bucket) is reported
#   for every column with the usual reading (< 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 major). It
#   is not the alarm: with small windows its sampling noise alone reaches ~(bins-1)/n.
# * Dataset drift: the share of drifted features reaches `dataset_drift_share`.
# * Fewer than `min_rows` predictions: "not enough data" — no statistics, no alarm.


@dataclass(frozen=True)
class Reference:
    """The reference sample as counts, with its PSI bin edges and standard deviations."""

    summary: distributions.Summary
    edges: dict[str, np.ndarray]
    std: dict[str, float]

    @property
    def n(self) -> int:
        return self.summary.n


def reference_from_frame(
    df: pd.DataFrame, config: DriftConfig, probabilities: np.ndarray | None = None, source: str = "reference"
) -> Reference:
    """Build the reference from a prepared frame (the training split) and, optionally, model scores.

    `probabilities` are the model's churn probabilities on held-out customers of the same
    population (the test split), used for prediction drift; their count need not match `df`.
    """
    if df is None or len(df) == 0:
        raise ValueError(f"{source}: the reference has no rows")
    schema.validate(df, require_target=False, require_id=False, source=source)
    summary = distributions.summarize(df)
    if probabilities is not None:
        proba = np.asarray(probabilities, dtype="float64")
        if proba.ndim != 1 or proba.size == 0 or not np.all((proba >= 0) & (proba <= 1)):
            raise ValueError(f"{source}: probabilities must be a non-empty list of numbers in [0, 1]")
        summary.numeric[distributions.PREDICTION] = distributions.numeric_counts(
            proba, distributions.GRID[distributions.PREDICTION]
        )
    edges = {c: distributions.weighted_quantile_edges(v, config.psi_bins) for c, v in summary.numeric.items()}
    std = {c: distributions.std_from_counts(v) for c, v in summary.numeric.items()}
    return Reference(summary=summary, edges=edges, std=std)


def _psi_level(psi: float, config: DriftConfig) -> str:
    if psi >= config.psi_major:
        return "major"
    return "moderate" if psi >= config.psi_moderate else "stable"


def _column_result(
    reference: Reference, name: str, cur: pd.Series, config: DriftConfig, use_tests: bool, alpha: float
) -> dict:
    numeric = name in reference.edges
    ref = reference.summary.numeric[name] if numeric else reference.summary.categorical[name]
    out: dict = {"type": "numeric" if numeric else "categorical", "n": int(cur.sum())}
    if cur.sum() == 0:
        return {**out, "test": None, "drifted": False, "note": "no values in the window"}
    psi = distributions.psi_from_summary(ref, cur, reference.edges[name] if numeric else None)
    out.update(psi=psi, psi_level=_psi_level(psi, config))
    if use_tests and numeric:
        stat, p = distributions.ks_from_counts(ref, cur)
        out.update(test="ks", statistic=stat, p_value=p, threshold=alpha, drifted=p < alpha)
    elif use_tests:
        stat, p, _ = distributions.chi2_from_counts(ref, cur)
        out.update(test="chi_square", statistic=stat, p_value=p, threshold=alpha, drifted=p < alpha)
    elif numeric:
        norm = reference.std[name] or 1.0
        stat = distributions.wasserstein_from_counts(ref, cur) / norm
        threshold = config.wasserstein_threshold
        out.update(test="wasserstein_norm", statistic=stat, threshold=threshold, drifted=stat > threshold)
    else:
        stat = distributions.jensen_shannon_from_counts(ref, cur)
        threshold = config.jensen_shannon_threshold
        out.update(test="jensen_shannon", statistic=stat, threshold=threshold, drifted=stat > threshold)
    out["drifted"] = bool(out["drifted"])
    return out


def compare(
    reference: Reference, current: distributions.Summary, config: DriftConfig, window: str = ""
) -> dict:
    """Drift report of `current` against `reference`: per feature, prediction, and dataset verdict.

    `status` is "ok", or "not_enough_data" when the window has fewer than `min_rows` rows (then
    nothing is tested and nothing drifts).
    """
    if current.n == 0:
        raise ValueError(f"the window is empty{f' ({window})' if window else ''}: no predictions to compare")
    features = [c for c in schema.FEATURES if c in current.numeric or c in current.categorical]
    missing = [c for c in schema.FEATURES if c not in features]
    if missing:
        raise ValueError(f"current data lacks feature(s) {missing}")
    has_prediction = (
        distributions.PREDICTION in current.numeric and distributions.PREDICTION in reference.edges
    )
    report: dict = {
        "window": window,
        "n_reference": reference.n,
        "n_current": current.n,
        "min_rows": config.min_rows,
    }
    if current.n < config.min_rows:
        report.update(
            status="not_enough_data",
            message=f"not enough data: {current.n} prediction(s) in the window, drift needs at least "
            f"{config.min_rows}",
            features={},
            prediction=None,
            dataset={"drifted": False, "n_drifted": 0, "share": 0.0, "threshold": config.dataset_drift_share},
        )
        return report
    use_tests = current.n <= config.stat_test_max_rows
    n_tests = len(features) + int(has_prediction)
    alpha = config.alpha / n_tests if config.bonferroni else config.alpha
    results = {}
    for name in features:
        cur = current.numeric[name] if name in current.numeric else current.categorical[name]
        results[name] = _column_result(reference, name, cur, config, use_tests, alpha)
    prediction = None
    if has_prediction:
        prediction = _column_result(
            reference,
            distributions.PREDICTION,
            current.numeric[distributions.PREDICTION],
            config,
            use_tests,
            alpha,
        )
    drifted = [c for c, r in results.items() if r["drifted"]]
    share = len(drifted) / len(features)
    report.update(
        status="ok",
        method="tests (KS, chi-square)" if use_tests else "distances (Wasserstein, Jensen-Shannon)",
        features=results,
        prediction=prediction,
        dataset={
            "drifted": share >= config.dataset_drift_share,
            "drifted_features": drifted,
            "n_drifted": len(drifted),
            "n_features": len(features),
            "share": share,
            "threshold": config.dataset_drift_share,
        },
    )
    return report


def drift_table(report: dict) -> pd.DataFrame:
    """One row per column of a drift report (features, then the prediction), for printing and the app."""
    rows = []
    items = list(report.get("features", {}).items())
    if report.get("prediction"):
        items.append((distributions.PREDICTION, report["prediction"]))
    for name, r in items:
        rows.append(
            {
                "column": name,
                "type": r.get("type"),
                "test": r.get("test"),
                "statistic": r.get("statistic"),
                "p_value": r.get("p_value"),
                "threshold": r.get("threshold"),
                "drifted": r.get("drifted"),
                "psi": r.get("psi"),
                "psi_level": r.get("psi_level"),
            }
        )
    columns = ["column", "type", "test", "statistic", "p_value", "threshold", "drifted", "psi", "psi_level"]
    return pd.DataFrame(rows, columns=columns)
