"""`churn …` command line: one entry point; each area's subcommands live in churn/commands/."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from churn.redact import redact_url

log = logging.getLogger(__name__)

#: Modules that contribute subcommands; each has `register(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = (
    "churn.commands.pipeline",
    "churn.commands.report",
    "churn.commands.validation",
    "churn.commands.serving",
    "churn.commands.monitor",
)


def build_parser() -> argparse.ArgumentParser:
    """The whole `churn` parser; building it imports no heavy library (each command imports its own)."""
    parser = argparse.ArgumentParser(prog="churn", description="Churn MLOps command line.")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; user errors print one clear line to stderr and return a non-zero code."""
    args = build_parser().parse_args(argv)  # before the imports below: `--help` stays light
    from churn.commands import USER_ERRORS, UsageError
    from churn.io import configure_logging, load_env_file

    configure_logging(args.log_level.upper())
    load_env_file()
    try:
        code = args.func(args)
    except UsageError as exc:
        sys.stderr.write(f"churn {args.command}: {redact_url(str(exc))}\n")
        return 2
    except USER_ERRORS as exc:
        sys.stderr.write(f"churn {args.command}: {redact_url(str(exc))}\n")
        return 1
    except OSError as exc:  # a directory or an unreadable path where a file was expected
        where = f": {exc.filename}" if exc.filename else ""
        sys.stderr.write(f"churn {args.command}: {redact_url(exc.strerror or str(exc))}{where}\n")
        return 1
    except Exception as exc:
        if not type(exc).__module__.startswith(DATABASE_ERRORS):
            raise
        # a database that is down, refuses the password, or breaks: one line, the URL redacted
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"churn {args.command}: {_log_named(args)}: {redact_url(first)}\n")
        return 1
    return int(code or 0)


#: Modules whose errors mean the prediction log's database cannot be used (down, a refused
#: password, a broken file): SQLAlchemy wraps the driver's errors; psycopg's own surface from COPY.
DATABASE_ERRORS = ("sqlalchemy.", "psycopg")


def _log_named(args: argparse.Namespace) -> str:
    """Which prediction log failed, as the error line names it: the setting, then its URL (redacted)."""
    if getattr(args, "db", None):
        return f"cannot use the prediction log (--db) at {redact_url(args.db)}"
    url = os.environ.get("CHURN_DB_URL")
    return "cannot use the prediction log (CHURN_DB_URL)" + (f" at {redact_url(url)}" if url else "")


if __name__ == "__main__":
    sys.exit(main())
