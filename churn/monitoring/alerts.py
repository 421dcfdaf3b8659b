"""Alerts from drift and performance reports, and their delivery to an optional webhook."""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Sequence

from churn.monitoring.distributions import PREDICTION
from churn.monitoring.records import Alert

log = logging.getLogger(__name__)

#: Env variable holding the webhook URL that receives fired alerts as JSON (optional).
WEBHOOK_ENV = "CHURN_ALERT_WEBHOOK"
WEBHOOK_TIMEOUT_S = 5.0


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


def post_webhook(alerts: Sequence[Alert], url: str | None = None, timeout: float = WEBHOOK_TIMEOUT_S) -> bool:
    """POST the alerts as JSON to `url` (default: env CHURN_ALERT_WEBHOOK); True when delivered.

    Body: `{"source": "churn-monitor", "alerts": [...]}`. Delivery problems are logged, never
    raised: a broken webhook must not hide the alerts themselves.
    """
    url = url or os.environ.get(WEBHOOK_ENV)
    if not url or not alerts:
        return False
    if not url.startswith(("http://", "https://")):
        log.warning("%s must be an http(s) URL; alerts not sent", WEBHOOK_ENV)
        return False
    body = json.dumps({"source": "churn-monitor", "alerts": [a.as_dict() for a in alerts]}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            ok = 200 <= response.status < 300
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        log.warning("alert webhook failed: %s", exc)
        return False
    if not ok:
        log.warning("alert webhook answered HTTP %s", response.status)
    return ok
