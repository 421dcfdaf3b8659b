"""Records of the prediction log (predictions, outcomes, alerts, batches, windows) and their shape checks.

Customer features are checked by `churn.schema` before they get here: predictions of the Predictor
arrive as `Predictions` built from `schema.Customers` and are checked for shape only (columns,
types, NULLs); `features_from`/`frame_from` run schema's rules once for rows from anywhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from churn import schema
from churn.monitoring.tables import MAX_TEXT

#: Fields of a prediction besides its features (columns of `log_frame`'s results frame).
RESULT_FIELDS = (
    "probability",
    "risk_level",
    "model_name",
    "model_version",
    "latency_ms",
    "email_source",
    "customer_id",
    "created_at",
)


class RecordError(ValueError):
    """A prediction, outcome or alert breaks a rule; the message names the record, field and rule."""


@dataclass
class PredictionRecord:
    """One served prediction: the 19 raw features (model-typed values) and what the model said."""

    features: dict[str, Any]
    probability: float
    risk_level: str
    model_name: str
    model_version: str = ""
    latency_ms: float = 0.0
    email_source: str | None = None
    customer_id: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    """What really happened to a customer: churned or not, by `outcome_date`."""

    customer_id: str
    churned: bool
    outcome_date: date


@dataclass(frozen=True)
class Alert:
    """One fired alert; `value` broke `threshold` (both None for alerts without a number)."""

    kind: str
    message: str
    feature: str | None = None
    value: float | None = None
    threshold: float | None = None
    window: str = ""
    created_at: datetime | None = None
    id: int | None = None
    #: When it was posted to the webhook (None: not posted, or held back by the cooldown).
    posted_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        created = self.created_at.isoformat() if self.created_at else None
        return {
            "id": self.id,
            "created_at": created,
            "kind": self.kind,
            "feature": self.feature,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "window": self.window,
        }


def utc_naive(moment: datetime | None) -> datetime:
    """A UTC datetime without tzinfo (how the log stores time); naive input is taken as UTC."""
    if moment is None:
        return datetime.now(UTC).replace(tzinfo=None)
    if isinstance(moment, pd.Timestamp):
        moment = moment.to_pydatetime()
    if not isinstance(moment, datetime):
        raise RecordError(f"created_at must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def check_text(value: Any, name: str, where: str, *, required: bool, limit: int = MAX_TEXT) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if required:
            raise RecordError(f"{where}: {name} is required")
        return None
    if not isinstance(value, str):
        raise RecordError(f"{where}: {name} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise RecordError(f"{where}: {name} must not be blank")
    if len(value) > limit:
        raise RecordError(f"{where}: {name} must be at most {limit} characters")
    return value


def check_number(value: Any, name: str, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise RecordError(f"{where}: {name} must be a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and lo <= number <= hi):
        raise RecordError(f"{where}: {name} must be between {lo:g} and {hi:g}, got {value!r}")
    return number


def _first(mask: pd.Series | np.ndarray) -> int | None:
    hits = np.flatnonzero(np.asarray(mask, dtype=bool))
    return int(hits[0]) if hits.size else None


def _not_number(values: pd.Series) -> pd.Series:
    """True where a value is not a real number (text, bool, objects); None/NaN count as numbers here."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(True, index=values.index)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return pd.Series(False, index=values.index)
    return ~values.map(
        lambda v: v is None or (isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_))
    ).astype(bool)


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value it holds, so messages read `1.2`, not `np.float64(1.2)`."""
    return value.item() if isinstance(value, np.generic) else value


def _check_numbers(frame: pd.DataFrame, col: str, label: str, lo: float, hi: float) -> pd.Series:
    values = frame[col]
    pos = _first(_not_number(values))
    if pos is None:
        numbers = pd.to_numeric(values).astype("float64")
        pos = _first(~(np.isfinite(numbers) & numbers.between(lo, hi)))
        if pos is None:
            return numbers
    raise RecordError(
        f"prediction record {pos}: {label} must be between {lo:g} and {hi:g}, got {_plain(values.iloc[pos])!r}"
    )


def _check_texts(frame: pd.DataFrame, col: str, *, required: bool, limit: int = MAX_TEXT) -> pd.Series:
    values = frame[col].astype(object).where(frame[col].notna(), None)
    is_text = values.map(lambda v: isinstance(v, str)).astype(bool)
    missing = values.isna()
    bad = ~is_text & ~missing
    if required:
        bad |= missing | (is_text & values.map(lambda v: not str(v).strip()).astype(bool))
    bad |= is_text & values.map(lambda v: len(str(v)) > limit).astype(bool)
    pos = _first(bad)
    if pos is not None:
        rule = "must be non-blank text" if required else "must be text or None"
        raise RecordError(
            f"prediction record {pos}: {col} {rule} of at most {limit} characters, got {values.iloc[pos]!r}"
        )
    return values


def _check_times(frame: pd.DataFrame, now: datetime) -> pd.Series:
    if "created_at" not in frame:
        return pd.Series([now] * len(frame), index=frame.index, dtype=object)
    values = frame["created_at"].astype(object)
    try:
        stamps = pd.to_datetime(values.where(values.notna(), None), utc=True)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"prediction record: created_at must be a datetime ({exc})") from exc
    stamps = stamps.dt.tz_localize(None).astype("datetime64[us]")
    return pd.Series(
        [t.to_pydatetime() if not pd.isna(t) else now for t in stamps], index=frame.index, dtype=object
    )


#: Feature columns the log may hold NULL in: a first-month customer (tenure 0) has no TotalCharges yet.
NULLABLE = frozenset({"TotalCharges"})
_FEATURE_SET = frozenset(schema.FEATURES)


@dataclass(frozen=True)
class Predictions:
    """Predictions of customers `churn.schema` accepted, in the log's terms; the store checks shape only.

    `features` holds the 19 model-typed features, one dict per prediction (small inputs) or a
    frame (batches); `results` the other fields (`RESULT_FIELDS`) in the same form. Build it with
    `of` from the `schema.Customers` the features came from, or with `checked` from anything else.
    """

    features: list[dict[str, Any]] | pd.DataFrame
    results: list[dict[str, Any]] | pd.DataFrame

    def __len__(self) -> int:
        return len(self.features)

    @classmethod
    def of(
        cls,
        customers: schema.Customers,
        features: list[dict[str, Any]] | pd.DataFrame,
        results: list[dict[str, Any]] | pd.DataFrame,
    ) -> Predictions:
        """Predictions of validated `customers` (their typed `features`): not checked again."""
        if not isinstance(customers, schema.Customers) or len(customers) != len(features):
            raise RecordError("predictions: features must come from the schema's validated customers")
        return cls(features, results)

    @classmethod
    def checked(
        cls, features: list[dict[str, Any]] | pd.DataFrame, results: list[dict[str, Any]] | pd.DataFrame
    ) -> Predictions:
        """Predictions of customers from outside the Predictor: the schema's row rules run here, once.

        Raises `RecordError` naming the first bad record (by position), its feature and the rule.
        """
        if isinstance(features, pd.DataFrame):
            _check_feature_types(features)
            frame = features
        else:
            for pos, feats in enumerate(features):
                _record_shape(feats, pos)
            if all(schema.valid_record(f) for f in features):
                return cls(features, results)
            frame = pd.DataFrame(features, columns=list(schema.FEATURES))
        problems = schema.row_problems(frame)
        if problems:
            pos = min(problems)
            raise RecordError(f"prediction record {pos}: feature {'; '.join(problems[pos])}")
        return cls(features, results)


def _record_shape(feats: Any, pos: int) -> None:
    if not isinstance(feats, dict):
        raise RecordError(f"prediction record {pos}: features must be a dict of the 19 Telco features")
    if feats.keys() != _FEATURE_SET:
        missing = [c for c in schema.FEATURES if c not in feats]
        what = f"missing {missing}" if missing else f"unknown {[c for c in feats if c not in _FEATURE_SET]}"
        raise RecordError(f"prediction record {pos}: features {what} (the 19 Telco features are required)")
    for col in schema.NUMERIC_FEATURES:
        value = feats[col]
        if value is not None and (
            isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number)
        ):
            raise RecordError(f"prediction record {pos}: feature {col} must be a number, got {value!r}")


def _null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def feature_row(feats: dict[str, Any], pos: int) -> dict[str, Any]:
    """One prediction's features as the log's typed columns; RecordError when the shape is wrong."""
    _record_shape(feats, pos)
    row: dict[str, Any] = {}
    for col in schema.CATEGORICAL_FEATURES:
        if not isinstance(feats[col], str):
            raise RecordError(f"prediction record {pos}: feature {col} must be text, got {feats[col]!r}")
        row[col] = feats[col]
    for col in schema.NUMERIC_FEATURES:
        value = feats[col]
        if _null(value):
            if col not in NULLABLE:
                raise RecordError(f"prediction record {pos}: feature {col}: must be a number")
            row[col] = None
        elif schema.NUMERIC[col][2]:
            if float(value) % 1:
                raise RecordError(f"prediction record {pos}: feature {col} must be a whole number")
            row[col] = int(value)
        else:
            row[col] = float(value)
    return row


def result_row(fields: dict[str, Any], pos: int, now: datetime) -> dict[str, Any]:
    """One prediction's other fields checked and typed (`now` where it has no `created_at`)."""
    where = f"prediction record {pos}"
    unknown = sorted(set(fields) - set(RESULT_FIELDS))
    if unknown:
        raise RecordError(f"results: unknown column(s) {unknown}; allowed: {list(RESULT_FIELDS)}")
    level = fields.get("risk_level")
    if level not in schema.RISK_LEVELS:
        raise RecordError(f"{where}: risk_level must be one of {list(schema.RISK_LEVELS)}, got {level!r}")
    stamp = fields.get("created_at")
    return {
        "probability": check_number(fields.get("probability"), "probability", where, 0.0, 1.0),
        "risk_level": level,
        "model_name": _text_field(fields.get("model_name"), "model_name", where, required=True),
        "model_version": _text_field(fields.get("model_version"), "model_version", where) or "",
        "email_source": _text_field(fields.get("email_source"), "email_source", where),
        "customer_id": _text_field(fields.get("customer_id"), "customer_id", where, limit=64),
        "latency_ms": check_number(fields.get("latency_ms") or 0.0, "latency_ms", where, 0.0, math.inf),
        "created_at": now if stamp is None else utc_naive(stamp),
    }


def _text_field(
    value: Any, col: str, where: str, *, required: bool = False, limit: int = MAX_TEXT
) -> str | None:
    """A text field of a record, with `_check_texts`'s words for the same rule."""
    value = None if _null(value) else value
    ok = (value is None and not required) or (
        isinstance(value, str) and len(value) <= limit and (not required or bool(value.strip()))
    )
    if not ok:
        rule = "must be non-blank text" if required else "must be text or None"
        raise RecordError(f"{where}: {col} {rule} of at most {limit} characters, got {value!r}")
    return value


def insert_rows(predictions: Predictions, now: datetime) -> list[dict[str, Any]]:
    """The rows of record-form predictions, shape-checked and typed, ready to insert."""
    if len(predictions.features) != len(predictions.results):
        raise RecordError(
            f"features ({len(predictions.features)} rows) and results ({len(predictions.results)} rows) differ in length"
        )
    return [
        {**feature_row(f, pos), **result_row(r, pos, now)}
        for pos, (f, r) in enumerate(zip(predictions.features, predictions.results, strict=True))
    ]


def _check_feature_types(features: pd.DataFrame) -> None:
    missing = [c for c in schema.FEATURES if c not in features.columns]
    if missing:
        raise RecordError(f"features: missing column(s) {missing} (the 19 Telco features are required)")
    for col in schema.NUMERIC_FEATURES:
        pos = _first(_not_number(features[col]))
        if pos is not None:
            raise RecordError(
                f"prediction record {pos}: feature {col} must be a number, got {features[col].iloc[pos]!r}"
            )


def insert_frame(predictions: Predictions, now: datetime) -> pd.DataFrame:
    """The rows of frame-form predictions, shape-checked and typed, ready to insert.

    Raises `RecordError` naming the first bad record (by position), its field and the rule.
    Records without `created_at` get `now`.
    """
    features, results = predictions.features, pd.DataFrame(predictions.results)
    if len(features) != len(results):
        raise RecordError(
            f"features ({len(features)} rows) and results ({len(results)} rows) differ in length"
        )
    _check_feature_types(features)
    unknown = sorted(set(results.columns) - set(RESULT_FIELDS))
    needed = [c for c in ("probability", "risk_level", "model_name") if c not in results.columns]
    if unknown or needed:
        raise RecordError(
            f"results: unknown column(s) {unknown} / missing {needed}; allowed: {list(RESULT_FIELDS)}"
        )
    feats = features[list(schema.FEATURES)].reset_index(drop=True)
    res = results.reset_index(drop=True)
    out = pd.DataFrame(index=feats.index)
    for col in schema.FEATURES:
        if col in schema.CATEGORICAL:
            pos = _first(~feats[col].map(lambda v: isinstance(v, str)).astype(bool))
            if pos is not None:
                raise RecordError(
                    f"prediction record {pos}: feature {col} must be text, got {feats[col].iloc[pos]!r}"
                )
            out[col] = feats[col].astype(object)
            continue
        numbers = pd.to_numeric(feats[col]).astype("float64")
        pos = _first(numbers.isna()) if col not in NULLABLE else None
        if pos is not None:
            raise RecordError(f"prediction record {pos}: feature {col}: must be a number")
        if schema.NUMERIC[col][2]:
            pos = _first(numbers % 1 != 0)
            if pos is not None:
                raise RecordError(f"prediction record {pos}: feature {col} must be a whole number")
            out[col] = numbers.astype("int64")
        else:
            out[col] = numbers
    out["probability"] = _check_numbers(res, "probability", "probability", 0.0, 1.0)
    risk = res["risk_level"]
    pos = _first(~risk.isin(schema.RISK_LEVELS))
    if pos is not None:
        raise RecordError(
            f"prediction record {pos}: risk_level must be one of {list(schema.RISK_LEVELS)}, got {risk.iloc[pos]!r}"
        )
    out["risk_level"] = risk.astype(str).astype(object)
    out["model_name"] = _check_texts(res, "model_name", required=True)
    for col, default in (("model_version", ""), ("email_source", None), ("customer_id", None)):
        if col in res:
            texts = _check_texts(res, col, required=False, limit=64 if col == "customer_id" else MAX_TEXT)
            out[col] = texts if default is None else texts.where(texts.notna(), default)
        else:
            out[col] = default
    if "latency_ms" in res:
        out["latency_ms"] = _check_numbers(res, "latency_ms", "latency_ms", 0.0, math.inf)
    else:
        out["latency_ms"] = 0.0
    out["created_at"] = _check_times(res, now)
    return out
