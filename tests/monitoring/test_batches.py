"""batches: opening checks, what `BatchLog.message` tells the user, commit / discard state rules,
stale batches swept by age, and an error inside `logging_batch` leaving nothing."""

from __future__ import annotations

from datetime import datetime

import pytest

from churn.monitoring.batches import Batch, BatchLog
from churn.monitoring.records import RecordError
from churn.monitoring.tables import BATCH_COMMITTED, BATCH_DISCARDED, BATCH_OPEN

from .logged import frame

SHA = "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("ABC", "m"), "sha256 must be 64 lowercase hex digits, got 'ABC'"),
        ((SHA.upper(), "m"), "sha256 must be 64 lowercase hex digits"),
        ((SHA, " "), "batch: model_name must not be blank"),
        ((SHA, "m", 3), "batch: model_version must be text"),
    ],
)
def test_open_batch_checks_its_key(store, args, match):
    with pytest.raises(RecordError, match=match):
        store.open_batch(*args)


def test_a_long_source_keeps_its_end(store):
    batch = store.open_batch(SHA, "m", "v1", source="/very/long/" + "d/" * 300 + "customers.csv")
    assert batch.source.endswith("/customers.csv") and len(batch.source) == 200
    assert (batch.status, batch.n_rows, batch.model_version, batch.committed_at) == (
        BATCH_OPEN,
        0,
        "v1",
        None,
    )


def test_state_rules_of_commit_and_discard(store):
    with pytest.raises(RecordError, match="batch 99: no such batch in the log"):
        store.get_batch(99)
    batch = store.open_batch(SHA, "m")
    store.log_frame(*frame(3), batch_id=batch.id)
    store.log_frame(*frame(2, seed=5), batch_id=batch.id)
    assert store.get_batch(batch.id).n_rows == 5
    assert store.discard_batch(batch.id) == 5 and store.discard_batch(batch.id) == 0
    assert store.get_batch(batch.id).status == BATCH_DISCARDED
    with pytest.raises(RecordError, match=f"batch {batch.id} is not open: nothing to commit"):
        store.commit_batch(batch.id)
    with pytest.raises(RecordError, match="batch 99: no such batch"):
        store.discard_batch(99)
    other = store.open_batch(SHA, "m")
    committed = store.commit_batch(other.id)
    assert committed.status == BATCH_COMMITTED and committed.committed_at is not None
    assert store.find_batch(SHA, "m") == committed and store.find_batch(SHA, "m", "v2") is None


def test_a_batch_silent_for_too_long_is_swept(store):
    batch = store.open_batch(SHA, "m")
    store.log_frame(*frame(3), batch_id=batch.id)
    assert store.sweep_batches() == []  # its writer (this process) is alive and recent
    assert store.sweep_batches(stale_after_s=-1) == [batch.id]
    assert store.get_batch(batch.id).status == BATCH_DISCARDED and store.count() == 0


def test_an_error_inside_the_block_discards_and_re_raises(store):
    with pytest.raises(KeyError), store.logging_batch(SHA, "m") as entry:
        store.log_frame(*frame(3), batch_id=entry.batch_id)
        raise KeyError("boom")
    assert entry.committed is None and store.get_batch(entry.batch.id).status == BATCH_DISCARDED
    assert entry.message() == "nothing logged (the batch did not complete)"
    with store.logging_batch(SHA, "m") as again:
        assert again.logging and again.previous is None  # the failed run left no committed twin
        store.log_frame(*frame(3), batch_id=again.batch_id)
    assert again.message() == f"logged 3 predictions as batch {again.committed.id}"


def test_batch_log_message_for_a_file_logged_before():
    previous = Batch(7, SHA, "champion", "md5:ab", "f.csv", BATCH_COMMITTED, 1234, datetime(2026, 3, 1),
                     committed_at=datetime(2026, 3, 1, 9, 5))  # fmt: skip
    entry = BatchLog(batch=previous, previous=previous)
    assert not entry.logging and entry.batch_id is None
    assert entry.message() == (
        "already logged as batch 7 on 2026-03-01 09:05 UTC (1,234 predictions, model champion md5:ab): "
        "not logged again (scored output written)"
    )
