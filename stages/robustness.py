"""Stage `robustness`: accuracy and ROC-AUC drops of champion and challenger under perturbations."""

from __future__ import annotations

import logging

from churn import data, robustness
from churn.io import load_model, read_table, save_json
from churn.params import load_params, read
from churn.paths import LAYOUT, model_file
from churn.settings import BaseSettings, EvaluateSettings, RobustnessSettings
from churn.validation import CANDIDATE, MODELS, PRODUCTION, failed
from stages import _args

log = logging.getLogger("stages.robustness")


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--test", default=str(LAYOUT.test))
    p.add_argument("--models-dir", default=str(LAYOUT.models_dir))
    p.add_argument("--out", default=str(LAYOUT.metrics.robustness))
    args = p.parse_args(argv)
    params = load_params(args.params)
    seed = read(params, BaseSettings, args.params).seed
    threshold = read(params, EvaluateSettings, args.params).threshold
    cfg = read(params, RobustnessSettings, args.params)
    X, y = data.xy(read_table(args.test))
    perturbed = robustness.copies(X, cfg, seed)
    # trust=True: inside `dvc repro` these files are the `train` stages' own outputs, built just
    # before this stage (a dependency of it); serving checks them against dvc.lock instead
    models = {n: load_model(model_file(args.models_dir, n), trust=True) for n in MODELS}
    report = {name: robustness.evaluate(models[name], X, y, perturbed, cfg, threshold) for name in MODELS}
    save_json(report, args.out)
    log.info(
        "robustness on %d perturbed copies: champion %s, challenger %s (failed: %s)",
        len(perturbed),
        "passed" if report[PRODUCTION]["passed"] else "FAILED",
        "passed" if report[CANDIDATE]["passed"] else "FAILED",
        ", ".join(failed(report[CANDIDATE]["gates"])) or "none",
    )


if __name__ == "__main__":
    _args.run(main)
