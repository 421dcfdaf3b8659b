"""The app end to end through gradio_client: /predict round trips, 8 clients at once, start-up time.

    python bench/bench_app.py [--out bench/results/app.json] [--sequential 100] [--clients 8] [--per-client 25]

Starts `python -m app` in a fresh process on 127.0.0.1 (the repository's models, or both specs
trained on synthetic data in a temp dir), with the prediction log in a temporary SQLite file and
no GROQ_API_KEY (template emails: nothing leaves the machine). Measures:
- start-up: process start → first /predict answered (imports, model and SHAP explainer loaded once);
- /predict round trip (validation, prediction, SHAP chart, retention actions, email, logging),
  sequential, then with `--clients` gradio_client clients calling at the same time;
- errors, and whether every answered prediction is in the log;
- how much of a round trip is the Predictor's own work (`assess`: SHAP, actions, email, logging,
  as it records in the log's `latency_ms`) and how much is the app, Gradio and HTTP.
Targets: p50 <= 150 ms sequential; 0 errors and every prediction logged with 8 clients.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_serving import customers, percentiles, project_root

from churn import schema
from churn.io import save_json
from churn.monitoring.store import PredictionStore

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"sequential_p50_ms": 150.0, "concurrent_errors": 0}
STARTUP_TIMEOUT_S = 180
log = logging.getLogger("bench_app")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "app.json"))
    p.add_argument("--sequential", type=int, default=100, help="sequential /predict calls")
    p.add_argument("--clients", type=int, default=8, help="concurrent gradio_client clients")
    p.add_argument("--per-client", type=int, default=25, help="/predict calls per concurrent client")
    p.add_argument("--http", type=int, default=50, help="sequential /predict calls over plain HTTP")
    return p.parse_args(argv)


def records(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` different customers as /predict arguments (numbers as numbers, a blank TotalCharges as None)."""
    df = customers(n, seed)[list(schema.FEATURES)]
    out = []
    for row in df.to_dict("records"):
        for col in schema.NUMERIC_FEATURES:
            text = str(row[col]).strip()
            row[col] = None if not text else (int(text) if schema.NUMERIC[col][2] else float(text))
        out.append(row)
    return out


def start_app(
    root: Path, model: str, port: int, env: dict[str, str], log_path: Path
) -> tuple[subprocess.Popen, Any, float, float]:
    """Start `python -m app` (its log to `log_path`); return (process, client, seconds to listening,
    seconds to first /predict)."""
    from gradio_client import Client

    start = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "--root",
            str(root),
            "--model",
            model,
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("w"),  # a file, not a pipe: nobody reads it while the app runs
    )
    client = None
    while client is None:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        if time.perf_counter() - start > STARTUP_TIMEOUT_S:
            proc.kill()
            raise TimeoutError(f"the app did not answer within {STARTUP_TIMEOUT_S} s")
        try:
            client = Client(f"http://127.0.0.1:{port}/", verbose=False, analytics_enabled=False)
        except Exception:
            time.sleep(0.1)
    listening = time.perf_counter() - start
    client.predict(api_name="/predict")
    return proc, client, listening, time.perf_counter() - start


def timed_http(http: Any, base: str, customer: dict[str, Any]) -> float:
    """/predict through Gradio's HTTP API as `curl` calls it (POST the values, GET the result stream)."""
    t = time.perf_counter()
    event = http.post(f"{base}gradio_api/call/predict", json={"data": [customer[f] for f in schema.FEATURES]})
    event.raise_for_status()
    stream = http.get(f"{base}gradio_api/call/predict/{event.json()['event_id']}", timeout=120).text
    elapsed = 1000 * (time.perf_counter() - t)
    if "event: complete" not in stream:
        raise ValueError(f"/predict over HTTP did not complete: {stream[:300]}")
    return elapsed


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far, from /proc (None where there is no /proc)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_predict(client: Any, customer: dict[str, Any]) -> float:
    t = time.perf_counter()
    result = client.predict(**customer, api_name="/predict")
    elapsed = 1000 * (time.perf_counter() - t)
    if not 0.0 <= float(result[0]) <= 1.0:
        raise ValueError(f"/predict returned {result[0]!r} first, not a probability")
    return elapsed


def concurrent(url: str, batches: list[list[dict[str, Any]]]) -> tuple[list[float], list[str], float]:
    """One gradio_client per thread, all starting together; returns latencies, errors and wall time."""
    from gradio_client import Client

    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    clients = [Client(url, verbose=False, analytics_enabled=False) for _ in batches]
    barrier = threading.Barrier(len(batches) + 1)

    def work(client: Any, batch: list[dict[str, Any]]) -> None:
        barrier.wait()
        for customer in batch:
            try:
                ms = timed_predict(client, customer)
                with lock:
                    latencies.append(ms)
            except Exception as exc:
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(c, b)) for c, b in zip(clients, batches, strict=True)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - start


def stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {**percentiles(a / 1000), "mean_ms": float(a.mean()), "max_ms": float(a.max())}


def measure(root: Path, model: str, env: dict[str, str], args: argparse.Namespace, clients: int) -> dict:
    """Start the app serving `model`, time /predict sequentially and (with `clients` > 0) concurrently."""
    import app

    db_url = env["CHURN_DB_URL"]
    port = app.free_port()
    start = time.perf_counter()
    log_path = Path(env["CHURN_DB_URL"].removeprefix("sqlite:///")).with_suffix(".log")
    proc, client, listening, first = start_app(root, model, port, env, log_path)
    try:
        pool = records(args.sequential + clients * args.per_client + 5, seed=2024)
        for customer in pool[:5]:
            timed_predict(client, customer)  # warm-up
        server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
        seq = [timed_predict(client, c) for c in pool[5 : 5 + args.sequential]]
        client_cpu = time.process_time() - client_cpu
        server_cpu = None if server_cpu is None else cpu_seconds(proc.pid) - server_cpu
        with httpx.Client() as http:
            raw = [timed_http(http, f"http://127.0.0.1:{port}/", c) for c in pool[5 : 5 + args.http]]
        rest = pool[5 + args.sequential :]
        lat, errors, wall = [], [], 0.0
        if clients:
            lat, errors, wall = concurrent(
                f"http://127.0.0.1:{port}/", [rest[i::clients] for i in range(clients)]
            )
        answered = 1 + 5 + len(seq) + len(raw) + len(lat)
        store = PredictionStore(db_url)
        logged = store.count()
        # the Predictor's own time per request, as it logged it: the rest is the app, Gradio and HTTP
        served = store.read(columns=["latency_ms"])["latency_ms"].to_numpy()[6 : 6 + len(seq)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    out = {
        "served_model": model,
        "startup": {"seconds_to_listening": listening, "seconds_to_first_prediction": first},
        "predict_sequential": {
            **stats(seq),
            "predictor_assess_p50_ms": float(np.median(served)),
            "app_and_http_overhead_p50_ms": float(np.median(np.asarray(seq) - served)),
            # CPU per request: what a round trip costs on an idle core (this machine is shared)
            "app_cpu_ms_per_request": None if server_cpu is None else 1000 * server_cpu / len(seq),
            "client_cpu_ms_per_request": 1000 * client_cpu / len(seq),
        },
        # the same calls over plain HTTP (what `curl` does): no gradio_client polling in the way
        "predict_http": stats(raw),
        "logging": {"answered": answered, "logged": logged, "every_prediction_logged": answered == logged},
    }
    if clients:
        out["predict_concurrent"] = {
            **stats(lat),
            "clients": clients,
            "errors": len(errors),
            "first_errors": errors[:3],
            "throughput_per_s": len(lat) / wall,
        }
    log.info(
        "%s: start-up %.1f s; /predict p50 %.0f ms (Predictor %.0f, app + HTTP %.0f) / p95 %.0f ms sequential, "
        "p50 %.0f ms over plain HTTP%s; %d of %d logged (%.0f s)",
        model,
        first,
        out["predict_sequential"]["p50_ms"],
        out["predict_sequential"]["predictor_assess_p50_ms"],
        out["predict_sequential"]["app_and_http_overhead_p50_ms"],
        out["predict_sequential"]["p95_ms"],
        out["predict_http"]["p50_ms"],
        (
            f"; p50 {out['predict_concurrent']['p50_ms']:.0f} ms / p95 {out['predict_concurrent']['p95_ms']:.0f} ms "
            f"with {clients} clients ({len(errors)} errors, {out['predict_concurrent']['throughput_per_s']:.1f} req/s)"
        )
        if clients
        else "",
        logged,
        answered,
        time.perf_counter() - start,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    import app

    load_before = os.getloadavg()[0]
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        root = project_root(Path(tmp))
        for model, clients in (("champion", args.clients), ("challenger", 0)):
            env = {**os.environ, **app.QUIET_ENV, "CHURN_DB_URL": f"sqlite:///{Path(tmp) / f'{model}.db'}"}
            env.pop("GROQ_API_KEY", None)
            env.pop(app.AUTH_ENV, None)
            runs[model] = measure(root, model, env, args, clients)
    main_run = runs["champion"]
    conc = main_run["predict_concurrent"]
    result = {
        **main_run,
        "challenger_served": {
            k: runs["challenger"][k] for k in ("startup", "predict_sequential", "predict_http", "logging")
        },
        "targets": TARGETS,
        "met": {
            "sequential_p50_ms": main_run["predict_sequential"]["p50_ms"] <= TARGETS["sequential_p50_ms"],
            "concurrent_errors": conc["errors"] == TARGETS["concurrent_errors"]
            and main_run["logging"]["every_prediction_logged"],
        },
        "machine": {"cpus": os.cpu_count(), "load_average_1min": [load_before, os.getloadavg()[0]]},
    }
    save_json(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
