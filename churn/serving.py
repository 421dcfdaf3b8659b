"""Predictor: load a model once; validate, predict, explain, propose actions, write the email, log."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn import compiled, data, explain, retention, schema
from churn.io import ParamsError, file_sha256, load_params, read_model

if TYPE_CHECKING:
    from churn.monitoring.store import BatchLog, PredictionStore

log = logging.getLogger(__name__)

RISK_LEVELS = ("Low", "Medium", "High")
PROBABILITY = "churn_probability"
RISK = "risk_level"
REASON = "reason"
ROW = "row"
#: Rows up to which validation takes the pure-Python shortcut before the full schema check.
_QUICK_ROWS = 16
_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class ServingSettings:
    """params.yaml `serving:` — risk bands, batch chunking, explanation background."""

    medium: float = 0.3
    high: float = 0.6
    chunk_size: int = 50_000
    explain_chunk_size: int = 1_000
    max_line_bytes: int = 1_000_000
    background_rows: int = 200
    top_reasons: int = 3

    @classmethod
    def from_params(cls, section: dict[str, Any] | None, source: str = "params.yaml") -> ServingSettings:
        """Settings from a `serving:` section (missing keys keep defaults); ParamsError names bad keys."""
        flat = dict(section or {})
        bands = flat.pop("risk_bands", {}) or {}
        if not isinstance(bands, dict) or set(bands) - {"medium", "high"}:
            raise ParamsError(f"{source}: 'serving.risk_bands' must be a mapping with keys medium and high")
        flat.update(bands)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(flat) - known)
        if unknown:
            raise ParamsError(f"{source}: unknown key(s) {unknown} in 'serving'")
        settings = cls(**flat)
        for key in ("medium", "high"):
            value = getattr(settings, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ParamsError(f"{source}: 'serving.risk_bands.{key}' must be a probability in (0, 1)")
        if settings.medium >= settings.high:
            raise ParamsError(
                f"{source}: 'serving.risk_bands.medium' must be below 'serving.risk_bands.high'"
            )
        for key in ("chunk_size", "explain_chunk_size", "max_line_bytes", "background_rows", "top_reasons"):
            value = getattr(settings, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParamsError(f"{source}: 'serving.{key}' must be a positive whole number, got {value!r}")
        return settings


def risk_levels(probability: np.ndarray, settings: ServingSettings) -> np.ndarray:
    """Low below `medium`, High at or above `high`, Medium between."""
    p = np.asarray(probability, dtype="float64")
    return np.where(p >= settings.high, "High", np.where(p >= settings.medium, "Medium", "Low"))


@dataclass(frozen=True)
class Assessment:
    """One customer, served: prediction, explanation, retention actions, log id, and the email.

    `email` is None until `Predictor.complete` has written it. `latency_ms` is the model's part
    (validation, prediction, explanation, actions; what the log records); `email_ms` the time the
    email took (an LLM call, or the template).
    """

    customer: dict[str, Any]
    probability: float
    risk_level: str
    explanation: explain.Explanation
    actions: list[retention.Action]
    email: retention.Email | None = None
    prediction_id: int | None = None
    latency_ms: float = 0.0
    email_ms: float = 0.0
    model_name: str = ""
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "risk_level": self.risk_level,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "prediction_id": self.prediction_id,
            "latency_ms": self.latency_ms,
            "email_ms": self.email_ms,
            "explanation": self.explanation.to_dict(),
            "actions": [a.to_dict() for a in self.actions],
            "email": None if self.email is None else self.email.to_dict(),
        }


def resolve_model(model: str, root: str | Path = ".", *, trust: bool = False) -> tuple[Any, str, str]:
    """Load a model: 'champion' / 'challenger' (models/<name>.joblib), a .joblib path, or an MLflow URI.

    Returns (pipeline, model name, model version). Version: the file's MD5 (the hash DVC records)
    for joblib files, the registry version or run id for MLflow models. A joblib file is checked
    before it is loaded (`churn.io.read_model`): the pipeline's models against dvc.lock; any other
    file only with `trust=True` (`--trust-model`). MLflow URIs come from the configured store.
    """
    root = Path(root)
    if model.startswith(("models:/", "runs:/")):
        return _load_mlflow(model, root)
    path = Path(model)
    if path.suffix != ".joblib" and not path.exists():
        path = root / "models" / f"{model}.joblib"
    elif not path.is_absolute() and not path.exists():
        path = root / path
    pipeline, md5 = read_model(path, root=root, trust=trust)
    if not hasattr(pipeline, "predict_proba"):
        raise ValueError(f"{path}: not a fitted classifier pipeline (no predict_proba)")
    return pipeline, path.stem, f"md5:{md5[:12]}"


def _load_mlflow(uri: str, root: Path) -> tuple[Any, str, str]:
    from churn import registry

    mlflow = registry._mlflow(root)
    from mlflow.exceptions import MlflowException

    try:
        pipeline = mlflow.sklearn.load_model(uri)
        if uri.startswith("runs:/"):
            run_id = uri[len("runs:/") :].split("/")[0]
            return pipeline, f"run-{run_id[:8]}", run_id
        ref = uri[len("models:/") :].strip("/")
        if "@" in ref:
            name, alias = ref.split("@", 1)
            version = mlflow.MlflowClient().get_model_version_by_alias(name, alias).version
        else:
            name, _, version = ref.partition("/")
        return pipeline, ref, str(version)
    except MlflowException as exc:
        from churn.redact import redact_url

        raise FileNotFoundError(
            redact_url(
                f"{uri}: cannot load this model from MLflow at {registry.tracking_uri(root)} ({exc.message})"
            )
        ) from exc


@functools.cache
def _threadpools():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _threads_for(rows: int):
    """One OpenMP thread for a handful of rows: spinning up a pool costs more than it saves."""
    if rows > _QUICK_ROWS:
        return contextlib.nullcontext()
    return _threadpools().limit(limits=1, user_api="openmp")


def _typed(record: dict[str, Any]) -> dict[str, Any]:
    """Model-typed features of a record `quick_valid` accepted (numbers as float, levels as text):
    the values `data.coerce_features` gives for such records, without a DataFrame round trip."""
    return {f: float(record[f]) if f in schema.NUMERIC else record[f] for f in schema.FEATURES}


def _customer_id(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text[:64] or None


def quick_valid(records: list[dict[str, Any]]) -> bool:
    """True when every record surely passes the schema (pure Python; False means 'check fully')."""
    allowed = set(schema.COLUMNS)
    for rec in records:
        if len(rec) < len(schema.FEATURES) or not allowed.issuperset(rec):
            return False
        for col, levels in schema.CATEGORICAL.items():
            if rec.get(col) not in levels:
                return False
        for col, (lo, hi, whole) in schema.NUMERIC.items():
            value = rec.get(col)
            if isinstance(value, str):
                if not _PLAIN_NUMBER.match(value):
                    return False
                value = float(value)
            elif isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
                return False
            if not (math.isfinite(value) and lo <= value <= hi) or (whole and value % 1 != 0):
                return False
    return True


class _Customers:
    """Validated input: `records` for small inputs (fast paths), the frame built only when needed."""

    def __init__(self, records: list[dict] | None, frame: pd.DataFrame | None = None):
        self.records = records
        self._frame = frame

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else len(self._frame)

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = pd.DataFrame(self.records)
        return self._frame

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[list(schema.FEATURES)]

    def values(self) -> dict[str, Any]:
        """The first customer's 19 feature values, as given."""
        if self.records is not None:
            return {f: self.records[0][f] for f in schema.FEATURES}
        return self.X.iloc[0].to_dict()


class Predictor:
    """One loaded model serving predictions, explanations, retention actions and emails.

    Thread-safe: the app calls it from many request threads. `load` reads the model and builds
    the explainer once. Every valid prediction is logged to `store` unless logging is off.
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
        self.seed = int(self.params.get("base", {}).get("seed", 42))
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
        params_path = root / "params.yaml"
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
            train = self.root / "data" / "prepared" / "train.parquet"
            if train.exists():
                df = pd.read_parquet(train, columns=list(schema.FEATURES))
                df = df.sample(n=min(n, len(df)), random_state=self.seed)
            else:
                from churn import synth

                df = synth.generate(rows=n, seed=self.seed)
            self._background = df[list(schema.FEATURES)].reset_index(drop=True)
        return self._background

    def _validated(self, customers: pd.DataFrame | Sequence[dict] | dict, source: str) -> _Customers:
        """Check customers against the schema; SchemaError names every field and rule broken.

        Small inputs that pass the pure-Python check skip the DataFrame work (the app's hot path).
        """
        if isinstance(customers, pd.DataFrame):
            records = None
            if len(customers) <= _QUICK_ROWS and not customers.columns.duplicated().any():
                names = list(customers.columns)
                rows = customers.to_numpy(dtype=object).tolist()
                records = [dict(zip(names, row, strict=True)) for row in rows]
            given = _Customers(records, customers)
        elif isinstance(customers, dict):
            given = _Customers([customers])
        elif isinstance(customers, Sequence) and not isinstance(customers, str):
            records = list(customers)
            if not all(isinstance(r, dict) for r in records):
                raise schema.SchemaError([schema.Problem("*", "each customer must be a mapping")], source)
            given = _Customers(records)
        else:
            rule = "customers must be a dict, a list of dicts or a DataFrame"
            raise schema.SchemaError([schema.Problem("*", rule)], source)
        if len(given) == 0:
            raise schema.SchemaError([schema.Problem("*", "no customers given")], source)
        if given.records is None or len(given.records) > _QUICK_ROWS or not quick_valid(given.records):
            schema.validate(
                given.frame,
                require_target=False,
                require_id=False,
                allow_extra=False,
                source=source,
                row_offset=1,
            )
            given.records = None
        return given

    def _transform(self, given: _Customers) -> np.ndarray:
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
        given: _Customers,
        proba,
        levels,
        latency_ms: float,
        email: str | None = None,
        batch_id: int | None = None,
    ) -> list[int]:
        """Write valid predictions to the prediction log (into an open batch, if given); return their
        ids (small inputs only)."""
        from churn.monitoring.store import PredictionRecord

        store = self._open_store()
        meta = {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "latency_ms": float(latency_ms),
        }
        if given.records is not None:
            items = [
                PredictionRecord(
                    features=_typed(rec),
                    probability=float(p),
                    risk_level=str(level),
                    email_source=email,
                    customer_id=_customer_id(rec.get(schema.ID)),
                    **meta,
                )
                for rec, p, level in zip(given.records, proba, levels, strict=True)
            ]
            return store.log(items)
        results = pd.DataFrame(
            {
                "probability": np.asarray(proba, dtype="float64"),
                "risk_level": np.asarray(levels, dtype=object),
            }
        )
        for key, value in meta.items():
            results[key] = value
        if email is not None:
            results["email_source"] = email
        if schema.ID in given.frame.columns:
            results["customer_id"] = [_customer_id(v) for v in given.frame[schema.ID]]
        typed = data.coerce_features(given.X.reset_index(drop=True))
        return store.log_frame(typed, results, return_ids=False, batch_id=batch_id)

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
        self, customers: pd.DataFrame | Sequence[dict] | dict, log: bool | None = None
    ) -> pd.DataFrame:
        """Validated customers in, their columns plus `churn_probability` and `risk_level` out.

        Raises `SchemaError` (naming field and rule) for bad input; nothing is logged then.
        Logged ids are in `result.attrs["prediction_ids"]`.
        """
        start = time.perf_counter()
        given = self._validated(customers, "customers")
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
        check_columns(df)
        reasons = schema.row_problems(df)
        bad = np.zeros(len(df), dtype=bool)
        if reasons:
            bad[list(reasons)] = True
        rejects = df.iloc[np.flatnonzero(bad)].copy()
        rejects.insert(0, REASON, ["; ".join(reasons[p]) for p in np.flatnonzero(bad)])
        rejects.insert(0, ROW, np.flatnonzero(bad))
        good = df.iloc[np.flatnonzero(~bad)] if reasons else df
        out = good.copy()
        if len(good):
            X = good[list(schema.FEATURES)]
            if self._compiled is not None:
                Xt = self._compiled.transform_frame(X)
            else:
                Xt = self._preprocess.transform(X)
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
                self._log(_Customers(None, good), proba, levels, latency, batch_id=batch_id)
        else:
            out[PROBABILITY] = pd.Series(dtype="float64")
            out[RISK] = pd.Series(dtype=object)
        return out, rejects

    def _shap_columns(self, X: pd.DataFrame, Xt: np.ndarray) -> pd.DataFrame:
        att = self.explainer.attribute_matrix(Xt)
        cols = {"top_reasons": explain.top_reasons(att, X, self.settings.top_reasons)}
        cols["shap_base"] = np.full(len(X), att.base_probability)
        for j, name in enumerate(schema.FEATURES):
            cols[f"shap_{name}"] = att.points[:, j] / 100
        return pd.DataFrame(cols, index=X.index)

    def _one(self, customer: dict | pd.DataFrame) -> _Customers:
        given = self._validated(customer, "customer")
        if len(given) != 1:
            raise ValueError(f"customer: expected one customer, got {len(given)}")
        return given

    def _explain(self, given: _Customers) -> explain.Explanation:
        with _threads_for(1):
            Xt = self._transform(given)
            att = self.explainer.attribute_matrix(Xt, self._proba(Xt))
        return explain.explanation_from(att, 0, given.values(), top=self.settings.top_reasons)

    def _actions(self, given: _Customers) -> list[retention.Action]:
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
        X = self.background() if customers is None else self._validated(customers, "customers").X
        return self.explainer.global_importance(X)

    def actions(self, customer: dict | pd.DataFrame) -> list[retention.Action]:
        """Retention what-ifs for one customer, re-scored by the model, biggest risk reduction first."""
        return self._actions(self._one(customer))

    def email(
        self,
        customer: dict | pd.DataFrame,
        explanation: explain.Explanation | None = None,
        actions: list[retention.Action] | None = None,
    ) -> retention.Email:
        """The retention email for one customer (Groq, or the template; `source` says which and why)."""
        given = self._one(customer)
        explanation = explanation or self._explain(given)
        actions = self._actions(given) if actions is None else actions
        return self._write_email(given.values(), explanation, actions)

    def _write_email(self, values: dict[str, Any], explanation, actions) -> retention.Email:
        level = str(risk_levels([explanation.probability], self.settings)[0])
        top = explanation.drivers(self.settings.top_reasons)
        drivers = [(f, explain.sentence(f, explanation.customer.get(f), p)) for f, p in top]
        facts = retention.email_facts(values, explanation.probability, level, drivers, actions)
        return retention.write_email(facts, self.retention)

    def prepare(self, customer: dict | pd.DataFrame) -> Assessment:
        """Prediction, explanation and actions for one customer, logged at once (no email yet).

        What a face shows first; `complete` then writes the email and records its source in the
        same log row. Raises `SchemaError` for bad input (nothing logged then).
        """
        start = time.perf_counter()
        given = self._one(customer)
        explanation = self._explain(given)
        actions = self._actions(given)
        level = str(risk_levels([explanation.probability], self.settings)[0])
        latency = 1000 * (time.perf_counter() - start)
        ids = self._log(given, [explanation.probability], [level], latency) if self.log_enabled else []
        return Assessment(
            customer=given.values(),
            probability=explanation.probability,
            risk_level=level,
            explanation=explanation,
            actions=actions,
            prediction_id=ids[0] if ids else None,
            latency_ms=latency,
            model_name=self.model_name,
            model_version=self.model_version,
        )

    def complete(self, assessment: Assessment) -> Assessment:
        """A prepared assessment with its retention email, the email's source recorded in the log.

        Never raises for LLM faults and takes at most `retention.email_budget_seconds` (+ slack):
        any fault gives the template email with its reason (`churn.retention.write_email`).
        """
        if assessment.email is not None:
            return assessment
        start = time.perf_counter()
        email = self._write_email(assessment.customer, assessment.explanation, assessment.actions)
        email_ms = 1000 * (time.perf_counter() - start)
        if assessment.prediction_id is not None and self.log_enabled:
            self._open_store().set_email_source(assessment.prediction_id, email.label)
        return dataclasses.replace(assessment, email=email, email_ms=email_ms)

    def assess(self, customer: dict | pd.DataFrame) -> Assessment:
        """Prediction + explanation + actions + email for one customer, logged once with its email source."""
        return self.complete(self.prepare(customer))


def check_columns(df: pd.DataFrame, source: str = "input") -> None:
    """Raise SchemaError when a feature column is missing, unexpected or repeated (whole-file problems)."""
    problems = [schema.Problem(c, "is missing (required column)") for c in schema.FEATURES if c not in df]
    known = set(schema.COLUMNS)
    problems += [
        schema.Problem(str(c), "is not a Telco column (unexpected)") for c in df.columns if c not in known
    ]
    dup = df.columns[df.columns.duplicated()].tolist()
    problems += [schema.Problem(str(c), "appears more than once in the header") for c in dup]
    if problems:
        raise schema.SchemaError(problems, source)
