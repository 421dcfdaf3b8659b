"""The prediction log's SQL schema: tables, indexes, the drift grid keys, the engine, visible rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import StaticPool

from churn import schema
from churn.monitoring import distributions
from churn.paths import LAYOUT

DEFAULT_URL = f"sqlite:///{LAYOUT.predictions_db.as_posix()}"
#: Milliseconds a SQLite writer waits for another writer's lock before giving up.
SQLITE_BUSY_MS = 30_000
#: Page cache per SQLite connection (KiB): the feature indexes stay in memory while logging and reading.
SQLITE_CACHE_KB = 65_536
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
BATCH_ROWS_INDEX = sa.Index(
    "ix_predictions_batch_id",
    predictions.c.batch_id,
    sqlite_where=predictions.c.batch_id.is_not(None),
    postgresql_where=predictions.c.batch_id.is_not(None),
)

#: Numeric columns of the log and the drift grid each is counted on (`distributions.GRID`).
GRID_COLUMNS = {
    **{c: distributions.GRID[c] for c in schema.NUMERIC_FEATURES},
    "probability": distributions.GRID[distributions.PREDICTION],
}


def grid_key(name: str) -> sa.ColumnElement[int]:
    """The column's value as a whole number of grid steps, floor(value · scale + ½) as in
    `distributions.grid_keys`; the same SQL text in the index and the query, so the index answers it."""
    col = predictions.c[name]
    if name in schema.NUMERIC and schema.NUMERIC[name][2]:
        return col
    scale = distributions.grid_scale(GRID_COLUMNS[name])
    shifted = (col if scale == 1 else col * sa.literal_column(str(scale))) + sa.literal_column("0.5")
    return floor_int(shifted)


def floor_int(value: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    """floor(`value`) as a whole number in every database (not CAST alone: PostgreSQL's rounds).
    `value` must not be negative (SQLite truncates)."""
    return _FloorInt(value)


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
IS_COMMITTED = batches.c.status == BATCH_COMMITTED
# One committed batch per (file, model): a concurrent rerun of the same file fails here, not twice in the log.
sa.Index(
    "ux_batches_file_model",
    batches.c.sha256,
    batches.c.model_name,
    batches.c.model_version,
    unique=True,
    sqlite_where=IS_COMMITTED,
    postgresql_where=IS_COMMITTED,
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
    # When the alert was delivered to the webhook (NULL: not posted); the cooldown reads it.
    sa.Column("posted_at", sa.DateTime, nullable=True, index=True),
)


def default_url() -> str:
    """`CHURN_DB_URL` if set, else a SQLite file `predictions.db` in the current directory."""
    return os.environ.get("CHURN_DB_URL") or DEFAULT_URL


def make_engine(url: str) -> Engine:
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


def hidden_batches(conn: sa.Connection) -> list[int]:
    """Ids of batches whose rows readers must not see now (open, or being discarded)."""
    stmt = sa.select(batches.c.id).where(batches.c.status.in_(HIDDEN_STATUSES)).order_by(batches.c.id)
    return [int(r[0]) for r in conn.execute(stmt)]


def committed_only(hidden_ids: Sequence[int]) -> list[sa.ColumnElement[bool]]:
    if not hidden_ids:
        return []
    col = predictions.c.batch_id
    return [sa.or_(col.is_(None), col.not_in(list(hidden_ids)))]


def committed_rows(conn: sa.Connection) -> list[sa.ColumnElement[bool]]:
    """The condition every reader of the log applies: single predictions and committed batches only.

    [] when no batch is open or being discarded (the normal case: every row counts, at full speed).
    Batches hidden now stay hidden in every query built from the result, even once committed.
    """
    return committed_only(hidden_batches(conn))


def hidden_rows_within(conn: sa.Connection, hidden_ids: Sequence[int], lo: int, hi: int) -> bool:
    """Whether a row of a hidden batch has an id in [lo, hi] (a range scan of the batch_id index)."""
    t = predictions.c
    stmt = sa.select(t.id).where(t.batch_id.in_(list(hidden_ids)), t.id.between(lo, hi)).limit(1)
    return conn.execute(stmt).first() is not None
