"""Wall time of the validation stages (validate-fairness, robustness, ab-test, report) on the pipeline outputs.

    python bench/bench_validation.py [--repeats 3] [--out bench/results/validation.json]

Needs the default pipeline's outputs (`dvc repro` up to `evaluate`: data/prepared/test.parquet,
models/*.joblib, metrics/{data,evaluate,train}). Each stage runs as `python -m stages.<name>`,
exactly as DVC runs it, writing into a temporary copy of metrics/; `report` runs with MLflow
tracking into a temporary SQLite store and without. Also times the vectorised kernels in-process:
the 1,000-resample paired bootstrap and one robustness pass (9 perturbed copies) per model.
Target: each stage ≤ ~4 s, so the whole `dvc repro` stays ≤ 60 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from churn import abtest, data, robustness
from churn.io import load_model, read_table, save_json
from churn.params import load_params, read
from churn.paths import Layout
from churn.settings import RobustnessSettings
from churn.validation import MODELS, probabilities

ROOT = Path(__file__).resolve().parents[1]
PROJECT = Layout(ROOT)
NEEDED = tuple(p.relative_to(ROOT) for p in (PROJECT.test, *map(PROJECT.model, MODELS), PROJECT.metrics.data))
TARGET_STAGE_SECONDS = 4.0


def _stage(name: str, args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"stages.{name}", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"stages.{name} failed:\n{proc.stderr[-3000:]}")
    return elapsed


def _kernels(repeats: int) -> dict[str, float]:
    params = load_params(PROJECT.params)
    X, y = data.xy(read_table(PROJECT.test))
    models = {n: load_model(PROJECT.model(n), root=ROOT) for n in MODELS}
    proba = probabilities(models, X)
    cfg = read(params, RobustnessSettings)
    out: dict[str, list[float]] = {"bootstrap_1000_seconds": [], "robustness_per_model_seconds": []}
    for _ in range(repeats):
        t = time.perf_counter()
        abtest.paired_bootstrap(y, proba, threshold=0.5, n_boot=1000, seed=0, confidence=0.95)
        out["bootstrap_1000_seconds"].append(time.perf_counter() - t)
        t = time.perf_counter()
        copies = robustness.copies(X, cfg, seed=0)
        for model in models.values():
            robustness.evaluate(model, X, y, copies, cfg)
        out["robustness_per_model_seconds"].append((time.perf_counter() - t) / len(models))
    return {k: float(np.median(v)) for k, v in out.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="runs per stage; the median is reported")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "validation.json"))
    args = p.parse_args(argv)
    missing = [n for n in NEEDED if not (ROOT / n).exists()]
    if missing:
        sys.exit(f"missing pipeline outputs {missing}: run `dvc repro` first")
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Layout(tmp).metrics
        metrics = copy.dir
        metrics.mkdir()
        for part in (
            PROJECT.metrics.data,
            *(PROJECT.metrics.dir / d for d in ("evaluate", "train", "plots")),
        ):
            dst = copy.dir / part.relative_to(PROJECT.metrics.dir)
            if part.is_dir():
                shutil.copytree(part, dst)
            elif part.exists():
                shutil.copy(part, dst)
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{Layout(tmp).mlflow_db}",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        report_args = ["--metrics-dir", str(metrics), "--out", str(copy.validation)]
        report_args += ["--card", str(copy.model_card)]
        runs = {
            "validate-fairness": ("validate_fairness", ["--out", str(copy.fairness)]),
            "robustness": ("robustness", ["--out", str(copy.robustness)]),
            "ab-test": ("ab_test", ["--metrics-dir", str(metrics), "--out", str(copy.ab_test)]),
            "report (no MLflow)": ("report", [*report_args, "--no-mlflow"]),
            "report": ("report", report_args),
        }
        for _ in range(args.repeats):
            for label, (module, stage_args) in runs.items():
                times.setdefault(label, []).append(_stage(module, stage_args, env))
    stages = {k: {"median_seconds": float(np.median(v)), "runs": v} for k, v in times.items()}
    dvc_stages = ("validate-fairness", "robustness", "ab-test", "report")
    result = {
        "stages": stages,
        "total_seconds": sum(stages[k]["median_seconds"] for k in dvc_stages),
        "kernels": _kernels(args.repeats),
        "target_stage_seconds": TARGET_STAGE_SECONDS,
        "machine": {"cpus": os.cpu_count(), "load_average_1min": os.getloadavg()[0]},
    }
    save_json(result, args.out)
    for label, s in stages.items():
        print(f"{label:20s} {s['median_seconds']:6.2f} s (median of {len(s['runs'])})")
    print(f"{'4 stages':20s} {result['total_seconds']:6.2f} s; kernels: {result['kernels']}")
    return result


if __name__ == "__main__":
    main()
