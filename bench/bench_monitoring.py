"""Production monitoring at scale, and its statistical honesty.

    python bench/bench_monitoring.py [--rows 1000000] [--windows 200] [--out bench/results/monitoring.json]

1. Scale: logs `--rows` + 5% predictions of the champion (synthetic customers, scored by the real
   Predictor) into a fresh SQLite log, then — in a fresh process — times drift over a window of the
   last `--rows` predictions and records that process's peak memory. Targets: ≤ 5 s, ≤ 1.5 GB.
   The same run against `CHURN_DB_URL` when it is set (any SQLAlchemy URL, e.g. PostgreSQL).
2. False alarms: the share of windows of 500 predictions *without* drift in which the
   dataset-drift alarm fires (target ≤ 5%): `--windows` windows of fresh synthetic customers (the
   reference is the pipeline's train split, rebuilt from params with the same generator), and the
   share with any alert at all (prediction drift included); 20 windows of 5,000 (distance regime);
   with the real Telco CSV present, `--windows` random re-splits of it (features only).
3. Detection power: the share of windows of 500 in which the alarm fires, per named scenario
   (target ≥ 95%).

Self-contained: the reference splits and the champion are rebuilt from params.yaml in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from churn import data, io, model, synth
from churn.monitoring import alerts, distributions, drift, simulate
from churn.monitoring.monitor import Monitor
from churn.monitoring.queries import Window
from churn.monitoring.store import PredictionStore
from churn.params import load_params
from churn.paths import Layout
from churn.settings import DriftConfig, MonitoringSettings

ROOT = Path(__file__).resolve().parents[1]
REAL = io.real_data_path()  # CHURN_REAL_DATA; the real-data check is skipped without it
WINDOW = 500
TARGETS = {"seconds": 5.0, "peak_mb": 1536.0, "false_alarm_rate": 0.05, "power": 0.95}
CHUNK = 100_000

log = logging.getLogger("bench_monitoring")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="window size of the scale run")
    p.add_argument("--windows", type=int, default=200, help="no-drift windows (scenarios get half)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "monitoring.json"))
    p.add_argument("--drift-child", metavar="URL", help=argparse.SUPPRESS)
    p.add_argument("--splits", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def monitor_for(store: PredictionStore | None = None, splits: dict[str, str] | None = None) -> Monitor:
    """A monitor of the champion; `splits` replaces the reference, held-out split and model paths."""
    settings = MonitoringSettings.from_params(load_params(Layout(ROOT).params).get("monitoring"))
    if splits:
        settings = settings.model_copy(update=splits)

    def load_predictor():
        from churn.serving import Predictor

        # `splits` names the model this benchmark just trained in its temp folder: trusted
        return Predictor.load(model=settings.model, root=ROOT, log=False, trust_model=bool(splits))

    return Monitor(settings, store, root=ROOT, load_predictor=load_predictor)


def pipeline_outputs(folder: Path) -> dict[str, str]:
    """The pipeline's train/test splits and champion model, rebuilt from params in `folder`.

    synthesize → prepare → train@champion, as the stages do them, with today's generator: the
    benchmark's "no drift" windows come from that generator, so the reference and the model must
    too (stale pipeline outputs would measure the generator's change, not the alarm's honesty).
    """
    params = load_params(Layout(ROOT).params)
    seed = int(params["base"]["seed"])
    raw = synth.generate(rows=int(params["synthesize"]["rows"]), seed=seed)
    train, test = data.split(data.clean(raw)[0], float(params["prepare"]["test_size"]), seed)
    X, y = data.xy(train)
    champion = model.build("champion", params["models"]["champion"], seed).fit(X, y)
    layout = Layout(folder)
    paths = {
        "reference": str(layout.train),
        "holdout": str(layout.test),
        "model": str(layout.model("champion")),
    }
    io.write_table(train, paths["reference"])
    io.write_table(test, paths["holdout"])
    io.save_model(champion, paths["model"])
    return paths


# -- 1. scale ---------------------------------------------------------------------------------------


def fill(url: str, rows: int, monitor: Monitor) -> dict:
    """Log `rows` scored synthetic customers over 30 days; return load figures."""
    store = PredictionStore(url)
    if store.count():
        raise SystemExit(f"{store!r} already holds predictions: the benchmark needs an empty database")
    predictor = monitor.predictor
    start = datetime(2026, 1, 1)
    step = timedelta(days=30) / rows
    t0, done, seed = time.perf_counter(), 0, 1000
    while done < rows:
        n = min(CHUNK, rows - done)
        raw = synth.generate(rows=n, seed=seed)
        seed += 1
        scored = predictor.predict(raw, log=False)
        results = pd.DataFrame(
            {
                "probability": scored["churn_probability"].to_numpy(),
                "risk_level": scored["risk_level"].to_numpy(dtype=object),
                "model_name": predictor.model_name,
                "model_version": predictor.model_version,
                "customer_id": raw["customerID"].to_numpy(),
                "created_at": [start + step * (done + i) for i in range(n)],
            }
        )
        store.log_frame(data.coerce_features(raw), results, return_ids=False)
        done += n
        log.info("logged %d / %d", done, rows)
    seconds = time.perf_counter() - t0
    count = store.count()
    store.dispose()
    return {"rows_logged": count, "load_seconds": seconds, "rows_per_second": rows / seconds}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    with open("/proc/self/status") as fh:
        for text in fh:
            if text.startswith("VmHWM:"):
                return int(text.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def drift_child(url: str, window: int, splits: dict[str, str]) -> None:
    """In a fresh process: time drift on the last `window` predictions, report peak memory (JSON)."""
    store = PredictionStore(url)
    monitor = monitor_for(store, splits)
    t0 = time.perf_counter()
    monitor.reference()
    t_ref = time.perf_counter() - t0
    runs = []
    report = {}
    for _ in range(3):
        t = time.perf_counter()
        report = monitor.drift_window(Window(last=window))
        runs.append(time.perf_counter() - t)
    peak_mb = peak_rss_mb()
    sys.stdout.write(
        json.dumps(
            {
                "window_rows": report["n_current"],
                "method": report["method"],
                "dataset_drifted": report["dataset"]["drifted"],
                "reference_seconds": t_ref,
                "drift_seconds_first": runs[0],
                "drift_seconds_median": float(np.median(runs)),
                "peak_mb": peak_mb,
            }
        )
        + "\n"
    )
    store.dispose()


def scale(url: str, rows: int, monitor: Monitor, splits: dict[str, str]) -> dict:
    extra = rows // 20  # older predictions outside the window: the window is a real subset
    loaded = fill(url, rows + extra, monitor)
    t = time.perf_counter()
    os.sync()  # let the kernel write the freshly logged pages first: time the drift, not the write-back
    loaded["sync_seconds"] = time.perf_counter() - t
    child = subprocess.run(
        [sys.executable, __file__, "--drift-child", url, "--rows", str(rows), "--splits", json.dumps(splits)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = {**loaded, **json.loads(child.stdout.strip().splitlines()[-1])}
    result["meets_targets"] = (
        result["drift_seconds_median"] <= TARGETS["seconds"] and result["peak_mb"] <= TARGETS["peak_mb"]
    )
    return result


# -- 2./3. honesty ----------------------------------------------------------------------------------


def window_rates(
    reference: drift.Reference,
    config: DriftConfig,
    frame: pd.DataFrame,
    proba,
    windows: list[np.ndarray],
) -> dict:
    """Share of windows with dataset drift, and with any alert (features or prediction)."""
    dataset, anything, drifted_features = 0, 0, 0
    for rows in windows:
        summary = distributions.summarize(frame.iloc[rows], None if proba is None else proba[rows])
        report = drift.compare(reference, summary, config)
        dataset += report["dataset"]["drifted"]
        anything += bool(alerts.from_drift(report))
        drifted_features += report["dataset"]["n_drifted"]
    n = len(windows)
    return {
        "windows": n,
        "window_rows": len(windows[0]),
        "dataset_drift_rate": dataset / n,
        "any_alert_rate": anything / n,
        "mean_drifted_features": drifted_features / n,
    }


def disjoint(n_windows: int, size: int) -> list[np.ndarray]:
    return [np.arange(i * size, (i + 1) * size) for i in range(n_windows)]


def real_random_splits(config: DriftConfig, n_windows: int, seed: int) -> dict:
    """The real Telco data, no drift by construction: per window, a fresh random 80/20 split; the
    80% is the reference, 500 rows of the 20% the window (features only: no model of this data)."""
    real = data.load_clean(REAL)[0]
    rng = np.random.default_rng(seed)
    fired, drifted = 0, 0
    for _ in range(n_windows):
        order = rng.permutation(len(real))
        cut = int(0.8 * len(real))
        reference = drift.reference_from_frame(real.iloc[order[:cut]], config)
        report = drift.compare(
            reference, distributions.summarize(real.iloc[order[cut : cut + WINDOW]]), config
        )
        fired += report["dataset"]["drifted"]
        drifted += report["dataset"]["n_drifted"]
    return {
        "windows": n_windows,
        "window_rows": WINDOW,
        "dataset_drift_rate": fired / n_windows,
        "any_alert_rate": fired / n_windows,
        "mean_drifted_features": drifted / n_windows,
    }


def honesty(monitor: Monitor, n_windows: int, seed: int) -> dict:
    config = monitor.settings.drift
    reference = monitor.reference()
    out: dict = {"false_alarms": {}, "power": {}}

    fresh = simulate.Scenario.get("none").customers(n_windows * WINDOW, seed)
    fresh = data.clean(fresh)[0]
    out["false_alarms"]["fresh_synthetic"] = window_rates(
        reference, config, fresh, monitor.score(fresh), disjoint(n_windows, WINDOW)
    )
    big = data.clean(simulate.Scenario.get("none").customers(20 * 5000, seed + 1))[0]
    out["false_alarms"]["fresh_synthetic_5000"] = window_rates(
        reference, config, big, monitor.score(big), disjoint(20, 5000)
    )
    if REAL.exists():
        out["false_alarms"]["real_random_splits"] = real_random_splits(config, n_windows, seed)

    per_scenario = max(n_windows // 2, 20)
    for name in simulate.SCENARIOS:
        if name == "none":
            continue
        scenario = simulate.Scenario.get(name, monitor.settings.scenarios)
        frame = data.clean(scenario.customers(per_scenario * WINDOW, seed + 7))[0]
        rates = window_rates(reference, config, frame, monitor.score(frame), disjoint(per_scenario, WINDOW))
        out["power"][name] = {**rates, "knobs": scenario.knobs, "what": simulate.DESCRIPTIONS[name]}
        log.info("%s: power %.3f", name, rates["dataset_drift_rate"])
    fa = [v["dataset_drift_rate"] for v in out["false_alarms"].values()]
    pw = [v["dataset_drift_rate"] for v in out["power"].values()]
    out["meets_targets"] = max(fa) <= TARGETS["false_alarm_rate"] and min(pw) >= TARGETS["power"]
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.drift_child:
        drift_child(args.drift_child, args.rows, json.loads(args.splits))
        return {}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    tmp = tempfile.TemporaryDirectory(prefix="churn-bench-")
    splits = pipeline_outputs(Path(tmp.name))
    monitor = monitor_for(splits=splits)
    config = monitor.settings.drift
    result: dict = {
        "targets": TARGETS,
        "settings": {
            "window_rows": WINDOW,
            "alpha": config.alpha,
            "bonferroni": config.bonferroni,
            "dataset_drift_share": config.dataset_drift_share,
            "stat_test_max_rows": config.stat_test_max_rows,
            "model": monitor.settings.model,
        },
    }
    t = time.perf_counter()
    result["honesty"] = honesty(monitor, args.windows, seed=42)
    log.info("honesty done in %.0f s", time.perf_counter() - t)
    with tmp:
        db = f"sqlite:///{Path(tmp.name) / 'predictions.db'}"
        result["scale"] = {"sqlite": scale(db, args.rows, monitor, splits)}
        if os.environ.get("CHURN_DB_URL"):
            result["scale"]["churn_db_url"] = scale(os.environ["CHURN_DB_URL"], args.rows, monitor, splits)
        else:
            result["scale"]["churn_db_url"] = "not run: CHURN_DB_URL is not set"
    io.save_json(result, args.out)
    log.info("wrote %s", args.out)
    return result


if __name__ == "__main__":
    main()
