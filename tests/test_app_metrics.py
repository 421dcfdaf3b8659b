"""The app's Prometheus metrics, scraped over HTTP from the app started for real: the counters move
by exactly what was done through the API, per endpoint, and the drift gauges follow a check."""

from __future__ import annotations

import math
import urllib.request

import pandas as pd
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError
from prometheus_client.parser import text_string_to_metric_families

from app import serve
from app.predict import DEFAULT, HIGH_RISK, LOW_RISK
from churn import schema, serving
from churn.monitoring.store import PredictionStore

ADMIN = ("admin", "admin-pw")


@pytest.fixture(scope="module")
def project(private_project):
    with private_project("app_metrics") as root:
        yield root


@pytest.fixture(scope="module")
def served(project):
    demo, url = serve(project, admin=ADMIN, metrics_port=0)
    yield demo, url
    demo.ops_metrics.close()
    demo.close()


@pytest.fixture(scope="module")
def client(served, project):
    return Client(
        served[1],
        auth=ADMIN,
        verbose=False,
        download_files=str(project / "downloads"),
        analytics_enabled=False,
    )


def scrape(served) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape of the metrics endpoint."""
    with urllib.request.urlopen(served[0].ops_metrics.url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def moved(before: dict, after: dict) -> dict:
    """Samples whose value changed: counters, and histograms but their sums (gauges left out)."""
    gauges = ("churn_app_drift_share", "churn_app_active_alerts", "churn_app_monitoring_check")
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if after[key] != before.get(key, 0.0)
        and not key[0].startswith(gauges)
        and not key[0].endswith(("_created", "_sum"))
    }


def test_metrics_are_served_on_their_own_loopback_port_without_a_login(served):
    url = served[0].ops_metrics.url
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    assert url.rsplit(":", 1)[1] != served[1].rstrip("/").rsplit(":", 1)[1]
    samples = scrape(served)
    assert math.isnan(samples[("churn_app_drift_share", ())])  # no check has run yet
    levels = {dict(k[1])["risk_level"] for k in samples if k[0] == "churn_app_predictions_total"}
    assert levels == set(schema.RISK_LEVELS)


def test_counters_move_by_exactly_what_was_done(served, client, project, tmp_path):
    before = scrape(served)
    result = client.predict(**HIGH_RISK, api_name="/predict")  # contacted: an email, not a note
    with pytest.raises(ValidationError):
        client.predict(**{**DEFAULT, "tenure": -3}, api_name="/predict")
    raw = pd.read_csv(project / "data/raw/synthetic.csv", dtype=str, keep_default_na=False).head(20)
    raw.loc[4, "Contract"] = "Weekly"
    path = tmp_path / "customers.csv"
    raw.to_csv(path, index=False)
    scored_path = client.predict(handle_file(str(path)), False, api_name="/batch")[0]
    scored = pd.read_csv(scored_path)
    after = scrape(served)

    levels = scored[serving.RISK].value_counts().to_dict()
    levels[result[1]] = levels.get(result[1], 0) + 1
    predict, batch = (("endpoint", "predict"),), (("endpoint", "batch"),)
    expected = {
        ("churn_app_requests_total", predict): 2,
        ("churn_app_requests_total", batch): 1,
        ("churn_app_errors_total", (("endpoint", "predict"), ("kind", "validation"))): 1,
        ("churn_app_request_seconds_count", predict): 2,
        ("churn_app_request_seconds_count", batch): 1,
        ("churn_app_emails_total", (("source", "template"),)): 1,  # no GROQ_API_KEY in this project
        ("churn_app_llm_fallbacks_total", (("reason", "no_api_key"),)): 1,
        **{("churn_app_predictions_total", (("risk_level", k),)): n for k, n in levels.items()},
    }
    changed = moved(before, after)
    buckets = {k: v for k, v in changed.items() if k[0] == "churn_app_request_seconds_bucket"}
    assert {k: v for k, v in changed.items() if k not in buckets} == expected
    # per-endpoint histogram: every bucket of each endpoint moved by at most its calls, +Inf by all
    for endpoint, calls in (("predict", 2), ("batch", 1)):
        mine = {dict(k[1])["le"]: v for k, v in buckets.items() if dict(k[1])["endpoint"] == endpoint}
        assert mine["+Inf"] == calls and all(0 < v <= calls for v in mine.values())
    assert sum(levels.values()) == 20  # 19 scored rows + 1 prediction


def test_drift_gauges_follow_a_monitoring_check(served, client, project):
    from churn.monitoring import simulate

    store = PredictionStore()
    customers = simulate.traffic(400, simulate.Scenario.get("contract_mix"), days=3, onset=0, seed=7)
    simulate.replay(serving.Predictor.load(root=project, store=store), customers)
    client.predict("Everything logged", "day", api_name="/check_alerts")
    samples = scrape(served)
    stored = store.read_alerts(limit=None)
    share = next(a.value for a in stored if a.kind == "dataset_drift")
    assert samples[("churn_app_active_alerts", ())] == len(stored) > 1
    assert samples[("churn_app_drift_share", ())] == pytest.approx(share)
    assert samples[("churn_app_monitoring_check_timestamp_seconds", ())] > 0
    assert samples[("churn_app_requests_total", (("endpoint", "check_alerts"),))] == 1
    store.dispose()


def test_a_taken_metrics_port_stops_the_start_with_one_line(tmp_path, caplog):
    import socket

    from app import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["--root", str(tmp_path), "--port", "0", "--metrics-port", str(port)])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [
        f"cannot serve the metrics on 127.0.0.1:{port} (Address already in use): "
        "pick another --metrics-port, or 0 for none"
    ]


def test_an_internal_note_is_not_counted_as_an_email(served, client):
    before = scrape(served)
    assert client.predict(**LOW_RISK, api_name="/predict")[5].startswith("Internal note")
    changed = moved(before, scrape(served))
    assert not [k for k in changed if k[0] in ("churn_app_emails_total", "churn_app_llm_fallbacks_total")]
