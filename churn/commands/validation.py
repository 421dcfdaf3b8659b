"""`churn gate`, `churn track`, `churn promote` and `churn registry`: the verdict, MLflow and the registry."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from churn.commands import UsageError
from churn.paths import LAYOUT, Metrics
from churn.redact import redact_url

VALIDATION = LAYOUT.metrics.validation.as_posix()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gate",
        help="exit 0 if the challenger is approved; else 1, with one line per failed gate",
        description="Read the validation verdict. Exit codes: 0 approved, 1 not approved, 2 unreadable input.",
    )
    p.add_argument("--validation", default=VALIDATION, help=f"verdict file (default: {VALIDATION})")
    p.set_defaults(func=_gate)

    p = sub.add_parser(
        "track",
        help="log one MLflow run per pipeline model not tracked yet; point the aliases at the committed models",
        description=(
            "Idempotent: each model's run is keyed by what built it (model hash, spec, metrics, gates), "
            "so a second call logs nothing. Outside `dvc exp run`, `challenger` follows the challenger "
            "that dvc.lock at git HEAD records; `champion` is set only in a registry that has none."
        ),
    )
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.set_defaults(func=_track)

    p = sub.add_parser(
        "promote",
        help="make the challenger the champion: registry aliases and params.yaml, all or nothing",
        description=(
            "Register the challenger's model version (or take --version), move the `champion` alias to "
            "it, record the former champion as archived in its status history, and write the version's "
            "spec into params.yaml models.champion, all under the project's registry lock. Refused unless "
            "the challenger is approved and the A/B test recommends promote."
        ),
    )
    p.add_argument("--params", default="params.yaml", help="params file to rewrite (default: params.yaml)")
    p.add_argument(
        "--metrics-dir", default=str(LAYOUT.metrics.dir), help="where validation.json and ab_test.json are"
    )
    p.add_argument("--model", default=str(LAYOUT.model("challenger")), help="the challenger model file")
    p.add_argument(
        "--version", help="promote this registered version instead (e.g. a rollback; needs --force)"
    )
    p.add_argument("--force", action="store_true", help="promote even if refused (needs --reason)")
    p.add_argument("--reason", default="", help="why; recorded as a tag on the model version")
    p.set_defaults(func=_promote)

    p = sub.add_parser(
        "registry", help="list the registered model's versions: status, aliases, key metrics, status history"
    )
    p.add_argument("--params", default="params.yaml", help="params file naming the registered model")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_registry)


def _read(path: str | Path) -> dict[str, Any]:
    """A metrics JSON file, or UsageError naming it (missing, not JSON, not a mapping)."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: not found (run `dvc repro` to build it)") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise UsageError(f"{path}: must be a JSON object")
    return obj


def _gate(args: argparse.Namespace) -> int:
    from churn import validation

    verdict = _read(args.validation)
    try:
        lines = validation.failure_lines(verdict)
    except ValueError as exc:
        raise UsageError(f"{args.validation}: {exc}") from exc
    gates = verdict["gates"]
    if verdict["approved"] is True and not lines:
        insufficient = sum(g.get("status") == validation.INSUFFICIENT for g in gates.values())
        note = f" ({insufficient} with insufficient data)" if insufficient else ""
        sys.stdout.write(f"approved: {len(gates) - insufficient} of {len(gates)} gates passed{note}\n")
        return 0
    sys.stdout.write(f"not approved: {len(lines)} of {len(gates)} gates failed\n")
    for line in lines or ["the verdict says not approved"]:
        sys.stdout.write(f"FAILED {line}\n")
    return 1


def _promote(args: argparse.Namespace) -> int:
    from churn import promotion

    metrics = Metrics(args.metrics_dir)
    verdict, ab = _read(metrics.validation), _read(metrics.ab_test)
    if not args.version and not Path(args.model).exists():
        raise UsageError(f"{args.model}: challenger model not found (run `dvc repro`)")
    result = promotion.promote_checked(
        verdict,
        ab,
        params_path=args.params,
        force=args.force,
        reason=args.reason,
        version=args.version,
        model_path=None if args.version else args.model,
    )
    previous = result["previous_champion"]
    sys.stdout.write(
        f"{result['registered_model']} version {result['version']} is now the champion"
        + (f"; version {previous} archived" if previous and previous != result["version"] else "")
        + f".\n{args.params}: models.champion = {json.dumps(result['spec'], sort_keys=True)}"
        + ("" if result["params_changed"] else " (unchanged)")
        + "\nRun `dvc repro` so the champion's outputs match, then commit params.yaml and dvc.lock.\n"
    )
    return 0


def _track(args: argparse.Namespace) -> int:
    from churn import tracking

    result = tracking.track(".", params_path=args.params)
    sys.stdout.write(f"MLflow at {result.tracking_uri}\n")
    for line in tracking.summary(result):
        sys.stdout.write(f"  {line}\n")
    return 0


def _registry(args: argparse.Namespace) -> int:
    from churn import registry
    from churn.params import load_params, read
    from churn.settings import MlflowSettings

    name = read(load_params(args.params), MlflowSettings, args.params).registered_model
    rows = registry.list_versions(name)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
        return 0
    if not rows:
        where = redact_url(registry.tracking_uri())
        sys.stdout.write(f"{name}: no versions registered yet at {where} (run `make track`)\n")
        return 0
    header = ("version", "status", "model", "estimator", "accuracy", "roc_auc", "approved", "run")
    table = [header] + [
        (
            r["version"],
            r["status"],
            r["model_name"] or "-",
            r["estimator"] or "-",
            "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}",
            "-" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}",
            r["approved"] or "-",
            (r["run_id"] or "-")[:12],
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    sys.stdout.write(f"{name} at {redact_url(registry.tracking_uri())}\n")
    for row in table:
        sys.stdout.write("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    sys.stdout.write("\nstatus history (oldest first):\n")
    for r in rows:
        events = registry.history_text(r["history"]).splitlines() or ["(no status recorded)"]
        sys.stdout.write(f"  version {r['version']}:\n" + "".join(f"    {e}\n" for e in events))
    return 0
