"""Stage `train@<name>`: cross-validate and fit the model spec `models.<name>` on the train split."""

from __future__ import annotations

import logging

from churn import data, model, scorecard
from churn.io import read_table, save_json, save_model
from churn.params import load_params, read, section
from churn.paths import LAYOUT
from churn.settings import BaseSettings, TrainSettings
from stages import _args

log = logging.getLogger("stages.train")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--name", required=True, help="model name, a key of params.yaml: models")
    p.add_argument("--train", default=str(LAYOUT.train))
    p.add_argument("--model-out", help=f"fitted pipeline (default: {LAYOUT.model('<name>')})")
    p.add_argument("--metrics-out", help=f"detailed report (default: {LAYOUT.metrics.train('<name>')})")
    p.add_argument(
        "--scorecard-out", help=f"CV ROC-AUC for DVC (default: {LAYOUT.metrics.scorecard_train('<name>')})"
    )
    args = p.parse_args(argv)
    params = load_params(args.params)
    seed = read(params, BaseSettings, args.params).seed
    folds = read(params, TrainSettings, args.params).cv_folds
    spec = model.check_spec(args.name, section(params, f"models.{args.name}", args.params), args.params)
    X, y = data.xy(read_table(args.train))
    pipeline, report = model.fit(args.name, spec, X, y, seed=seed, cv_folds=folds)
    save_model(pipeline, args.model_out or LAYOUT.model(args.name))
    save_json(report, args.metrics_out or LAYOUT.metrics.train(args.name))
    save_json(
        scorecard.train(args.name, report), args.scorecard_out or LAYOUT.metrics.scorecard_train(args.name)
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
