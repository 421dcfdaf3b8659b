"""tables: the engine (SQLite WAL in a made folder, shared in-memory pool), the default URL, the
drift grid key in SQL, and which rows readers see while batches are open."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import sqlalchemy as sa

from churn.monitoring import distributions, tables

from .logged import frame


def test_default_url_is_the_env_else_a_local_file(monkeypatch):
    monkeypatch.setenv("CHURN_DB_URL", "sqlite:////tmp/x.db")
    assert tables.default_url() == "sqlite:////tmp/x.db"
    monkeypatch.setenv("CHURN_DB_URL", "")
    assert tables.default_url() == tables.DEFAULT_URL == "sqlite:///predictions.db"


def test_a_sqlite_file_gets_its_folder_wal_and_a_busy_timeout(tmp_path):
    engine = tables.make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'log.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == tables.SQLITE_BUSY_MS
        assert (tmp_path / "a" / "b").is_dir()
    finally:
        engine.dispose()


def test_an_in_memory_log_is_one_database_for_every_connection():
    engine = tables.make_engine("sqlite://")
    tables.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            tables.alerts.insert(),
            {"created_at": datetime(2026, 1, 1), "kind": "k", "message": "m", "window": ""},
        )
    with engine.connect() as other:
        assert other.execute(sa.select(sa.func.count()).select_from(tables.alerts)).scalar_one() == 1
    assert {"predictions", "outcomes", "alerts", "batches"} <= set(sa.inspect(engine).get_table_names())


def test_grid_keys_in_sql_equal_the_drift_arithmetic(store):
    probs = [0.0, 0.00005, 0.12345, 0.49995, 0.99994, 1.0]
    features, results = frame(6, probability=probs)
    features["MonthlyCharges"] = [18.25, 18.255, 20.005, 99.994, 100.0, 118.75]
    store.log_frame(features, results)
    with store.engine.connect() as conn:
        for name, values in (("probability", probs), ("MonthlyCharges", features["MonthlyCharges"])):
            sql = (
                conn.execute(sa.select(tables.grid_key(name)).order_by(tables.predictions.c.id))
                .scalars()
                .all()
            )
            assert sql == distributions.grid_keys(np.array(values), tables.GRID_COLUMNS[name]).tolist(), name
    assert set(tables.GRID_COLUMNS) == {
        "SeniorCitizen",
        "tenure",
        "MonthlyCharges",
        "TotalCharges",
        "probability",
    }


def test_readers_see_everything_until_a_batch_is_open(store):
    store.log_frame(*frame(3))
    with store.engine.connect() as conn:
        assert tables.hidden_batches(conn) == [] and tables.committed_rows(conn) == []
    batch = store.open_batch("a" * 64, "champion")
    store.log_frame(*frame(2, seed=9), batch_id=batch.id)
    with store.engine.connect() as conn:
        assert tables.hidden_batches(conn) == [batch.id]
        visible = conn.execute(
            sa.select(sa.func.count()).select_from(tables.predictions).where(*tables.committed_rows(conn))
        ).scalar_one()
        assert visible == 3
        assert tables.hidden_rows_within(conn, [batch.id], 4, 5) is True
        assert tables.hidden_rows_within(conn, [batch.id], 1, 3) is False
