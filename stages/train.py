"""Stage `train@<name>`: cross-validate and fit the model spec `models.<name>` on the train split."""

from __future__ import annotations

import logging

from churn import data, model, scorecard
from churn.io import load_params, read_table, save_json, save_model, section
from stages import _args

log = logging.getLogger("stages.train")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--name", required=True, help="model name, a key of params.yaml: models")
    p.add_argument("--train", default="data/prepared/train.parquet")
    p.add_argument("--model-out")
    p.add_argument("--metrics-out", help="detailed report (default: metrics/train/<name>.json)")
    p.add_argument(
        "--scorecard-out", help="CV ROC-AUC for DVC (default: metrics/scorecard/train/<name>.json)"
    )
    args = p.parse_args(argv)
    params = load_params(args.params)
    spec = section(params, f"models.{args.name}", args.params)
    seed = section(params, "base.seed", args.params)
    folds = section(params, "train.cv_folds", args.params)
    model.check_spec(args.name, spec)
    X, y = data.xy(read_table(args.train))
    pipeline, report = model.fit(args.name, spec, X, y, seed=seed, cv_folds=folds)
    save_model(pipeline, args.model_out or f"models/{args.name}.joblib")
    save_json(report, args.metrics_out or f"metrics/train/{args.name}.json")
    save_json(
        scorecard.train(args.name, report), args.scorecard_out or f"metrics/scorecard/train/{args.name}.json"
    )
    cv_auc = report.get("cv", {}).get("roc_auc", {}).get("mean", float("nan"))
    log.info(
        "trained %s (%s) on %d rows, CV ROC-AUC %.4f",
        args.name,
        report["estimator"],
        report["n_rows"],
        cv_auc,
    )


if __name__ == "__main__":
    _args.run(main)
