"""The prediction log on PostgreSQL: insert rate against SQLite, and drift over 1M and 10M predictions.

    python bench/bench_postgres.py [--insert-rows 50000] [--sizes 1000000 10000000]
                                   [--out bench/results/postgres.json]

Starts its own throwaway PostgreSQL cluster (`initdb` + `pg_ctl` on 127.0.0.1, as the tests do;
Debian's `postgresql` must be installed) and stops it at the end.

1. Insert rate: one batch of `--insert-rows` predictions through the store's bulk path
   (`log_frame(..., return_ids=False)`: COPY on PostgreSQL, executemany on SQLite) into a fresh
   log on each backend; rows/s (wall) and the client's CPU seconds.
2. Drift: the log is filled to each size + 5% (older rows outside the window), then — in a fresh
   process — the drift of the last `size` predictions (`Monitor.drift_window`: one GROUP BY per
   column in the database) is timed, with that process's peak resident memory (VmHWM).
   Loading uses the fastest honest path: 200,000 real scored customers COPYed once, repeated
   inside the database (`INSERT … SELECT`, later timestamps) with the secondary indexes dropped
   and rebuilt afterwards, then `VACUUM ANALYZE` (what autovacuum does after a bulk load). The
   figure measured is the drift query, not the load.

CPU is shared with other work on this 2-core machine: wall times are noisy; CPU times are given too.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from bench_monitoring import monitor_for, pipeline_outputs

from churn import data, synth
from churn.io import save_json
from churn.monitoring.queries import Window
from churn.monitoring.store import PredictionStore
from churn.monitoring.tables import predictions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fixtures.postgres: the same throwaway cluster as the tests

from tests.fixtures.postgres import throwaway_cluster  # noqa: E402

#: Distinct scored customers the drift log is built from (repeated to reach each size).
BASE_ROWS = 200_000
#: Server settings of the bench's cluster (a small production-like tuning; the tests use defaults).
SERVER = {"shared_buffers": "1GB", "maintenance_work_mem": "512MB", "max_wal_size": "8GB"}

log = logging.getLogger("bench_postgres")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--insert-rows", type=int, default=50_000, help="rows of the insert batch")
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="drift windows")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "postgres.json"))
    return p.parse_args(argv)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def scored(
    rows: int, monitor, seed: int, start: datetime, step: timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(features, results) of `rows` synthetic customers scored by the champion, `step` apart."""
    raw = synth.generate(rows=rows, seed=seed)
    out = monitor.predictor.predict(raw, log=False)
    results = pd.DataFrame(
        {
            "probability": out["churn_probability"].to_numpy(),
            "risk_level": out["risk_level"].to_numpy(dtype=object),
            "model_name": monitor.predictor.model_name,
            "model_version": monitor.predictor.model_version,
            "customer_id": raw["customerID"].to_numpy(),
            "created_at": [start + step * i for i in range(rows)],
        }
    )
    return data.coerce_features(raw), results


def insert_rate(url: str, batch: tuple[pd.DataFrame, pd.DataFrame]) -> dict:
    """One bulk batch into a fresh log: rows/s (wall) and client CPU seconds."""
    store = PredictionStore(url)
    cpu, t = cpu_seconds(), time.perf_counter()
    store.log_frame(*batch, return_ids=False)
    seconds, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    n = store.count()
    store.dispose()
    return {"rows": n, "seconds": seconds, "rows_per_second": n / seconds, "client_cpu_seconds": cpu}


def _secondary_indexes() -> list[sa.Index]:
    return sorted(predictions.indexes, key=lambda index: index.name)


def grow(store: PredictionStore, total: int, step: timedelta) -> dict:
    """Repeat the first BASE_ROWS rows inside the database until the log holds `total` rows, with
    the secondary indexes dropped meanwhile and rebuilt after; then VACUUM ANALYZE. Load figures."""
    have = store.count()
    cols = [c.name for c in predictions.c if c.name not in ("id", "created_at")]
    q = store.engine.dialect.identifier_preparer.quote
    names = ", ".join(q(c) for c in cols)
    span = step * BASE_ROWS
    t = time.perf_counter()
    with store.engine.begin() as conn:
        for index in _secondary_indexes():
            conn.execute(sa.schema.DropIndex(index, if_exists=True))
        while have < total:
            add = min(total - have, BASE_ROWS)
            lap = have // BASE_ROWS  # this many copies exist: the next one comes `span` later each
            conn.exec_driver_sql(
                f"INSERT INTO predictions ({names}, created_at) "
                f"SELECT {names}, created_at + %(shift)s FROM predictions "
                f"WHERE id <= %(add)s ORDER BY id",
                {"shift": span * lap, "add": add},
            )
            have += add
        loaded = time.perf_counter() - t
        for index in _secondary_indexes():
            conn.execute(sa.schema.CreateIndex(index))
    indexed = time.perf_counter() - t - loaded
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE predictions")
        size = conn.exec_driver_sql("SELECT pg_total_relation_size('predictions')").scalar_one()
    return {
        "rows_logged": store.count(),
        "insert_select_seconds": loaded,
        "index_rebuild_seconds": indexed,
        "vacuum_analyze_seconds": time.perf_counter() - t - loaded - indexed,
        "table_and_indexes_gb": size / 1e9,
    }


def drift_in_child(url: str, rows: int, splits: dict[str, str]) -> dict:
    """bench_monitoring's drift child (fresh process: timing and peak memory of drift alone)."""
    script = ROOT / "bench" / "bench_monitoring.py"
    child = subprocess.run(
        [
            sys.executable,
            str(script),
            "--drift-child",
            url,
            "--rows",
            str(rows),
            "--splits",
            json.dumps(splits),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["child_cpu_seconds"] = _children_cpu()
    return result


_seen_children = [0.0]


def _children_cpu() -> float:
    """CPU seconds of children since the last call (the drift child's own user+sys time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    spent, _seen_children[0] = total - _seen_children[0], total
    return spent


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out: dict = {
        "machine": "2 shared CPU cores (other jobs running): wall times are noisy, CPU times given",
        "server": {"postgresql": 15, "settings": {**SERVER, "fsync": "off"}},
    }
    with tempfile.TemporaryDirectory() as tmp, throwaway_cluster(**SERVER) as cluster:
        splits = pipeline_outputs(Path(tmp))
        monitor = monitor_for(None, splits)
        start, step = datetime(2026, 1, 1), timedelta(seconds=1)
        batch = scored(args.insert_rows, monitor, 7, start, step)
        out["insert"] = {
            "batch_rows": args.insert_rows,
            "path": "log_frame(return_ids=False): executemany on SQLite, COPY on PostgreSQL",
            "sqlite": insert_rate(f"sqlite:///{tmp}/insert.db", batch),
            "postgresql": insert_rate(cluster.url(cluster.create_database()), batch),
        }
        log.info("insert: %s", out["insert"])

        url = cluster.url(cluster.create_database())
        store = PredictionStore(url)
        base = scored(BASE_ROWS, monitor, 8, start, step)
        t = time.perf_counter()
        store.log_frame(*base, return_ids=False)
        copy_seconds = time.perf_counter() - t
        out["drift"] = {
            "window": "the last N predictions of a log of N + 5% (Monitor.drift_window, GROUP BY in SQL)",
            "load": f"{BASE_ROWS:,} scored customers via COPY ({copy_seconds:.1f} s), repeated in the database",
        }
        _children_cpu()
        for size in sorted(args.sizes):
            loaded = grow(store, size + size // 20, step)
            log.info("loaded %s", loaded)
            result = {**loaded, **drift_in_child(url, size, splits)}
            out["drift"][str(size)] = result
            log.info("drift over %d: %s", size, result)
        assert store.count(Window(last=1)) == 1
        store.dispose()
    save_json(out, args.out)
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
