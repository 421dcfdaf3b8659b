"""The one metrics function every stage uses, and curve points for DVC plots."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Collection

    import numpy as np

#: The five headline performance metrics the validation gates check.
HEADLINE = ("accuracy", "precision", "recall", "f1", "roc_auc")


def classification(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5, *, only: Collection[str] | None = None
) -> dict[str, float]:
    """Accuracy, precision, recall, F1, ROC-AUC, PR-AUC, log loss and Brier score at a threshold.

    `only` names the figures to compute (default: all), for callers that need one or two of them.
    """
    import numpy as np
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    pred = (proba >= threshold).astype(int)
    two_classes = len(np.unique(y_true)) == 2
    figures: dict[str, Callable[[], float]] = {
        "accuracy": lambda: float(skm.accuracy_score(y_true, pred)),
        "precision": lambda: float(skm.precision_score(y_true, pred, zero_division=0)),
        "recall": lambda: float(skm.recall_score(y_true, pred, zero_division=0)),
        "f1": lambda: float(skm.f1_score(y_true, pred, zero_division=0)),
        "roc_auc": lambda: float(skm.roc_auc_score(y_true, proba)) if two_classes else float("nan"),
        "pr_auc": lambda: float(skm.average_precision_score(y_true, proba)) if two_classes else float("nan"),
        "log_loss": lambda: float(skm.log_loss(y_true, np.clip(proba, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": lambda: float(skm.brier_score_loss(y_true, proba)),
        "threshold": lambda: float(threshold),
        "n": lambda: int(y_true.size),
        "positive_rate": lambda: float(y_true.mean()) if y_true.size else float("nan"),
    }
    return {name: figure() for name, figure in figures.items() if only is None or name in only}


def _thin(points: list[dict[str, float]], max_points: int) -> list[dict[str, float]]:
    import numpy as np

    if len(points) <= max_points:
        return points
    keep = np.unique(np.linspace(0, len(points) - 1, max_points).round().astype(int))
    return [points[i] for i in keep]


def roc_points(y_true: np.ndarray, proba: np.ndarray, max_points: int = 200) -> list[dict[str, float]]:
    """ROC curve as [{fpr, tpr, threshold}], thinned to at most `max_points` points."""
    import numpy as np
    from sklearn import metrics as skm

    fpr, tpr, thr = skm.roc_curve(y_true, proba)
    thr = np.where(np.isfinite(thr), thr, 1.0)
    pts = [
        {"fpr": float(a), "tpr": float(b), "threshold": float(c)}
        for a, b, c in zip(fpr, tpr, thr, strict=True)
    ]
    return _thin(pts, max_points)


def pr_points(y_true: np.ndarray, proba: np.ndarray, max_points: int = 200) -> list[dict[str, float]]:
    """Precision–recall curve as [{recall, precision}], thinned."""
    from sklearn import metrics as skm

    precision, recall, _ = skm.precision_recall_curve(y_true, proba)
    pts = [{"recall": float(r), "precision": float(p)} for p, r in zip(precision, recall, strict=True)]
    return _thin(pts, max_points)


def calibration_points(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability diagram as [{mean_predicted, fraction_positive, count}] over equal-width bins."""
    import numpy as np

    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    idx = np.minimum((proba * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append(
                {
                    "mean_predicted": float(proba[mask].mean()),
                    "fraction_positive": float(y_true[mask].mean()),
                    "count": int(mask.sum()),
                }
            )
    return out


def confusion_rows(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> list[dict[str, str]]:
    """One {actual, predicted} row per customer, the format of DVC's confusion template."""
    import numpy as np

    labels = np.array(["No churn", "Churn"])
    pred = (np.asarray(proba) >= threshold).astype(int)
    return [
        {"actual": str(a), "predicted": str(p)}
        for a, p in zip(labels[np.asarray(y_true, dtype=int)], labels[pred], strict=True)
    ]


def confusion_counts(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, int]:
    """True/false positives and negatives at a threshold."""
    import numpy as np
    from sklearn import metrics as skm

    tn, fp, fn, tp = skm.confusion_matrix(y_true, np.asarray(proba) >= threshold, labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def profit_points(proba: np.ndarray, gain: np.ndarray, max_points: int = 200) -> list[dict[str, float]]:
    """Profit curve as [{share, profit}]: the summed `gain` of contacting the top `share` of customers
    ranked by `proba` (highest first), from nobody to everyone.

    Customers with equal probabilities cannot be told apart, so points sit at the edges of tied
    groups (as in empulse's ranked profit curve). Thinned to at most `max_points` points; the
    highest point is always kept.
    """
    import numpy as np

    proba = np.asarray(proba, dtype=float)
    order = np.argsort(-proba, kind="stable")
    ranked = proba[order]
    edges = np.r_[0, np.flatnonzero(ranked[1:] != ranked[:-1]) + 1, ranked.size]  # customers contacted
    profit = np.r_[0.0, np.cumsum(np.asarray(gain, dtype=float)[order])][edges]
    n = max(ranked.size, 1)
    pts = [{"share": float(k / n), "profit": float(v)} for k, v in zip(edges, profit, strict=True)]
    best = int(np.argmax(profit))
    thinned = _thin(pts, max_points - 1)
    return thinned if pts[best] in thinned else sorted([*thinned, pts[best]], key=lambda p: p["share"])
