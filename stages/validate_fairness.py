"""Stage `validate-fairness`: per-group metrics, disparities and gates of champion and challenger."""

from __future__ import annotations

import logging

from churn import data, fairness
from churn.io import load_model, read_table, save_json
from churn.params import load_params, read
from churn.paths import LAYOUT, model_file
from churn.settings import BaseSettings, EvaluateSettings, FairnessSettings
from churn.validation import CANDIDATE, MODELS, PRODUCTION, failed, probabilities
from stages import _args

log = logging.getLogger("stages.validate_fairness")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--test", default=str(LAYOUT.test))
    p.add_argument("--models-dir", default=str(LAYOUT.models_dir))
    p.add_argument("--out", default=str(LAYOUT.metrics.fairness))
    args = p.parse_args(argv)
    params = load_params(args.params)
    seed = read(params, BaseSettings, args.params).seed
    threshold = read(params, EvaluateSettings, args.params).threshold
    settings = read(params, FairnessSettings, args.params)
    X, y = data.xy(read_table(args.test))
    cfg = fairness.config(settings, list(X.columns), args.params)
    # trust=True: inside `dvc repro` these files are the `train` stages' own outputs, built just
    # before this stage (a dependency of it); serving checks them against dvc.lock instead
    models = {n: load_model(model_file(args.models_dir, n), trust=True) for n in MODELS}
    proba = probabilities(models, X)
    report = {
        n: fairness.evaluate(y, proba[n] >= threshold, X[list(cfg.attributes)], cfg, seed=seed)
        for n in MODELS
    }
    save_json(report, args.out)
    log.info(
        "fairness over %s: champion %s, challenger %s (failed: %s)",
        ", ".join(cfg.attributes),
        "passed" if report[PRODUCTION]["passed"] else "FAILED",
        "passed" if report[CANDIDATE]["passed"] else "FAILED",
        ", ".join(failed(report[CANDIDATE]["gates"])) or "none",
    )


if __name__ == "__main__":
    _args.run(main)
