"""Stage `report`: every gate in one verdict, the model card, and one MLflow run per model."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from churn import data, registry, scorecard, validation
from churn.io import file_md5, load_json, load_model, load_params, read_table, save_json, save_text, section
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
    card = validation.model_card(ctx)
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
        _track(args, params, ctx, models, card)


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


def _track(args, params, ctx: dict[str, Any], models: dict[str, Path], card: str) -> None:
    """One MLflow run per model (+ registry aliases); a tracking failure is a warning, never a DVC change."""
    try:
        X = data.xy(read_table(args.test))[0].head(5)
        with registry.quiet_mlflow_logs(), tempfile.TemporaryDirectory() as tmp:
            card_copy = Path(tmp) / "model_card.md"
            card_copy.write_text(validation.card_with_commit(card, registry.git_commit()))
            runs = {
                name: registry.log_model_run(
                    model_name=name,
                    pipeline=load_model(models[name]),
                    spec=ctx["specs"][name],
                    example=X,
                    artifacts=[Path(args.metrics_dir) / "plots" / name, card_copy],
                    experiment=section(params, "mlflow.experiment", args.params),
                    **_run_content(name, ctx, str(models[name])),
                )
                for name in MODELS
            }
            aliases = registry.register_candidates(runs, ctx["registered_model"])
        log.info("MLflow runs %s at %s; aliases set: %s", runs, registry.tracking_uri(), aliases or "none")
    except Exception as exc:
        log.warning("MLflow tracking failed (%s: %s); DVC outputs are unaffected", type(exc).__name__, exc)


def _run_content(name: str, ctx: dict[str, Any], model_path: str) -> dict[str, Any]:
    """A model's run metrics (test, CV, its gates and verdict) and tags (lineage, spec, verdict)."""
    v = ctx["validation"]
    gates, approved = (
        (v["gates"], v["approved"])
        if name == CANDIDATE
        else (v["champion"]["gates"], v["champion"]["passed"])
    )
    return {
        "metrics": {
            "test": ctx["evaluate"][name],
            "cv": ctx["cv"][name],
            "gates": {k: {"value": g["value"], "passed": g["passed"]} for k, g in gates.items()},
            "validation": {"approved": approved},
        },
        "tags": {
            **registry.run_tags(name, ctx["data"]["input"]["md5"]),
            **registry.report_tags(
                ctx["lineage"][model_path], ctx["specs"][name], approved, v["recommendation"]
            ),
        },
    }


if __name__ == "__main__":
    _args.run(main)
