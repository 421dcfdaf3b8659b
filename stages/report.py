"""Stage `report`: every gate in one verdict, the model card, and one MLflow run per model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from churn import model_card, scorecard, validation
from churn.io import file_md5, load_json, save_json, save_text
from churn.metrics import HEADLINE
from churn.params import load_params, read
from churn.paths import LAYOUT, Metrics, model_file
from churn.settings import MlflowSettings, ModelsSettings, ReportSettings
from churn.validation import CANDIDATE, MODELS
from stages import _args

log = logging.getLogger("stages.report")
AB_KEYS = (
    "gates",
    "recommendation",
    "reasons",
    "bootstrap",
    "mcnemar",
    "contingency",
    "n",
    "alpha",
    "threshold",
)


def main(argv: list[str] | None = None) -> None:
    p = _args.parser(__doc__)
    p.add_argument("--test", default=str(LAYOUT.test))
    p.add_argument("--models-dir", default=str(LAYOUT.models_dir))
    p.add_argument("--metrics-dir", default=str(LAYOUT.metrics.dir))
    p.add_argument("--out", default=str(LAYOUT.metrics.validation))
    p.add_argument("--card", default=str(LAYOUT.metrics.model_card))
    p.add_argument(
        "--scorecard-out", help="verdict for DVC (default: <metrics-dir>/scorecard/validation.json)"
    )
    p.add_argument("--no-mlflow", action="store_true", help="skip MLflow tracking")
    args = p.parse_args(argv)
    params = load_params(args.params)
    minimums = read(params, ReportSettings, args.params).minimums.model_dump()
    ctx = _read_inputs(Metrics(args.metrics_dir), params, args.params)
    models = {n: model_file(args.models_dir, n) for n in MODELS}
    ctx["lineage"] = {
        ctx["data"]["input"]["path"]: ctx["data"]["input"]["md5"],
        args.test: file_md5(args.test),
    }
    ctx["lineage"].update({str(path): file_md5(path) for path in models.values()})
    verdict = validation.verdict(
        ctx["evaluate"], ctx["fairness"], ctx["robustness"], ctx["ab_test"], minimums
    )
    challenger_md5 = ctx["lineage"][str(models[CANDIDATE])]
    ctx["validation"] = {**verdict, "lineage": ctx["lineage"], "model_md5": challenger_md5}
    card = model_card.model_card(ctx)
    save_json(ctx["validation"], args.out)
    save_text(card, args.card)
    save_json(
        scorecard.validation(verdict),
        args.scorecard_out or Metrics(args.metrics_dir).scorecard_validation,
    )
    log.info(
        "challenger %s (%d/%d gates passed; A/B: %s)",
        "APPROVED" if verdict["approved"] else "NOT approved",
        verdict["counts"]["pass"],
        len(verdict["gates"]),
        verdict["recommendation"],
    )
    if not args.no_mlflow:
        _track(args)


def _read_inputs(metrics: Metrics, params: dict[str, Any], source: str) -> dict[str, Any]:
    """Every metrics file the report needs, each checked for the keys it must have."""

    def need(path: Path, keys) -> dict[str, Any]:
        return validation.require(load_json(path), keys, path)

    specs = read(params, ModelsSettings, source)
    return {
        "registered_model": read(params, MlflowSettings, source).registered_model,
        "specs": {n: specs.spec(n).model_dump() for n in MODELS},
        "data": need(metrics.data, ("input.path", "input.md5", "rows", "churn_rate")),
        "evaluate": {n: need(metrics.evaluate(n), HEADLINE) for n in MODELS},
        "cv": {n: need(metrics.train(n), ()).get("cv", {}) for n in MODELS},
        "fairness": validation.require_results(load_json(metrics.fairness), metrics.fairness),
        "robustness": validation.require_results(load_json(metrics.robustness), metrics.robustness),
        "ab_test": need(metrics.ab_test, AB_KEYS),
    }


def _track(args) -> None:
    """Track each model's build in MLflow (idempotent; aliases stay put inside experiments).

    A tracking failure is a warning, never a DVC change: `churn track` retries it after `dvc repro`.
    """
    from churn import tracking

    try:
        result = tracking.track(
            ".",
            params_path=args.params,
            metrics_dir=args.metrics_dir,
            models_dir=args.models_dir,
            test_path=args.test,
            by="report stage",
        )
        for line in tracking.summary(result):
            log.info("MLflow: %s", line)
    except Exception as exc:
        log.warning(
            "MLflow tracking failed (%s: %s); DVC outputs are unaffected, `churn track` retries it",
            type(exc).__name__,
            exc,
        )


if __name__ == "__main__":
    _args.run(main)
