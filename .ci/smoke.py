"""Smoke test of a deployed app: `/predict` answers, and with `--model` it serves that very model."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("ci.smoke")

#: A month-to-month fiber customer two months in: the kind of customer the retention team calls.
CUSTOMER: dict[str, Any] = {
    "gender": "Female",
    "SeniorCitizen": 0,
    "Partner": "No",
    "Dependents": "No",
    "tenure": 2,
    "PhoneService": "Yes",
    "MultipleLines": "No",
    "InternetService": "Fiber optic",
    "OnlineSecurity": "No",
    "OnlineBackup": "No",
    "DeviceProtection": "No",
    "TechSupport": "No",
    "StreamingTV": "Yes",
    "StreamingMovies": "Yes",
    "Contract": "Month-to-month",
    "PaperlessBilling": "Yes",
    "PaymentMethod": "Electronic check",
    "MonthlyCharges": 99.65,
    "TotalCharges": 199.3,
}


def connect(src: str, token: str | None, timeout: float, auth: tuple[str, str] | None = None) -> Any:
    """A gradio_client.Client for a URL or Space id (signed in with `auth`, the app's reader login,
    if given), retried until the app answers or `timeout` passes."""
    from gradio_client import Client

    deadline = time.monotonic() + timeout
    while True:
        try:
            return Client(
                src, token=token, auth=auth, verbose=False, download_files=False, analytics_enabled=False
            )
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{src} did not answer within {timeout:.0f} s ({exc})") from exc
            log.info("waiting for %s (%s)", src, type(exc).__name__)
            time.sleep(10)


def probability(result: Any) -> float:
    """The exact churn probability from `/predict`'s result (its last output; the first is the
    rounded text the screen shows)."""
    value = result[-1] if isinstance(result, list | tuple) else result
    if isinstance(value, dict):  # a gr.Label-style output
        value = value.get("value", value.get("label"))
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"/predict returned {value!r}, not a probability in [0, 1]")
    return value


def expected(model_path: str) -> float:
    """The probability the validated model gives CUSTOMER (what the deployment must serve)."""
    import pandas as pd

    from churn.io import load_model  # checked against dvc.lock before joblib runs the file

    project = Path(model_path).resolve().parent.parent  # <project>/models/<name>.joblib
    return float(load_model(model_path, root=project).predict_proba(pd.DataFrame([CUSTOMER]))[0, 1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("target", help="app URL (http://…) or Hugging Face Space id (owner/name)")
    p.add_argument("--model", help="the validated model file; the served probability must equal its own")
    p.add_argument("--tolerance", type=float, default=1e-3, help="allowed difference (rounding in the app)")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for the app to answer")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")

    login = os.environ.get("CHURN_APP_AUTH", "").partition(":")
    auth = (login[0], login[2]) if login[0] and login[2] else None  # the app's reader login, if it has one
    client = connect(args.target, os.environ.get("HF_TOKEN") or None, args.timeout, auth)
    served = probability(client.predict(**CUSTOMER, api_name="/predict"))
    log.info("/predict answered: churn probability %.4f", served)
    if args.model:
        want = expected(args.model)
        if abs(served - want) > args.tolerance:
            log.error("served %.4f but %s gives %.4f: not the validated model", served, args.model, want)
            return 1
        log.info("matches %s (%.4f)", args.model, want)
    return 0


if __name__ == "__main__":
    sys.exit(main())
