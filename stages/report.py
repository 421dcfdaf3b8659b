"""Stage `report`: every gate in one verdict, the model card, and one MLflow run per model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from churn import model_card, scorecard, validation
from churn.io import file_md5, load_json, load_params, save_json, save_text, section
from churn.metrics import HEADLINE
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
    p.add_argument("--test", default="data/prepared/test.parquet")
    p.add_argument("--models-dir", default="models")
    p.add_argument("--metrics-dir", default="metrics")
    p.add_argument("--out", default="metrics/validation.json")
    p.add_argument("--card", default="metrics/model_card.md")
    p.add_argument(
        "--scorecard-out", help="verdict for DVC (default: <metrics-dir>/scorecard/validation.json)"
    )
    p.add_argument("--no-mlflow", action="store_true", help="skip MLflow tracking")
    args = p.parse_args(argv)
    params = load_params(args.params)
    minimums = validation.check_minimums(params, args.params)
    ctx = _read_inputs(Path(args.metrics_dir), params, args.params)
    models = {n: Path(args.models_dir) / f"{n}.joblib" for n in MODELS}
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
        args.scorecard_out or Path(args.metrics_dir) / "scorecard" / "validation.json",
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


def _read_inputs(metrics_dir: Path, params: dict[str, Any], source: str) -> dict[str, Any]:
    """Every metrics file the report needs, each checked for the keys it must have."""

    def read(rel: str, keys) -> dict[str, Any]:
        return validation.require(load_json(metrics_dir / rel), keys, metrics_dir / rel)

    return {
        "registered_model": section(params, "mlflow.registered_model", source),
        "specs": {n: section(params, f"models.{n}", source) for n in MODELS},
        "data": read("data.json", ("input.path", "input.md5", "rows", "churn_rate")),
        "evaluate": {n: read(f"evaluate/{n}.json", HEADLINE) for n in MODELS},
        "cv": {n: read(f"train/{n}.json", ()).get("cv", {}) for n in MODELS},
        "fairness": validation.require_results(
            load_json(metrics_dir / "fairness.json"), metrics_dir / "fairness.json"
        ),
        "robustness": validation.require_results(
            load_json(metrics_dir / "robustness.json"), metrics_dir / "robustness.json"
        ),
        "ab_test": read("ab_test.json", AB_KEYS),
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
