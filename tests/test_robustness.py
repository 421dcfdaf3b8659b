"""Perturbations do what they say, seeded; a model that breaks on NaN fails its gates, not the run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn import data, robustness, schema
from churn.params import ParamsError, read
from churn.settings import RobustnessSettings

PARAMS = {
    "robustness": {
        "levels": {"noise": [0.1, 0.2], "flip": [0.1], "missing": [0.1]},
        "gates": {
            "noise": {"level": 0.2, "max_accuracy_drop": 0.03, "max_roc_auc_drop": 0.02},
            "flip": {"level": 0.1, "max_accuracy_drop": 0.04, "max_roc_auc_drop": 0.04},
            "missing": {"level": 0.1, "max_accuracy_drop": 0.03, "max_roc_auc_drop": 0.03},
        },
    }
}


@pytest.fixture(scope="module")
def test_xy(prepared):
    return data.xy(prepared[1])


def test_noise_touches_only_tenure_and_charges_at_the_asked_scale(test_xy):
    X, _ = test_xy
    out = robustness.perturb(X, "noise", 0.2, seed=1)
    assert robustness.NOISY == ("tenure", "MonthlyCharges", "TotalCharges")
    for col in X.columns:
        if col not in robustness.NOISY:
            pd.testing.assert_series_equal(out[col], X[col])
    diff = out["MonthlyCharges"] - X["MonthlyCharges"]
    assert diff.std() == pytest.approx(0.2 * X["MonthlyCharges"].std(ddof=0), rel=0.15)
    for col in robustness.NOISY:
        lo, hi, _ = schema.NUMERIC[col]
        assert out[col].between(lo, hi).all()


def test_flips_switch_to_other_valid_levels_at_the_asked_rate(test_xy):
    X, _ = test_xy
    out = robustness.perturb(X, "flip", 0.1, seed=1)
    changed = 0
    for col, levels in robustness.FLIPPABLE.items():
        moved = out[col] != X[col]
        changed += moved.sum()
        assert out[col].isin(levels).all(), col
    for col in robustness.NOISY:
        pd.testing.assert_series_equal(out[col], X[col])
    cells = len(X) * len(robustness.FLIPPABLE)
    assert changed / cells == pytest.approx(0.1, abs=0.015)


def test_missing_blanks_cells_at_the_asked_rate(test_xy):
    X, _ = test_xy
    out = robustness.perturb(X, "missing", 0.2, seed=1)
    assert out.isna().to_numpy().mean() == pytest.approx(0.2, abs=0.02)
    assert X.isna().to_numpy().sum() == 0  # the input is not modified


def test_perturbations_are_seeded_and_independent_per_level(test_xy):
    X, _ = test_xy
    a = robustness.perturb(X, "noise", 0.1, seed=5)
    pd.testing.assert_frame_equal(a, robustness.perturb(X, "noise", 0.1, seed=5))
    assert not a.equals(robustness.perturb(X, "noise", 0.1, seed=6))
    with pytest.raises(ValueError, match="unknown perturbation 'shuffle'"):
        robustness.perturb(X, "shuffle", 0.1, seed=1)


def test_imputing_model_survives_every_perturbation(fitted, test_xy):
    X, y = test_xy
    cfg = read(PARAMS, RobustnessSettings)
    result = robustness.evaluate(fitted, X, y, robustness.copies(X, cfg, 1), cfg)
    assert not any("error" in e for by_level in result["perturbations"].values() for e in by_level.values())
    noise = result["perturbations"]["noise"]["0.2"]
    assert noise["roc_auc_drop"] == pytest.approx(result["baseline"]["roc_auc"] - noise["roc_auc"])
    assert set(result["gates"]) == {
        f"{k}.{m}_drop" for k in robustness.KINDS for m in ("accuracy", "roc_auc")
    }


def test_model_that_breaks_on_nan_fails_robustness_without_crashing(nan_breaking_model, test_xy):
    X, y = test_xy
    cfg = read(PARAMS, RobustnessSettings)
    result = robustness.evaluate(nan_breaking_model, X, y, robustness.copies(X, cfg, 1), cfg)
    assert "NaN" in result["perturbations"]["missing"]["0.1"]["error"]
    assert "error" not in result["perturbations"]["noise"]["0.2"]
    gate = result["gates"]["missing.roc_auc_drop"]
    assert gate["passed"] is False and gate["value"] is None and "model failed at level 0.1" in gate["note"]
    assert result["passed"] is False


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["gates"]["noise"].update(level=0.3),
            r"robustness.gates.noise.level: must be one of robustness.levels.noise \(got 0.3\)",
        ),
        (
            lambda p: p["levels"].update(flip=[0.1, "x"]),
            r"robustness.levels.flip: must be a non-empty list of numbers greater than 0 and at most 1",
        ),
        (
            lambda p: p["gates"].update(shuffle={}),
            r"robustness.gates.shuffle: unknown key \(allowed: noise, flip, missing\)",
        ),
        (
            lambda p: p["gates"]["flip"].update(max_roc_auc_drop="0.1"),
            r"robustness.gates.flip.max_roc_auc_drop: must be a number",
        ),
    ],
)
def test_bad_params_name_key_and_rule(change, message):
    params = {"robustness": {"levels": dict(PARAMS["robustness"]["levels"]), "gates": {}}}
    params["robustness"]["gates"] = {k: dict(v) for k, v in PARAMS["robustness"]["gates"].items()}
    change(params["robustness"])
    with pytest.raises(ParamsError, match=message):
        read(params, RobustnessSettings)


def test_drop_is_zero_for_a_constant_model(test_xy):
    X, y = test_xy

    class Constant:
        def predict_proba(self, frame):
            return np.tile([0.7, 0.3], (len(frame), 1))

    cfg = read(PARAMS, RobustnessSettings)
    result = robustness.evaluate(Constant(), X, y, robustness.copies(X, cfg, 1), cfg)
    assert all(g["value"] == 0 and g["passed"] for g in result["gates"].values())


def test_stacked_scoring_equals_one_call_per_copy(fitted, test_xy):
    """The copies are scored in one predict_proba; each copy's figures equal its own call."""
    from churn import metrics

    X, y = test_xy
    cfg = read(PARAMS, RobustnessSettings)
    copies = robustness.copies(X, cfg, 1)
    result = robustness.evaluate(fitted, X, y, copies, cfg)
    for (kind, level), Xp in copies.items():
        alone = metrics.classification(y, fitted.predict_proba(Xp)[:, 1])
        entry = result["perturbations"][kind][f"{level:g}"]
        assert (entry["accuracy"], entry["roc_auc"]) == (alone["accuracy"], alone["roc_auc"])
