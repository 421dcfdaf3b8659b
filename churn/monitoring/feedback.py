"""Outcome files: what really happened to customers (id, churned yes/no, date), checked row by row."""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd

from churn.monitoring.records import Outcome, RecordError

log = logging.getLogger(__name__)

#: Accepted header names per field (first match wins), case-insensitive.
COLUMNS = {
    "customer_id": ("customerID", "customer_id", "customer"),
    "churned": ("churned", "Churn", "outcome"),
    "date": ("date", "outcome_date", "churn_date"),
}
TRUE = {"yes", "y", "true", "1"}
FALSE = {"no", "n", "false", "0"}
MAX_SHOWN = 5


class OutcomeError(RecordError):
    """An outcomes file breaks a rule; the message names the file, column, rule and line numbers."""


def _find(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {str(c).strip().lower(): c for c in df.columns}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def _lines(mask: pd.Series) -> str:
    rows = [int(i) + 2 for i in mask.to_numpy().nonzero()[0]]
    shown = ", ".join(str(r) for r in rows[:MAX_SHOWN])
    return f"{len(rows)} row(s), e.g. line {shown}" + (" …" if len(rows) > MAX_SHOWN else "")


def parse(df: pd.DataFrame, source: str = "outcomes") -> list[Outcome]:
    """Outcomes from a frame read as text; raise OutcomeError listing every broken rule.

    Columns: customer id (`customerID`), churned (`churned` or `Churn`: yes/no, true/false, 1/0),
    date (`date`, ISO `YYYY-MM-DD`). Line numbers count the header as line 1.
    """
    found = {field: _find(df, names) for field, names in COLUMNS.items()}
    missing = [f"{field} (one of {list(COLUMNS[field])})" for field, col in found.items() if col is None]
    if missing:
        raise OutcomeError(f"{source}: missing column(s): {'; '.join(missing)}")
    if len(df) == 0:
        raise OutcomeError(f"{source}: no rows")
    ids = df[found["customer_id"]].astype("string").str.strip()
    flags = df[found["churned"]].astype("string").str.strip().str.lower()
    days = pd.to_datetime(df[found["date"]].astype("string").str.strip(), format="%Y-%m-%d", errors="coerce")
    problems = []
    checks = [
        ("customer_id", "must not be blank", ids.isna() | ids.eq("")),
        ("customer_id", "must be at most 64 characters", ids.str.len().gt(64).fillna(False)),
        ("customer_id", "appears more than once", ids.duplicated(keep="first") & ids.notna() & ids.ne("")),
        ("churned", "must be yes/no, true/false or 1/0", ~flags.isin(TRUE | FALSE).fillna(False)),
        ("date", "must be a date YYYY-MM-DD", days.isna()),
    ]
    for field, rule, mask in checks:
        mask = mask.fillna(True).astype(bool)
        if mask.any():
            problems.append(f"  - column '{found[field]}': {rule} — {_lines(mask)}")
    if problems:
        raise OutcomeError(f"{source}: {len(problems)} problem(s), nothing recorded:\n" + "\n".join(problems))
    return [
        Outcome(
            customer_id=str(i), churned=f in TRUE, outcome_date=date.fromisoformat(d.strftime("%Y-%m-%d"))
        )
        for i, f, d in zip(ids, flags, days, strict=True)
    ]


def check_known(outcomes: list[Outcome], known: set[str], source: str = "outcomes") -> None:
    """Raise OutcomeError naming the ids that have no logged prediction."""
    unknown = [o.customer_id for o in outcomes if o.customer_id not in known]
    if unknown:
        shown = ", ".join(unknown[:MAX_SHOWN]) + (" …" if len(unknown) > MAX_SHOWN else "")
        raise OutcomeError(
            f"{source}: {len(unknown)} customer id(s) have no logged prediction ({shown}); nothing recorded "
            "(check the ids, or pass --allow-unknown to record them anyway)"
        )
