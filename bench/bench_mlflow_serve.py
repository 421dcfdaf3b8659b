"""REST serving through MLflow: `mlflow models serve -m models:/<name>@champion --env-manager local`.

    python bench/bench_mlflow_serve.py [--out bench/results/mlflow_serve.json] [--requests 50]

For the champion and the challenger of params.yaml (trained on synthetic data in a temp dir,
logged by `tracking.log_model_run` into a temp SQLite store, registered, aliased and served one
after the other on 127.0.0.1), measures:
- start-up: seconds from launching the server to its first `GET /ping` 200;
- one customer per `POST /invocations` (`--requests` sequential requests after a warm-up), p50 and
  p95 wall time, as split-orient JSON and as CSV;
- 100 customers per request (JSON), p50 of 10;
- the same one-customer prediction in process (`mlflow.pyfunc` `predict`), to show what HTTP,
  parsing and the server add.
Customers are raw CSV rows (text values, customerID). Targets: none; the figures are for reference.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from churn import data, model, registry, schema, synth, tracking
from churn.io import save_json
from churn.mlflow_model import OUTPUT
from churn.params import load_params
from churn.paths import Layout

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
REGISTERED = "churn-model-bench"
log = logging.getLogger("bench_mlflow_serve")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "mlflow_serve.json"))
    p.add_argument("--requests", type=int, default=50, help="sequential one-customer requests per format")
    p.add_argument("--startup-timeout", type=float, default=120.0, help="seconds to wait for GET /ping")
    return p.parse_args(argv)


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = 1000 * np.asarray(samples)
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "n": len(ms)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served(model_uri: str, workdir: Path, timeout_s: float) -> Iterator[tuple[str, float]]:
    """`mlflow models serve` on 127.0.0.1; yields (URL, seconds to the first /ping 200)."""
    port = free_port()
    cmd = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    # the server execs `uvicorn` from PATH: the venv's bin must be on it
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    log_path = workdir / f"serve-{port}.log"
    with log_path.open("w") as log_file:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"mlflow models serve exited {proc.returncode}: {log_path.read_text()[-2000:]}"
                    )
                with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
                if time.perf_counter() - start > timeout_s:
                    raise RuntimeError(f"mlflow models serve not ready after {timeout_s} s")
                time.sleep(0.2)
            yield url, time.perf_counter() - start
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def post(url: str, body: bytes, content_type: str) -> list[float]:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        return [p[OUTPUT] for p in json.loads(resp.read())["predictions"]]


def as_json(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def register(tmp: Path, params: dict, name: str) -> str:
    """Train `name`'s spec on synthetic data, log it as the pipeline does, alias it champion."""
    import mlflow

    seed = params["base"]["seed"]
    df, _ = data.clean(synth.generate(rows=params["synthesize"]["rows"], seed=seed))
    train, test = data.split(df, params["prepare"]["test_size"], seed)
    X, y = data.xy(train)
    spec = params["models"][name]
    pipeline = model.build(name, spec, seed).fit(X, y)
    with registry.quiet_mlflow_logs():
        run_id = tracking.log_model_run(
            model_name=name,
            pipeline=pipeline,
            spec=spec,
            metrics={},
            example=data.xy(test)[0].head(5),
            tags=tracking.run_tags(name, "0" * 32, ROOT),
            root=tmp,
        )
    client = mlflow.MlflowClient()
    model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
    registered = f"{REGISTERED}-{name}"
    client.create_registered_model(registered)
    version = client.create_model_version(
        registered, source=f"models:/{model_id}", run_id=run_id, model_id=model_id
    )
    client.set_registered_model_alias(registered, registry.CHAMPION, version.version)
    return f"models:/{registered}@{registry.CHAMPION}"


def bench_model(uri: str, tmp: Path, customers: pd.DataFrame, args: argparse.Namespace) -> dict:
    import mlflow

    one = [customers.iloc[[i]] for i in range(args.requests + 5)]
    in_process = mlflow.pyfunc.load_model(uri)
    in_process.predict(one[0])
    res: dict = {
        "in_process_one_customer": percentiles(timed(lambda: in_process.predict(one[1]), args.requests))
    }
    with served(uri, tmp, args.startup_timeout) as (url, startup):
        res["startup_seconds"] = startup
        for row in one[:5]:  # warm-up
            post(url, as_json(row), "application/json")
        json_bodies = [as_json(row) for row in one[5:]]
        csv_bodies = [row.to_csv(index=False).encode() for row in one[5:]]
        samples = []
        for body in json_bodies:
            t = time.perf_counter()
            post(url, body, "application/json")
            samples.append(time.perf_counter() - t)
        res["one_customer_json"] = percentiles(samples)
        samples = []
        for body in csv_bodies:
            t = time.perf_counter()
            post(url, body, "text/csv")
            samples.append(time.perf_counter() - t)
        res["one_customer_csv"] = percentiles(samples)
        batch = as_json(customers.head(100))
        res["hundred_customers_json"] = percentiles(timed(lambda: post(url, batch, "application/json"), 10))
        served_p = np.array(post(url, batch, "application/json"))
    local_p = in_process.predict(customers.head(100))[OUTPUT].to_numpy()
    res["max_abs_diff_served_vs_in_process"] = float(np.max(np.abs(served_p - local_p)))
    return res


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = load_params(Layout(ROOT).params)
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()[0]}}
    customers = synth.generate(rows=200, seed=11).drop(columns=[schema.TARGET])
    with tempfile.TemporaryDirectory(prefix="bench_mlflow_serve_") as tmpdir:
        tmp = Path(tmpdir)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Layout(tmp).mlflow_db}"
        os.chdir(tmp)  # MLflow's default artifact root is ./mlruns
        for name in ("champion", "challenger"):
            log.info("%s: train, log, register", name)
            uri = register(tmp, params, name)
            log.info("%s: serve %s", name, uri)
            res = bench_model(uri, tmp, customers, args)
            res["estimator"] = params["models"][name]["estimator"]
            results[name] = res
        os.chdir(ROOT)
    save_json(results, args.out)
    print(f"wrote {args.out}")
    for name in ("champion", "challenger"):
        r = results[name]
        print(
            f"  {name} ({r['estimator']}): one customer p50 {r['one_customer_json']['p50_ms']:.1f} ms JSON, "
            f"{r['one_customer_csv']['p50_ms']:.1f} ms CSV (in process {r['in_process_one_customer']['p50_ms']:.1f} ms); "
            f"start-up {r['startup_seconds']:.1f} s"
        )
    return results


if __name__ == "__main__":
    main()
