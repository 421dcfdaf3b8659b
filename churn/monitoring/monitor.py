"""The monitoring service: reference, drift on a window or a batch, alerts, performance — for CLI and app."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churn import data, io, schema
from churn.monitoring import alerts as alerting
from churn.monitoring import distributions, drift, performance
from churn.monitoring.queries import Window
from churn.monitoring.records import Alert, utc_naive
from churn.monitoring.store import PredictionStore
from churn.settings import MonitoringSettings

log = logging.getLogger(__name__)


class Monitor:
    """Answers "is the model still right for the customers we see now?" from the prediction log.

    The reference (training split as counts; the model's scores on the held-out split for
    prediction drift and calibration) is built once, on first use.
    """

    def __init__(
        self,
        settings: MonitoringSettings,
        store: PredictionStore | None = None,
        root: str | Path = ".",
        predictor: Any = None,
        *,
        load_predictor: Callable[[], Any] | None = None,
    ):
        """`predictor` is the monitored model (a `churn.serving.Predictor`, logging off), or
        `load_predictor` builds it on first use (commands that never score need no model)."""
        self.settings = settings
        self.root = Path(root)
        self._store = store
        self._predictor = predictor
        self._load_predictor = load_predictor
        self._lock = threading.Lock()
        self._reference: drift.Reference | None = None
        self._holdout: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def store(self) -> PredictionStore:
        if self._store is None:
            self._store = PredictionStore()
        return self._store

    @property
    def predictor(self) -> Any:
        """The monitored model, handed in by the caller (scores the held-out split and CSV batches)."""
        if self._predictor is None:
            if self._load_predictor is None:
                raise ValueError("this monitor was handed no model to score with")
            self._predictor = self._load_predictor()
        return self._predictor

    def _path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.root / path

    def _table(self, name: str, what: str) -> pd.DataFrame:
        path = self._path(name)
        if not path.exists():
            raise FileNotFoundError(f"{path}: {what} not found (run `dvc repro` to build it)")
        return io.read_table(path)

    def holdout(self) -> tuple[np.ndarray, np.ndarray]:
        """The model's probabilities on the held-out split and its true outcomes."""
        if self._holdout is None:
            df = self._table(self.settings.holdout, "held-out split (monitoring.holdout)")
            source = str(self.settings.holdout)
            schema.validate(df, require_target=False, require_id=False, source=source)
            target = df.get(schema.TARGET)
            if target is None or not target.isin([0, 1]).all():
                raise schema.SchemaError(
                    [schema.Problem(schema.TARGET, "must be present and 0/1 (prepared split)")], source
                )
            self._holdout = (self.score(df), target.to_numpy(dtype="int64"))
        return self._holdout

    def score(self, customers: pd.DataFrame) -> np.ndarray:
        """Churn probabilities of validated customers (nothing logged)."""
        result = self.predictor.predict(customers[list(schema.FEATURES)], log=False)
        return result["churn_probability"].to_numpy(dtype="float64")

    def reference(self, with_prediction: bool = True) -> drift.Reference:
        """The drift reference: the training split, plus the model's held-out scores."""
        with self._lock:
            if self._reference is None or (
                with_prediction and distributions.PREDICTION not in self._reference.edges
            ):
                df = self._table(self.settings.reference, "reference (monitoring.reference)")
                proba = self.holdout()[0] if with_prediction else None
                self._reference = drift.reference_from_frame(
                    df, self.settings.drift, proba, source=str(self.settings.reference)
                )
            return self._reference

    def window(self, last: int | None = None, start=None, end=None, model_name: str | None = None) -> Window:
        """A window of the log; no bounds at all means the last `monitoring.window` predictions."""
        if last is None and start is None and end is None:
            last = self.settings.window
        return Window(last=last, start=start, end=end, model_name=model_name)

    def drift_window(self, window: Window, with_prediction: bool = True) -> dict:
        """Drift report of a window of logged predictions against the reference."""
        selection = self.store.select(window)
        if selection.n == 0:
            raise ValueError(f"the window is empty ({window.describe()}): no logged predictions")
        summary = self.store.summarize(selection)
        if not with_prediction:
            summary.numeric.pop(distributions.PREDICTION, None)
        return drift.compare(self.reference(with_prediction), summary, self.settings.drift, window.describe())

    def drift_batch(self, raw: pd.DataFrame, source: str = "batch", with_prediction: bool = True) -> dict:
        """Drift report of a batch of customers (raw CSV form) before it is scored."""
        schema.validate(raw, require_target=False, require_id=False, source=source)
        clean, _ = data.clean(raw)
        proba = self.score(clean) if with_prediction else None
        summary = distributions.summarize(clean, proba)
        return drift.compare(self.reference(with_prediction), summary, self.settings.drift, source)

    def holdout_metrics(self) -> dict:
        proba, y = self.holdout()
        return performance.live_metrics(y, proba, self.settings.performance.threshold)

    def estimate_window(self, summary: distributions.Summary) -> dict:
        """CBPE on a window's probability counts, calibrated on the held-out split."""
        proba, y = self.holdout()
        counts = summary.numeric[distributions.PREDICTION]
        calibrator = performance.fit_calibrator(proba, y)
        return performance.estimate(
            counts.index.to_numpy(),
            calibrator,
            self.settings.performance.threshold,
            weights=counts.to_numpy(),
        )

    def performance(self, window: Window, unit: str | None = None) -> dict:
        """Live metrics (when outcomes exist), the label-free estimate, and both per time window."""
        unit = unit or self.settings.performance.unit
        selection = self.store.select(window)
        if selection.n == 0:
            raise ValueError(f"the window is empty ({window.describe()}): no logged predictions")
        proba, y = self.holdout()
        calibrator = performance.fit_calibrator(proba, y)
        probs = self.store.read(selection, columns=["created_at", "probability"])
        estimated = performance.estimate(
            probs["probability"].to_numpy(), calibrator, self.settings.performance.threshold
        )
        labelled, live = self._live(selection)
        return {
            "window": window.describe(),
            "n_predictions": selection.n,
            "n_labelled": len(labelled),
            "min_labelled": self.settings.performance.min_labelled,
            "reference": self.holdout_metrics(),
            "estimated": estimated,
            "live": live,
            "estimated_vs_live": performance.compare(estimated, live) if live else None,
            "over_time": {
                "unit": unit,
                "estimated": performance.estimate_over_time(
                    probs, calibrator, unit, self.settings.performance.threshold
                ),
                "live": performance.live_over_time(labelled, unit, self.settings.performance.threshold),
            },
        }

    def _live(self, selection) -> tuple[pd.DataFrame, dict | None]:
        """The selection's predictions with outcomes, and their live metrics when there are enough."""
        labelled = self.store.labelled(selection)
        if len(labelled) < self.settings.performance.min_labelled:
            return labelled, None
        live = performance.live_metrics(
            labelled["churned"].to_numpy(),
            labelled["probability"].to_numpy(),
            self.settings.performance.threshold,
        )
        return labelled, live

    def evaluate(self, window: Window) -> tuple[dict, list[Alert]]:
        """Drift and performance checks of a window: the drift report (with `performance` when the
        drift check ran) and the alerts that fire, nothing stored or sent."""
        selection = self.store.select(window)
        if selection.n == 0:
            raise ValueError(f"the window is empty ({window.describe()}): no logged predictions")
        summary = self.store.summarize(selection)
        report = drift.compare(self.reference(), summary, self.settings.drift, window.describe())
        fired = alerting.from_drift(report)
        if report["status"] == "ok":
            estimate = self.estimate_window(summary)
            _, live = self._live(selection)
            report["performance"] = {"estimated": estimate, "live": live, "reference": self.holdout_metrics()}
            fired += alerting.from_performance(
                estimate, live, self.holdout_metrics(), self.settings.performance.max_drop, window.describe()
            )
        return report, fired

    def check(
        self,
        window: Window,
        webhook: str | None = None,
        *,
        cooldown_minutes: float | None = None,
        now: datetime | None = None,
    ) -> tuple[dict, list[Alert]]:
        """`evaluate` a window; the alerts that fire are stored (all of them, at `now`, default the
        current UTC time) and posted to the webhook, except those of a kind and feature already
        posted within the cooldown (`monitoring.alerts.cooldown_minutes` unless given). A post that
        fails is not recorded, so the next check tries again."""
        report, fired = self.evaluate(window)
        if not fired:
            return report, []
        now = utc_naive(now)
        cooldown = timedelta(
            minutes=self.settings.alerts.cooldown_minutes if cooldown_minutes is None else cooldown_minutes
        )
        stored = self.store.add_alerts([dataclasses.replace(a, created_at=now) for a in fired])
        posted = self.store.posted_since(now - cooldown) if cooldown > timedelta(0) else set()
        send = alerting.due(stored, posted)
        if len(send) < len(stored):
            log.info(
                "alerts: %d of %d already posted within the %s cooldown",
                len(stored) - len(send),
                len(stored),
                cooldown,
            )
        if send and alerting.post_webhook(send, webhook):
            self.store.mark_posted([a.id for a in send], now)
        return report, stored
