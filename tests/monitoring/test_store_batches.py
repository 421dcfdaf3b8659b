"""Batches in the prediction log: hidden until committed, once per (file, model), swept after a kill
(older logs are upgraded by Alembic: test_migrations.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from churn import data, schema, synth
from churn.monitoring import timeseries
from churn.monitoring.batches import DuplicateBatch
from churn.monitoring.queries import Window
from churn.monitoring.records import Outcome, RecordError
from churn.monitoring.store import PredictionStore
from churn.monitoring.tables import BATCH_COMMITTED, BATCH_DISCARDED, batches, predictions


@pytest.fixture(scope="module")
def frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, results) of 300 customers, as `Predictor` logs a scored chunk."""
    raw = synth.generate(rows=300, seed=21)
    feats = data.coerce_features(raw[list(schema.FEATURES)])
    results = pd.DataFrame(
        {
            "probability": [(i % 97) / 100 for i in range(len(raw))],
            "risk_level": [("Low", "Medium", "High")[i % 3] for i in range(len(raw))],
            "model_name": "champion",
            "model_version": "md5:abc",
            "customer_id": raw[schema.ID].to_numpy(),
        }
    )
    return feats, results


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def raw_rows(store: PredictionStore) -> int:
    """Rows in the table, visible or not (what a reader must never see directly)."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(predictions)).scalar_one()


def readers(store: PredictionStore) -> dict:
    """What every reader of the log reports: counts, frames, drift summary, time series, outcomes."""
    ids = list(store.read(columns=["customer_id"])["customer_id"]) if store.count() else []
    return {
        "count": store.count(),
        "last_100": store.count(Window(last=100)),
        "read": len(store.read()),
        "summary_n": store.summarize().n,
        "tenure_counts": int(store.numeric_counts("tenure").sum()),
        "contract_counts": int(store.level_counts("Contract").sum()),
        "volume": int(timeseries.volume(store, "day")["n"].sum()),
        "risk": int(timeseries.risk_breakdown(store, "day")[["Low", "Medium", "High"]].to_numpy().sum())
        if store.count()
        else 0,
        "labelled": len(store.labelled()),
        "known_customers": len(store.has_customers(ids)),
    }


def test_rows_of_an_open_batch_are_seen_by_no_reader_until_committed(store, frame):
    feats, results = frame
    store.log_frame(feats.head(100), results.head(100), return_ids=False)  # single predictions
    store.add_outcomes(
        [Outcome(results["customer_id"][i], True, datetime(2026, 1, 1).date()) for i in range(300)]
    )
    before = readers(store)
    assert before["count"] == 100 and before["labelled"] == 100
    batch = store.open_batch(sha("file"), "champion", "md5:abc", "customers.csv")
    store.log_frame(feats.iloc[100:200], results.iloc[100:200], return_ids=False, batch_id=batch.id)
    store.log_frame(feats.iloc[200:], results.iloc[200:], return_ids=False, batch_id=batch.id)
    assert raw_rows(store) == 300
    assert readers(store) == before  # every reader: the 200 uncommitted rows do not exist yet
    assert store.has_customers(results["customer_id"]) == set(results["customer_id"].head(100))
    committed = store.commit_batch(batch.id)
    assert committed.status == BATCH_COMMITTED and committed.n_rows == 200
    after = readers(store)
    assert after["count"] == after["read"] == after["summary_n"] == after["volume"] == 300
    assert after["labelled"] == 300 and after["last_100"] == 100
    assert store.has_customers(results["customer_id"]) == set(results["customer_id"])


def test_a_window_is_fixed_when_selected_even_if_a_batch_commits_meanwhile(store, frame):
    feats, results = frame
    store.log_frame(feats.head(50), results.head(50), return_ids=False)
    batch = store.open_batch(sha("f"), "champion", "md5:abc")
    store.log_frame(feats.iloc[50:150], results.iloc[50:150], return_ids=False, batch_id=batch.id)
    store.log_frame(feats.iloc[150:160], results.iloc[150:160], return_ids=False)  # interleaved single ones
    selection = store.select()
    assert selection.n == 60
    store.commit_batch(batch.id)
    assert len(store.read(selection)) == 60 and store.summarize(selection).n == 60
    assert store.count() == 160


def test_the_fast_whole_table_path_stays_when_uncommitted_rows_are_outside_the_window(store, frame):
    feats, results = frame
    store.log_frame(feats.head(200), results.head(200), return_ids=False)
    batch = store.open_batch(sha("later"), "champion", "md5:abc")
    store.log_frame(feats.iloc[200:], results.iloc[200:], return_ids=False, batch_id=batch.id)
    selection = store.select()
    assert selection.n == 200 and selection.bounds is not None  # counted from the indexes alone
    assert store.summarize(selection).n == 200
    assert int(store.numeric_counts("tenure", selection).sum()) == 200


def test_the_same_file_and_model_is_logged_once(store, frame):
    feats, results = frame
    for attempt in range(2):
        with store.logging_batch(sha("same bytes"), "champion", "md5:abc", "a.csv") as entry:
            assert entry.logging == (attempt == 0)
            if entry.logging:
                store.log_frame(feats, results, return_ids=False, batch_id=entry.batch_id)
        if attempt == 0:
            first = entry.committed
            assert entry.message() == f"logged 300 predictions as batch {first.id}"
    assert entry.previous == first
    assert entry.message().startswith(f"already logged as batch {first.id} on {first.committed_at:%Y-%m-%d}")
    assert "not logged again (scored output written)" in entry.message()
    assert store.count() == 300
    # another model, or other bytes, is another batch
    with store.logging_batch(sha("same bytes"), "challenger", "md5:def") as other:
        assert other.logging
    with store.logging_batch(sha("other bytes"), "champion", "md5:abc") as third:
        assert third.logging


def test_an_error_inside_the_batch_deletes_its_rows(store, frame):
    feats, results = frame
    with pytest.raises(RuntimeError), store.logging_batch(sha("x"), "champion", "md5:abc") as entry:
        store.log_frame(feats, results, return_ids=False, batch_id=entry.batch_id)
        raise RuntimeError("scoring failed half way")
    assert raw_rows(store) == 0 and store.count() == 0
    assert store.get_batch(entry.batch.id).status == BATCH_DISCARDED
    with store.logging_batch(sha("x"), "champion", "md5:abc") as again:  # not taken for logged
        assert again.logging


def test_a_concurrent_run_of_the_same_file_commits_once(store, frame):
    feats, results = frame
    key = (sha("raced"), "champion", "md5:abc")
    a, b = store.open_batch(*key), store.open_batch(*key)
    store.log_frame(feats.head(100), results.head(100), return_ids=False, batch_id=a.id)
    store.log_frame(feats.head(100), results.head(100), return_ids=False, batch_id=b.id)
    store.commit_batch(a.id)
    with pytest.raises(DuplicateBatch) as err:
        store.commit_batch(b.id)
    assert err.value.previous.id == a.id
    assert store.count() == 100 and raw_rows(store) == 100
    assert store.get_batch(b.id).status == BATCH_DISCARDED


def test_closed_batches_refuse_rows_and_committed_ones_cannot_be_discarded(store, frame):
    feats, results = frame
    batch = store.open_batch(sha("c"), "champion", "md5:abc")
    store.commit_batch(batch.id)
    with pytest.raises(RecordError, match=f"batch {batch.id} is not open"):
        store.log_frame(feats.head(3), results.head(3), batch_id=batch.id)
    with pytest.raises(RecordError, match="is committed"):
        store.discard_batch(batch.id)
    with pytest.raises(RecordError, match="sha256 must be 64"):
        store.open_batch("not-a-hash", "champion")
    assert store.count() == 0


def test_batches_of_dead_writers_are_swept_by_the_next_batch(store, frame):
    feats, results = frame
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    killed = store.open_batch(sha("killed"), "champion", "md5:abc")
    stale = store.open_batch(sha("stale"), "champion", "md5:abc")
    alive = store.open_batch(sha("running"), "champion", "md5:abc")
    for b in (killed, stale, alive):
        store.log_frame(feats.head(40), results.head(40), return_ids=False, batch_id=b.id)
    with store.engine.begin() as conn:
        conn.execute(batches.update().where(batches.c.id == killed.id).values(pid=int(dead.stdout)))
        old = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=2)
        conn.execute(
            batches.update().where(batches.c.id == stale.id).values(host="elsewhere", updated_at=old)
        )
    assert raw_rows(store) == 120 and store.count() == 0
    store.open_batch(sha("next"), "champion", "md5:abc")
    assert store.get_batch(killed.id).status == store.get_batch(stale.id).status == BATCH_DISCARDED
    assert store.get_batch(alive.id).status == "open" and raw_rows(store) == 40
