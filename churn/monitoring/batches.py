"""File batches of the prediction log: a file's predictions logged all or nothing, once per (file, model)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from churn.io import pid_alive
from churn.monitoring.records import RecordError, check_text, utc_naive
from churn.monitoring.tables import (
    BATCH_COMMITTED,
    BATCH_DISCARDED,
    BATCH_DISCARDING,
    BATCH_OPEN,
    DELETE_ROWS,
    HIDDEN_STATUSES,
    IS_COMMITTED,
    MAX_TEXT,
    STALE_BATCH_S,
    batches,
    predictions,
)

log = logging.getLogger(__name__)


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


class BatchLedger:
    """The batch half of `PredictionStore` (which mixes it in): open, fill, commit or discard batches."""

    engine: Engine

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
            b.sha256 == sha256, b.model_name == model_name, b.model_version == model_version, IS_COMMITTED
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
        check_text(model_name, "model_name", where, required=True)
        check_text(model_version, "model_version", where, required=False)
        source = (check_text(source, "source", where, required=False, limit=10_000) or "")[-MAX_TEXT:]
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


def _batch(row: Any) -> Batch:
    return Batch(**{f: row[f] for f in Batch.__dataclass_fields__})
