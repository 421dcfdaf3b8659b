"""Subcommands of the `churn` CLI, grouped by area; errors users can fix are listed here."""

from churn.data import DataError
from churn.params import ParamsError
from churn.schema import SchemaError

USER_ERRORS: tuple[type[Exception], ...] = (
    DataError,
    ParamsError,
    SchemaError,
    FileNotFoundError,
    ValueError,
)
