"""Stage `evaluate@<name>`: test-set metrics, curve points for DVC plots, and the MLflow run."""

from __future__ import annotations

import logging
from pathlib import Path

from churn import data, metrics, model, registry
from churn.io import load_json, load_model, load_params, read_table, save_json, section
from stages import _args

log = logging.getLogger("stages.evaluate")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--name", required=True, help="model name, a key of params.yaml: models")
    p.add_argument("--model", help="fitted pipeline (default: models/<name>.joblib)")
    p.add_argument("--test", default="data/prepared/test.parquet")
    p.add_argument("--data-metrics", default="metrics/data.json")
    p.add_argument("--metrics-dir", default="metrics")
    p.add_argument("--no-mlflow", action="store_true", help="skip MLflow tracking")
    args = p.parse_args(argv)
    params = load_params(args.params)
    seed = section(params, "base.seed", args.params)
    threshold = section(params, "evaluate.threshold", args.params)
    bins = section(params, "evaluate.calibration_bins", args.params)
    pipeline = load_model(args.model or Path("models") / f"{args.name}.joblib")
    X, y = data.xy(read_table(args.test))
    proba = pipeline.predict_proba(X)[:, 1]

    scores = metrics.classification(y, proba, threshold)
    scores["confusion"] = metrics.confusion_counts(y, proba, threshold)
    importance = model.feature_importance(pipeline, X, y, seed=seed)
    out = Path(args.metrics_dir)
    plots = out / "plots" / args.name
    save_json(metrics.roc_points(y, proba), plots / "roc.json")
    save_json(metrics.pr_points(y, proba), plots / "precision_recall.json")
    save_json(metrics.calibration_points(y, proba, bins), plots / "calibration.json")
    save_json(metrics.confusion_rows(y, proba, threshold), plots / "confusion.json")
    save_json([{"feature": k, "importance": v} for k, v in importance.items()], plots / "importance.json")
    save_json(scores, out / "evaluate" / f"{args.name}.json")
    log.info(
        "evaluated %s on %d test rows: accuracy %.4f, ROC-AUC %.4f",
        args.name,
        len(y),
        scores["accuracy"],
        scores["roc_auc"],
    )

    if not args.no_mlflow:
        _track(args, params, pipeline, scores, X, plots)


def _track(args, params, pipeline, scores, X, plots: Path) -> None:
    """Log the run to MLflow; a tracking failure is reported but never changes a DVC output."""
    train_report = load_json(Path(args.metrics_dir) / "train" / f"{args.name}.json")
    data_md5 = load_json(args.data_metrics)["input"]["md5"]
    try:
        with registry.quiet_mlflow_logs():
            run_id = registry.log_model_run(
                model_name=args.name,
                pipeline=pipeline,
                spec=params["models"][args.name],
                metrics={"test": scores, "cv": train_report.get("cv", {})},
                example=X.head(5),
                tags=registry.run_tags(args.name, data_md5),
                artifacts=[plots],
                experiment=params.get("mlflow", {}).get("experiment", "churn"),
            )
        log.info("MLflow run %s logged for %s at %s", run_id, args.name, registry.tracking_uri())
    except Exception as exc:
        log.warning(
            "MLflow tracking failed for %s (%s: %s); DVC outputs are unaffected",
            args.name,
            type(exc).__name__,
            exc,
        )


if __name__ == "__main__":
    _args.run(main)
