"""Alert delivery: a body Slack and Teams accept, the cooldown derived from stored alerts, broken
webhooks (one warning line, URL cut to its host, alerts still stored) — against a local receiver."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pytest

from churn.cli import main
from churn.monitoring import alerts
from churn.monitoring.records import Alert
from churn.monitoring.store import PredictionStore
from tests.fixtures.servers import free_port

HOUR = timedelta(hours=1)
T0 = datetime(2026, 12, 1, 10, 0)  # a period start for a 60-minute cooldown


def _fired(**extra) -> list[Alert]:
    return [
        Alert("dataset_drift", "2 of 19 features drifted", value=0.1, threshold=0.05, **extra),
        Alert("feature_drift", "tenure drifted", feature="tenure", **extra),
    ]


def test_the_body_has_a_text_line_per_alert_and_keeps_the_records():
    fired = _fired()
    body = alerts.webhook_body(fired, "https://hooks.slack.com/services/T0/B0/secret")
    assert body["text"].splitlines() == [
        "*Churn monitor: 2 alert(s)*",
        "• dataset_drift: 2 of 19 features drifted",
        "• feature_drift [tenure]: tenure drifted",
    ]
    assert body["source"] == "churn-monitor" and [a["kind"] for a in body["alerts"]] == [
        "dataset_drift",
        "feature_drift",
    ]
    assert "attachments" not in body  # Slack reads `attachments` itself


def test_a_teams_workflow_url_also_gets_an_adaptive_card():
    url = (
        "https://prod-01.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=SECRET"
    )
    body = alerts.webhook_body(_fired(), url)
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert [b["text"] for b in card["body"]] == body["text"].splitlines()
    assert alerts.shown_url(url) == "https://prod-01.westeurope.logic.azure.com:443/…"


def test_due_holds_back_the_kinds_and_features_posted_within_the_cooldown():
    tenure = Alert("feature_drift", "x", feature="tenure")
    other = Alert("feature_drift", "x", feature="Contract")
    dataset = Alert("dataset_drift", "x")
    assert alerts.due([tenure, other, dataset], set()) == [tenure, other, dataset]
    assert alerts.due([tenure, other, dataset], {("feature_drift", "tenure"), ("dataset_drift", "")}) == [
        other
    ]


@pytest.fixture()
def drifting(monitor_root):
    """`monitor_root` with 300 logged predictions of shifted customers: every check fires alerts."""
    simulate = ["simulate", "--n", "300", "--scenario", "contract_mix", "--onset", "0", "--seed", "5"]
    code = main(["monitor", *simulate, "--params", str(monitor_root / "params.yaml")])
    assert code == 0
    return monitor_root


def _check(root, *args: str) -> int:
    return main(["monitor", "check", "--last", "300", *args, "--params", str(root / "params.yaml")])


def test_check_posts_then_holds_back_within_the_cooldown_then_posts_again(drifting, webhook, capsys):
    url, bodies, _ = webhook
    store = PredictionStore()
    assert _check(drifting, "--webhook", url) == 3
    out = capsys.readouterr().out.strip().splitlines()
    stored = store.read_alerts(limit=None)
    assert len(bodies) == 1 and len(stored) == len(out) >= 2
    body = bodies[0]
    assert body["text"].splitlines()[1:] == [f"• {line.removeprefix('ALERT ')}" for line in out]
    assert sorted(a["id"] for a in body["alerts"]) == sorted(a.id for a in stored)

    # a second check right away: the alerts are stored and printed again, but not posted
    assert _check(drifting, "--webhook", url) == 3
    assert len(capsys.readouterr().out.strip().splitlines()) == len(out)
    assert len(store.read_alerts(limit=None)) == 2 * len(out) and len(bodies) == 1

    # `--cooldown 0` posts every check
    assert _check(drifting, "--webhook", url, "--cooldown", "0") == 3
    assert len(bodies) == 2 and len(bodies[1]["alerts"]) == len(out)
    store.dispose()


def test_a_lasting_alert_is_posted_once_per_cooldown_and_a_failed_post_is_retried(drifting, webhook):
    from churn.monitoring.monitor import Monitor
    from churn.params import load_params
    from churn.serving import Predictor
    from churn.settings import MonitoringSettings

    url, bodies, status = webhook
    settings = MonitoringSettings.from_params(load_params(drifting / "params.yaml")["monitoring"])
    assert settings.alerts.cooldown_minutes == 60
    store = PredictionStore()
    predictor = Predictor.load("champion", root=drifting, log=False)
    monitor = Monitor(settings, store, root=drifting, predictor=predictor)
    window = monitor.window(last=300)

    def check(minutes: int) -> list[Alert]:
        return monitor.check(window, url, now=T0 + timedelta(minutes=minutes))[1]

    status[0] = 500  # the channel is down: stored, not marked as posted
    first = check(0)
    assert first and len(bodies) == 1 and all(a.posted_at is None for a in store.read_alerts(limit=None))
    status[0] = 200
    assert len(check(5)) == len(first) and len(bodies) == 2  # retried at the next check
    assert len(check(30)) == len(first) and len(bodies) == 2  # within the cooldown of that post
    assert len(check(64)) == len(first) and len(bodies) == 2  # 59 minutes after it: still held back
    later = check(65)  # a full cooldown after the post
    assert len(bodies) == 3 and len(bodies[2]["alerts"]) == len(later)
    posted = sorted({a.posted_at for a in store.read_alerts(limit=None) if a.posted_at})
    assert posted == [T0 + timedelta(minutes=5), T0 + timedelta(minutes=65)]
    assert {a.created_at for a in store.read_alerts(limit=None)} == {
        T0 + timedelta(minutes=m) for m in (0, 5, 30, 64, 65)
    }
    store.dispose()


@pytest.mark.parametrize("receiver", ["answers 500", "not listening"])
def test_a_broken_webhook_stores_the_alerts_and_warns_once_without_the_url(
    drifting, webhook, receiver, capsys, caplog
):
    url, bodies, status = webhook
    if receiver == "answers 500":
        status[0] = 500
        secret_url = url + "/T000/B000/XXXXSECRET?token=abc"
    else:
        secret_url = f"http://127.0.0.1:{free_port()}/services/T000/B000/XXXXSECRET"
    with caplog.at_level(logging.WARNING):
        assert _check(drifting, "--webhook", secret_url) == 3
    out = capsys.readouterr()
    n = len(out.out.strip().splitlines())
    assert n >= 2 and len(PredictionStore().read_alerts(limit=None)) == n
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("alert webhook http://127.0.0.1:")
    assert ("HTTP 500" in warnings[0]) == (receiver == "answers 500")
    assert f"{n} alert(s) stored, not sent" in warnings[0]
    assert "SECRET" not in caplog.text + out.out + out.err and "token" not in caplog.text
    assert len(bodies) == (1 if receiver == "answers 500" else 0)
