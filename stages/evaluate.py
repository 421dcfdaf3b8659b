"""Stage `evaluate@<name>`: test-set metrics, money figures and curve points for DVC plots (MLflow: stage `report`)."""

from __future__ import annotations

import argparse
import logging

from churn import data, economics, metrics, model, scorecard
from churn.io import load_model, read_table, save_json
from churn.params import load_params, read, section
from churn.paths import LAYOUT, Metrics
from churn.settings import BaseSettings, EconomicsSettings, EvaluateSettings
from stages import _args

log = logging.getLogger("stages.evaluate")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--name", required=True, help="model name, a key of params.yaml: models")
    p.add_argument("--model", help=f"fitted pipeline (default: {LAYOUT.model('<name>')})")
    p.add_argument("--test", default=str(LAYOUT.test))
    p.add_argument("--metrics-dir", default=str(LAYOUT.metrics.dir))
    # MLflow tracking moved to the `report` stage; the flag is accepted so older calls keep working
    p.add_argument("--no-mlflow", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    params = load_params(args.params)
    seed = read(params, BaseSettings, args.params).seed
    settings = read(params, EvaluateSettings, args.params)
    threshold, bins = settings.threshold, settings.calibration_bins
    money = read(params, EconomicsSettings, args.params)
    model.check_spec(args.name, section(params, f"models.{args.name}", args.params), args.params)
    # trust=True: inside `dvc repro` this file is the `train` stage's own output, built just before
    # this stage (a dependency of it); serving checks it against dvc.lock instead
    pipeline = load_model(args.model or LAYOUT.model(args.name), trust=True)
    X, y = data.xy(read_table(args.test))
    proba = pipeline.predict_proba(X)[:, 1]

    scores = metrics.classification(y, proba, threshold)
    scores["confusion"] = metrics.confusion_counts(y, proba, threshold)
    clv = economics.customer_value(money, X)
    scores["economics"] = economics.evaluate(y, proba, clv, money, threshold)
    importance = model.feature_importance(pipeline, X, y, seed=seed)
    out = Metrics(args.metrics_dir)
    plots = out.plots(args.name)
    save_json(metrics.roc_points(y, proba), plots / "roc.json")
    save_json(metrics.pr_points(y, proba), plots / "precision_recall.json")
    save_json(metrics.calibration_points(y, proba, bins), plots / "calibration.json")
    save_json(metrics.confusion_rows(y, proba, threshold), plots / "confusion.json")
    save_json(metrics.profit_points(proba, economics.realised_gain(y, clv, money)), plots / "profit.json")
    save_json([{"feature": k, "importance": v} for k, v in importance.items()], plots / "importance.json")
    save_json(scores, out.evaluate(args.name))
    save_json(scorecard.evaluate(args.name, scores), out.scorecard_evaluate(args.name))
    log.info(
        "evaluated %s on %d test rows: accuracy %.4f, ROC-AUC %.4f, EMPC %.2f per customer",
        args.name,
        len(y),
        scores["accuracy"],
        scores["roc_auc"],
        scores["economics"]["empc"],
    )


if __name__ == "__main__":
    _args.run(main)
