"""`churn monitor …`: drift, check (alerts), simulate (replay), feedback, performance, alerts, traffic, db."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from churn.commands import UsageError
from churn.redact import redact_url

#: `churn monitor check` exit code when at least one alert fired (errors exit 1 or 2).
ALERT_EXIT = 3


def register(sub: argparse._SubParsersAction) -> None:
    from churn.monitoring.scenarios import DESCRIPTIONS

    p = sub.add_parser("monitor", help="production monitoring: drift, alerts, traffic replay, outcomes")
    msub = p.add_subparsers(dest="monitor_command", metavar="ACTION", required=True)

    d = msub.add_parser("drift", help="drift of a CSV batch or of a window of logged predictions")
    src = d.add_mutually_exclusive_group()
    src.add_argument(
        "--current", metavar="CUSTOMERS.csv", help="a batch of customers to check before scoring"
    )
    _window_args(src, d)
    d.add_argument("--no-prediction", action="store_true", help="skip prediction drift (no model needed)")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    _common(d)
    d.set_defaults(func=_drift)

    c = msub.add_parser("check", help=f"run all checks on a window; exit {ALERT_EXIT} when an alert fires")
    _window_args(c, c)
    c.add_argument("--webhook", metavar="URL", help="POST alerts here (default: env CHURN_ALERT_WEBHOOK)")
    c.add_argument(
        "--cooldown",
        type=int,
        metavar="MINUTES",
        help="do not post an alert (kind + feature) posted within this long again "
        "(default monitoring.alerts.cooldown_minutes; 0 posts every check)",
    )
    c.add_argument("--json", action="store_true", help="print the report and alerts as JSON")
    _common(c)
    c.set_defaults(func=_check)

    s = msub.add_parser(
        "simulate",
        help="replay synthetic customers through the model over a simulated period",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="scenarios:\n" + "\n".join(f"  {k:20} {v}" for k, v in DESCRIPTIONS.items()),
    )
    s.add_argument("--n", type=int, default=2000, help="customers to replay (default 2000)")
    s.add_argument(
        "--scenario", default="none", choices=list(DESCRIPTIONS), help="drift scenario (default none)"
    )
    s.add_argument("--days", type=float, help="simulated period in days (default monitoring.simulate.days)")
    s.add_argument(
        "--onset", type=float, help="fraction of the period before the shift starts (default params)"
    )
    s.add_argument("--seed", type=int, help="random seed (default base.seed)")
    s.add_argument("--outcomes", metavar="OUT.csv", help="also write what happened to them, for `feedback`")
    _common(s)
    s.set_defaults(func=_simulate)

    f = msub.add_parser("feedback", help="record real outcomes: CSV of customerID, churned (yes/no), date")
    f.add_argument("csv", metavar="OUTCOMES.csv")
    f.add_argument("--allow-unknown", action="store_true", help="record ids without a logged prediction too")
    _common(f)
    f.set_defaults(func=_feedback)

    q = msub.add_parser(
        "performance", help="live metrics from outcomes and the label-free estimate, over time"
    )
    _window_args(q, q)
    q.add_argument("--unit", choices=["day", "week", "month"], help="time window (default params)")
    q.add_argument("--json", action="store_true", help="print as JSON")
    _common(q)
    q.set_defaults(func=_performance)

    a = msub.add_parser("alerts", help="list stored alerts, newest first")
    a.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    a.add_argument(
        "--db", metavar="URL", help="prediction log URL (default env CHURN_DB_URL or predictions.db)"
    )
    a.set_defaults(func=_alerts)

    t = msub.add_parser("traffic", help="predictions per day or hour with the risk-level breakdown")
    _window_args(t, t)
    t.add_argument("--unit", choices=["day", "hour"], default="day")
    t.add_argument(
        "--db", metavar="URL", help="prediction log URL (default env CHURN_DB_URL or predictions.db)"
    )
    t.set_defaults(func=_traffic)

    b = msub.add_parser("db", help="the prediction log's schema: upgrade it, or show its revision")
    bsub = b.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    for name, helped, func in (
        ("upgrade", "create the log, or upgrade its schema to this version's (rows kept)", _db_upgrade),
        ("current", "the log's schema revision and whether it is up to date (exit 1 when not)", _db_current),
    ):
        x = bsub.add_parser(name, help=helped)
        x.add_argument(
            "--db", metavar="URL", help="prediction log URL (default env CHURN_DB_URL or predictions.db)"
        )
        x.set_defaults(func=func)


def _window_args(group, parser: argparse.ArgumentParser) -> None:
    group.add_argument("--last", type=int, metavar="N", help="the last N logged predictions (default params)")
    parser.add_argument(
        "--since", metavar="TIME", help="only predictions at or after this UTC time (ISO 8601)"
    )
    parser.add_argument("--until", metavar="TIME", help="only predictions before this UTC time (ISO 8601)")
    parser.add_argument("--only-model", metavar="NAME", help="only predictions of this model")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    p.add_argument("--model", help="model to monitor (default monitoring.model)")
    p.add_argument(
        "--db", metavar="URL", help="prediction log URL (default env CHURN_DB_URL or predictions.db)"
    )


def _time(value: str | None, flag: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UsageError(
            f"{flag} must be an ISO 8601 time like 2026-05-01 or 2026-05-01T13:00, got {value!r}"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _monitor(args: argparse.Namespace):
    from churn.monitoring.monitor import Monitor
    from churn.monitoring.store import PredictionStore
    from churn.params import load_params
    from churn.settings import MonitoringSettings

    params_path = Path(args.params)
    params = load_params(params_path)
    settings = MonitoringSettings.from_params(params.get("monitoring"), str(params_path))
    if getattr(args, "model", None):
        settings = settings.model_copy(update={"model": args.model})
    root = params_path.parent

    def load_predictor():
        from churn.serving import Predictor

        return Predictor.load(model=settings.model, root=root, log=False)

    return Monitor(settings, PredictionStore(args.db), root=root, load_predictor=load_predictor), params


def _window(monitor, args: argparse.Namespace):
    if args.last is not None and args.last < 1:
        raise UsageError(f"--last must be a positive number of predictions, got {args.last}")
    return monitor.window(
        last=args.last,
        start=_time(args.since, "--since"),
        end=_time(args.until, "--until"),
        model_name=args.only_model,
    )


def _dump(obj) -> str:
    from churn.io import rounded

    def default(value):
        if hasattr(value, "to_dict"):
            return value.to_dict(orient="records") if hasattr(value, "columns") else value.to_dict()
        if hasattr(value, "isoformat"):
            return value.isoformat()
        return str(value)

    return json.dumps(rounded(_plain(obj)), indent=2, sort_keys=True, default=default)


def _plain(obj):
    """DataFrames inside a report become lists of records (timestamps as ISO text)."""
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        frame = obj.copy()
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                frame[col] = frame[col].dt.strftime("%Y-%m-%dT%H:%M:%S")
        return frame.to_dict(orient="records")
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def _print_drift(report: dict) -> None:
    from churn.monitoring.drift import drift_table

    out = sys.stdout
    out.write(
        f"window: {report['window']} — {report['n_current']} rows vs {report['n_reference']} reference rows\n"
    )
    if report["status"] != "ok":
        out.write(report["message"] + "\n")
        return
    table = drift_table(report)
    out.write(f"method: {report['method']}\n")
    out.write(table.to_string(index=False, float_format=lambda v: f"{v:.4g}") + "\n")
    ds = report["dataset"]
    verdict = "DRIFT" if ds["drifted"] else "no dataset drift"
    names = f" ({', '.join(ds['drifted_features'])})" if ds["drifted_features"] else ""
    out.write(
        f"dataset: {verdict} — {ds['n_drifted']} of {ds['n_features']} features drifted{names}; "
        f"share {ds['share']:.2f}, threshold {ds['threshold']:.2f}\n"
    )


def _drift(args: argparse.Namespace) -> int:
    monitor, _ = _monitor(args)
    if args.current:
        if args.since or args.until or args.only_model:
            raise UsageError(
                "--current checks a CSV batch; --since/--until/--only-model select logged predictions"
            )
        from churn.data import read_raw

        report = monitor.drift_batch(read_raw(args.current), args.current, not args.no_prediction)
    else:
        report = monitor.drift_window(_window(monitor, args), not args.no_prediction)
    if args.json:
        sys.stdout.write(_dump(report) + "\n")
    else:
        _print_drift(report)
    return 0


def _check(args: argparse.Namespace) -> int:
    from churn.monitoring.alerts import line

    if args.cooldown is not None and args.cooldown < 0:
        raise UsageError(f"--cooldown must be 0 or more minutes, got {args.cooldown}")
    monitor, _ = _monitor(args)
    report, fired = monitor.check(
        _window(monitor, args), webhook=args.webhook, cooldown_minutes=args.cooldown
    )
    if args.json:
        sys.stdout.write(_dump({"report": report, "alerts": [a.as_dict() for a in fired]}) + "\n")
    elif report["status"] != "ok":
        sys.stdout.write(report["message"] + " — no alert\n")
    else:
        for alert in fired:
            sys.stdout.write(line(alert) + "\n")
        if not fired:
            sys.stdout.write(f"OK: no alert ({report['window']}, {report['n_current']} predictions)\n")
    return ALERT_EXIT if fired else 0


def _simulate(args: argparse.Namespace) -> int:
    from churn.monitoring import simulate
    from churn.settings import BaseSettings

    monitor, params = _monitor(args)
    settings = monitor.settings
    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    seed = args.seed
    if seed is None:
        seed = BaseSettings.from_params(params["base"], args.params).seed if "base" in params else 42
    scenario = simulate.Scenario.get(args.scenario, settings.scenarios)
    days = args.days if args.days is not None else settings.simulate.days
    onset = args.onset if args.onset is not None else settings.simulate.onset
    customers = simulate.traffic(args.n, scenario, days=days, onset=onset, seed=seed)
    from churn.serving import Predictor

    predictor = Predictor.load(model=settings.model, root=monitor.root, store=monitor.store, log=True)
    logged = simulate.replay(predictor, customers)
    if args.outcomes:
        from churn.io import write_csv

        write_csv(simulate.outcomes_frame(customers, settings.simulate.outcome_delay_days), args.outcomes)
    sys.stdout.write(
        f"replayed {logged} customers through {predictor.model_name} over {days:g} days "
        f"(scenario {scenario.name}, onset {onset:g}, seed {seed}) into {redact_url(monitor.store.url)}\n"
    )
    if args.outcomes:
        sys.stdout.write(f"outcomes written to {args.outcomes}: record them with `churn monitor feedback`\n")
    return 0


def _feedback(args: argparse.Namespace) -> int:
    from churn.data import read_raw
    from churn.monitoring import feedback

    monitor, _ = _monitor(args)
    outcomes = feedback.parse(read_raw(args.csv), args.csv)
    if not args.allow_unknown:
        feedback.check_known(outcomes, monitor.store.has_customers(o.customer_id for o in outcomes), args.csv)
    n = monitor.store.add_outcomes(outcomes)
    churned = sum(o.churned for o in outcomes)
    sys.stdout.write(f"recorded {n} outcomes ({churned} churned) from {args.csv}\n")
    return 0


def _performance(args: argparse.Namespace) -> int:
    monitor, _ = _monitor(args)
    result = monitor.performance(_window(monitor, args), args.unit)
    if args.json:
        sys.stdout.write(_dump(result) + "\n")
        return 0
    out = sys.stdout
    ref, est, live = result["reference"], result["estimated"], result["live"]
    out.write(
        f"window: {result['window']} — {result['n_predictions']} predictions, {result['n_labelled']} with outcomes\n"
    )
    out.write(f"held-out reference: accuracy {ref['accuracy']:.3f}, ROC-AUC {ref['roc_auc']:.3f}\n")
    out.write(f"estimated (no labels, CBPE): accuracy {est['accuracy']:.3f}, ROC-AUC {est['roc_auc']:.3f}\n")
    if live:
        out.write(
            f"live (outcomes): accuracy {live['accuracy']:.3f}, ROC-AUC {live['roc_auc']:.3f}, "
            f"calibration error {live['calibration_error']:.3f}\n"
        )
    else:
        out.write(
            f"live: needs at least {result['min_labelled']} predictions with outcomes (`churn monitor feedback`)\n"
        )
    over = result["over_time"]
    for name in ("estimated", "live"):
        frame = over[name]
        if len(frame):
            cols = [
                c for c in ("start", "n", "accuracy", "roc_auc", "calibration_error") if c in frame.columns
            ]
            out.write(
                f"{name} per {over['unit']}:\n{frame[cols].to_string(index=False, float_format=lambda v: f'{v:.3f}')}\n"
            )
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from churn.monitoring.alerts import line
    from churn.monitoring.store import PredictionStore

    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    stored = PredictionStore(args.db).read_alerts(limit=args.limit)
    for alert in stored:
        sys.stdout.write(f"{alert.created_at:%Y-%m-%d %H:%M} {line(alert)}\n")
    if not stored:
        sys.stdout.write("no alerts\n")
    return 0


def _traffic(args: argparse.Namespace) -> int:
    from churn.monitoring import timeseries
    from churn.monitoring.queries import Window
    from churn.monitoring.store import PredictionStore

    store = PredictionStore(args.db)
    window = Window(
        last=args.last,
        start=_time(args.since, "--since"),
        end=_time(args.until, "--until"),
        model_name=args.only_model,
    )
    table = timeseries.risk_breakdown(store, args.unit, window)
    if table.empty:
        sys.stdout.write("no predictions logged\n")
        return 0
    cols = ["bucket", "n", "Low", "Medium", "High"]
    sys.stdout.write(table[cols].to_string(index=False) + "\n")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from churn.monitoring import migrations
    from churn.monitoring.tables import default_url, make_engine

    engine = make_engine(args.db or default_url())
    try:
        before, after = migrations.upgrade(engine)
    finally:
        engine.dispose()
    where = f"prediction log {redact_url(after.url)}"
    if before.up_to_date:
        sys.stdout.write(f"{where}: already at revision {after.current} (head)\n")
    elif before.empty:
        sys.stdout.write(f"{where}: created at revision {after.current} (head)\n")
    else:
        was = before.current or f"none (made before schema versioning, matched {before.legacy})"
        sys.stdout.write(f"{where}: upgraded from revision {was} to {after.current} (head), rows kept\n")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    import os

    import sqlalchemy as sa

    from churn.monitoring import migrations
    from churn.monitoring.tables import default_url, make_engine

    url = args.db or default_url()
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.exists(parsed.database):
        # a file that does not exist yet: say so without creating it
        sys.stdout.write(
            f"prediction log {redact_url(url)}: no database yet, created at revision {migrations.HEAD} on first use\n"
        )
        return 0
    engine = make_engine(url)
    try:
        now = migrations.status(engine)
    finally:
        engine.dispose()
    sys.stdout.write(now.describe() + "\n")
    return 0 if now.up_to_date or now.empty else 1
