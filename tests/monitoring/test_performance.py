"""Live metrics, the label-free estimate (CBPE), time series and alerts, cross-checked by hand."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from churn import data, synth
from churn.monitoring import alerts, performance, timeseries
from churn.monitoring.records import Alert
from churn.monitoring.store import PredictionStore


def brute_force_auc(c: np.ndarray, s: np.ndarray) -> float:
    num = den = 0.0
    for i, j in itertools.permutations(range(len(c)), 2):
        w = c[i] * (1 - c[j])
        den += w
        num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    return num / den


def test_expected_roc_auc_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    c = rng.random(25)
    s = np.round(rng.random(25), 1)  # ties included
    assert performance.expected_roc_auc(c, s) == pytest.approx(brute_force_auc(c, s), rel=1e-12)


def test_weights_are_repeated_rows():
    p = np.array([0.1, 0.4, 0.7, 0.9])
    w = np.array([3, 1, 2, 4])
    expanded = performance.estimate(np.repeat(p, w))
    weighted = performance.estimate(p, weights=w)
    assert weighted == pytest.approx(expanded)
    # accuracy by hand: predicted churners at 0.7 and 0.9 are right with p, the others with 1 - p
    assert weighted["accuracy"] == pytest.approx((3 * 0.9 + 1 * 0.6 + 2 * 0.7 + 4 * 0.9) / 10)


def test_cbpe_recovers_accuracy_and_auc_when_probabilities_are_calibrated():
    rng = np.random.default_rng(1)
    p = rng.beta(1.2, 3, 20_000)
    y = rng.random(p.size) < p  # outcomes drawn from the probabilities: perfect calibration
    est = performance.estimate(p)
    live = performance.live_metrics(y, p)
    assert est["accuracy"] == pytest.approx(live["accuracy"], abs=0.01)
    assert est["roc_auc"] == pytest.approx(live["roc_auc"], abs=0.01)
    assert live["calibration_error"] < 0.02


def test_calibrator_fixes_overconfident_scores():
    rng = np.random.default_rng(2)
    p_true = rng.beta(1.2, 3, 6000)
    y = (rng.random(p_true.size) < p_true).astype(int)
    raw = np.clip(p_true * 1.8, 0, 1)  # the model overstates risk
    calibrator = performance.fit_calibrator(raw[:3000], y[:3000])
    naive = performance.estimate(raw[3000:])["accuracy"]
    fixed = performance.estimate(raw[3000:], calibrator)["accuracy"]
    actual = performance.live_metrics(y[3000:], raw[3000:])["accuracy"]
    assert abs(fixed - actual) < 0.02 < abs(naive - actual)
    with pytest.raises(ValueError, match="both outcomes"):
        performance.fit_calibrator(raw[:50], np.zeros(50))


def test_calibration_error_hand_computed():
    # bin 0.1-0.2: mean p 0.15, observed 0.5 → 0.35; bin 0.8-0.9: mean 0.85, observed 1 → 0.15
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.2 - 1e-9, 0.8, 0.9 - 1e-9])
    assert performance.calibration_error(y, p) == pytest.approx((2 * 0.35 + 2 * 0.15) / 4, abs=1e-8)


def test_live_metrics_over_time_by_week():
    start = datetime(2026, 3, 2)  # a Monday
    frame = pd.DataFrame(
        {
            "created_at": [start + timedelta(days=d) for d in (0, 1, 8, 9)],
            "probability": [0.9, 0.2, 0.8, 0.7],
            "churned": [1, 0, 0, 1],
        }
    )
    table = performance.live_over_time(frame, "week")
    assert table["start"].tolist() == [pd.Timestamp("2026-03-02"), pd.Timestamp("2026-03-09")]
    assert table["accuracy"].tolist() == [1.0, 0.5] and table["n"].tolist() == [2, 2]
    with pytest.raises(ValueError, match="time unit"):
        performance.live_over_time(frame, "fortnight")


def test_time_series_match_pandas(db_url):
    df, _ = data.clean(synth.generate(rows=120, seed=5))
    proba = np.linspace(0, 1, 120)
    start = datetime(2026, 3, 1, 22, tzinfo=UTC)
    results = pd.DataFrame(
        {
            "probability": proba,
            "risk_level": np.where(proba >= 0.6, "High", np.where(proba >= 0.3, "Medium", "Low")),
            "model_name": "champion",
            "created_at": [start + timedelta(minutes=3 * i) for i in range(120)],
        }
    )
    store = PredictionStore(db_url)
    store.log_frame(df, results)
    hours = pd.to_datetime(results["created_at"]).dt.tz_convert(None).dt.strftime("%Y-%m-%d %H:00")
    vol = timeseries.volume(store, "hour")
    assert vol.set_index("bucket")["n"].to_dict() == hours.value_counts().sort_index().to_dict()
    risk = timeseries.risk_breakdown(store, "day")
    assert risk["bucket"].tolist() == ["2026-03-01", "2026-03-02"]
    assert risk[["Low", "Medium", "High"]].sum().to_dict() == results["risk_level"].value_counts().to_dict()
    assert np.allclose(risk[["Low_share", "Medium_share", "High_share"]].sum(axis=1), 1)
    dist = timeseries.probability_distribution(store, "day", bins=4)
    whole = dist.groupby("bin")["n"].sum()
    assert whole.to_dict() == {0: 30, 1: 30, 2: 30, 3: 30}  # 1.0 falls in the last bin
    summary = timeseries.probability_summary(store, "day")
    assert summary["n"].sum() == 120 and summary["max"].max() == 1.0
    assert timeseries.bin_labels(4) == ["0–0.25", "0.25–0.5", "0.5–0.75", "0.75–1"]
    store.dispose()


def test_drift_alerts_name_the_feature_rule_and_window():
    report = {
        "status": "ok",
        "window": "last 500",
        "dataset": {
            "drifted": True,
            "drifted_features": ["tenure"],
            "n_drifted": 1,
            "n_features": 19,
            "share": 1 / 19,
            "threshold": 0.05,
        },
        "features": {
            "tenure": {
                "test": "ks",
                "statistic": 0.2,
                "p_value": 1e-6,
                "threshold": 0.0025,
                "drifted": True,
                "psi": 0.3,
                "psi_level": "major",
            },
            "gender": {
                "test": "chi_square",
                "statistic": 0.1,
                "p_value": 0.7,
                "threshold": 0.0025,
                "drifted": False,
            },
        },
        "prediction": {"test": "wasserstein_norm", "statistic": 0.4, "threshold": 0.1, "drifted": True},
    }
    fired = alerts.from_drift(report)
    assert [a.kind for a in fired] == ["dataset_drift", "feature_drift", "prediction_drift"]
    assert fired[1].feature == "tenure" and fired[1].value == 1e-6 and fired[1].threshold == 0.0025
    assert "ks p-value 1e-06 < 0.0025; PSI 0.300 (major)" in fired[1].message
    assert fired[2].value == 0.4 and "wasserstein_norm 0.400 > 0.100" in fired[2].message
    assert all(a.window == "last 500" for a in fired)
    assert alerts.from_drift({"status": "not_enough_data"}) == []


def test_performance_alerts_fire_below_reference_minus_max_drop():
    ref = {"accuracy": 0.80, "roc_auc": 0.85}
    fired = alerts.from_performance(
        {"accuracy": 0.74, "roc_auc": 0.84}, {"accuracy": 0.76, "roc_auc": float("nan")}, ref, 0.05
    )
    assert [(a.kind, a.feature) for a in fired] == [("estimated_performance", "accuracy")]
    assert fired[0].threshold == pytest.approx(0.75)


def test_webhook_failure_is_logged_not_raised(caplog):
    alert = Alert("dataset_drift", "x")
    assert alerts.post_webhook([alert], "http://127.0.0.1:9/nothing-listens", timeout=1) is False
    assert alerts.post_webhook([alert], "ftp://example.invalid") is False
    assert alerts.post_webhook([], "http://127.0.0.1:9/") is False
    assert "webhook" in caplog.text
