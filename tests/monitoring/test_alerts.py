"""alerts: drift and performance reports turned into alerts, one-line form, webhook delivery to a
real local HTTP server."""

from __future__ import annotations

from churn.monitoring import alerts
from churn.monitoring.records import Alert


def _ok_report(**parts) -> dict:
    report = {
        "status": "ok",
        "window": "last 200",
        "dataset": {
            "drifted": False,
            "drifted_features": [],
            "n_drifted": 0,
            "n_features": 19,
            "share": 0.0,
            "threshold": 0.5,
        },
        "features": {},
    }
    report.update(parts)
    return report


def test_a_report_without_drift_fires_nothing():
    quiet = {
        "tenure": {"test": "ks", "statistic": 0.01, "p_value": 0.9, "threshold": 0.001, "drifted": False}
    }
    assert alerts.from_drift(_ok_report(features=quiet, prediction={"drifted": False})) == []


def test_a_distance_rule_is_worded_as_a_distance_and_kept_as_value():
    features = {
        "MonthlyCharges": {"test": "wasserstein_norm", "statistic": 0.25, "threshold": 0.1, "drifted": True}
    }
    (alert,) = alerts.from_drift(_ok_report(features=features))
    assert (alert.kind, alert.feature, alert.value, alert.threshold) == (
        "feature_drift",
        "MonthlyCharges",
        0.25,
        0.1,
    )
    assert alert.message == "MonthlyCharges drifted: wasserstein_norm 0.250 > 0.100"
    assert alert.window == "last 200"


def test_live_performance_alerts_and_missing_figures():
    reference = {"accuracy": 0.8, "roc_auc": 0.85}
    fired = alerts.from_performance(None, {"accuracy": 0.79, "roc_auc": 0.70}, reference, 0.05, "last 500")
    assert [(a.kind, a.feature, a.window) for a in fired] == [("live_performance", "roc_auc", "last 500")]
    assert fired[0].message == "live roc_auc 0.700 is below 0.800 (reference 0.850 − 0.05)"
    assert (
        alerts.from_performance({"accuracy": 0.1}, None, {"roc_auc": 0.9}, 0.05) == []
    )  # no reference accuracy


def test_line_names_kind_and_feature_when_there_is_one():
    assert alerts.line(Alert("dataset_drift", "3 of 19")) == "ALERT dataset_drift: 3 of 19"
    assert (
        alerts.line(Alert("feature_drift", "moved", feature="tenure"))
        == "ALERT feature_drift [tenure]: moved"
    )


def test_the_webhook_receives_every_alert_as_json(webhook, monkeypatch):
    url, bodies, _ = webhook
    monkeypatch.setenv(alerts.WEBHOOK_ENV, url)  # the default URL
    fired = [Alert("feature_drift", "tenure drifted", feature="tenure", value=0.3, threshold=0.1, id=7)]
    assert alerts.post_webhook(fired) is True
    assert bodies == [
        {
            "type": "application/json",
            "text": "*Churn monitor: 1 alert(s)*\n• feature_drift [tenure]: tenure drifted",
            "source": "churn-monitor",
            "alerts": [
                {
                    "id": 7, "created_at": None, "kind": "feature_drift", "feature": "tenure", "value": 0.3,
                    "threshold": 0.1, "message": "tenure drifted", "window": "",
                }
            ],
        }
    ]  # fmt: skip


def test_a_webhook_answering_an_error_status_is_not_delivered(webhook, monkeypatch):
    url, bodies, status = webhook
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    assert alerts.post_webhook([Alert("x", "y")]) is False  # no URL anywhere: nothing sent
    status[0] = 500
    assert alerts.post_webhook([Alert("x", "y")], url) is False
    assert len(bodies) == 1
