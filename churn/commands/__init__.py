"""Subcommands of the `churn` CLI, grouped by area; errors users can fix are listed here."""

from __future__ import annotations

from typing import Any


class UsageError(Exception):
    """A command-line input is wrong; printed as one line, exit code 2."""


def __getattr__(name: str) -> Any:
    """`USER_ERRORS`, built on first use: its classes live in modules that import pandas, which
    building the parser (`churn --help`) must not pay for."""
    if name != "USER_ERRORS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from churn.data import DataError
    from churn.params import ParamsError
    from churn.schema import SchemaError

    errors: tuple[type[Exception], ...] = (
        DataError,
        ParamsError,
        SchemaError,
        FileNotFoundError,
        ValueError,
    )
    globals()["USER_ERRORS"] = errors
    return errors
