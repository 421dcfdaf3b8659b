"""Metrics against hand-computed textbook values and scikit-learn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churn import metrics

Y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
P = np.array([0.9, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.05])


def test_threshold_metrics_by_hand():
    m = metrics.classification(Y, P, threshold=0.5)
    # predicted positive: 0.9, 0.6, 0.7 → TP=2, FP=1, FN=1, TN=4
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert metrics.confusion_counts(Y, P) == {"tn": 4, "fp": 1, "fn": 1, "tp": 2}


def test_ranking_and_probability_metrics_by_hand():
    m = metrics.classification(Y, P)
    # 15 positive/negative pairs; positives win 12 (0.9: 5, 0.6: 4 — loses to 0.7, 0.3: 3)
    assert m["roc_auc"] == pytest.approx(12 / 15)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(Y, P))
    assert m["brier"] == pytest.approx(np.mean((P - Y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(Y * np.log(P) + (1 - Y) * np.log(1 - P)))
    # average precision: precision at each positive's rank: 1/1, 2/3, 3/5
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)


def test_curves():
    roc = metrics.roc_points(Y, P)
    assert roc[0]["fpr"] == 0 and roc[-1] == {"fpr": 1.0, "tpr": 1.0, "threshold": 0.05}
    assert all(a["fpr"] <= b["fpr"] for a, b in itertools.pairwise(roc))
    cal = metrics.calibration_points(Y, P, bins=2)
    assert [c["count"] for c in cal] == [5, 3]
    assert cal[1]["fraction_positive"] == pytest.approx(2 / 3)
    rows = metrics.confusion_rows(Y, P)
    assert len(rows) == 8 and rows[0] == {"actual": "Churn", "predicted": "Churn"}


def test_curves_are_thinned():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = rng.random(5000)
    assert len(metrics.roc_points(y, p, max_points=50)) <= 50
    assert len(metrics.pr_points(y, p, max_points=50)) <= 50


def test_single_class_does_not_crash():
    m = metrics.classification(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert np.isnan(m["roc_auc"]) and m["accuracy"] == 1.0


def test_only_computes_the_named_figures_with_the_same_values():
    full = metrics.classification(Y, P, threshold=0.5)
    some = metrics.classification(Y, P, threshold=0.5, only=("roc_auc", "accuracy"))
    assert list(some) == ["accuracy", "roc_auc"]
    assert some == {k: full[k] for k in some}
