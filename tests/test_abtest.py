"""A/B test statistics against statsmodels, scikit-learn and textbook values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import mcnemar

from churn import abtest, economics, metrics
from churn.params import ParamsError, read
from churn.settings import AbTestSettings, EconomicsSettings

POLICY = AbTestSettings(alpha=0.05, min_accuracy_gain=0.005, min_roc_auc_gain=0.005, bootstrap=1000)


def test_mcnemar_textbook_chi_square_by_hand():
    # Agresti, Categorical Data Analysis: presidential approval in two surveys of the same 1,600 people.
    table = np.array([[794, 150], [86, 570]])
    result = abtest.mcnemar_test(table)
    # uncorrected z² = (86 − 150)² / (86 + 150) = 4096 / 236 = 17.36 (the textbook's figure);
    # with Edwards' continuity correction (|b − c| − 1)² / (b + c) = 63² / 236
    assert mcnemar(table, exact=False, correction=False).statistic == pytest.approx(4096 / 236)
    assert not result["exact"] and result["discordant"] == 236
    assert result["statistic"] == pytest.approx(3969 / 236)
    # chi-square with 1 df: P(X > x) = erfc(sqrt(x / 2))
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(3969 / 236 / 2)))
    assert "chi-square" in result["method"]


def test_mcnemar_exact_binomial_by_hand():
    # 10 discordant pairs, 2 against 8: two-sided binomial p = 2 · P(X ≤ 2 | n=10, ½) = 2 · 56 / 1024
    result = abtest.mcnemar_test(np.array([[40, 2], [8, 30]]))
    assert result["exact"] and result["discordant"] == 10
    assert result["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 1024)
    assert result["statistic"] == 2
    assert "exact binomial" in result["method"]


@pytest.mark.parametrize("seed", range(6))
def test_mcnemar_equals_statsmodels(seed):
    rng = np.random.default_rng(seed)
    table = rng.integers(0, 40, size=(2, 2))
    result = abtest.mcnemar_test(table)
    exact = table[0, 1] + table[1, 0] < 25
    reference = mcnemar(table, exact=exact, correction=True)
    assert result["exact"] == exact
    assert result["p_value"] == pytest.approx(reference.pvalue)
    assert result["statistic"] == pytest.approx(reference.statistic)


def test_contingency_by_hand():
    y = np.array([1, 1, 0, 0, 1, 0])
    champion = np.array([1, 0, 0, 1, 1, 0])  # correct: T F T F T T
    challenger = np.array([1, 1, 1, 1, 0, 0])  # correct: T T F F F T
    table = abtest.contingency(y, champion, challenger)
    assert table.tolist() == [[2, 2], [1, 1]]


def test_vectorised_bootstrap_metrics_equal_sklearn_on_each_resample():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    proba = np.round(rng.random(400), 1)  # many ties
    weights = abtest.resample_counts(400, 8, seed=11)
    assert (weights.sum(1) == 400).all()
    idx = np.random.default_rng(11).integers(0, 400, size=(8, 400))  # the same draws
    fast = abtest.weighted_scores(weights, y, proba, 0.5)
    for b in range(8):
        ref = metrics.classification(y[idx[b]], proba[idx[b]], 0.5)
        assert fast["roc_auc"][b] == pytest.approx(roc_auc_score(y[idx[b]], proba[idx[b]]), abs=1e-12)
        for m in ("accuracy", "precision", "recall", "f1"):
            assert fast[m][b] == pytest.approx(ref[m], abs=1e-12)


def test_paired_bootstrap_intervals():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1000)
    good = np.clip(y * 0.3 + rng.random(1000) * 0.7, 0, 1)
    weak = np.clip(y * 0.1 + rng.random(1000) * 0.9, 0, 1)
    boot = abtest.paired_bootstrap(
        y, {"champion": weak, "challenger": good}, threshold=0.5, n_boot=500, seed=1, confidence=0.95
    )
    for name, p in (("champion", weak), ("challenger", good)):
        ci = boot[name]["roc_auc"]
        assert ci["estimate"] == pytest.approx(roc_auc_score(y, p))
        assert ci["low"] < ci["estimate"] < ci["high"]
    diff = boot["difference"]["roc_auc"]
    assert diff["estimate"] == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, weak))
    assert diff["low"] > 0  # clearly better
    again = abtest.paired_bootstrap(
        y, {"champion": weak, "challenger": good}, threshold=0.5, n_boot=500, seed=1, confidence=0.95
    )
    assert again == boot  # seeded


def test_empc_bootstrap_uses_the_roc_auc_resamples():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 300)
    good = np.clip(y * 0.5 + rng.random(300) * 0.5, 0, 1)
    weak = np.clip(y * 0.05 + rng.random(300) * 0.95, 0, 1)
    clv = rng.uniform(100, 2000, 300)
    weights = abtest.resample_counts(300, 5, seed=2)
    idx = np.random.default_rng(2).integers(0, 300, size=(5, 300))  # the same draws
    fast = abtest.resampled_empc(weights, y, good, clv, MONEY)
    for b in range(5):
        assert fast[b] == pytest.approx(
            economics.empc(y[idx[b]], good[idx[b]], clv[idx[b]], MONEY), rel=1e-12
        )
    boot = abtest.paired_bootstrap(
        y,
        {"champion": weak, "challenger": good},
        threshold=0.5,
        n_boot=200,
        seed=2,
        confidence=0.95,
        money=MONEY,
        clv=clv,
    )
    diff = boot["difference"]["empc"]
    expected = economics.empc(y, good, clv, MONEY) - economics.empc(y, weak, clv, MONEY)
    assert diff["estimate"] == pytest.approx(expected)
    assert diff["low"] > 0  # a far better ranking earns more
    plain = abtest.paired_bootstrap(
        y, {"champion": weak, "challenger": good}, threshold=0.5, n_boot=200, seed=2, confidence=0.95
    )
    assert "empc" not in plain["difference"]
    assert plain["difference"]["roc_auc"] == boot["difference"]["roc_auc"]  # same resamples


MONEY = EconomicsSettings(clv=500, offer_cost=25, contact_cost=2, alpha=6, beta=14)


def _result(
    p_value: float,
    acc: float,
    auc: tuple[float, float, float],
    empc: tuple[float, float, float] | None = None,
) -> dict:
    difference = {
        "accuracy": {"estimate": acc, "low": acc - 0.01, "high": acc + 0.01},
        "roc_auc": dict(zip(("estimate", "low", "high"), auc, strict=True)),
    }
    if empc is not None:
        difference["empc"] = dict(zip(("estimate", "low", "high"), empc, strict=True))
    return {"mcnemar": {"p_value": p_value}, "bootstrap": {"confidence": 0.95, "difference": difference}}


@pytest.mark.parametrize(
    ("result", "failed", "expected", "phrase"),
    [
        (_result(0.001, 0.03, (0.02, 0.01, 0.03)), [], "promote", "significantly more accurate"),
        (_result(0.4, 0.004, (0.02, 0.01, 0.03)), [], "promote", "ranks churners significantly better"),
        (
            _result(0.001, 0.03, (0.02, 0.01, 0.03)),
            ["fairness.gender.accuracy_gap"],
            "keep_champion",
            "fails 1",
        ),
        (_result(0.001, -0.03, (0.0, -0.01, 0.01)), [], "keep_champion", "champion is significantly more"),
        (_result(0.4, 0.004, (0.0, -0.01, 0.01)), [], "inconclusive", "no significant accuracy difference"),
        (_result(0.01, 0.002, (0.001, -0.01, 0.01)), [], "inconclusive", "below the minimum"),
        # profit: a veto when significantly lower, a win when significantly higher
        (
            _result(0.4, 0.004, (0.02, 0.01, 0.03), (-3.0, -5.0, -1.0)),
            [],
            "keep_champion",
            "the champion earns significantly more: EMPC -3.00 per customer (95% CI -5.00 to -1.00)",
        ),
        (
            _result(0.4, 0.004, (0.0, -0.01, 0.01), (2.0, 0.5, 3.5)),
            [],
            "promote",
            "the challenger earns significantly more: EMPC +2.00",
        ),
        (
            _result(0.4, 0.004, (0.02, 0.01, 0.03), (0.5, -1.0, 2.0)),
            [],
            "promote",
            "ranks churners significantly better",
        ),
        (
            _result(0.4, 0.004, (0.0, -0.01, 0.01), (0.5, -1.0, 2.0)),
            [],
            "inconclusive",
            "the profit difference is not significant",
        ),
    ],
)
def test_recommendation_policy(result, failed, expected, phrase):
    decision, reasons = abtest.recommend(result, failed, POLICY)
    assert decision == expected
    assert any(phrase in r for r in reasons), reasons


def test_unknown_gates_are_never_called_passed():
    win = _result(0.001, 0.03, (0.02, 0.01, 0.03))
    decision, reasons = abtest.recommend(win, None, POLICY)
    assert decision == "promote" and "the challenger passes every gate" not in reasons
    assert any("gates were not checked" in r for r in reasons), reasons
    assert "the challenger passes every gate" in abtest.recommend(win, [], POLICY)[1]


@pytest.mark.parametrize(
    ("failed", "ab_gate", "expected"),
    [
        (None, "pass", (None, [])),
        ([], "pass", (True, [])),
        ([], "fail", (False, ["ab_test.roc_auc_not_worse"])),
        (["fairness.gender.accuracy_gap"], "pass", (False, ["fairness.gender.accuracy_gap"])),
    ],
)
def test_gates_verdict_names_gates_as_the_validation_report_does(failed, ab_gate, expected):
    result = {"challenger_failed_gates": failed, "gates": {"roc_auc_not_worse": {"status": ab_gate}}}
    assert abtest.gates_verdict(result) == expected


def test_compare_identical_models_is_inconclusive():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)
    result = abtest.compare(y, p, p, threshold=0.5, pol=POLICY, seed=0, failed_gates=[])
    assert result["mcnemar"]["discordant"] == 0 and result["mcnemar"]["p_value"] == 1.0
    assert result["recommendation"] == "inconclusive"
    assert all(g["passed"] for g in result["gates"].values())


def test_compare_clearly_better_challenger_is_promoted():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 1500)
    champion = np.clip(0.5 + (y - 0.5) * 0.2 + rng.normal(0, 0.3, 1500), 0, 1)
    challenger = np.clip(0.5 + (y - 0.5) * 0.8 + rng.normal(0, 0.3, 1500), 0, 1)
    result = abtest.compare(y, champion, challenger, threshold=0.5, pol=POLICY, seed=0, failed_gates=[])
    assert result["recommendation"] == "promote"
    table = result["contingency"]
    assert table["champion_wrong"]["challenger_correct"] > table["champion_correct"]["challenger_wrong"]
    worse = abtest.compare(y, challenger, champion, threshold=0.5, pol=POLICY, seed=0, failed_gates=[])
    assert worse["recommendation"] == "keep_champion"
    assert worse["gates"]["accuracy_not_worse"]["passed"] is False


def test_policy_rejects_wrong_types():
    params = {"ab_test": {"alpha": "0.05", "min_accuracy_gain": 0, "min_roc_auc_gain": 0, "bootstrap": 1000}}
    with pytest.raises(
        ParamsError, match=r"^params.yaml: ab_test.alpha: must be a number .* \(got '0.05'\)$"
    ):
        read(params, AbTestSettings)
    params["ab_test"].update(alpha=0.05, bootstrap=10.5)
    with pytest.raises(
        ParamsError, match=r"ab_test.bootstrap: must be a whole number at least 100 \(got 10.5\)"
    ):
        read(params, AbTestSettings)
