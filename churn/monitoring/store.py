"""The prediction log: predictions (19 typed feature columns), outcomes and alerts, via SQLAlchemy."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import StaticPool

from churn import schema
from churn.io import pid_alive
from churn.monitoring import drift

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///predictions.db"
RISK_LEVELS = ("Low", "Medium", "High")
#: Milliseconds a SQLite writer waits for another writer's lock before giving up.
CREATE_ATTEMPTS = 8  # concurrent first start-ups race to create the tables
SQLITE_BUSY_MS = 30_000
#: Page cache per SQLite connection (KiB): the feature indexes stay in memory while logging and reading.
SQLITE_CACHE_KB = 65_536
_MAX_ID = 2**63 - 1
#: Customer ids per IN (…) lookup.
BATCH_ROWS = 1_000
MAX_TEXT = 200

metadata = sa.MetaData()


def _feature_column(name: str) -> sa.Column:
    if name in schema.CATEGORICAL:
        return sa.Column(name, sa.String(32), nullable=False, index=True)
    if schema.NUMERIC[name][2]:
        return sa.Column(name, sa.Integer, nullable=False, index=True)
    # TotalCharges may be NULL: a first-month customer (tenure 0) has not been billed yet.
    return sa.Column(name, sa.Float, nullable=name == "TotalCharges")


predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("customer_id", sa.String(64), nullable=True, index=True),
    sa.Column("model_name", sa.String(MAX_TEXT), nullable=False),
    sa.Column("model_version", sa.String(MAX_TEXT), nullable=False, default=""),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("risk_level", sa.String(8), nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False, default=0.0),
    sa.Column("email_source", sa.String(MAX_TEXT), nullable=True),
    *(_feature_column(name) for name in schema.FEATURES),
    # The file batch a row was logged in (NULL: a single prediction). Readers see a batch's rows only
    # once the batch is committed (`batches`, `committed_rows`). Added in place to older logs.
    sa.Column("batch_id", sa.Integer, nullable=True),
)
_BATCH_ROWS_INDEX = sa.Index(
    "ix_predictions_batch_id",
    predictions.c.batch_id,
    sqlite_where=predictions.c.batch_id.is_not(None),
    postgresql_where=predictions.c.batch_id.is_not(None),
)

#: Numeric columns of the log and the drift grid each is counted on (`drift.GRID`).
GRID_COLUMNS = {
    **{c: drift.GRID[c] for c in schema.NUMERIC_FEATURES},
    "probability": drift.GRID[drift.PREDICTION],
}


def grid_key(name: str) -> sa.ColumnElement[int]:
    """The column's value as a whole number of grid steps, floor(value · scale + ½) as in
    `drift.grid_keys`; the same SQL text in the index and the query, so the index answers it."""
    col = predictions.c[name]
    if name in schema.NUMERIC and schema.NUMERIC[name][2]:
        return col
    scale = drift.grid_scale(GRID_COLUMNS[name])
    shifted = (col if scale == 1 else col * sa.literal_column(str(scale))) + sa.literal_column("0.5")
    return _FloorInt(shifted)


class _FloorInt(sa.sql.functions.FunctionElement):
    """floor(x) as a whole number, in each database's own words (one expression for index and query)."""

    type = sa.BigInteger()
    name = "floor_int"
    inherit_cache = True


@compiles(_FloorInt)
def _floor_int(element: _FloorInt, compiler: Any, **kw: Any) -> str:
    return f"CAST(FLOOR({compiler.process(element.clauses, **kw)}) AS BIGINT)"


@compiles(_FloorInt, "sqlite")
def _floor_int_sqlite(element: _FloorInt, compiler: Any, **kw: Any) -> str:
    # values are never negative, so truncation is floor (SQLite has FLOOR only with its math extension)
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


# Every feature is indexed — whole-number and text columns directly, the others by their grid key
# (plus the column, so the index covers the query): drift counts a window by GROUP BY, which an
# index answers by reading itself in order (no sort, no table rows), keeping 1M-row windows fast.
for _name in GRID_COLUMNS:
    if not (_name in schema.NUMERIC and schema.NUMERIC[_name][2]):
        sa.Index(f"ix_predictions_{_name}_grid", grid_key(_name), predictions.c[_name])

outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("customer_id", sa.String(64), nullable=False, index=True),
    sa.Column("churned", sa.Boolean, nullable=False),
    sa.Column("outcome_date", sa.Date, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
)

#: A batch's life: open (rows being written, hidden) → committed (visible), or → discarding (rows
#: being deleted, hidden) → discarded (no rows left).
BATCH_OPEN = "open"
BATCH_COMMITTED = "committed"
BATCH_DISCARDING = "discarding"
BATCH_DISCARDED = "discarded"
HIDDEN_STATUSES = (BATCH_OPEN, BATCH_DISCARDING)
#: An open batch whose writer has not written for this long is taken for dead (killed on another host).
STALE_BATCH_S = 3600
#: Rows deleted per transaction when a batch is discarded (short write locks for other writers).
DELETE_ROWS = 5_000

batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("model_name", sa.String(MAX_TEXT), nullable=False),
    sa.Column("model_version", sa.String(MAX_TEXT), nullable=False),
    sa.Column("source", sa.String(MAX_TEXT), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("committed_at", sa.DateTime, nullable=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
)
_committed = batches.c.status == BATCH_COMMITTED
# One committed batch per (file, model): a concurrent rerun of the same file fails here, not twice in the log.
sa.Index(
    "ux_batches_file_model",
    batches.c.sha256,
    batches.c.model_name,
    batches.c.model_version,
    unique=True,
    sqlite_where=_committed,
    postgresql_where=_committed,
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("feature", sa.String(64), nullable=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("window", sa.String(MAX_TEXT), nullable=False, default=""),
)


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


@dataclass(frozen=True)
class Batch:
    """A file's predictions logged together, visible to readers only once `status` is committed.

    Keyed by the file's SHA-256 and the model (name, version): one committed batch per key.
    """

    id: int
    sha256: str
    model_name: str
    model_version: str
    source: str
    status: str
    n_rows: int
    started_at: datetime
    committed_at: datetime | None = None


class DuplicateBatch(RecordError):
    """The same file was already logged with the same model (`previous`); nothing more was logged."""

    def __init__(self, previous: Batch):
        super().__init__(f"already logged as batch {previous.id}")
        self.previous = previous


@dataclass
class BatchLog:
    """Where a file's predictions go: into `batch` (hidden until committed at the end), or nowhere
    because the same file was logged with the same model before (`previous`)."""

    batch: Batch | None = None
    previous: Batch | None = None
    committed: Batch | None = None

    @property
    def logging(self) -> bool:
        """True while predictions should be logged (into `batch_id`)."""
        return self.batch is not None and self.previous is None

    @property
    def batch_id(self) -> int | None:
        return self.batch.id if self.logging and self.batch else None

    def message(self) -> str:
        """One line for the user: what this run did to the prediction log."""
        if self.previous is not None:
            p = self.previous
            when = f"{p.committed_at:%Y-%m-%d %H:%M} UTC" if p.committed_at else "an earlier run"
            return (
                f"already logged as batch {p.id} on {when} ({p.n_rows:,} predictions, model "
                f"{p.model_name} {p.model_version}): not logged again (scored output written)"
            )
        if self.committed is not None:
            return f"logged {self.committed.n_rows:,} predictions as batch {self.committed.id}"
        return "nothing logged (the batch did not complete)"


@dataclass(frozen=True)
class Window:
    """Which logged predictions to look at: the last `last` rows, and/or `start` ≤ created_at < `end`.

    Times are UTC (naive values are taken as UTC). `model_name` restricts to one model's predictions.
    """

    last: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    model_name: str | None = None

    def __post_init__(self) -> None:
        if self.last is not None and (isinstance(self.last, bool) or int(self.last) < 1):
            raise ValueError(f"window: last must be a positive number of predictions, got {self.last}")
        if self.start and self.end and utc_naive(self.start) >= utc_naive(self.end):
            raise ValueError(f"window: start ({self.start}) must be before end ({self.end})")

    def describe(self) -> str:
        parts = []
        if self.last is not None:
            parts.append(f"last {self.last}")
        if self.start is not None:
            parts.append(f"from {utc_naive(self.start):%Y-%m-%d %H:%M}")
        if self.end is not None:
            parts.append(f"to {utc_naive(self.end):%Y-%m-%d %H:%M}")
        if self.model_name:
            parts.append(f"model {self.model_name}")
        return " ".join(parts) or "all predictions"


@dataclass(frozen=True)
class Selection:
    """A window fixed to SQL conditions on the predictions table (see `PredictionStore.select`)."""

    window: Window
    conds: tuple[sa.ColumnElement[bool], ...]
    n: int
    #: When set, the window is every row but those with id < lo or id > hi (`bounds`): counted as
    #: the whole table minus that small complement, each part the cheapest scan for the database.
    bounds: tuple[int, int] | None = None


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


def default_url() -> str:
    """`CHURN_DB_URL` if set, else a SQLite file `predictions.db` in the current directory."""
    return os.environ.get("CHURN_DB_URL") or DEFAULT_URL


def _make_engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_MS / 1000, "check_same_thread": False}}
    if memory:
        kwargs["poolclass"] = StaticPool
    elif parsed.database:
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
    engine = sa.create_engine(url, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KB}")
        if not memory:
            cur.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: safe against application crashes, one fsync per checkpoint instead of per commit
            cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    return engine


def _check_text(value: Any, name: str, where: str, *, required: bool, limit: int = MAX_TEXT) -> str | None:
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


def _check_number(value: Any, name: str, where: str, lo: float, hi: float) -> float:
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


def _check_numbers(frame: pd.DataFrame, col: str, label: str, lo: float, hi: float) -> pd.Series:
    values = frame[col]
    pos = _first(_not_number(values))
    if pos is None:
        numbers = pd.to_numeric(values).astype("float64")
        pos = _first(~(np.isfinite(numbers) & numbers.between(lo, hi)))
        if pos is None:
            return numbers
    raise RecordError(
        f"prediction record {pos}: {label} must be between {lo:g} and {hi:g}, got {values.iloc[pos]!r}"
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


def _check_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Check the 19 features of a batch (types, then `churn.schema` rules); return them typed."""
    for col in schema.NUMERIC_FEATURES:
        pos = _first(_not_number(frame[col]))
        if pos is not None:
            raise RecordError(
                f"prediction record {pos}: feature {col} must be a number, got {frame[col].iloc[pos]!r}"
            )
    problems = schema.row_problems(frame)
    if problems:
        pos = min(problems)
        raise RecordError(f"prediction record {pos}: feature {'; '.join(problems[pos])}")
    out = pd.DataFrame(index=frame.index)
    for col in schema.FEATURES:
        if col in schema.CATEGORICAL:
            out[col] = frame[col].astype(str).astype(object)
        elif schema.NUMERIC[col][2]:
            out[col] = pd.to_numeric(frame[col]).astype("int64")
        else:
            out[col] = pd.to_numeric(frame[col]).astype("float64")
    return out


def validated_batch(
    features: pd.DataFrame, results: pd.DataFrame, now: datetime | None = None
) -> pd.DataFrame:
    """Check a batch against every rule of the log; return the typed rows to insert.

    Raises `RecordError` naming the first bad record (by position), its field and the rule.
    Records without `created_at` get `now` (default: the current UTC time).
    """
    if len(features) != len(results):
        raise RecordError(
            f"features ({len(features)} rows) and results ({len(results)} rows) differ in length"
        )
    missing = [c for c in schema.FEATURES if c not in features.columns]
    if missing:
        raise RecordError(f"features: missing column(s) {missing} (the 19 Telco features are required)")
    unknown = sorted(set(results.columns) - set(RESULT_FIELDS))
    needed = [c for c in ("probability", "risk_level", "model_name") if c not in results.columns]
    if unknown or needed:
        raise RecordError(
            f"results: unknown column(s) {unknown} / missing {needed}; allowed: {list(RESULT_FIELDS)}"
        )
    feats = features[list(schema.FEATURES)].reset_index(drop=True)
    res = results.reset_index(drop=True)
    out = _check_features(feats)
    out["probability"] = _check_numbers(res, "probability", "probability", 0.0, 1.0)
    risk = res["risk_level"]
    pos = _first(~risk.isin(RISK_LEVELS))
    if pos is not None:
        raise RecordError(
            f"prediction record {pos}: risk_level must be one of {list(RISK_LEVELS)}, got {risk.iloc[pos]!r}"
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
    out["created_at"] = _check_times(res, utc_naive(now))
    return out


def _records_batch(records: Sequence[PredictionRecord]) -> tuple[pd.DataFrame, pd.DataFrame]:
    feats, fields = [], []
    for pos, rec in enumerate(records):
        if not isinstance(rec, PredictionRecord):
            raise RecordError(
                f"prediction record {pos}: must be a PredictionRecord, got {type(rec).__name__}"
            )
        if not isinstance(rec.features, dict):
            raise RecordError(f"prediction record {pos}: features must be a dict of the 19 Telco features")
        missing = [c for c in schema.FEATURES if c not in rec.features]
        extra = [c for c in rec.features if c not in schema.FEATURES]
        if missing or extra:
            what = f"missing {missing}" if missing else f"unknown {extra}"
            raise RecordError(
                f"prediction record {pos}: features {what} (the 19 Telco features are required)"
            )
        feats.append(rec.features)
        fields.append({name: getattr(rec, name) for name in RESULT_FIELDS})
    frame = pd.DataFrame(feats, columns=list(schema.FEATURES))
    results = pd.DataFrame(fields, columns=list(RESULT_FIELDS))
    return frame.astype(object).where(frame.notna(), None), results.astype(object)


#: Batches up to this size are checked in plain Python (fast for single predictions); anything the
#: quick check doubts goes through `validated_batch`, which names the exact field and rule.
QUICK_ROWS = 16
_FEATURE_SET = frozenset(schema.FEATURES)


def _fields(rec: PredictionRecord) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in RESULT_FIELDS}


def _plain_number(v: Any, lo: float, hi: float) -> float | None:
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number):
        return None
    x = float(v)
    return x if math.isfinite(x) and lo <= x <= hi else None


def _plain_text(v: Any, required: bool, limit: int = MAX_TEXT) -> tuple[bool, str | None]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return not required, None
    ok = isinstance(v, str) and len(v) <= limit and (not required or bool(v.strip()))
    return ok, v if ok else None


def _quick_rows(
    feats: list[dict[str, Any]], fields: list[dict[str, Any]], now: datetime
) -> list[dict[str, Any]] | None:
    """Rows to insert if every record is plainly valid, else None (then the full check decides)."""
    rows = []
    for f, r in zip(feats, fields, strict=True):
        if not isinstance(f, dict) or f.keys() != _FEATURE_SET:
            return None
        row: dict[str, Any] = {}
        for col, levels in schema.CATEGORICAL.items():
            if not (isinstance(f[col], str) and f[col] in levels):
                return None
            row[col] = f[col]
        for col, (lo, hi, whole) in schema.NUMERIC.items():
            x = _plain_number(f[col], lo, hi)
            if x is None:
                blank = f[col] is None or (isinstance(f[col], float) and math.isnan(f[col]))
                if col == "TotalCharges" and blank and row.get("tenure") == 0:
                    row[col] = None
                    continue
                return None
            if whole and x != int(x):
                return None
            row[col] = int(x) if whole else x
        p = _plain_number(r.get("probability"), 0.0, 1.0)
        latency = _plain_number(r.get("latency_ms", 0.0) or 0.0, 0.0, math.inf)
        texts = [
            _plain_text(r.get("model_name"), True),
            _plain_text(r.get("model_version"), False),
            _plain_text(r.get("email_source"), False),
            _plain_text(r.get("customer_id"), False, 64),
        ]
        stamp = r.get("created_at")
        if (
            p is None
            or latency is None
            or r.get("risk_level") not in RISK_LEVELS
            or not all(t[0] for t in texts)
        ):
            return None
        if stamp is not None and not isinstance(stamp, datetime):
            return None
        row.update(
            probability=p,
            risk_level=r["risk_level"],
            model_name=texts[0][1],
            model_version=texts[1][1] or "",
            email_source=texts[2][1],
            customer_id=texts[3][1],
            latency_ms=latency,
            created_at=utc_naive(stamp) if stamp is not None else now,
        )
        rows.append(row)
    return rows


class PredictionStore:
    """The prediction log in any SQLAlchemy database (SQLite in WAL mode by default).

    Writes are one transaction each, so concurrent writer threads and processes never lose or
    duplicate a row; bad records raise `RecordError` and nothing of their batch is written.
    """

    def __init__(self, url: str | None = None, clock: Callable[[], datetime] | None = None):
        self.url = url or default_url()
        #: Time given to records without `created_at` (UTC). Traffic replay sets a simulated clock.
        self.clock = clock
        self.engine = _make_engine(self.url)
        self.dialect = self.engine.dialect.name
        for attempt in range(CREATE_ATTEMPTS):
            try:
                metadata.create_all(self.engine)
                self._add_missing_columns()
                break
            except (OperationalError, ProgrammingError):
                # Another process created a table or index between our check and our CREATE
                # (several tables, so this can happen more than once): check again.
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def __repr__(self) -> str:
        return f"PredictionStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def _add_missing_columns(self) -> None:
        """Bring a log created by an older version up to date: add the columns it lacks (nullable,
        additive only — no migration tool yet) and their indexes. Idempotent."""
        have = {c["name"] for c in sa.inspect(self.engine).get_columns(predictions.name)}
        missing = [c for c in predictions.c if c.name not in have]
        if not missing:
            return
        dialect = self.engine.dialect
        with self.engine.begin() as conn:  # one transaction: the column comes with its index
            for col in missing:
                kind = col.type.compile(dialect=dialect)
                conn.exec_driver_sql(f"ALTER TABLE {predictions.name} ADD COLUMN {col.name} {kind}")
            conn.execute(sa.schema.CreateIndex(_BATCH_ROWS_INDEX, if_not_exists=True))
        log.info("prediction log: added column(s) %s", [c.name for c in missing])

    def now(self) -> datetime:
        """The current time of this log (the `clock`, else the real UTC time), naive UTC."""
        return utc_naive(self.clock() if self.clock else None)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- predictions -------------------------------------------------------------------------

    def log(self, records: Sequence[PredictionRecord]) -> list[int]:
        """Validate and insert `records` in one transaction; return their ids in order."""
        records = list(records)
        if not records:
            return []
        if len(records) <= QUICK_ROWS and all(isinstance(r, PredictionRecord) for r in records):
            rows = _quick_rows([r.features for r in records], [_fields(r) for r in records], self.now())
            if rows is not None:
                return self._insert(rows)
        return self._insert_batch(validated_batch(*_records_batch(records), now=self.now()))

    def log_frame(
        self,
        features: pd.DataFrame,
        results: pd.DataFrame,
        *,
        return_ids: bool = True,
        batch_id: int | None = None,
    ) -> list[int]:
        """Bulk form of `log`: the 19 feature columns, and a frame of the records' other fields.

        `results` needs `probability`, `risk_level` and `model_name` and may carry `model_version`,
        `latency_ms`, `email_source`, `customer_id` and `created_at`. `return_ids=False` skips
        returning ids (the fast path for bulk loads: ~10x faster on SQLite). With `batch_id` (an
        open batch, `open_batch`) the rows stay hidden from every reader until the batch is committed.
        """
        if batch_id is not None and (isinstance(batch_id, bool) or not isinstance(batch_id, int)):
            raise RecordError(f"batch_id must be a batch number, got {batch_id!r}")
        if len(features) == 0 and len(results) == 0:
            return []
        if (
            len(features) <= QUICK_ROWS
            and len(features) == len(results)
            and set(results) <= set(RESULT_FIELDS)
        ):
            feats = features[[c for c in schema.FEATURES if c in features]].to_dict("records")
            rows = _quick_rows(feats, results.to_dict("records"), self.now())
            if rows is not None:
                return self._insert(rows, return_ids=return_ids, batch_id=batch_id)
        batch = validated_batch(features, results, now=self.now())
        return self._insert_batch(batch, return_ids=return_ids, batch_id=batch_id)

    def _insert_batch(
        self, batch: pd.DataFrame, return_ids: bool = True, batch_id: int | None = None
    ) -> list[int]:
        columns = list(batch.columns)
        values = [batch[c].astype(object).where(batch[c].notna(), None).tolist() for c in columns]
        if return_ids:
            rows = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
            return self._insert(rows, batch_id=batch_id)
        if batch_id is not None:
            columns.append("batch_id")
            values.append([batch_id] * len(batch))
        with self.engine.begin() as conn:
            self._touch_batch(conn, batch_id, len(batch))
            self._insert_fast(conn, columns, values)
        log.debug("logged %d prediction(s)", len(batch))
        return []

    def _insert(
        self, rows: list[dict[str, Any]], return_ids: bool = True, batch_id: int | None = None
    ) -> list[int]:
        if batch_id is not None:
            rows = [{**row, "batch_id": batch_id} for row in rows]
        with self.engine.begin() as conn:
            self._touch_batch(conn, batch_id, len(rows))
            if not return_ids:
                conn.execute(predictions.insert(), rows)
                return []
            stmt = predictions.insert().returning(predictions.c.id, sort_by_parameter_order=True)
            ids = [int(row[0]) for row in conn.execute(stmt, rows)]
        log.debug("logged %d prediction(s)", len(ids))
        return ids

    def _insert_fast(self, conn: sa.Connection, columns: list[str], values: list[list[Any]]) -> None:
        """DBAPI executemany with the dialect's own bind processing (no per-row SQLAlchemy work)."""
        dialect = self.engine.dialect
        for i, col in enumerate(columns):
            process = predictions.c[col].type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                values[i] = [process(v) for v in values[i]]
        compiled = predictions.insert().compile(dialect=dialect, column_keys=columns)
        if dialect.positional:
            order = [columns.index(name) for name in compiled.positiontup]
            params: list[Any] = list(zip(*(values[i] for i in order), strict=True))
        else:
            params = [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]
        for start in range(0, len(params), 50_000):
            conn.exec_driver_sql(compiled.string, params[start : start + 50_000])

    def set_email_source(self, prediction_id: int, source: str) -> None:
        """Record which writer produced the retention email of a logged prediction."""
        _check_text(source, "email_source", f"prediction {prediction_id}", required=True)
        with self.engine.begin() as conn:
            done = conn.execute(
                predictions.update().where(predictions.c.id == int(prediction_id)).values(email_source=source)
            )
            if done.rowcount != 1:
                raise RecordError(f"prediction {prediction_id}: no such prediction in the log")

    # -- batches: a file's predictions, all or nothing, once per (file, model) -------------------

    @contextlib.contextmanager
    def logging_batch(
        self, sha256: str, model_name: str, model_version: str = "", source: str = ""
    ) -> Iterator[BatchLog]:
        """Log one file's predictions as one batch: `log_frame(..., batch_id=entry.batch_id)` while
        `entry.logging`; the rows become visible when the block ends without error, and are deleted
        when it raises (or, after a kill, by the next `open_batch`). A file already logged with the
        same model is not logged again: `entry.previous` is that batch and `entry.logging` is False.
        """
        entry = BatchLog(previous=self.find_batch(sha256, model_name, model_version))
        if entry.previous is not None:
            yield entry
            return
        entry.batch = self.open_batch(sha256, model_name, model_version, source)
        try:
            yield entry
        except BaseException:
            try:
                self.discard_batch(entry.batch.id)
            except Exception as exc:  # the next open_batch sweeps it; the original error matters more
                log.warning("batch %d: could not discard its rows now (%s)", entry.batch.id, exc)
            raise
        try:
            entry.committed = self.commit_batch(entry.batch.id)
        except DuplicateBatch as exc:  # a concurrent run of the same file committed first
            entry.previous = exc.previous

    def find_batch(self, sha256: str, model_name: str, model_version: str = "") -> Batch | None:
        """The committed batch of this file (SHA-256 of its bytes) and model, if any."""
        b = batches.c
        stmt = sa.select(batches).where(
            b.sha256 == sha256, b.model_name == model_name, b.model_version == model_version, _committed
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
        return _batch(row) if row else None

    def get_batch(self, batch_id: int) -> Batch:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(batches).where(batches.c.id == int(batch_id))).mappings().first()
        if row is None:
            raise RecordError(f"batch {batch_id}: no such batch in the log")
        return _batch(row)

    def open_batch(self, sha256: str, model_name: str, model_version: str = "", source: str = "") -> Batch:
        """Start a batch (its rows hidden until `commit_batch`); first discard batches of dead writers."""
        where = "batch"
        if not (
            isinstance(sha256, str) and len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256)
        ):
            raise RecordError(f"{where}: sha256 must be 64 lowercase hex digits, got {sha256!r}")
        _check_text(model_name, "model_name", where, required=True)
        _check_text(model_version, "model_version", where, required=False)
        source = (_check_text(source, "source", where, required=False, limit=10_000) or "")[-MAX_TEXT:]
        self.sweep_batches()
        now = utc_naive(None)
        row = {
            "sha256": sha256,
            "model_name": model_name,
            "model_version": model_version or "",
            "source": source,
            "status": BATCH_OPEN,
            "n_rows": 0,
            "started_at": now,
            "updated_at": now,
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
        }
        with self.engine.begin() as conn:
            batch_id = conn.execute(batches.insert().returning(batches.c.id), row).scalar_one()
        log.debug("opened batch %d for %s", batch_id, source or sha256[:12])
        return self.get_batch(batch_id)

    def _touch_batch(self, conn: sa.Connection, batch_id: int | None, n: int) -> None:
        """Count `n` more rows into an open batch (its heartbeat), in the transaction inserting them."""
        if batch_id is None:
            return
        done = conn.execute(
            batches.update()
            .where(batches.c.id == batch_id, batches.c.status == BATCH_OPEN)
            .values(n_rows=batches.c.n_rows + n, updated_at=utc_naive(None))
        )
        if done.rowcount != 1:
            raise RecordError(f"batch {batch_id} is not open for logging (committed, discarded or unknown)")

    def commit_batch(self, batch_id: int) -> Batch:
        """Make an open batch's rows visible, in one statement; return it.

        Raises `DuplicateBatch` (and discards this batch's rows) when the same file and model were
        committed meanwhile by another run.
        """
        now = utc_naive(None)
        b = batches.c
        try:
            with self.engine.begin() as conn:
                done = conn.execute(
                    batches.update()
                    .where(b.id == int(batch_id), b.status == BATCH_OPEN)
                    .values(status=BATCH_COMMITTED, committed_at=now, updated_at=now)
                )
                if done.rowcount != 1:
                    raise RecordError(f"batch {batch_id} is not open: nothing to commit")
        except IntegrityError:
            mine = self.get_batch(batch_id)
            previous = self.find_batch(mine.sha256, mine.model_name, mine.model_version)
            self.discard_batch(batch_id)
            if previous is None:  # pragma: no cover - the unique index names a committed twin
                raise
            raise DuplicateBatch(previous) from None
        committed = self.get_batch(batch_id)
        log.info("batch %d committed: %d prediction(s) from %s", batch_id, committed.n_rows, committed.source)
        return committed

    def discard_batch(self, batch_id: int) -> int:
        """Delete an uncommitted batch's rows, a few thousand per transaction; return how many.

        The batch is hidden throughout and ends `discarded`. Committed batches are refused.
        """
        b = batches.c
        with self.engine.begin() as conn:
            status = conn.execute(sa.select(b.status).where(b.id == int(batch_id))).scalar_one_or_none()
            if status is None:
                raise RecordError(f"batch {batch_id}: no such batch in the log")
            if status == BATCH_COMMITTED:
                raise RecordError(f"batch {batch_id} is committed: its predictions stay in the log")
            if status == BATCH_DISCARDED:
                return 0
            conn.execute(
                batches.update()
                .where(b.id == int(batch_id))
                .values(status=BATCH_DISCARDING, updated_at=utc_naive(None))
            )
        deleted = 0
        t = predictions.c
        while True:
            with self.engine.begin() as conn:
                ids = (
                    conn.execute(sa.select(t.id).where(t.batch_id == int(batch_id)).limit(DELETE_ROWS))
                    .scalars()
                    .all()
                )
                if ids:
                    conn.execute(predictions.delete().where(t.id.in_(ids)))
                    conn.execute(
                        batches.update().where(b.id == int(batch_id)).values(updated_at=utc_naive(None))
                    )
            deleted += len(ids)
            if len(ids) < DELETE_ROWS:
                break
        with self.engine.begin() as conn:
            conn.execute(
                batches.update()
                .where(b.id == int(batch_id), b.status == BATCH_DISCARDING)
                .values(status=BATCH_DISCARDED, updated_at=utc_naive(None))
            )
        log.info("batch %d discarded: %d uncommitted prediction(s) deleted", batch_id, deleted)
        return deleted

    def sweep_batches(self, stale_after_s: float = STALE_BATCH_S) -> list[int]:
        """Discard the batches of dead writers: their process on this host has ended (e.g. killed), or
        they have not written for `stale_after_s` seconds. Returns their ids."""
        b = batches.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(b.id, b.host, b.pid, b.updated_at).where(b.status.in_(HIDDEN_STATUSES))
            ).all()
        host, now = socket.gethostname()[:255], utc_naive(None)
        dead = [
            int(r.id)
            for r in rows
            if (r.host == host and not pid_alive(r.pid))
            or (now - r.updated_at).total_seconds() > stale_after_s
        ]
        for batch_id in dead:
            self.discard_batch(batch_id)
        return dead

    def count(self, window: Window | Selection | None = None) -> int:
        """Number of logged predictions (in `window`, if given)."""
        return self.select(window).n

    def select(self, window: Window | Selection | None = None) -> Selection:
        """Fix `window` to concrete row conditions, a snapshot every later query of it agrees on.

        Last-N becomes an id range ending at the newest id now; a time range whose rows form one
        contiguous id range (the normal case: rows are logged in time order) becomes that id range.
        A window holding most of the table is bounded by `id + 0` rather than `id`, so the database
        counts it from the per-feature indexes (no sort, no table read) instead of a primary-key scan.
        Rows of batches not committed at this moment are left out (`committed_rows`), for good.
        """
        if isinstance(window, Selection):
            return window
        window = window or Window()
        t = predictions.c
        filters: list[sa.ColumnElement[bool]] = []
        if window.model_name:
            filters.append(t.model_name == window.model_name)
        times = []
        if window.start is not None:
            times.append(t.created_at >= utc_naive(window.start))
        if window.end is not None:
            times.append(t.created_at < utc_naive(window.end))
        with self.engine.connect() as conn:
            hidden_ids = _hidden_batches(conn)
            hidden = _committed_only(hidden_ids)
            filters += hidden
            first, last = conn.execute(sa.select(sa.func.min(t.id), sa.func.max(t.id))).one()
            lo, hi, n = conn.execute(
                sa.select(sa.func.min(t.id), sa.func.max(t.id), sa.func.count()).where(*filters, *times)
            ).one()
            if n == 0:
                return Selection(window, (sa.false(),), 0)
            if hidden and not _hidden_rows_within(conn, hidden_ids, lo, hi):
                # no uncommitted row lies within [lo, hi]: the id range alone says it (fast paths stay)
                filters = filters[: len(filters) - len(hidden)]
            contiguous = not filters and hi - lo + 1 == n
            conds = filters if contiguous else [*filters, *times]
            if window.last is not None and window.last < n:
                n = int(window.last)
                if contiguous:
                    lo = hi - n + 1
                else:
                    lo = conn.execute(
                        sa.select(t.id).where(*conds, t.id <= hi).order_by(t.id.desc()).limit(1).offset(n - 1)
                    ).scalar_one()
        whole_ids = not conds and (hi - lo + 1) == n
        if whole_ids and self.dialect == "sqlite" and 2 * n >= last - first + 1:
            return Selection(window, (t.id >= lo, t.id <= hi), int(n), bounds=(int(lo), int(hi)))
        return Selection(window, (*conds, t.id >= lo, t.id <= hi), int(n))

    def read(
        self, window: Window | Selection | None = None, columns: Iterable[str] | None = None
    ) -> pd.DataFrame:
        """The window's predictions as a frame, oldest first (for small windows: use `chunks` for big)."""
        return pd.concat(list(self.chunks(window, columns, chunk_rows=None)), ignore_index=True)

    def chunks(
        self,
        window: Window | Selection | None = None,
        columns: Iterable[str] | None = None,
        chunk_rows: int | None = 100_000,
    ) -> Iterable[pd.DataFrame]:
        """Yield the window's predictions in frames of at most `chunk_rows` rows, oldest first."""
        cols = [predictions.c[c] for c in (columns or predictions.c.keys())]
        stmt = sa.select(*cols).where(*self.select(window).conds).order_by(predictions.c.id)
        names = [c.name for c in cols]
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(stmt)
            empty = True
            while True:
                rows = result.fetchmany(chunk_rows) if chunk_rows else result.fetchall()
                if not rows:
                    break
                empty = False
                yield _frame(rows, names)
                if not chunk_rows:
                    break
            if empty:
                yield _frame([], names)

    def numeric_counts(self, column: str, window: Window | Selection | None = None) -> pd.Series:
        """Counts of a numeric column on its drift grid (index: the rounded value), by SQL GROUP BY.

        NULLs are left out. `column` is a numeric feature or "probability".
        """
        if column not in GRID_COLUMNS:
            raise KeyError(f"'{column}' is not a numeric column of the log ({sorted(GRID_COLUMNS)})")
        rows = self._grouped(grid_key(column), predictions.c[column], self.select(window))
        keys = np.array([r[0] for r in rows], dtype="float64")
        scale = drift.grid_scale(GRID_COLUMNS[column])
        return pd.Series([int(r[1]) for r in rows], index=keys / scale, dtype="int64", name=column)

    def level_counts(self, column: str, window: Window | Selection | None = None) -> pd.Series:
        """Counts of each value of a text column in the window, by SQL (NULLs left out)."""
        col = self._column(column)
        rows = self._grouped(col, col, self.select(window))
        return pd.Series({str(r[0]): int(r[1]) for r in rows}, dtype="int64", name=column)

    def _grouped(self, key: sa.ColumnElement, col: sa.Column, selection: Selection) -> list[tuple[Any, int]]:
        """(key, count) pairs of the selection's rows with `col` not NULL, ordered by key.

        A selection with `bounds` is counted as all rows (an index scan, no sort) minus the rows
        before and after the bounds (primary-key range scans), in one statement — one snapshot.
        """
        notnull = col.is_not(None)
        if selection.bounds is None:
            stmt = (
                sa.select(key, sa.func.count()).where(*selection.conds, notnull).group_by(key).order_by(key)
            )
        else:
            lo, hi = selection.bounds
            k, n = key.label("k"), sa.func.count()
            parts = sa.union_all(
                sa.select(k, n.label("n")).where(notnull).group_by(k),
                # two-sided id ranges: the planner reads them by primary key, not by a full index scan
                sa.select(k, (-n).label("n")).where(notnull, predictions.c.id.between(0, lo - 1)).group_by(k),
                sa.select(k, (-n).label("n"))
                .where(notnull, predictions.c.id.between(hi + 1, _MAX_ID))
                .group_by(k),
            ).subquery()
            total = sa.func.sum(parts.c.n)
            stmt = sa.select(parts.c.k, total).group_by(parts.c.k).having(total > 0).order_by(parts.c.k)
        with self.engine.connect() as conn:
            return [(r[0], int(r[1])) for r in conn.execute(stmt)]

    def summarize(self, window: Window | Selection | None = None, workers: int = 2) -> drift.Summary:
        """The window as a `drift.Summary` (19 features and the probability), one GROUP BY per column.

        Queries run on `workers` connections at once; memory stays at a few counts per column
        whatever the window's size.
        """
        selection = self.select(window)
        jobs = [(self.numeric_counts, c) for c in GRID_COLUMNS] + [
            (self.level_counts, c) for c in schema.CATEGORICAL_FEATURES
        ]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(lambda job: job[0](job[1], selection), jobs))
        counts = {s.name: s for s in results}
        numeric = {c: counts[c] for c in schema.NUMERIC_FEATURES}
        numeric[drift.PREDICTION] = counts["probability"]
        categorical = {c: counts[c] for c in schema.CATEGORICAL_FEATURES}
        return drift.Summary(n=selection.n, numeric=numeric, categorical=categorical)

    def _column(self, name: str) -> sa.Column:
        if name not in predictions.c:
            raise KeyError(f"predictions table has no column '{name}'")
        return predictions.c[name]

    def time_bounds(
        self, window: Window | Selection | None = None
    ) -> tuple[datetime | None, datetime | None]:
        """Oldest and newest created_at in the window (None, None when empty)."""
        t = predictions.c
        stmt = sa.select(sa.func.min(t.created_at), sa.func.max(t.created_at))
        with self.engine.connect() as conn:
            lo, hi = conn.execute(stmt.where(*self.select(window).conds)).one()
        return lo, hi

    def bucket_counts(
        self, unit: str, window: Window | Selection | None = None, by: str | None = None
    ) -> pd.DataFrame:
        """Predictions per hour or day (`unit`), optionally split by a column (e.g. risk_level).

        Columns: `bucket` (UTC start of the hour/day as text), [`by`], `n`.
        """
        bucket = self.bucket_expr(unit)
        keys = [bucket] + ([self._column(by)] if by else [])
        stmt = (
            sa.select(*keys, sa.func.count().label("n"))
            .where(*self.select(window).conds)
            .group_by(*keys)
            .order_by(*keys)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return pd.DataFrame(rows, columns=["bucket", *([by] if by else []), "n"])

    def bucket_expr(self, unit: str) -> sa.ColumnElement[str]:
        fmt = {"hour": ("%Y-%m-%d %H:00", "YYYY-MM-DD HH24:00"), "day": ("%Y-%m-%d", "YYYY-MM-DD")}
        if unit not in fmt:
            raise ValueError(f"time unit must be one of {sorted(fmt)}, got {unit!r}")
        col = predictions.c.created_at
        if self.dialect == "sqlite":
            return sa.func.strftime(fmt[unit][0], col).label("bucket")
        if self.dialect == "postgresql":
            return sa.func.to_char(col, fmt[unit][1]).label("bucket")
        return sa.func.date_format(col, fmt[unit][0].replace("%M", "%i")).label("bucket")

    def has_customers(self, customer_ids: Iterable[str]) -> set[str]:
        """Which of `customer_ids` have at least one logged prediction."""
        ids = sorted({str(c) for c in customer_ids})
        found: set[str] = set()
        with self.engine.connect() as conn:
            visible = committed_rows(conn)
            for start in range(0, len(ids), BATCH_ROWS):
                part = ids[start : start + BATCH_ROWS]
                stmt = (
                    sa.select(predictions.c.customer_id)
                    .where(predictions.c.customer_id.in_(part), *visible)
                    .distinct()
                )
                found.update(str(r[0]) for r in conn.execute(stmt))
        return found

    # -- outcomes ----------------------------------------------------------------------------

    def add_outcomes(self, items: Sequence[Outcome], recorded_at: datetime | None = None) -> int:
        """Record outcomes in one transaction; return how many were written."""
        stamp = utc_naive(recorded_at)
        rows = []
        for pos, item in enumerate(items):
            where = f"outcome {pos}"
            cid = _check_text(item.customer_id, "customer_id", where, required=True, limit=64)
            if not isinstance(item.churned, bool | np.bool_):
                raise RecordError(f"{where}: churned must be true or false, got {item.churned!r}")
            if not isinstance(item.outcome_date, date):
                raise RecordError(f"{where}: outcome_date must be a date, got {item.outcome_date!r}")
            day = item.outcome_date.date() if isinstance(item.outcome_date, datetime) else item.outcome_date
            rows.append(
                {"customer_id": cid, "churned": bool(item.churned), "outcome_date": day, "recorded_at": stamp}
            )
        if rows:
            with self.engine.begin() as conn:
                conn.execute(outcomes.insert(), rows)
        return len(rows)

    def read_outcomes(self) -> pd.DataFrame:
        """Every recorded outcome (customer_id, churned, outcome_date, recorded_at), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outcomes).order_by(outcomes.c.id)).all()
        return _frame(rows, list(outcomes.c.keys()))

    def labelled(self, window: Window | Selection | None = None) -> pd.DataFrame:
        """The window's predictions joined to their customer's latest recorded outcome.

        Columns: id, created_at, customer_id, model_name, probability, risk_level, churned (0/1),
        outcome_date. Predictions without an outcome are left out.
        """
        latest = (
            sa.select(outcomes.c.customer_id, sa.func.max(outcomes.c.id).label("oid"))
            .group_by(outcomes.c.customer_id)
            .subquery()
        )
        p = predictions.c
        stmt = (
            sa.select(
                p.id,
                p.created_at,
                p.customer_id,
                p.model_name,
                p.probability,
                p.risk_level,
                outcomes.c.churned,
                outcomes.c.outcome_date,
            )
            .join_from(predictions, latest, latest.c.customer_id == p.customer_id)
            .join(outcomes, outcomes.c.id == latest.c.oid)
            .where(*self.select(window).conds)
            .order_by(p.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        out = _frame(rows, [c.name for c in stmt.selected_columns])
        out["churned"] = out["churned"].astype("int64")
        return out

    # -- alerts ------------------------------------------------------------------------------

    def add_alerts(self, items: Sequence[Alert]) -> list[Alert]:
        """Store alerts in one transaction; return them with their ids and times."""
        stamp = utc_naive(None)
        rows = []
        for pos, item in enumerate(items):
            where = f"alert {pos}"
            row = {
                "created_at": utc_naive(item.created_at) if item.created_at else stamp,
                "kind": _check_text(item.kind, "kind", where, required=True, limit=64),
                "feature": _check_text(item.feature, "feature", where, required=False, limit=64),
                "message": _check_text(item.message, "message", where, required=True, limit=10_000),
                "window": _check_text(item.window, "window", where, required=False) or "",
            }
            for name in ("value", "threshold"):
                number = getattr(item, name)
                row[name] = (
                    None if number is None else _check_number(number, name, where, -math.inf, math.inf)
                )
            rows.append(row)
        if not rows:
            return []
        with self.engine.begin() as conn:
            stmt = alerts.insert().returning(alerts.c.id, sort_by_parameter_order=True)
            ids = [int(r[0]) for r in conn.execute(stmt, rows)]
        return [Alert(id=i, **row) for i, row in zip(ids, rows, strict=True)]

    def read_alerts(self, limit: int | None = 100, kind: str | None = None) -> list[Alert]:
        """Stored alerts, newest first."""
        stmt = sa.select(alerts).order_by(alerts.c.id.desc())
        if kind:
            stmt = stmt.where(alerts.c.kind == kind)
        if limit:
            stmt = stmt.limit(int(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [Alert(**dict(r)) for r in rows]


def _hidden_batches(conn: sa.Connection) -> list[int]:
    """Ids of batches whose rows readers must not see now (open, or being discarded)."""
    stmt = sa.select(batches.c.id).where(batches.c.status.in_(HIDDEN_STATUSES)).order_by(batches.c.id)
    return [int(r[0]) for r in conn.execute(stmt)]


def _committed_only(hidden_ids: Sequence[int]) -> list[sa.ColumnElement[bool]]:
    if not hidden_ids:
        return []
    col = predictions.c.batch_id
    return [sa.or_(col.is_(None), col.not_in(list(hidden_ids)))]


def committed_rows(conn: sa.Connection) -> list[sa.ColumnElement[bool]]:
    """The condition every reader of the log applies: single predictions and committed batches only.

    [] when no batch is open or being discarded (the normal case: every row counts, at full speed).
    Batches hidden now stay hidden in every query built from the result, even once committed.
    """
    return _committed_only(_hidden_batches(conn))


def _hidden_rows_within(conn: sa.Connection, hidden_ids: Sequence[int], lo: int, hi: int) -> bool:
    """Whether a row of a hidden batch has an id in [lo, hi] (a range scan of the batch_id index)."""
    t = predictions.c
    stmt = sa.select(t.id).where(t.batch_id.in_(list(hidden_ids)), t.id.between(lo, hi)).limit(1)
    return conn.execute(stmt).first() is not None


def _batch(row: Any) -> Batch:
    return Batch(**{f: row[f] for f in Batch.__dataclass_fields__})


def _frame(rows: Sequence[Any], names: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=names)
