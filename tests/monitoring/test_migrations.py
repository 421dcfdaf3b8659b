"""The prediction log's schema under Alembic, on real SQLite and PostgreSQL: head equals the tables'
metadata (grid-key indexes by their SQL text), logs made by the landed main and before file batches
keep their rows through `churn monitor db upgrade`, a log behind head is refused in one line,
`db current`, concurrent first start-ups, and a database that is down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from churn.cli import main
from churn.monitoring import migrations, tables
from churn.monitoring.records import Outcome
from churn.monitoring.store import PredictionStore
from tests.fixtures import ROOT
from tests.fixtures.servers import free_port

from .logged import frame

DATA = Path(__file__).parent / "data"
SECRET = "pg-test-secret"  # the test cluster's password (tests/fixtures/postgres.py): never printed


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    """An empty database: a SQLite file in the test's folder, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def other_url(url, tmp_path, request) -> str:
    """A second empty database beside `url`, on the same engine."""
    if dialect_of(url) == "sqlite":
        return f"sqlite:///{tmp_path / 'other.db'}"
    cluster = request.getfixturevalue("postgres_cluster")
    return cluster.url(cluster.create_database())


def dialect_of(url: str) -> str:
    return sa.engine.make_url(url).get_backend_name()


def run_ddl(url: str, name: str) -> None:
    """Create a log from a frozen DDL file, as an older churn's `metadata.create_all` did."""
    text = (DATA / f"{name}.{dialect_of(url)}.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.startswith("--"))
    engine = tables.make_engine(url)
    with engine.begin() as conn:
        for statement in filter(str.strip, body.split(";\n")):
            conn.exec_driver_sql(statement)
    engine.dispose()


#: PostgreSQL's own description of the log (the version table left out): columns in order with
#: types, nullability and defaults; every index by its definition; every constraint.
PG_CATALOG = {
    "columns": "SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length, "
    "is_nullable, column_default FROM information_schema.columns WHERE table_schema = 'public' "
    "AND table_name != :v ORDER BY table_name, ordinal_position",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
    "AND tablename != :v ORDER BY indexname",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text != :v ORDER BY conname",
}


def catalog(engine: sa.Engine) -> dict[str, list]:
    """What the database itself says about the log: columns, indexes by their SQL (expression and
    partial ones included) and, on PostgreSQL, constraints."""
    version = {"v": migrations.VERSION_TABLE}
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            return {
                key: [tuple(r) for r in conn.execute(sa.text(sql), version)]
                for key, sql in PG_CATALOG.items()
            }
        names = conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != :v ORDER BY name", version
        ).scalars()
        columns = [(t, *row) for t in list(names) for row in conn.exec_driver_sql(f"PRAGMA table_info({t})")]
        indexes = conn.exec_driver_sql(
            "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name != :v ORDER BY name",
            version,
        )
        return {"columns": columns, "indexes": [tuple(r) for r in indexes]}


def migrated_at(url: str, revision: str) -> None:
    engine = tables.make_engine(url)
    with migrations._locked(engine) as conn:
        command.upgrade(migrations.config(conn), revision)
    engine.dispose()


def revision_of(url: str) -> migrations.Status:
    engine = tables.make_engine(url)
    try:
        return migrations.status(engine)
    finally:
        engine.dispose()


def add_rows(url: str, *, batches: bool) -> None:
    """Six single predictions, an outcome and an alert; with `batches`, also a committed batch of
    two rows and an open one of one (hidden from readers). Inserts name only the columns they fill,
    so the head's tables serve the older schemas too."""
    engine = tables.make_engine(url)
    predictions, outcomes, alerts = tables.predictions, tables.outcomes, tables.alerts  # same columns then
    features, results = frame(9, seed=5)
    results["model_version"], results["latency_ms"] = "v1", 1.5
    rows = [
        {k: (None if v != v else v) for k, v in row.items()}  # NaN (a blank TotalCharges) -> NULL
        for row in features.join(results).astype(object).to_dict(orient="records")
    ]
    with engine.begin() as conn:
        conn.execute(predictions.insert(), rows[:6])
        conn.execute(outcomes.insert(), [{"customer_id": rows[0]["customer_id"], "churned": True,
                                          "outcome_date": rows[0]["created_at"].date(), "recorded_at": rows[0]["created_at"]}])  # fmt: skip
        conn.execute(alerts.insert(), [{"created_at": rows[0]["created_at"], "kind": "drift", "message": "old alert",
                                        "window": "w"}])  # fmt: skip
        if batches:
            table = tables.batches
            for status, n in (("committed", 2), ("open", 1)):
                batch = conn.execute(
                    table.insert().returning(table.c.id),
                    {"sha256": status * 4, "model_name": "champion", "model_version": "v1", "source": "f.csv",
                     "status": status, "n_rows": n, "started_at": rows[0]["created_at"],
                     "updated_at": rows[0]["created_at"], "host": "elsewhere", "pid": 1},
                ).scalar_one()  # fmt: skip
                chunk = rows[6:8] if status == "committed" else rows[8:]
                conn.execute(predictions.insert(), [{**r, "batch_id": batch} for r in chunk])
    engine.dispose()


def test_head_is_the_newest_revision_and_the_chain_starts_before_batches():
    script = ScriptDirectory.from_config(migrations.config())
    assert migrations.HEAD == script.get_current_head() == "0003_alert_posts"
    chain = [rev.revision for rev in script.walk_revisions()]
    assert chain == ["0003_alert_posts", "0002_batches", "0001_initial"]
    assert script.get_revision("0003_alert_posts").down_revision == "0002_batches"
    assert script.get_revision("0002_batches").down_revision == "0001_initial"


def created_by_metadata(url: str) -> dict[str, list]:
    """The catalog of `url` (an empty database) after `tables.metadata.create_all`: the schema the
    code describes, against which migrated logs are checked."""
    engine = tables.make_engine(url)
    tables.metadata.create_all(engine)
    try:
        return catalog(engine)
    finally:
        engine.dispose()


def test_head_equals_the_tables_metadata_exactly(url, other_url):
    store = PredictionStore(url)  # an empty database: created at head by Alembic
    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": migrations.VERSION_TABLE, "compare_type": True}
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLite cannot reflect expression indexes: compared below
            assert compare_metadata(context, tables.metadata) == []
    migrated = catalog(store.engine)
    store.dispose()
    # every column, index (by its SQL: the grid keys' expressions, the partial ones' WHERE) and constraint
    assert migrated == created_by_metadata(other_url)
    grid = [r for r in migrated["indexes"] if r[1].endswith("_grid")]
    assert len(grid) == 3 and all("0.5" in r[2] for r in grid)


@pytest.mark.parametrize(
    ("schema", "matched"), [("schema_main", "0002_batches"), ("schema_before_batches", "0001_initial")]
)
def test_a_log_made_before_alembic_keeps_its_rows_through_db_upgrade(url, schema, matched, capsys):
    run_ddl(url, schema)
    add_rows(url, batches=schema == "schema_main")
    status = revision_of(url)
    assert status.current is None and status.legacy == matched and not status.up_to_date
    with pytest.raises(migrations.SchemaVersionError, match="churn monitor db upgrade"):
        PredictionStore(url)  # refused until upgraded: nothing changed by opening it
    assert revision_of(url).legacy == matched

    assert main(["monitor", "db", "upgrade", "--db", url]) == 0
    out = capsys.readouterr().out
    assert (
        f"upgraded from revision none (made before schema versioning, matched {matched}) to 0003_alert_posts"
        in out
    )
    assert SECRET not in out

    store = PredictionStore(url)
    n_rows = 8 if schema == "schema_main" else 6  # the open batch's row stays hidden
    assert store.count() == n_rows and store.summarize().n == n_rows
    assert [a.message for a in store.read_alerts()] == ["old alert"]
    assert len(store.read_outcomes()) == 1
    # the upgraded log works as a new one: a batch, a single prediction
    features, results = frame(4, seed=9)
    with store.logging_batch("f" * 64, "champion", "v2") as entry:
        store.log_frame(features, results, return_ids=False, batch_id=entry.batch_id)
    assert store.count() == n_rows + 4
    assert store.add_outcomes([Outcome("c-1", False, results["created_at"][0].date())]) == 1
    store.dispose()
    assert revision_of(url).up_to_date


@pytest.mark.parametrize("schema", ["schema_main", "schema_before_batches"])
def test_an_upgraded_log_has_the_schema_of_a_new_one(url, other_url, schema):
    run_ddl(url, schema)
    assert main(["monitor", "db", "upgrade", "--db", url]) == 0
    engine = tables.make_engine(url)
    upgraded = catalog(engine)
    engine.dispose()
    assert upgraded == created_by_metadata(other_url)


def test_a_log_behind_head_is_refused_in_one_line(url, capsys, monkeypatch):
    migrated_at(url, "0001_initial")
    with pytest.raises(migrations.SchemaVersionError) as caught:
        PredictionStore(url)
    message = str(caught.value)
    assert "\n" not in message and SECRET not in message
    assert (
        "schema revision 0001_initial is behind head 0003_alert_posts: run `churn monitor db upgrade`"
        in message
    )

    monkeypatch.setenv("CHURN_DB_URL", url)
    assert main(["monitor", "traffic"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("churn monitor: prediction log ") and SECRET not in err[0], err
    assert "run `churn monitor db upgrade`" in err[0]

    assert main(["monitor", "db", "current"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].endswith(
        "schema revision 0001_initial is behind head 0003_alert_posts: run `churn monitor db upgrade` (back the log up first)"
    )
    assert main(["monitor", "db", "upgrade"]) == 0
    assert (
        "upgraded from revision 0001_initial to 0003_alert_posts (head), rows kept" in capsys.readouterr().out
    )
    assert main(["monitor", "db", "current"]) == 0
    assert capsys.readouterr().out.strip().endswith(": revision 0003_alert_posts (head), up to date")
    assert main(["monitor", "db", "upgrade"]) == 0
    assert "already at revision 0003_alert_posts (head)" in capsys.readouterr().out


def test_db_current_creates_nothing_and_db_upgrade_creates_the_log(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'new' / 'log.db'}"
    assert main(["monitor", "db", "current", "--db", url]) == 0
    assert capsys.readouterr().out == (
        f"prediction log {url}: no database yet, created at revision {migrations.HEAD} on first use\n"
    )
    assert not (tmp_path / "new").exists()
    assert main(["monitor", "db", "upgrade", "--db", url]) == 0
    assert capsys.readouterr().out == f"prediction log {url}: created at revision {migrations.HEAD} (head)\n"
    assert revision_of(url).current == migrations.HEAD


def test_a_log_from_a_newer_churn_is_refused(url, capsys):
    PredictionStore(url).dispose()
    engine = tables.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '0099_future'")
    engine.dispose()
    with pytest.raises(
        migrations.SchemaVersionError, match="0099_future is unknown to this version of churn"
    ):
        PredictionStore(url)
    assert main(["monitor", "db", "upgrade", "--db", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a newer churn wrote it; upgrade churn" in err[0]
    assert revision_of(url).current == "0099_future"


def test_a_failed_upgrade_changes_nothing(url, capsys):
    """A log main left half-made (its batches table, no batch_id yet): the upgrade fails on the
    existing table, and the whole upgrade, stamp included, is rolled back (DDL in one transaction)."""
    run_ddl(url, "schema_before_batches")
    engine = tables.make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE batches (id INTEGER PRIMARY KEY)")
    before = catalog(engine)
    engine.dispose()
    assert main(["monitor", "db", "upgrade", "--db", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and err[0].startswith("churn monitor: cannot use the prediction log")
        and "batches" in err[0]
    )
    engine = tables.make_engine(url)
    assert catalog(engine) == before and not sa.inspect(engine).has_table(migrations.VERSION_TABLE)
    engine.dispose()


FIRST_START = """
import sys, time
from pathlib import Path
from churn.monitoring.store import PredictionStore
from churn.monitoring.records import Alert
go = Path(sys.argv[2])
Path(f"{go}.{sys.argv[3].split()[-1]}").touch()  # ready
while not go.exists():
    time.sleep(0.002)
store = PredictionStore(sys.argv[1])
store.add_alerts([Alert(kind="start", message=sys.argv[3])])
store.dispose()
"""


def test_eight_processes_opening_a_fresh_log_at_once_all_succeed(url, tmp_path):
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_START, url, str(go), f"process {i}"],
            cwd=tmp_path,  # any working directory: the revisions are found beside the package
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    while len(list(tmp_path.glob("go.*"))) < 8 and all(p.poll() is None for p in procs):
        time.sleep(0.05)  # every process has imported the library and waits for the go
    go.touch()
    results = [(p.wait(timeout=180), p.stderr.read()) for p in procs]
    assert [code for code, _ in results] == [0] * 8, [err[-2000:] for _, err in results]
    store = PredictionStore(url)
    assert sorted(a.message for a in store.read_alerts()) == [f"process {i}" for i in range(8)]
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql(
            f"SELECT version_num FROM {migrations.VERSION_TABLE}"
        ).scalars().all() == [migrations.HEAD]
    store.dispose()


@pytest.mark.parametrize("action", ["current", "upgrade"])
def test_a_database_that_is_down_is_one_line_with_the_password_hidden(action, capsys):
    url = f"postgresql+psycopg://churn:{SECRET}@127.0.0.1:{free_port()}/log"
    assert main(["monitor", "db", action, "--db", url]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("churn monitor: cannot use the prediction log"), err
    assert "Connection refused" in err[0] or "connection failed" in err[0]
    assert SECRET not in captured.err + captured.out


def test_setuptools_ships_the_migrations_as_packages():
    from setuptools import find_packages

    found = set(find_packages(ROOT, include=["churn*"]))
    assert {"churn.monitoring.migrations", "churn.monitoring.migrations.versions"} <= found
    script = ScriptDirectory.from_config(migrations.config())
    assert Path(script.dir) == ROOT / "churn" / "monitoring" / "migrations"
    assert sorted(p.name for p in Path(script.versions).glob("0*.py")) == [
        "0001_initial.py",
        "0002_batches.py",
        "0003_alert_posts.py",
    ]
