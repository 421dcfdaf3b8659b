"""Pick the initial challenger: stratified 5-fold CV of candidate specs on the real Telco data.

    python bench/model_selection.py [--real PATH] [--out bench/results/model_selection.json]

Each candidate is scored by CV ROC-AUC and accuracy on the whole real file, by the time SHAP
takes to explain one customer (the app explains every prediction, so slow models are excluded),
and by its bare batch scoring speed (`churn predict` targets 50,000 rows/s).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from churn import data, model
from churn.io import REAL_DATA_ENV, REAL_DATA_HINT, real_data_path

ROOT = Path(__file__).resolve().parents[1]


def candidates() -> list[dict]:
    specs = [{"estimator": "random_forest", "params": {"n_estimators": 100}}]  # the original system
    for c in (0.03, 0.1, 0.3, 1.0):
        specs.append({"estimator": "logistic_regression", "params": {"C": c, "max_iter": 1000}})
    for lr, leaf, it in itertools.product((0.03, 0.05), (20, 50), (100, 200)):
        specs.append(
            {
                "estimator": "hist_gradient_boosting",
                "params": {
                    "learning_rate": lr,
                    "max_iter": it,
                    "max_leaf_nodes": 15,
                    "min_samples_leaf": leaf,
                },
            }
        )
    for trees, depth, leaf in ((300, 8, 5), (300, 10, 10), (300, None, 20), (100, None, 20)):
        params = {"n_estimators": trees, "max_depth": depth, "min_samples_leaf": leaf}
        specs.append({"estimator": "random_forest", "params": {k: v for k, v in params.items() if v}})
    return specs


def serving_costs(spec: dict, X, y) -> dict[str, float]:
    """Fitted on all rows: median ms to explain one encoded customer with the serving explainer
    (SHAP values and probability, as the app computes them), and the bare `predict_proba` rows/s
    over all rows (best of 3), both on one thread."""
    from churn import compiled, explain

    with threadpool_limits(1):
        pipeline = model.build("candidate", spec, seed=42).fit(X, y)
        explainer = explain.Explainer(pipeline, X.sample(200, random_state=0))
        Xt = pipeline[:-1].transform(X)  # as the serving path explains: rows already encoded
        forest = compiled.Trees.build(pipeline[-1])  # the serving path's probability for a few rows
        times = []
        for i in range(20):
            t = time.perf_counter()
            row = Xt[i : i + 1]
            explainer.attribute_matrix(row, forest.proba(row) if forest else None)
            times.append((time.perf_counter() - t) * 1000)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            pipeline[-1].predict_proba(Xt)
            best = min(best, time.perf_counter() - t)
    return {
        "shap_ms_per_customer": round(float(np.median(times)), 2),
        "predict_rows_per_second": round(len(X) / best),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--real", default=str(real_data_path()), help=f"the real Telco CSV (default: ${REAL_DATA_ENV})"
    )
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "model_selection.json"))
    args = p.parse_args()
    if not Path(args.real).is_file():
        p.error(f"{args.real}: not found; {REAL_DATA_HINT}")
    df, _ = data.load_clean(args.real)
    X, y = data.xy(df)
    rows = []
    for spec in candidates():
        t = time.perf_counter()
        cv = model.cross_validate_spec("candidate", spec, X, y, folds=5, seed=42)
        rows.append(
            {
                "spec": spec,
                "cv_roc_auc": round(cv["roc_auc"]["mean"], 4),
                "cv_roc_auc_std": round(cv["roc_auc"]["std"], 4),
                "cv_accuracy": round(cv["accuracy"]["mean"], 4),
                "cv_seconds": round(time.perf_counter() - t, 2),
                **serving_costs(spec, X, y),
            }
        )
        print(json.dumps(rows[-1]))
    rows.sort(key=lambda r: -r["cv_roc_auc"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps({"data": str(Path(args.real).name), "rows": len(df), "candidates": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
