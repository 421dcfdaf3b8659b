"""Argument parsing and the error boundary shared by every stage script."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from churn.data import DataError
from churn.io import configure_logging
from churn.params import ParamsError
from churn.schema import SchemaError

log = logging.getLogger("stages")
USER_ERRORS = (DataError, ParamsError, SchemaError, FileNotFoundError)


def parser(description: str) -> argparse.ArgumentParser:
    """A parser with the `--params` option every stage takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def run(main: Callable[[list[str] | None], None]) -> None:
    """Run a stage's main: configure logging, turn user errors into one clear line and exit 1.

    Native thread pools (OpenMP, BLAS) are limited to one thread: on small tables threads cost
    more than they give, and a fixed thread count keeps every machine's outputs byte-identical.
    """
    from threadpoolctl import threadpool_limits

    configure_logging()
    try:
        with threadpool_limits(limits=1):
            main(None)
    except USER_ERRORS as exc:
        log.error("%s", exc)
        sys.exit(1)
