"""Subcommands of the `churn` CLI, grouped by area; errors users can fix are listed here."""

from churn.data import DataError
from churn.params import ParamsError
from churn.schema import SchemaError


class UsageError(Exception):
    """A command-line input is wrong; printed as one line, exit code 2."""


USER_ERRORS: tuple[type[Exception], ...] = (
    DataError,
    ParamsError,
    SchemaError,
    FileNotFoundError,
    ValueError,
)
