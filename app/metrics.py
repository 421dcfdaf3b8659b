"""The app's Prometheus metrics, counted here only: requests, latency and errors per endpoint,
predictions by risk level, template-email fallbacks, and the last monitoring check's drift.

Each app has its own `CollectorRegistry` (tests and several apps in one process never clash),
served on its own port (`serve`), bound to 127.0.0.1 unless the operator says otherwise: the
app's login (Gradio's) is not something Prometheus can pass, and the figures carry no customer,
secret, path or URL. Every label takes a bounded set of values: the app's endpoint names, the
schema's risk levels, a fixed list of error kinds and email fallback reasons.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from churn import schema

log = logging.getLogger(__name__)

PREFIX = "churn_app"
#: Seconds; the Predict endpoint includes the retention email (LLM budget a few seconds).
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Error kinds: a validator refused the input / the endpoint refused it (gr.Error) / anything else.
ERROR_KINDS = ("validation", "refused", "internal")
#: Why an email came from the template (churn.emails reason codes); anything else counts as "other".
FALLBACK_REASONS = (
    "no_api_key",
    "auth_error",
    "rate_limited",
    "server_error",
    "api_error",
    "connection_error",
    "timeout",
    "models_unavailable",
    "bad_schema",
    "no_choices",
    "empty_answer",
    "internal_error",
)


class AppMetrics:
    """One app's metrics and, once `serve`d, the HTTP server that exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests", "Calls of each app endpoint (api_name)", ["endpoint"], registry=r
        )
        self.latency = Histogram(
            f"{PREFIX}_request_seconds",
            "Time to answer a call, per endpoint (streamed endpoints: until the last update)",
            ["endpoint"],
            buckets=BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            f"{PREFIX}_errors",
            "Calls that ended in an error, per endpoint and kind",
            ["endpoint", "kind"],
            registry=r,
        )
        self.predictions = Counter(
            f"{PREFIX}_predictions",
            "Customers scored (Predict and Batch), per risk level",
            ["risk_level"],
            registry=r,
        )
        self.emails = Counter(
            f"{PREFIX}_emails",
            "Retention emails written, by who wrote them (groq or template)",
            ["source"],
            registry=r,
        )
        self.fallbacks = Counter(
            f"{PREFIX}_llm_fallbacks",
            "Retention emails written by the template because the LLM (Groq) was unavailable or failed",
            ["reason"],
            registry=r,
        )
        self.drift_share = Gauge(
            f"{PREFIX}_drift_share",
            "Share of features drifted in the last monitoring check (NaN before one ran or with too little data)",
            registry=r,
        )
        self.active_alerts = Gauge(
            f"{PREFIX}_active_alerts",
            "Alerts that fired in the last monitoring check (NaN before one ran)",
            registry=r,
        )
        self.checked = Gauge(
            f"{PREFIX}_monitoring_check_timestamp_seconds",
            "When the last monitoring check ran (Unix time)",
            registry=r,
        )
        for level in schema.RISK_LEVELS:
            self.predictions.labels(level)
        for source in ("groq", "template"):
            self.emails.labels(source)
        self.drift_share.set(math.nan)
        self.active_alerts.set(math.nan)
        self.server: Any = None
        self.url = ""

    # -- counting ----------------------------------------------------------------------------

    def instrument(self, demo: Any) -> None:
        """Count every named endpoint of a built `gr.Blocks`: its function and its validator."""
        for fn in demo.fns.values():
            name = getattr(fn, "api_name", None)
            if not name or fn.fn is None:
                continue
            name = str(name).lstrip("/")
            self.requests.labels(name)
            fn.fn = self._timed(name, fn.fn)
            if fn.validator is not None:
                fn.validator = self._validated(name, fn.validator)

    def _finish(self, endpoint: str, start: float, error: BaseException | None) -> None:
        self.requests.labels(endpoint).inc()
        self.latency.labels(endpoint).observe(time.perf_counter() - start)
        if error is not None:
            self.errors.labels(endpoint, _kind(error)).inc()

    def _timed(self, endpoint: str, fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def stream(*args: Any, **kwargs: Any):
                start, error = time.perf_counter(), None
                try:
                    yield from fn(*args, **kwargs)
                except Exception as exc:
                    error = exc
                    raise
                finally:
                    self._finish(endpoint, start, error)

            return stream

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any):
            start, error = time.perf_counter(), None
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                error = exc
                raise
            finally:
                self._finish(endpoint, start, error)

        return call

    def _validated(self, endpoint: str, validator: Callable) -> Callable:
        """A validator that counts the call it refuses (the endpoint's function never runs then)."""

        @functools.wraps(validator)
        def check(*args: Any, **kwargs: Any):
            start = time.perf_counter()
            verdicts = validator(*args, **kwargs)
            listed = verdicts if isinstance(verdicts, list | tuple) else [verdicts]
            if any(isinstance(v, dict) and v.get("is_valid") is False for v in listed):
                self.requests.labels(endpoint).inc()
                self.latency.labels(endpoint).observe(time.perf_counter() - start)
                self.errors.labels(endpoint, "validation").inc()
            return verdicts

        return check

    def predicted(self, risk_levels: Iterable[str]) -> None:
        """Customers scored, by their risk level (Low / Medium / High)."""
        counts: dict[str, int] = {}
        for level in risk_levels:
            level = str(level)
            if level in schema.RISK_LEVELS:
                counts[level] = counts.get(level, 0) + 1
        for level, n in counts.items():
            self.predictions.labels(level).inc(n)

    def emailed(self, email: Any) -> None:
        """A retention email written: by Groq, or by the template (a fallback, with its reason); an
        internal note (a customer not worth contacting) is no email and is not counted."""
        if email.is_note:
            return
        if email.source == "groq":
            self.emails.labels("groq").inc()
            return
        self.emails.labels("template").inc()
        reason = email.reason_code if email.reason_code in FALLBACK_REASONS else "other"
        self.fallbacks.labels(reason).inc()

    def monitored(self, report: dict, n_alerts: int) -> None:
        """The outcome of a monitoring check (`Monitor.evaluate` or `check`): drift share, alerts."""
        dataset = report.get("dataset") if report.get("status") == "ok" else None
        self.drift_share.set(float(dataset["share"]) if dataset else math.nan)
        self.active_alerts.set(n_alerts)
        self.checked.set(time.time())

    # -- serving -----------------------------------------------------------------------------

    def serve(self, host: str, port: int) -> str:
        """Expose the metrics at http://host:port/metrics (Prometheus text format); the URL."""
        self.server, _ = start_http_server(port, addr=host, registry=self.registry)
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.server.server_port}/metrics"
        log.info("Prometheus metrics at %s", self.url)
        return self.url

    def close(self) -> None:
        """Stop the metrics server (if started)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _kind(error: BaseException) -> str:
    import gradio as gr

    return "refused" if isinstance(error, gr.Error) else "internal"


def of(state: Any) -> AppMetrics:
    """The metrics of the app serving `state` (one per app, made on first use)."""
    return state.once("ops_metrics", AppMetrics)
