"""The prediction log's schema under Alembic: create, check, adopt and upgrade it (no alembic.ini).

Revisions live in `versions/` beside this file; `config` gives Alembic's configuration for a
connection, so a new revision is written with `alembic.command.revision(config(conn), message,
autogenerate=True)` against a database at head (review it: expression indexes are not compared on
SQLite). A log opened by `PredictionStore` is created at head when the database is empty, used when
at head, and refused with `SchemaVersionError` otherwise; `upgrade` (`churn monitor db upgrade`)
brings it to head, adopting a log made before Alembic (no version table) at the revision its
columns match. Creation and upgrades hold a database-wide lock (SQLite's write lock, taken at the
start of one transaction; PostgreSQL's transaction-level advisory lock), so concurrent first
start-ups create the tables once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from churn.redact import redact_url

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

log = logging.getLogger(__name__)

#: The revision this version of churn uses: Alembic's head (a test keeps them equal). A log at head
#: opens without loading Alembic, which costs a quarter of a second.
HEAD = "0003_alert_posts"
#: Alembic's version table for the log (not `alembic_version`: the log may share a PostgreSQL
#: database with an MLflow backend store, which keeps its own revision there).
VERSION_TABLE = "prediction_log_version"
#: PostgreSQL advisory-lock key held while the log's schema changes (any 64-bit number, ours alone).
PG_LOCK_KEY = 0x63_68_75_72_6E_6C_6F_67  # "churnlog"
#: The revision a log made before Alembic is at, by the newest column it has (checked newest first).
LEGACY_MARKERS = (("predictions", "batch_id", "0002_batches"),)
LEGACY_BASE = "0001_initial"
UPGRADE_HINT = "run `churn monitor db upgrade` (back the log up first)"


class SchemaVersionError(ValueError):
    """The log's schema is not the one this version of churn uses; the message (one line) says what
    to do. A ValueError: the CLI prints it as a user error, without a traceback."""


@dataclass(frozen=True)
class Status:
    """Where a log's schema stands: its revision (None: no version table), the head, and for a log
    made before Alembic the revision its columns match."""

    url: str
    current: str | None
    head: str
    legacy: str | None = None
    known: bool = True

    @property
    def empty(self) -> bool:
        """No log tables yet: created at head on first use."""
        return self.current is None and self.legacy is None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        """One line for `churn monitor db current`."""
        where = f"prediction log {redact_url(self.url)}"
        if self.up_to_date:
            return f"{where}: revision {self.current} (head), up to date"
        if self.empty:
            return f"{where}: no tables yet, created at revision {self.head} on first use"
        return f"{where}: {self.problem()}"

    def problem(self) -> str:
        """Why the log cannot be used as it is, and what to do (one line)."""
        if self.legacy is not None:
            return (
                f"made before schema versioning (its columns match revision {self.legacy}; "
                f"head is {self.head}): {UPGRADE_HINT}"
            )
        if not self.known:
            return (
                f"schema revision {self.current} is unknown to this version of churn (head {self.head}): "
                "a newer churn wrote it; upgrade churn"
            )
        return f"schema revision {self.current} is behind head {self.head}: {UPGRADE_HINT}"


def config(connection: sa.Connection | None = None) -> Config:
    """Alembic's configuration for the log's revisions, run on `connection` (no ini file)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config())


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _status(conn: sa.Connection) -> Status:
    url = _url(conn.engine)
    inspector = sa.inspect(conn)
    if inspector.has_table(VERSION_TABLE):  # read as Alembic does, without its per-call log lines
        current = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
        if current is not None:
            known = current == HEAD or any(rev.revision == current for rev in _script().walk_revisions())
            return Status(url, current, HEAD, known=known)
    if not inspector.has_table("predictions"):
        return Status(url, None, HEAD)
    for table, column, revision in LEGACY_MARKERS:
        if column in {c["name"] for c in inspector.get_columns(table)}:
            return Status(url, None, HEAD, legacy=revision)
    return Status(url, None, HEAD, legacy=LEGACY_BASE)


def status(engine: sa.Engine) -> Status:
    """Where the log's schema stands (reads only)."""
    with engine.connect() as conn:
        return _status(conn)


@contextlib.contextmanager
def _locked(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in one transaction that holds the log's schema lock until it commits: SQLite's
    write lock (BEGIN IMMEDIATE, with DDL inside the transaction), PostgreSQL's advisory lock."""
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
                yield conn
            return
        raw = conn.connection.driver_connection
        saved = raw.isolation_level
        raw.isolation_level = None  # pysqlite opens no transaction of its own: CREATEs join ours
        try:
            with conn.begin():
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # waits for another writer (busy timeout)
                yield conn
        finally:
            raw.isolation_level = saved


def upgrade(engine: sa.Engine) -> tuple[Status, Status]:
    """Create the log at head, or bring it there (a log made before Alembic is first stamped at the
    revision its columns match); rows are kept. Returns the status before and after."""
    from alembic import command

    with _locked(engine) as conn:
        before = _status(conn)
        if not before.known:
            raise SchemaVersionError(f"prediction log {redact_url(before.url)}: {before.problem()}")
        cfg = config(conn)
        if before.legacy is not None:
            command.stamp(cfg, before.legacy)
            log.info("prediction log made before schema versioning: stamped at %s", before.legacy)
        command.upgrade(cfg, "head")
        after = _status(conn)
    log.info("prediction log upgraded from %s to %s", before.current or before.legacy, after.current)
    return before, after


def ensure(engine: sa.Engine) -> None:
    """Make an empty database a log at head; accept a log at head; refuse any other with a
    `SchemaVersionError` saying to run `churn monitor db upgrade`."""
    now = status(engine)
    if now.up_to_date:
        return
    if now.empty:
        from alembic import command

        with _locked(engine) as conn:
            now = _status(conn)  # another process may have created it meanwhile
            if now.empty:
                command.upgrade(config(conn), "head")
                log.info("prediction log created at schema revision %s", now.head)
                return
    if not now.up_to_date:
        raise SchemaVersionError(f"prediction log {redact_url(now.url)}: {now.problem()}")
