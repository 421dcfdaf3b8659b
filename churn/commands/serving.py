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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="score a CSV of customers (streamed in chunks)")
    p.add_argument("input", help="CSV of customers in the Telco format (customerID and Churn optional)")
    p.add_argument("-o", "--output", required=True, help="output CSV: the input columns + predictions")
    _model_option(p)
    p.add_argument(
        "--explain",
        action="store_true",
        help="add top_reasons, shap_base and shap_<feature> columns (probability units)",
    )
    p.add_argument("--no-log", action="store_true", help="do not write the predictions to the prediction log")
    p.add_argument("--rejects", help="CSV for rows that fail validation (default: OUTPUT.rejects.csv)")
    p.add_argument("--chunk-size", type=int, help="rows per chunk (default: params.yaml serving.chunk_size)")
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


def _predict(args: argparse.Namespace) -> int:
    from churn.batch import score_csv
    from churn.serving import Predictor

    predictor = Predictor.load(
        args.model, log=not args.no_log, explainer=args.explain, trust_model=args.trust_model
    )
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
        f"in {summary['seconds']:.1f} s{rejected}; wrote {summary['output']}; {summary['log']}\n"
    )
    return 0 if summary["scored"] else 1


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
