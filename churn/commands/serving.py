"""`churn predict` (stream a CSV of customers through a model) and `churn explain` (one customer)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from churn.commands import UsageError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="score a CSV of customers (streamed in chunks, or on Spark with --engine spark)",
        description="Score a file of customers. The local engine streams a CSV through the Predictor and "
        "logs the predictions; --engine spark scores a CSV or Parquet file with mlflow.pyfunc.spark_udf "
        "on the registered model (same output columns and reject reasons). "
        + _DECISIONS_NOTE
        + " "
        + _SPARK_LOG_NOTE,
    )
    p.add_argument(
        "input",
        help="customers in the Telco format (customerID and Churn optional): CSV, "
        "or CSV / Parquet with --engine spark",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="output file: the input columns + predictions (.csv, or .csv / .parquet with --engine spark)",
    )
    _model_option(p)
    p.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: one process, chunked (default); spark: Apache Spark (the `spark` extra and Java)",
    )
    p.add_argument(
        "--master",
        help="Spark master for --engine spark, e.g. spark://host:7077 (default: env SPARK_MASTER, else local[*])",
    )
    p.add_argument(
        "--model-uri",
        help="MLflow model for --engine spark (default: models:/<params.yaml mlflow.registered_model>@<--model>, "
        "i.e. the registered champion)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="add top_reasons, shap_base and shap_<feature> columns (probability units)",
    )
    p.add_argument(
        "--no-log",
        action="store_true",
        help="do not write the predictions to the prediction log (--engine spark never writes it)",
    )
    p.add_argument(
        "--rejects",
        help="file for rows that fail validation (default: OUTPUT.rejects.csv, "
        "or .rejects.parquet for a Parquet OUTPUT)",
    )
    p.add_argument("--chunk-size", type=int, help="rows per chunk (default: params.yaml serving.chunk_size)")
    p.add_argument(
        "--budget",
        "--max-contacts",
        type=int,
        metavar="N",
        help="contact at most N customers: those of highest expected profit (ties: the earlier row); "
        "the others get contact=false",
    )
    p.add_argument(
        "--no-actions",
        action="store_true",
        help="skip the best retention action (best_action, action_profit stay empty; faster); "
        "expected_profit and contact are still written",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_predict)

    p = sub.add_parser("explain", help="explain one customer's churn probability (JSON in)")
    p.add_argument("customer", nargs="?", default="-", help="JSON file with one customer, or - for stdin")
    _model_option(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--email", action="store_true", help="also write the retention email (Groq or template)")
    p.add_argument(
        "--eml",
        metavar="FILE",
        help="with --email: also save the email as an .eml draft (no recipient; none for a customer "
        "not worth contacting)",
    )
    p.set_defaults(func=_explain)


def _model_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default="champion",
        help="champion | challenger | a .joblib path | an MLflow URI such as models:/churn-model@champion",
    )
    p.add_argument(
        "--trust-model",
        action="store_true",
        help="load a .joblib file that is not one of the pipeline's models (checked against dvc.lock); "
        "joblib runs any code a file holds, so only for files you trust",
    )


# -- predict ---------------------------------------------------------------------------------------


_DECISIONS_NOTE = (
    "With params.yaml's economics section, every scored customer also gets expected_profit (of "
    "contacting them), contact (true when it is positive, or among the --budget best) and, when "
    "contacted, best_action and action_profit (the retention offer that earns most, as the app's "
    "Predict tab and `churn explain` decide); without the section, no decision columns."
)
_NO_ECONOMICS = "no decision columns: params.yaml has no economics section (customer value and costs)"

_SPARK_LOG_NOTE = (
    "The Spark engine does not write the prediction log (it records what the app and local batches "
    "serve; one database writer is no place for millions of rows a run): to log a file's predictions, "
    "score it with the local engine; to check a Spark batch for drift, `churn monitor drift --current IN`."
)


def _predict(args: argparse.Namespace) -> int:
    if args.engine == "spark":
        return _predict_spark(args)
    if args.model_uri or args.master:
        raise UsageError("--model-uri and --master are for --engine spark (the local engine takes --model)")
    if Path(args.input).suffix.lower() == ".parquet" or Path(args.output).suffix.lower() == ".parquet":
        raise UsageError("Parquet files need --engine spark (the local engine reads and writes CSV)")
    from churn.batch import score_csv
    from churn.serving import Predictor

    _check_budget(args)
    predictor = Predictor.load(
        args.model, log=not args.no_log, explainer=args.explain, trust_model=args.trust_model
    )
    _check_economics(args, predictor.economics is not None)
    try:
        with _sigterm_unwinds():
            summary = score_csv(
                predictor,
                args.input,
                args.output,
                rejects_path=args.rejects,
                explain=args.explain,
                log=not args.no_log,
                chunk_size=args.chunk_size,
                progress=not args.no_progress,
                actions=not args.no_actions,
                budget=args.budget,
            )
    except (KeyboardInterrupt, Terminated) as exc:
        sys.stderr.write(f"\nchurn predict: {str(exc) or 'interrupted'}: no output written, nothing logged\n")
        return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
    rejected = f", rejected {summary['rejected']:,} (see {summary['rejects']})" if summary["rejected"] else ""
    if summary["duplicates"]:
        rejected += (
            f"; warning: {summary['duplicates']:,} row(s) repeat an earlier row's customerID "
            "(scored once, the repeats rejected)"
        )
    sys.stderr.write(
        f"scored {summary['scored']:,} of {summary['rows']:,} rows with {predictor.model_name} "
        f"in {summary['seconds']:.1f} s{rejected}{_campaign(summary)}; wrote {summary['output']}; "
        f"{summary['log']}\n"
    )
    return 0 if summary["scored"] else 1


def _predict_spark(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from churn import spark_batch, spark_session
    from churn.params import load_params, read
    from churn.paths import Layout
    from churn.settings import EconomicsSettings, MlflowSettings, RetentionSettings, ServingSettings

    if args.explain or args.chunk_size is not None:
        raise UsageError("--explain and --chunk-size are for the local engine (not --engine spark)")
    try:
        for path, what in ((args.input, "input"), (args.output, "output"), (args.rejects, "rejects file")):
            if path is not None:
                spark_batch.file_format(path, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if "://" in args.output or (args.rejects and "://" in args.rejects):
        raise UsageError(
            "--engine spark writes OUTPUT and --rejects on this machine's filesystem: give paths"
        )
    params_path = Layout(".").params
    params = load_params(params_path)
    model_uri = args.model_uri
    if model_uri is None:
        if args.model.startswith(("models:/", "runs:/")):
            model_uri = args.model
        elif args.model in ("champion", "challenger"):
            name = read(params, MlflowSettings, str(params_path)).registered_model
            model_uri = f"models:/{name}@{args.model}"
        else:
            raise UsageError(
                "--engine spark scores an MLflow model: give --model-uri (or --model champion, "
                "challenger or a models:/ or runs:/ URI)"
            )
    settings = ServingSettings.from_params(params.get("serving"))
    _check_budget(args)
    money = params.get(EconomicsSettings.KEY)
    _check_economics(args, money is not None)
    economics = None if money is None else EconomicsSettings.from_params(money)
    master = args.master or os.environ.get("SPARK_MASTER") or spark_session.DEFAULT_MASTER
    try:
        spark_session.preflight(master)  # before the model: each problem in seconds, not after a download
        with _sigterm_unwinds(), tempfile.TemporaryDirectory(prefix="churn-model-") as folder:
            model = spark_batch.prepare_model(model_uri, folder)  # a bad URI fails before Spark starts
            with spark_session.session(master) as spark:
                summary = spark_batch.score_file(
                    spark,
                    args.input,
                    args.output,
                    model=model,
                    settings=settings,
                    rejects_path=args.rejects,
                    economics=economics,
                    retention_settings=RetentionSettings.from_params(params.get("retention")),
                    actions=not args.no_actions,
                    budget=args.budget,
                )
    except spark_session.SparkError as exc:
        raise UsageError(str(exc)) from exc
    except (KeyboardInterrupt, Terminated) as exc:
        sys.stderr.write(f"\nchurn predict: {str(exc) or 'interrupted'}: no output written\n")
        return 128 + (exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
    rejected = f", rejected {summary['rejected']:,} (see {summary['rejects']})" if summary["rejected"] else ""
    sys.stderr.write(
        f"scored {summary['scored']:,} of {summary['rows']:,} rows with {model_uri} on Spark ({master}) "
        f"in {summary['seconds']:.1f} s{rejected}{_campaign(summary)}; wrote {summary['output']}; "
        f"{summary['log']}\n"
    )
    return 0 if summary["scored"] else 1


def _check_budget(args: argparse.Namespace) -> None:
    if args.budget is not None and args.budget < 1:
        raise UsageError(f"--budget must be at least 1 (got {args.budget})")


def _check_economics(args: argparse.Namespace, has_economics: bool) -> None:
    """--budget needs the economics section; without it, say once that no decisions are written."""
    if has_economics:
        return
    if args.budget is not None:
        raise UsageError("--budget needs params.yaml's economics section (customer value and costs)")
    sys.stderr.write(f"churn predict: {_NO_ECONOMICS}\n")


def _campaign(summary: dict[str, Any]) -> str:
    """'; contacted N, total expected gain $X' when the output has the decision columns."""
    if "contacted" not in summary:
        return ""
    from churn.economics import money

    return f"; contacted {summary['contacted']:,}, total expected gain {money(summary['expected_gain'])}"


class Terminated(BaseException):
    """SIGTERM, raised where the process is, so every `with` block cleans up (like Ctrl-C)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def _sigterm_unwinds():
    """While scoring, SIGTERM unwinds the stack: temp files removed, the open batch's rows deleted."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- explain ---------------------------------------------------------------------------------------


def read_customer(source: str) -> dict[str, Any]:
    """One customer from a JSON file (or '-' for stdin): an object, or a list holding one object."""
    name = "stdin" if source == "-" else source
    if source == "-":
        text = sys.stdin.read()
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: customer JSON file not found")
        text = path.read_text(errors="replace")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        raise ValueError(f"{name}: must be one JSON object with the customer's Telco fields")
    return obj


def _explain(args: argparse.Namespace) -> int:
    from churn.commands import UsageError
    from churn.serving import Predictor

    if args.eml and not args.email:
        raise UsageError("--eml needs --email")
    customer = read_customer(args.customer)
    predictor = Predictor.load(args.model, log=False, trust_model=args.trust_model)
    result = predictor.prepare(customer)  # the app's path too: the assessment, then the email
    if args.email:
        result = predictor.complete(result)
    if args.eml:
        _save_eml(result.email, Path(args.eml))
    if args.json:  # the library's own JSON form of the assessment
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str) + "\n")
        return 0
    explanation, actions, level, email = result.explanation, result.actions, result.risk_level, result.email
    lines = [
        f"Churn probability {100 * explanation.probability:.0f}% — {level} risk "
        f"(model {predictor.model_name}, {predictor.model_version})",
        result.decision_line(),
        "",
        "Why:",
        *(f"  - {s}" for s in explanation.sentences[1:]),
        "",
        "What would help (each re-scored by the model):",
    ]
    lines += [
        f"  - {a.description}: {100 * a.probability_before:.0f}% → {100 * a.probability_after:.0f}% "
        f"(-{a.reduction_points:.1f} points)"
        for a in actions
    ] or ["  - no offer lowers this customer's risk noticeably"]
    if email is not None and email.is_note:
        lines += ["", "No retention email (an internal note instead):", "", email.full_text]
    elif email is not None:
        who = f"Groq model {email.model}" if email.source == "groq" else f"the template ({email.reason})"
        lines += ["", f"Retention email (written by {who}):", "", email.full_text]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _save_eml(email: Any, path: Path) -> None:
    """Write the email as an .eml draft (atomically); a note is not an email: nothing is written."""
    if email.is_note:
        sys.stderr.write(f"churn explain: no email, nothing written to {path}: {email.reason}\n")
        return
    from churn.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(email.eml())
