"""monitor.Monitor: the default window, missing inputs named, drift of a window and a batch,
`evaluate` firing without storing, `check` storing — on a small project and a real SQLite log."""

from __future__ import annotations

import pandas as pd
import pytest

from churn import data, schema
from churn.monitoring.monitor import Monitor
from churn.monitoring.queries import Window
from churn.params import load_params
from churn.serving import Predictor
from churn.settings import MonitoringSettings

from .logged import frame


@pytest.fixture()
def monitor(monitor_root, fitted, store) -> Monitor:
    settings = MonitoringSettings.from_params(load_params(monitor_root / "params.yaml").get("monitoring"))
    predictor = Predictor(fitted, model_name="champion", log=False)
    return Monitor(settings, store, root=monitor_root, predictor=predictor)


def _log_test_split(monitor: Monitor, prepared, n: int) -> None:
    """Log `n` held-out customers with the model's own probabilities (no drift by construction)."""
    customers = prepared[1].head(n).reset_index(drop=True)
    features = data.coerce_features(customers[list(schema.FEATURES)])
    proba = monitor.score(customers)
    results = frame(n)[1].assign(probability=proba, customer_id=customers[schema.ID].to_numpy())
    monitor.store.log_frame(features, results)


def test_no_bounds_means_the_configured_last_n(monitor):
    assert monitor.window() == Window(last=monitor.settings.window)
    assert monitor.window(start=pd.Timestamp("2026-01-01")).last is None
    assert monitor.window(last=10, model_name="x") == Window(last=10, model_name="x")


def test_missing_model_and_files_are_named(monitor_root, store):
    settings = MonitoringSettings.from_params({"reference": "data/none.parquet"})
    bare = Monitor(settings, store, root=monitor_root)
    with pytest.raises(ValueError, match="handed no model"):
        bare.predictor  # noqa: B018
    with pytest.raises(
        FileNotFoundError, match=r"none.parquet: reference \(monitoring.reference\) not found"
    ):
        bare.reference(with_prediction=False)
    loaded = Monitor(settings, store, root=monitor_root, load_predictor=lambda: "the model")
    assert loaded.predictor == "the model"


def test_a_holdout_without_labels_is_refused(monitor, monitor_root, prepared):
    prepared[1].drop(columns=[schema.TARGET]).to_parquet(monitor_root / "data/prepared/test.parquet")
    with pytest.raises(schema.SchemaError, match="must be present and 0/1"):
        monitor.holdout()


def test_an_empty_window_is_an_error_everywhere(monitor):
    for check in (monitor.drift_window, monitor.performance, monitor.evaluate):
        with pytest.raises(ValueError, match=r"the window is empty \(last 5\)"):
            check(Window(last=5))


def test_evaluate_fires_without_storing_and_check_stores(monitor, prepared, monkeypatch):
    monkeypatch.delenv("CHURN_ALERT_WEBHOOK", raising=False)
    _log_test_split(monitor, prepared, 300)
    features, results = frame(300, seed=8, probability=0.99, risk_level="High")
    features["tenure"], features["Contract"] = 1, "Month-to-month"  # a shifted population
    monitor.store.log_frame(features, results)
    report, fired = monitor.evaluate(Window(last=300))
    assert report["status"] == "ok" and report["window"] == "last 300"
    assert set(report["performance"]) == {"estimated", "live", "reference"}
    kinds = {a.kind for a in fired}
    assert {"dataset_drift", "feature_drift", "prediction_drift"} <= kinds
    assert monitor.store.read_alerts() == []  # evaluate stores nothing
    _, stored = monitor.check(Window(last=300))
    assert [a.kind for a in stored] == [a.kind for a in fired] and all(a.id for a in stored)
    assert len(monitor.store.read_alerts(limit=None)) == len(fired)


def test_the_model_on_its_own_holdout_shows_no_drift(monitor, prepared):
    _log_test_split(monitor, prepared, 300)
    report = monitor.drift_window(Window(last=300))
    assert report["status"] == "ok" and report["dataset"]["drifted"] is False
    batch = monitor.drift_batch(
        prepared[1].drop(columns=[schema.TARGET]).head(300).astype(str), source="b.csv"
    )
    assert batch["window"] == "b.csv" and batch["dataset"]["drifted"] is False
    perf = monitor.performance(Window(last=300), unit="day")
    assert perf["n_predictions"] == 300 and perf["n_labelled"] == 0 and perf["live"] is None
    assert perf["estimated"]["accuracy"] == pytest.approx(perf["reference"]["accuracy"], abs=0.1)
