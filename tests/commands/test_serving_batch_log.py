"""`churn predict` logs a file all or nothing, once per (file, model), and leaves no temp file:
a real `kill -9` mid-batch, SIGTERM and Ctrl-C, an error half way, a rerun, a third run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from churn import cli, synth
from churn.io import atomic_path
from churn.monitoring import timeseries
from churn.monitoring.queries import Window
from churn.monitoring.store import PredictionStore
from churn.monitoring.tables import BATCH_DISCARDED
from churn.serving import Predictor

ROWS = 40_000  # 20 chunks of 2,000: still running when the first chunk is in the log
CHUNK = "2000"


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("big") / "customers.csv"
    synth.generate(rows=ROWS, seed=5).drop(columns=["Churn"]).to_csv(path, index=False)
    return path


def raw_rows(db: Path) -> int:
    """Rows in the predictions table, committed or not (0 before the table exists)."""
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def visible(store: PredictionStore) -> dict[str, int]:
    """What the monitoring readers see."""
    n = store.count()
    return {
        "count": n,
        "last_1000": store.count(Window(last=1000)),
        "summary": store.summarize().n,
        "volume": int(timeseries.volume(store, "day")["n"].sum()) if n else 0,
    }


def start_predict(csv: Path, out: Path, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "churn", "predict", str(csv), "-o", str(out), "--no-progress"]
    return subprocess.Popen(
        [*cmd, "--chunk-size", CHUNK], cwd=cwd, env=env, stderr=subprocess.PIPE, text=True
    )


def wait_for_logging(proc: subprocess.Popen, db: Path, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while (n := raw_rows(db)) == 0:
        assert proc.poll() is None, f"churn predict ended before logging: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "churn predict logged nothing in time"
        time.sleep(0.02)
    return n


def test_kill_9_mid_batch_logs_nothing_and_the_rerun_logs_each_row_once(served, serving_root, big_csv):
    db, out = served / "predictions.db", served / "out" / "scored.csv"
    env = {**os.environ, "CHURN_DB_URL": f"sqlite:///{db}"}
    proc = start_predict(big_csv, out, serving_root, env)
    wait_for_logging(proc, db)
    assert proc.poll() is None, "finished before the kill: make the input bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    in_table = raw_rows(db)
    assert 0 < in_table < ROWS  # killed mid-batch: part of the file is in the table ...
    store = PredictionStore(f"sqlite:///{db}")
    assert visible(store) == {"count": 0, "last_1000": 0, "summary": 0, "volume": 0}  # ... and seen by no one
    assert not out.exists()
    assert temp_files(out.parent)  # the kill left its temp files, unpublished

    predict = [sys.executable, "-m", "churn", "predict", str(big_csv), "-o", str(out), "--no-progress"]
    rerun = subprocess.run(predict, cwd=serving_root, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"logged {ROWS:,} predictions as batch" in rerun.stderr
    assert visible(store) == {"count": ROWS, "last_1000": 1000, "summary": ROWS, "volume": ROWS}
    assert raw_rows(db) == ROWS  # the killed batch's rows were deleted, not kept beside the new ones
    assert store.get_batch(1).status == BATCH_DISCARDED
    assert len(pd.read_csv(out)) == ROWS and temp_files(out.parent) == []

    out.unlink()
    third = subprocess.run(predict, cwd=serving_root, env=env, capture_output=True, text=True, timeout=600)
    assert third.returncode == 0, third.stderr
    batch = store.find_batch(store.get_batch(2).sha256, "champion", store.get_batch(2).model_version)
    assert batch is not None and batch.id == 2
    assert f"already logged as batch 2 on {batch.committed_at:%Y-%m-%d}" in third.stderr
    assert "not logged again (scored output written)" in third.stderr
    assert store.count() == ROWS and raw_rows(db) == ROWS
    assert len(pd.read_csv(out)) == ROWS and temp_files(out.parent) == []
    store.dispose()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_clean_up_on_the_way_out(served, serving_root, big_csv, signum, code):
    db, out = served / "predictions.db", served / "out" / "scored.csv"
    env = {**os.environ, "CHURN_DB_URL": f"sqlite:///{db}"}
    proc = start_predict(big_csv, out, serving_root, env)
    wait_for_logging(proc, db)
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "no output written, nothing logged" in err and "Traceback" not in err
    assert raw_rows(db) == 0  # the open batch's rows were deleted before exiting
    assert not out.exists() and temp_files(out.parent) == []


def test_an_error_half_way_deletes_the_rows_and_the_temp_files(served, big_csv, monkeypatch, capsys):
    out = served / "scored.csv"
    original, calls = Predictor.score_frame, []

    def failing(self, df, **kw):
        calls.append(len(df))
        if len(calls) == 3:
            raise OSError("disk full")
        return original(self, df, **kw)

    monkeypatch.setattr(Predictor, "score_frame", failing)
    assert cli.main(["predict", str(big_csv), "-o", str(out), "--chunk-size", "1000", "--no-progress"]) == 1
    assert "churn predict: disk full" in capsys.readouterr().err  # one line, no traceback
    store = PredictionStore()
    assert store.count() == 0 and store.get_batch(1).status == BATCH_DISCARDED
    assert raw_rows(served / "predictions.db") == 0
    assert not out.exists() and temp_files(served) == []
    monkeypatch.setattr(Predictor, "score_frame", original)
    small = served / "small.csv"
    pd.read_csv(big_csv, nrows=500, dtype=str).to_csv(small, index=False)
    assert cli.main(["predict", str(small), "-o", str(out), "--no-progress"]) == 0
    assert "logged 500 predictions as batch 2" in capsys.readouterr().err
    assert store.count() == 500
    store.dispose()


def test_no_log_opens_no_batch(served, big_csv, capsys):
    small = served / "small.csv"
    pd.read_csv(big_csv, nrows=50, dtype=str).to_csv(small, index=False)
    assert cli.main(["predict", str(small), "-o", str(served / "o.csv"), "--no-log"]) == 0
    assert "not logged (--no-log)" in capsys.readouterr().err
    assert not (served / "predictions.db").exists()


def test_temp_files_of_ended_writers_are_swept_by_the_next_write(tmp_path):
    out = tmp_path / "scored.csv"
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = tmp_path / f".scored.csv.{int(ended.stdout)}.abc123.tmp"
    live = tmp_path / f".scored.csv.{os.getpid()}.def456.tmp"
    legacy_old, legacy_new = tmp_path / ".scored.csv.q1w2e3r4.tmp", tmp_path / ".scored.csv.z9x8c7v6.tmp"
    other = tmp_path / f".other.csv.{int(ended.stdout)}.abc123.tmp"
    for path in (dead, live, legacy_old, legacy_new, other):
        path.write_text("customer data")
    hour_ago = time.time() - 7200
    os.utime(legacy_old, (hour_ago, hour_ago))
    with atomic_path(out) as tmp:
        assert tmp.name.startswith(f".scored.csv.{os.getpid()}.")
        tmp.write_text("new")
    assert out.read_text() == "new"
    assert not dead.exists() and not legacy_old.exists()  # an ended writer's, and an old unnamed one
    assert live.exists() and legacy_new.exists() and other.exists()  # a running writer's; too young; not ours
