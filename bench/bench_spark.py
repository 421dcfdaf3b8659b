"""Batch scoring: the local engine vs Spark (`churn predict --engine spark`), rows/s and peak memory.

    python bench/bench_spark.py [--out bench/results/spark.json] [--rows 1000000 5000000]

The champion spec of params.yaml is trained on synthetic customers and registered in a temporary
MLflow store (as bench_mlflow_serve.py does); both engines score the same registered model. Inputs:
synthetic customers (churn.synth, seed 11) resampled with replacement to each size, each row with
its own customerID, written as CSV. Every run is a fresh `churn predict` process (CSV in, CSV out,
no prediction log), so start-up is included: the JVM and Spark's session for Spark, the imports
and model load for local. Measured per run: wall seconds, rows/s, CPU seconds (user+sys of the
whole process tree), and peak memory = the highest sum of RSS over the process tree, sampled every
0.2 s from /proc (the driver, the JVM and Spark's Python workers for Spark). Spark runs at
local[2] for every size and at local[1] for the first size (how the rate grows with cores).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from churn import schema, synth
from churn.io import save_json
from churn.params import load_params
from churn.paths import Layout

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mlflow_serve import register  # the same trained, logged, registered champion

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
log = logging.getLogger("bench_spark")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "spark.json"))
    p.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 5_000_000])
    return p.parse_args(argv)


def write_customers(path: Path, rows: int, seed: int = 11) -> None:
    """`rows` customers resampled (with replacement) from 100,000 synthetic ones, unique ids, as CSV."""
    base = synth.generate(rows=100_000, seed=seed).drop(columns=[schema.TARGET])
    rng = np.random.default_rng(seed)
    step = 500_000
    for start in range(0, rows, step):
        n = min(step, rows - start)
        chunk = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
        chunk[schema.ID] = [f"{i:08d}-BENCH" for i in range(start, start + n)]
        chunk.to_csv(path, mode="w" if start == 0 else "a", header=start == 0, index=False)


def _tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return out


def _sample(pids: list[int], cpu: dict[int, float]) -> int:
    """Sum of RSS bytes over `pids`; records each one's CPU seconds so far in `cpu`."""
    rss = 0
    for p in pids:
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[p] = (int(stat[11]) + int(stat[12])) / TICKS  # utime, stime
        rss += int(stat[21]) * PAGE
    return rss


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    """Run `cmd`; (wall seconds, peak RSS of its process tree in MB, CPU seconds of the tree)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    peak, cpu = 0, {}
    while proc.poll() is None:
        peak = max(peak, _sample(_tree(proc.pid), cpu))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    err = proc.stderr.read()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    log.info("%s", err.strip().splitlines()[-1] if err.strip() else "")
    return {
        "seconds": round(wall, 2),
        "peak_rss_mb": round(peak / 2**20, 1),
        "cpu_seconds": round(sum(cpu.values()), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = load_params(Layout(ROOT).params)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": round(os.getloadavg()[0], 2)},
        "note": "measured while other jobs shared the 2 CPU cores (see load_average_*): wall-clock rates are "
        "noisy and low; cpu_seconds and the ratios are the steadier figures",
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_spark_") as tmpdir:
        tmp = Path(tmpdir)
        shutil.copy(Layout(ROOT).params, tmp / "params.yaml")
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{Layout(tmp).mlflow_db}"}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        os.environ["MLFLOW_TRACKING_URI"] = env["MLFLOW_TRACKING_URI"]
        os.chdir(tmp)  # MLflow's default artifact root is ./mlruns
        uri = register(tmp, params, "champion")
        churn = [str(VENV_BIN / "churn"), "predict"]
        for rows in args.rows:
            source = tmp / f"customers_{rows}.csv"
            write_customers(source, rows)
            engines = [("local", [*churn, "--model", uri, "--no-log", "--no-progress"])]
            masters = ["local[2]", "local[1]"] if rows == args.rows[0] else ["local[2]"]
            engines += [
                (f"spark {m}", [*churn, "--engine", "spark", "--model-uri", uri, "--master", m])
                for m in masters
            ]
            for name, cmd in engines:
                log.info("%s: %d rows", name, rows)
                res = run([*cmd, str(source), "-o", str(tmp / "out.csv")], tmp, env)
                res.update(engine=name, rows=rows, rows_per_second=round(rows / res["seconds"]))
                res["rows_per_cpu_second"] = round(rows / res["cpu_seconds"]) if res["cpu_seconds"] else None
                results["runs"].append(res)
                log.info("%s", res)
            source.unlink()
        os.chdir(ROOT)
    results["machine"]["load_average_at_end"] = round(os.getloadavg()[0], 2)
    by = {(r["engine"], r["rows"]): r for r in results["runs"]}
    first = args.rows[0]
    if ("spark local[1]", first) in by:
        results["spark_local2_vs_local1_rate"] = round(
            by[("spark local[2]", first)]["rows_per_second"]
            / by[("spark local[1]", first)]["rows_per_second"],
            2,
        )
    results["spark_vs_local_rate"] = {
        str(n): round(by[("spark local[2]", n)]["rows_per_second"] / by[("local", n)]["rows_per_second"], 2)
        for n in args.rows
    }
    save_json(results, args.out)
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    main()
