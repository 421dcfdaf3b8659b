"""Fairness figures against fairlearn and hand-computed values; gates, small groups, bad params."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)
from sklearn.metrics import accuracy_score

from churn import fairness
from churn.params import ParamsError, read
from churn.settings import FairnessSettings
from churn.validation import INSUFFICIENT

PARAMS = {
    "validate_fairness": {
        "attributes": ["gender"],
        "min_group_size": 3,
        "bootstrap": 200,
        "confidence": 0.95,
        "max_accuracy_gap": 0.10,
        "max_equalized_odds_difference": 0.20,
        "min_demographic_parity_ratio": None,
    }
}
# 12 customers: 6 women, 6 men; y = churned, pred = predicted churner
FRAME = pd.DataFrame(
    {
        "gender": ["Female"] * 6 + ["Male"] * 6,
        "y": [1, 1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0],
        "pred": [1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0],
    }
)


def _cfg(**overrides):
    params = {"validate_fairness": {**PARAMS["validate_fairness"], **overrides}}
    return fairness.config(read(params, FairnessSettings), ["gender", "SeniorCitizen", "tenure"])


def test_hand_built_frame_matches_fairlearn_and_hand_values():
    y, pred, g = FRAME["y"].to_numpy(), FRAME["pred"].to_numpy(), FRAME["gender"]
    report = fairness.attribute_report(y, pred, g, _cfg(), np.random.default_rng(0))
    women, men = report["groups"]["Female"], report["groups"]["Male"]
    # by hand — women: y 1 1 0 0 0 0, pred 1 0 1 1 0 0 → TP 1, FN 1, FP 2, TN 2
    assert women == {**women, "count": 6, "base_rate": 2 / 6, "accuracy": 3 / 6, "selection_rate": 3 / 6}
    assert women["tpr"] == pytest.approx(1 / 2) and women["fpr"] == pytest.approx(2 / 4)
    # men: y 1 1 1 0 0 0, pred 1 1 0 0 0 0 → TP 2, FN 1, FP 0, TN 3
    assert men["accuracy"] == pytest.approx(5 / 6) and men["selection_rate"] == pytest.approx(2 / 6)
    assert men["tpr"] == pytest.approx(2 / 3) and men["fpr"] == 0
    assert report["accuracy_gap"] == pytest.approx(5 / 6 - 3 / 6)
    assert report["demographic_parity_difference"] == pytest.approx(3 / 6 - 2 / 6)
    assert report["demographic_parity_ratio"] == pytest.approx((2 / 6) / (3 / 6))
    assert report["equalized_odds_difference"] == pytest.approx(max(2 / 3 - 1 / 2, 2 / 4 - 0))
    # and the same numbers straight from fairlearn
    kw = {"sensitive_features": g}
    assert report["demographic_parity_difference"] == demographic_parity_difference(y, pred, **kw)
    assert report["demographic_parity_ratio"] == demographic_parity_ratio(y, pred, **kw)
    assert report["equalized_odds_difference"] == equalized_odds_difference(y, pred, **kw)
    frame = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=g)
    assert report["accuracy_gap"] == frame.difference()
    assert women["ci"]["accuracy"]["low"] <= 0.5 <= women["ci"]["accuracy"]["high"]


def test_gates_from_params_and_reported_only_metrics():
    y, pred = FRAME["y"].to_numpy(), FRAME["pred"].to_numpy()
    result = fairness.evaluate(y, pred, FRAME[["gender"]], _cfg(), seed=1)
    gates = result["gates"]
    assert set(gates) == {"gender.accuracy_gap", "gender.equalized_odds_difference"}  # DP ratio: null
    assert gates["gender.accuracy_gap"]["passed"] is False  # 33 points > the original 10-point rule
    assert gates["gender.accuracy_gap"]["threshold"] == 0.10
    assert result["passed"] is False
    gated = fairness.evaluate(y, pred, FRAME[["gender"]], _cfg(min_demographic_parity_ratio=0.8), seed=1)
    assert gated["gates"]["gender.demographic_parity_ratio"]["status"] == "fail"  # 0.667 < 0.8


def test_deliberately_biased_predictions_fail_and_fair_ones_pass():
    rng = np.random.default_rng(0)
    n = 2000
    gender = pd.Series(rng.choice(["Female", "Male"], n))
    y = rng.integers(0, 2, n)
    fair = np.where(rng.random(n) < 0.85, y, 1 - y)  # 85% right for everyone
    biased = np.where(gender.eq("Male"), fair, np.where(rng.random(n) < 0.6, y, 1 - y))  # women: 60%
    cfg = _cfg(min_group_size=30)
    assert fairness.evaluate(y, fair, gender.to_frame("gender"), cfg, seed=0)["passed"] is True
    result = fairness.evaluate(y, biased, gender.to_frame("gender"), cfg, seed=0)
    assert result["passed"] is False
    assert result["gates"]["gender.accuracy_gap"]["value"] > 0.2
    ci = result["attributes"]["gender"]["accuracy_gap_ci"]
    assert 0.1 < ci["low"] < result["attributes"]["gender"]["accuracy_gap"] < ci["high"]


def test_small_group_gives_insufficient_data_not_pass_or_fail():
    y, pred = FRAME["y"].to_numpy(), FRAME["pred"].to_numpy()
    result = fairness.evaluate(y, pred, FRAME[["gender"]], _cfg(min_group_size=7), seed=1)
    for gate in result["gates"].values():
        assert gate["status"] == INSUFFICIENT and gate["passed"] is None
        assert "below 7 customers" in gate["note"]
    assert result["passed"] is True  # insufficient data is not a failure
    assert result["attributes"]["gender"]["smallest_group"] == 6


def test_flag_groups_read_0_and_1():
    assert fairness.labels(pd.Series([0.0, 1.0, 1.0])).tolist() == ["0", "1", "1"]
    assert fairness.labels(pd.Series(["Yes", "No"])).tolist() == ["Yes", "No"]


def test_bootstrap_is_seeded():
    y, pred = FRAME["y"].to_numpy(), FRAME["pred"].to_numpy()
    a = fairness.evaluate(y, pred, FRAME[["gender"]], _cfg(), seed=3)
    b = fairness.evaluate(y, pred, FRAME[["gender"]], _cfg(), seed=3)
    assert a == b


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"attributes": ["gender", "Age"]}, r"validate_fairness.attributes: lists \['Age'\], not column"),
        (
            {"attributes": "gender"},
            r"validate_fairness.attributes: must be a non-empty list of names \(got 'gender'\)",
        ),
        (
            {"max_accuracy_gap": "ten"},
            r"validate_fairness.max_accuracy_gap: must be null or a number at least 0 and at most 1 \(got 'ten'\)",
        ),
        (
            {"max_accuracy_gap": 1.5},
            r"validate_fairness.max_accuracy_gap: must be at least 0 and at most 1 \(got 1.5\)",
        ),
        (
            {"min_group_size": True},
            r"validate_fairness.min_group_size: must be a whole number at least 1 \(got True\)",
        ),
    ],
)
def test_bad_params_name_key_and_rule(overrides, message):
    with pytest.raises(ParamsError, match=message):
        _cfg(**overrides)


def test_missing_key_is_named():
    params = {"validate_fairness": {k: v for k, v in PARAMS["validate_fairness"].items() if k != "bootstrap"}}
    with pytest.raises(ParamsError, match="validate_fairness.bootstrap: is missing"):
        read(params, FairnessSettings)
