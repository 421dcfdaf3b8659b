"""Predictor: load a model once; validate, predict, explain, propose actions, write the email, log."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn import compiled, data, emails, explain, retention, schema
from churn.assessment import PROBABILITY, RISK, Assessment
from churn.batch import REASON, ROW
from churn.io import file_sha256
from churn.model_ref import resolve_model
from churn.params import load_params
from churn.paths import Layout
from churn.schema import risk_levels
from churn.settings import BaseSettings, EconomicsSettings, ServingSettings

if TYPE_CHECKING:
    from churn.monitoring.batches import BatchLog
    from churn.monitoring.store import PredictionStore

log = logging.getLogger(__name__)


@functools.cache
def _threadpools():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _threads_for(rows: int):
    """One OpenMP thread for a handful of rows: spinning up a pool costs more than it saves."""
    if rows > schema.QUICK_ROWS:
        return contextlib.nullcontext()
    return _threadpools().limit(limits=1, user_api="openmp")


class Predictor:
    """One loaded model serving predictions, explanations, retention actions and emails.

    Thread-safe: the app calls it from many request threads. `load` reads the model and builds
    the explainer once. Every valid prediction is logged to `store` unless logging is off.
    `economics` is params.yaml's section, checked; None when the params have none (a project from
    before it): then no contact decision is made and every customer gets an email.
    """

    def __init__(
        self,
        pipeline: Any,
        *,
        model_name: str,
        model_version: str = "",
        params: dict[str, Any] | None = None,
        store: PredictionStore | None = None,
        log: bool = True,
        root: str | Path = ".",
        background: pd.DataFrame | None = None,
    ):
        self.pipeline = pipeline
        self.model_name = model_name
        self.model_version = model_version
        self.params = params or {}
        self.settings = ServingSettings.from_params(self.params.get("serving"))
        self.retention = retention.RetentionSettings.from_params(self.params.get("retention"))
        money = self.params.get(EconomicsSettings.KEY)
        self.economics = None if money is None else EconomicsSettings.from_params(money)
        self.seed = BaseSettings.from_params(self.params["base"]).seed if "base" in self.params else 42
        self.root = Path(root)
        self.log_enabled = log
        self._store = store
        self._background = background
        self._explainer: explain.Explainer | None = None
        self._lock = threading.Lock()
        self._preprocess = pipeline[:-1]
        self._model = pipeline[-1]
        self._compiled = compiled.Columns.build(pipeline)
        self._trees = compiled.Trees.for_pipeline(pipeline)

    @classmethod
    def load(
        cls,
        model: str = "champion",
        root: str | Path = ".",
        store: PredictionStore | None = None,
        log: bool = True,
        *,
        explainer: bool = True,
        trust_model: bool = False,
    ) -> Predictor:
        """Load `model` ('champion', 'challenger', a .joblib path or an MLflow URI) with root/params.yaml.

        The SHAP explainer is built here too, once (`explainer=False` defers it to first use:
        batch scoring without explanations never pays for it). `trust_model` loads a joblib file
        from outside the pipeline's checked models (`--trust-model`; see `resolve_model`).
        """
        root = Path(root)
        params_path = Layout(root).params
        params = load_params(params_path) if params_path.exists() else {}
        pipeline, name, version = resolve_model(model, root, trust=trust_model)
        predictor = cls(
            pipeline, model_name=name, model_version=version, params=params, store=store, log=log, root=root
        )
        logging.getLogger(__name__).info("loaded model %s (%s) from %s", name, version, model)
        if explainer:
            with contextlib.suppress(explain.ExplainError):
                predictor.explainer  # noqa: B018 - built once, here, not on a user's first request
        return predictor

    def __repr__(self) -> str:
        return f"Predictor(model_name={self.model_name!r}, model_version={self.model_version!r})"

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def store(self) -> PredictionStore | None:
        """The prediction log (opened on first use from `CHURN_DB_URL`; None when logging is off)."""
        return self._open_store() if self.log_enabled else self._store

    def _open_store(self) -> PredictionStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from churn.monitoring.store import PredictionStore

                    self._store = PredictionStore()
        return self._store

    @property
    def explainer(self) -> explain.Explainer:
        """The SHAP explainer, built once (`load` builds it; linear models explain against `background`)."""
        if self._explainer is None:
            with self._lock:
                if self._explainer is None:
                    method, _ = explain.family_of(self._model)
                    background = self.background() if method.startswith("linear") else None
                    self._explainer = explain.Explainer(self.pipeline, background)
        return self._explainer

    def background(self) -> pd.DataFrame:
        """Reference customers: `background_rows` seeded rows of data/prepared/train.parquet if present,
        else as many synthetic customers (churn.synth, same seed)."""
        if self._background is None:
            n = self.settings.background_rows
            train = Layout(self.root).train
            if train.exists():
                df = pd.read_parquet(train, columns=list(schema.FEATURES))
                df = df.sample(n=min(n, len(df)), random_state=self.seed)
            else:
                from churn import synth

                df = synth.generate(rows=n, seed=self.seed)
            self._background = df[list(schema.FEATURES)].reset_index(drop=True)
        return self._background

    def _transform(self, given: schema.Customers) -> np.ndarray:
        """The model matrix of validated customers (the compiled path when the layout allows)."""
        if given.records is None:
            return self._preprocess.transform(given.X)
        if self._compiled is not None:
            return self._compiled.transform(given.records)
        return self._preprocess.transform(
            pd.DataFrame(given.records, columns=list(schema.FEATURES), dtype=object)
        )

    def _log(
        self,
        given: schema.Customers,
        proba,
        levels,
        latency_ms: float,
        email: str | None = None,
        batch_id: int | None = None,
    ) -> list[int]:
        """Write the predictions of validated customers to the log (into an open batch, if given);
        return their ids (small inputs only). The log checks their shape, not the rules again."""
        from churn.monitoring.records import Predictions

        meta = {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "latency_ms": float(latency_ms),
            "email_source": email,
        }
        ids = given.ids()
        if given.records is not None:
            results = [
                {"probability": float(p), "risk_level": str(level), "customer_id": cid, **meta}
                for p, level, cid in zip(proba, levels, ids, strict=True)
            ]
            items = Predictions.of(given, given.typed_records(), results)
            return self._open_store().write(items, batch_id=batch_id)
        results = pd.DataFrame(
            {
                "probability": np.asarray(proba, dtype="float64"),
                "risk_level": np.asarray(levels, dtype=object),
                "customer_id": pd.Series(ids, dtype=object),
            }
        )
        for key, value in meta.items():
            results[key] = value
        typed = data.coerce_features(given.X.reset_index(drop=True))
        items = Predictions.of(given, typed, results)
        return self._open_store().write(items, return_ids=False, batch_id=batch_id)

    def batch_log(
        self, path: str | Path, source: str | None = None
    ) -> contextlib.AbstractContextManager[BatchLog | None]:
        """`with predictor.batch_log(file) as entry:` log a file's predictions all or nothing, once.

        Pass `batch=entry` to `score_frame`. The rows become visible when the block ends without
        error; a file (same bytes, by SHA-256) already logged with this model is not logged again
        (`entry.previous`, `entry.message()`). `entry` is None when logging is off.
        """
        if not self.log_enabled:
            return contextlib.nullcontext(None)
        return self._open_store().logging_batch(
            file_sha256(path), self.model_name, self.model_version, source=source or Path(path).name
        )

    # -- the API -----------------------------------------------------------------------------

    def predict(
        self, customers: pd.DataFrame | Sequence[Mapping] | Mapping, log: bool | None = None
    ) -> pd.DataFrame:
        """Validated customers in, their columns plus `churn_probability` and `risk_level` out.

        Raises `SchemaError` (naming field and rule) for bad input; nothing is logged then.
        Logged ids are in `result.attrs["prediction_ids"]`.
        """
        start = time.perf_counter()
        given = schema.customers(customers, "customers")
        with _threads_for(len(given)):
            proba = self._proba(self._transform(given))
        levels = risk_levels(proba, self.settings)
        latency = 1000 * (time.perf_counter() - start) / max(len(given), 1)
        out = given.frame.copy()
        out[PROBABILITY] = proba
        out[RISK] = levels
        if self.log_enabled if log is None else log:
            out.attrs["prediction_ids"] = self._log(given, proba, levels, latency)
        return out

    def score_frame(
        self,
        df: pd.DataFrame,
        *,
        explain_rows: bool = False,
        log: bool | None = None,
        batch: BatchLog | None = None,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Batch scoring: (scored valid rows, rejected rows with `row` position and `reason`).

        With `batch` (from `batch_log`), rows are logged into it, and not at all when it says the
        file was logged before.

        Column problems (missing, unexpected or repeated columns) raise `SchemaError`; value
        problems reject just their rows. With `explain_rows`, adds `top_reasons`, `shap_base` and one
        `shap_<feature>` column per feature, in probability units (base + sum = churn_probability).
        """
        start = time.perf_counter()
        valid, reasons = schema.split_valid(df)
        bad = np.array(sorted(reasons), dtype=int)
        rejects = df.iloc[bad].copy()
        rejects.insert(0, REASON, ["; ".join(reasons[p]) for p in bad])
        rejects.insert(0, ROW, bad)
        good = valid.frame
        out = good.copy()
        if len(good):
            X = good[list(schema.FEATURES)]
            Xt = self._matrix(X)
            proba = self._proba(Xt)
            levels = risk_levels(proba, self.settings)
            out[PROBABILITY] = proba
            out[RISK] = levels
            if explain_rows:
                out = pd.concat([out, self._shap_columns(X, Xt)], axis=1)
            latency = 1000 * (time.perf_counter() - start) / len(good)
            logging_on = self.log_enabled if log is None else log
            if batch is not None:
                logging_on = logging_on and batch.logging
            if logging_on:
                batch_id = batch.batch_id if batch is not None else None
                self._log(valid, proba, levels, latency, batch_id=batch_id)
        else:
            out[PROBABILITY] = pd.Series(dtype="float64")
            out[RISK] = pd.Series(dtype=object)
        return out, rejects

    def decide_frame(self, scored: pd.DataFrame, *, actions: bool = True, floor: float = 0.0) -> pd.DataFrame:
        """The decision columns of `score_frame`'s scored rows (`retention.decide_frame`: expected
        profit, contact, the best action by this model's what-ifs); contact only above `floor`
        (a budget's running cut; 0 is the decision rule). Needs params' `economics`."""
        if self.economics is None:
            raise ValueError("no decisions: params.yaml has no economics section (customer value and costs)")
        score = self._score_matrix if actions else None
        proba = scored[PROBABILITY].to_numpy(dtype=float)
        return retention.decide_frame(scored, proba, score, self.retention, self.economics, floor=floor)

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The model matrix of a frame of validated rows (the compiled path when the layout allows)."""
        return (
            self._compiled.transform_frame(X) if self._compiled is not None else self._preprocess.transform(X)
        )

    def _score_matrix(self, X: pd.DataFrame) -> np.ndarray:
        return self._proba(self._matrix(X))

    def _shap_columns(self, X: pd.DataFrame, Xt: np.ndarray) -> pd.DataFrame:
        att = self.explainer.attribute_matrix(Xt)
        cols = {"top_reasons": explain.top_reasons(att, X, self.settings.top_reasons)}
        cols["shap_base"] = np.full(len(X), att.base_probability)
        for j, name in enumerate(schema.FEATURES):
            cols[f"shap_{name}"] = att.points[:, j] / 100
        return pd.DataFrame(cols, index=X.index)

    def _one(self, customer: dict | pd.DataFrame) -> schema.Customers:
        given = schema.customers(customer, "customer")
        if len(given) != 1:
            raise ValueError(f"customer: expected one customer, got {len(given)}")
        return given

    def _explain(self, given: schema.Customers) -> explain.Explanation:
        with _threads_for(1):
            Xt = self._transform(given)
            att = self.explainer.attribute_matrix(Xt, self._proba(Xt))
        return explain.explanation_from(att, 0, given.values(), top=self.settings.top_reasons)

    def _actions(self, given: schema.Customers) -> list[retention.Action]:
        # What-ifs of a quickly validated customer are plain values too: score them on the fast path.
        model = self.pipeline if given.records is None or self._compiled is None else self._score_records
        with _threads_for(1):
            return retention.actions(model, given.values(), self.retention)

    def _score_records(self, records: list[dict]) -> np.ndarray:
        return self._proba(self._compiled.transform(records))

    def _proba(self, Xt: np.ndarray) -> np.ndarray:
        """The model's churn probabilities of model-matrix rows (treelite's GTIL for a few rows)."""
        if self._trees is not None and self._trees.takes(Xt):
            return self._trees.proba(Xt)
        return self._model.predict_proba(Xt)[:, 1]

    def explain(self, customer: dict | pd.DataFrame) -> explain.Explanation:
        """SHAP explanation of one customer (see `churn.explain.Explanation` for the space stated)."""
        return self._explain(self._one(customer))

    def global_importance(self, customers: pd.DataFrame | None = None) -> dict[str, float]:
        """Mean |contribution| in percentage points per feature over `customers` (default: background)."""
        X = self.background() if customers is None else schema.customers(customers, "customers").X
        return self.explainer.global_importance(X)

    def actions(self, customer: dict | pd.DataFrame) -> list[retention.Action]:
        """Retention what-ifs for one customer, re-scored by the model, biggest risk reduction first."""
        return self._actions(self._one(customer))

    def email(
        self,
        customer: dict | pd.DataFrame,
        explanation: explain.Explanation | None = None,
        actions: list[retention.Action] | None = None,
    ) -> emails.Email:
        """The retention email for one customer (Groq, or the template; `source` says which and why)."""
        given = self._one(customer)
        explanation = explanation or self._explain(given)
        actions = self._actions(given) if actions is None else actions
        values = given.values()
        decision = self._decide(values, explanation.probability, actions)
        return self._write_email(values, explanation, actions, decision)

    def _decide(
        self, values: dict[str, Any], probability: float, actions: list[retention.Action]
    ) -> retention.Decision | None:
        if self.economics is None:
            return None
        return retention.decide(values, probability, actions, self.economics)

    def _write_email(
        self, values: dict[str, Any], explanation, actions, decision: retention.Decision | None
    ) -> emails.Email:
        """The email (or the internal note, for a customer not worth contacting) with the one best action."""
        level = str(risk_levels([explanation.probability], self.settings)[0])
        top = explanation.drivers(self.settings.top_reasons)
        drivers = [(f, explain.sentence(f, explanation.customer.get(f), p)) for f, p in top]
        facts = emails.email_facts(values, explanation.probability, level, drivers, actions, decision)
        return emails.write_email(facts, self.retention)

    def prepare(self, customer: dict | pd.DataFrame) -> Assessment:
        """Prediction, explanation, actions and the decision for one customer, logged at once (no email yet).

        What a face shows first; `complete` then writes the email and records its source in the
        same log row. Raises `SchemaError` for bad input (nothing logged then).
        """
        start = time.perf_counter()
        given = self._one(customer)
        explanation = self._explain(given)
        actions = self._actions(given)
        decision = self._decide(given.values(), explanation.probability, actions)
        level = str(risk_levels([explanation.probability], self.settings)[0])
        latency = 1000 * (time.perf_counter() - start)
        ids = self._log(given, [explanation.probability], [level], latency) if self.log_enabled else []
        return Assessment(
            customer=given.values(),
            probability=explanation.probability,
            risk_level=level,
            explanation=explanation,
            actions=actions,
            decision=decision,
            prediction_id=ids[0] if ids else None,
            latency_ms=latency,
            model_name=self.model_name,
            model_version=self.model_version,
        )

    def complete(self, assessment: Assessment) -> Assessment:
        """A prepared assessment with its retention email, the email's source recorded in the log.

        Never raises for LLM faults and takes at most `retention.email_budget_seconds` (+ slack):
        any fault gives the template email with its reason (`churn.emails.write_email`).
        """
        if assessment.email is not None:
            return assessment
        start = time.perf_counter()
        email = self._write_email(
            assessment.customer, assessment.explanation, assessment.actions, assessment.decision
        )
        email_ms = 1000 * (time.perf_counter() - start)
        if assessment.prediction_id is not None and self.log_enabled:
            self._open_store().set_email_source(assessment.prediction_id, email.label)
        return dataclasses.replace(assessment, email=email, email_ms=email_ms)

    def assess(self, customer: dict | pd.DataFrame) -> Assessment:
        """Prediction + explanation + actions + email for one customer, logged once with its email source."""
        return self.complete(self.prepare(customer))
