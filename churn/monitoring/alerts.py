"""Alerts from drift and performance reports, their cooldown, and their delivery to an optional webhook."""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence

from churn.monitoring.distributions import PREDICTION
from churn.monitoring.records import Alert

log = logging.getLogger(__name__)

#: Env variable holding the webhook URL that receives fired alerts as JSON (optional).
WEBHOOK_ENV = "CHURN_ALERT_WEBHOOK"
WEBHOOK_TIMEOUT_S = 5.0
#: Webhook hosts of Microsoft Teams Workflows (Power Automate), which render Adaptive Cards only.
TEAMS_WORKFLOW_HOSTS = (".logic.azure.com", ".powerplatform.com", ".powerautomate.com")


def _number(result: dict) -> tuple[float | None, float | None]:
    """(value, threshold) of a column result, as the alert stores them: p-value or distance."""
    value = result.get("p_value", result.get("statistic"))
    return value, result.get("threshold")


def _rule(result: dict) -> str:
    test = result.get("test")
    if result.get("p_value") is not None:
        return f"{test} p-value {result['p_value']:.2g} < {result['threshold']:.2g}"
    return f"{test} {result['statistic']:.3f} > {result['threshold']:.3f}"


def from_drift(report: dict) -> list[Alert]:
    """Alerts of a drift report: dataset drift, each drifted feature, prediction drift.

    A report with status "not_enough_data" yields no alert: a tiny window proves nothing.
    """
    if report.get("status") != "ok":
        return []
    window = report.get("window", "")
    out = []
    dataset = report["dataset"]
    if dataset["drifted"]:
        names = ", ".join(dataset["drifted_features"])
        out.append(
            Alert(
                kind="dataset_drift",
                message=f"{dataset['n_drifted']} of {dataset['n_features']} features drifted ({names}); "
                f"share {dataset['share']:.2f} ≥ {dataset['threshold']:.2f}",
                value=dataset["share"],
                threshold=dataset["threshold"],
                window=window,
            )
        )
    for name, result in report["features"].items():
        if result.get("drifted"):
            value, threshold = _number(result)
            psi = (
                f"; PSI {result['psi']:.3f} ({result['psi_level']})" if result.get("psi") is not None else ""
            )
            out.append(
                Alert(
                    kind="feature_drift",
                    feature=name,
                    message=f"{name} drifted: {_rule(result)}{psi}",
                    value=value,
                    threshold=threshold,
                    window=window,
                )
            )
    prediction = report.get("prediction")
    if prediction and prediction.get("drifted"):
        value, threshold = _number(prediction)
        out.append(
            Alert(
                kind="prediction_drift",
                feature=PREDICTION,
                message=f"churn probability distribution drifted: {_rule(prediction)}",
                value=value,
                threshold=threshold,
                window=window,
            )
        )
    return out


def from_performance(
    estimate: dict | None, live: dict | None, reference: dict, max_drop: float, window: str = ""
) -> list[Alert]:
    """Alerts when estimated (label-free) or live accuracy / ROC-AUC fall `max_drop` below the reference."""
    out = []
    for kind, figures in (("estimated_performance", estimate), ("live_performance", live)):
        if not figures:
            continue
        for metric in ("accuracy", "roc_auc"):
            value, base = figures.get(metric), reference.get(metric)
            if value is None or base is None or value != value:  # NaN: one class only
                continue
            floor = base - max_drop
            if value < floor:
                what = "estimated" if kind.startswith("estimated") else "live"
                out.append(
                    Alert(
                        kind=kind,
                        feature=metric,
                        message=f"{what} {metric} {value:.3f} is below {floor:.3f} "
                        f"(reference {base:.3f} − {max_drop:.2f})",
                        value=value,
                        threshold=floor,
                        window=window,
                    )
                )
    return out


def line(alert: Alert) -> str:
    """One line per alert, for `churn monitor check`."""
    return f"ALERT {alert.kind}{f' [{alert.feature}]' if alert.feature else ''}: {alert.message}"


def key(alert: Alert) -> tuple[str, str]:
    """What the cooldown compares: the alert's kind and feature (`""` when it has none)."""
    return alert.kind, alert.feature or ""


def due(fired: Sequence[Alert], posted: set[tuple[str, str]]) -> list[Alert]:
    """The alerts of `fired` to post: those whose kind and feature are not in `posted` (the keys
    posted within the cooldown, `Queries.posted_since`)."""
    return [a for a in fired if key(a) not in posted]


def summary(alerts: Sequence[Alert]) -> str:
    """The alerts as Markdown-ish text: a heading line, then one line per alert."""
    lines = [f"*Churn monitor: {len(alerts)} alert(s)*"]
    lines += [f"• {line(a).removeprefix('ALERT ')}" for a in alerts]
    return "\n".join(lines)


def webhook_body(alerts: Sequence[Alert], url: str = "") -> dict:
    """What the webhook receives: `text` (Slack, Teams connectors, Mattermost), the alerts as
    records, and for a Teams Workflows URL an Adaptive Card in `attachments` (Workflows render
    cards only); Slack's own webhooks get no `attachments` (Slack reads that key itself)."""
    body: dict = {"text": summary(alerts), "source": "churn-monitor", "alerts": [a.as_dict() for a in alerts]}
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host.endswith(TEAMS_WORKFLOW_HOSTS):
        card = {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": [{"type": "TextBlock", "text": text, "wrap": True} for text in body["text"].split("\n")],
        }
        body["attachments"] = [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]
    return body


def shown_url(url: str) -> str:
    """A webhook URL for messages: scheme and host only (Slack and Teams URLs carry their secret
    in the path or the query)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


def post_webhook(alerts: Sequence[Alert], url: str | None = None, timeout: float = WEBHOOK_TIMEOUT_S) -> bool:
    """POST the alerts as JSON to `url` (default: env CHURN_ALERT_WEBHOOK); True when delivered.

    Body: `webhook_body`. Delivery problems are logged as one warning line (the URL cut to its
    host), never raised: a broken webhook must not hide the alerts themselves.
    """
    url = url or os.environ.get(WEBHOOK_ENV)
    if not url or not alerts:
        return False
    if not url.startswith(("http://", "https://")):
        log.warning("%s must be an http(s) URL; alerts not sent", WEBHOOK_ENV)
        return False
    body = json.dumps(webhook_body(alerts, url)).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        log.warning(
            "alert webhook %s failed: %s; %d alert(s) stored, not sent", shown_url(url), reason, len(alerts)
        )
        return False
    if not 200 <= status < 300:
        log.warning(
            "alert webhook %s answered HTTP %s; %d alert(s) stored, not sent",
            shown_url(url),
            status,
            len(alerts),
        )
        return False
    return True
