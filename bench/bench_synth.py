"""Fidelity of the synthetic customers against the real Telco data.

    python bench/bench_synth.py [--real PATH] [--out bench/results/synth_fidelity.json]

Generates 7,043 customers with seed 42 from the committed figures and reports: churn rate
(synthetic vs real), PSI of every column against the real data, ROC-AUC and accuracy on the real
data of models trained on the synthetic customers only, generation time, and whether the targets
are met (churn rate within ±2 points, every PSI < 0.10, logistic-regression ROC-AUC ≥ 0.80).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score

from churn import data, model, synth
from churn.io import REAL_DATA_ENV, REAL_DATA_HINT, real_data_path, save_json
from churn.monitoring import distributions

ROOT = Path(__file__).resolve().parents[1]
ROWS, SEED = 7043, 42
MODELS = {
    "logistic_regression": {"estimator": "logistic_regression", "params": {}},
    "random_forest": {"estimator": "random_forest", "params": {"n_estimators": 100}},
}
TARGETS = {"churn_rate_points": 2.0, "max_psi": 0.10, "lr_roc_auc": 0.80}

log = logging.getLogger("bench_synth")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--real", default=str(real_data_path()), help=f"the real Telco CSV (default: ${REAL_DATA_ENV})"
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "synth_fidelity.json"))
    args = p.parse_args(argv)
    if not Path(args.real).is_file():
        p.error(f"{args.real}: not found; {REAL_DATA_HINT}")
    return args


def generation_seconds(repeats: int = 5) -> float:
    """Median wall time of `synth.generate(ROWS, SEED)` (figures loading included)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        synth.generate(rows=ROWS, seed=SEED)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    real = data.read_raw(args.real)
    synthetic = synth.generate(rows=ROWS, seed=SEED)
    X_real, y_real = data.xy(data.clean(real)[0])
    X_syn, y_syn = data.xy(data.clean(synthetic)[0])

    psi = distributions.column_psi(real, synthetic)
    worst = max(psi, key=psi.get)
    scores = {}
    for name, spec in MODELS.items():
        pipeline = model.build("challenger", spec, seed=SEED).fit(X_syn, y_syn)
        proba = pipeline.predict_proba(X_real)[:, 1]
        scores[name] = {
            "roc_auc": float(roc_auc_score(y_real, proba)),
            "accuracy": float(accuracy_score(y_real, (proba >= 0.5).astype(int))),
        }
    churn = {"synthetic": float(y_syn.mean()), "real": float(y_real.mean())}
    churn["difference_points"] = 100 * (churn["synthetic"] - churn["real"])
    report = {
        "rows": ROWS,
        "seed": SEED,
        "real_rows": len(real),
        "churn_rate": churn,
        "psi": psi,
        "max_psi": {"column": worst, "value": psi[worst]},
        "trained_on_synthetic_tested_on_real": scores,
        "generation_seconds": generation_seconds(),
        "targets": TARGETS,
        "targets_met": {
            "churn_rate": abs(churn["difference_points"]) <= TARGETS["churn_rate_points"],
            "psi": psi[worst] < TARGETS["max_psi"],
            "lr_roc_auc": scores["logistic_regression"]["roc_auc"] >= TARGETS["lr_roc_auc"],
        },
    }
    save_json(report, args.out)
    print(
        f"churn {churn['synthetic']:.3f} vs {churn['real']:.3f}; max PSI {psi[worst]:.4f} ({worst}); "
        f"AUC LR {scores['logistic_regression']['roc_auc']:.3f} RF {scores['random_forest']['roc_auc']:.3f}; "
        f"{report['generation_seconds'] * 1000:.0f} ms; targets met: {report['targets_met']}"
    )
    return report


if __name__ == "__main__":
    main()
