"""Reading the prediction log: windows of predictions, counts by SQL, time series, outcomes, alerts."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from churn import schema
from churn.monitoring import distributions
from churn.monitoring.records import Alert, utc_naive
from churn.monitoring.tables import (
    GRID_COLUMNS,
    alerts,
    committed_only,
    committed_rows,
    floor_int,
    grid_key,
    hidden_batches,
    hidden_rows_within,
    outcomes,
    predictions,
)

#: Above every id (a BIGINT literal: PostgreSQL refuses it as an INTEGER, yet compares the two by index).
_MAX_ID = 2**63 - 1
#: Databases that count a window holding most of the table as the whole table (index-only scans of
#: the per-feature indexes) minus the rest. On PostgreSQL (indexes alone once the table is vacuumed)
#: drift over 1M of 1.05M rows took 2.2-2.5 s this way against 5.3 s scanning the window.
INDEX_ONLY_DIALECTS = ("sqlite", "postgresql")
#: Customer ids per IN (…) lookup.
BATCH_ROWS = 1_000


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


class Queries:
    """The read half of `PredictionStore` (which mixes it in): every query of the log goes through here."""

    engine: Engine
    dialect: str

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
            hidden_ids = hidden_batches(conn)
            hidden = committed_only(hidden_ids)
            filters += hidden
            first, last = conn.execute(sa.select(sa.func.min(t.id), sa.func.max(t.id))).one()
            lo, hi, n = conn.execute(
                sa.select(sa.func.min(t.id), sa.func.max(t.id), sa.func.count()).where(*filters, *times)
            ).one()
            if n == 0:
                return Selection(window, (sa.false(),), 0)
            if hidden and not hidden_rows_within(conn, hidden_ids, lo, hi):
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
        if whole_ids and self.dialect in INDEX_ONLY_DIALECTS and 2 * n >= last - first + 1:
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
        scale = distributions.grid_scale(GRID_COLUMNS[column])
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
                .where(notnull, predictions.c.id.between(hi + 1, sa.literal(_MAX_ID, sa.BigInteger)))
                .group_by(k),
            ).subquery()
            total = sa.func.sum(parts.c.n)
            stmt = sa.select(parts.c.k, total).group_by(parts.c.k).having(total > 0).order_by(parts.c.k)
        with self.engine.connect() as conn:
            return [(r[0], int(r[1])) for r in conn.execute(stmt)]

    def summarize(self, window: Window | Selection | None = None, workers: int = 2) -> distributions.Summary:
        """The window as a `distributions.Summary` (19 features and the probability), one GROUP BY per column.

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
        numeric[distributions.PREDICTION] = counts["probability"]
        categorical = {c: counts[c] for c in schema.CATEGORICAL_FEATURES}
        return distributions.Summary(n=selection.n, numeric=numeric, categorical=categorical)

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

    def probability_histogram(
        self, unit: str, bins: int, window: Window | Selection | None = None
    ) -> pd.DataFrame:
        """Churn probabilities per hour or day counted into `bins` equal bins, by SQL GROUP BY.

        Columns: bucket, bin (0 … bins-1; bin b holds [b/bins, (b+1)/bins), 1.0 in the last), n.
        """
        if not isinstance(bins, int) or bins < 1:
            raise ValueError(f"bins must be a positive whole number, got {bins!r}")
        bucket = self.bucket_expr(unit)
        raw = floor_int(predictions.c.probability * bins)
        b = sa.case((raw >= bins, bins - 1), else_=raw).label("bin")
        stmt = (
            sa.select(bucket, b, sa.func.count().label("n"))
            .where(*self.select(window).conds)
            .group_by(bucket, b)
            .order_by(bucket, b)
        )
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(stmt).all(), columns=["bucket", "bin", "n"])

    def probability_stats(self, unit: str, window: Window | Selection | None = None) -> pd.DataFrame:
        """Per hour or day: n, mean, min and max churn probability (columns bucket, n, mean, min, max)."""
        bucket = self.bucket_expr(unit)
        p = predictions.c.probability
        stmt = (
            sa.select(bucket, sa.func.count(), sa.func.avg(p), sa.func.min(p), sa.func.max(p))
            .where(*self.select(window).conds)
            .group_by(bucket)
            .order_by(bucket)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return pd.DataFrame(rows, columns=["bucket", "n", "mean", "min", "max"])

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

    def posted_since(self, since: datetime) -> set[tuple[str, str]]:
        """(kind, feature) of the alerts posted to the webhook after `since` (feature "" when none)."""
        stmt = (
            sa.select(alerts.c.kind, alerts.c.feature).where(alerts.c.posted_at > utc_naive(since)).distinct()
        )
        with self.engine.connect() as conn:
            return {(kind, feature or "") for kind, feature in conn.execute(stmt)}

    def read_alerts(
        self, limit: int | None = 100, kind: str | None = None, since: datetime | None = None
    ) -> list[Alert]:
        """Stored alerts (created at or after `since`, when given), newest first."""
        stmt = sa.select(alerts).order_by(alerts.c.id.desc())
        if kind:
            stmt = stmt.where(alerts.c.kind == kind)
        if since is not None:
            stmt = stmt.where(alerts.c.created_at >= utc_naive(since))
        if limit:
            stmt = stmt.limit(int(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [Alert(**dict(r)) for r in rows]


def _frame(rows: Any, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=names)
