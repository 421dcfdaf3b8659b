"""Stage `ab-test`: challenger vs champion on the same test customers, and a recommendation."""

from __future__ import annotations

import logging

from churn import abtest, data, scorecard, validation
from churn.io import load_json, load_model, read_table, save_json
from churn.metrics import HEADLINE
from churn.params import load_params, read
from churn.paths import LAYOUT, Metrics, model_file
from churn.settings import ReportSettings
from churn.validation import CANDIDATE, MODELS, PRODUCTION
from stages import _args

log = logging.getLogger("stages.ab_test")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--test", default=str(LAYOUT.test))
    p.add_argument("--models-dir", default=str(LAYOUT.models_dir))
    p.add_argument(
        "--metrics-dir",
        default=str(LAYOUT.metrics.dir),
        help="where evaluate/, fairness.json, robustness.json are",
    )
    p.add_argument("--out", default=str(LAYOUT.metrics.ab_test))
    p.add_argument(
        "--scorecard-out", help="recommendation for DVC (default: <metrics-dir>/scorecard/ab_test.json)"
    )
    args = p.parse_args(argv)
    params = load_params(args.params)
    minimums = read(params, ReportSettings, args.params).minimums.model_dump()
    setup = abtest.setup(params, args.params)  # every section this stage reads, checked before any file
    metrics_dir = Metrics(args.metrics_dir)
    scores_path = metrics_dir.evaluate(CANDIDATE)
    fair_path, rob_path = metrics_dir.fairness, metrics_dir.robustness
    gates = validation.model_gates(
        CANDIDATE,
        validation.require(load_json(scores_path), HEADLINE, scores_path),
        validation.require_results(load_json(fair_path), fair_path),
        validation.require_results(load_json(rob_path), rob_path),
        minimums,
    )
    X, y = data.xy(read_table(args.test))
    # trust=True: inside `dvc repro` these files are the `train` stages' own outputs, built just
    # before this stage (a dependency of it); serving checks them against dvc.lock instead
    models = {n: load_model(model_file(args.models_dir, n), trust=True) for n in MODELS}
    result = abtest.compare_models(
        setup,
        models[PRODUCTION],
        models[CANDIDATE],
        X,
        y,
        failed_gates=validation.failed(gates),
    )
    save_json(result, args.out)
    save_json(scorecard.ab_test(result), args.scorecard_out or metrics_dir.scorecard_ab_test)
    log.info(
        "A/B on %d customers: %s; McNemar p = %.4g (%s)",
        result["n"],
        result["recommendation"],
        result["mcnemar"]["p_value"],
        result["mcnemar"]["method"],
    )


if __name__ == "__main__":
    _args.run(main)
