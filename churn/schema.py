"""The IBM Telco customer-churn column contract and its one validator: every row rule lives here."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from churn.settings import ServingSettings

ID = "customerID"
TARGET = "Churn"
YES_NO = ("No", "Yes")
NO_INTERNET = "No internet service"
NO_PHONE = "No phone service"
INTERNET_ADDONS = (
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
)
#: Plain-language names of the internet add-ons (explanations, actions, emails).
ADDON_LABELS: dict[str, str] = {
    "OnlineSecurity": "online security",
    "OnlineBackup": "online backup",
    "DeviceProtection": "device protection",
    "TechSupport": "tech support",
    "StreamingTV": "streaming TV",
    "StreamingMovies": "streaming movies",
}

#: Allowed levels of every categorical column, in the order of the real file's levels.
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "gender": ("Female", "Male"),
    "Partner": YES_NO,
    "Dependents": YES_NO,
    "PhoneService": YES_NO,
    "MultipleLines": ("No", "Yes", NO_PHONE),
    "InternetService": ("DSL", "Fiber optic", "No"),
    **{c: ("No", "Yes", NO_INTERNET) for c in INTERNET_ADDONS},
    "Contract": ("Month-to-month", "One year", "Two year"),
    "PaperlessBilling": YES_NO,
    "PaymentMethod": (
        "Bank transfer (automatic)",
        "Credit card (automatic)",
        "Electronic check",
        "Mailed check",
    ),
}

#: Numeric columns with their inclusive (min, max) range and whether they must be whole numbers.
NUMERIC: dict[str, tuple[float, float, bool]] = {
    "SeniorCitizen": (0, 1, True),
    "tenure": (0, 1200, True),
    "MonthlyCharges": (0.0, 10_000.0, False),
    "TotalCharges": (0.0, 10_000_000.0, False),
}

#: The 21 columns of the real CSV, in the real file's order.
COLUMNS: tuple[str, ...] = (
    ID,
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    *INTERNET_ADDONS,
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
    TARGET,
)

#: The 19 customer features a model sees (everything but the id and the target).
FEATURES: tuple[str, ...] = tuple(c for c in COLUMNS if c not in (ID, TARGET))
#: Numeric model inputs (SeniorCitizen is a 0/1 flag in the file, so it is numeric here too).
NUMERIC_FEATURES: tuple[str, ...] = tuple(c for c in FEATURES if c in NUMERIC)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(c for c in FEATURES if c in CATEGORICAL)
ID_PATTERN = re.compile(r"^\d{4}-[A-Z]{5}$")
MAX_ROWS_SHOWN = 5
#: Risk levels a scored customer gets, lowest first (the Predictor's bands, the log's allowed values).
RISK_LEVELS: tuple[str, ...] = ("Low", "Medium", "High")
#: Inputs up to this many customers are checked record by record in plain Python (`valid_record`)
#: before the full DataFrame check: the app's hot path, a handful of customers per request.
QUICK_ROWS = 16
_PLAIN_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
#: Services that only exist with another one: (column, the service it needs, its "no service" level).
#: The level means "the customer has no such service": it is required exactly when the service is "No".
DEPENDENT_SERVICES: tuple[tuple[str, str, str], ...] = (
    ("MultipleLines", "PhoneService", NO_PHONE),
    *((addon, "InternetService", NO_INTERNET) for addon in INTERNET_ADDONS),
)
_COLUMN_SET = frozenset(COLUMNS)


def risk_levels(probability: Any, settings: ServingSettings) -> np.ndarray:
    """Low below `medium`, High at or above `high`, Medium between (`serving.risk_bands`)."""
    p = np.asarray(probability, dtype="float64")
    return np.where(
        p >= settings.risk_bands.high, "High", np.where(p >= settings.risk_bands.medium, "Medium", "Low")
    )


class SchemaError(ValueError):
    """Raised with every broken rule at once; `problems` keeps them as (column, rule, rows)."""

    def __init__(self, problems: list[Problem], source: str = "data"):
        self.problems = problems
        self.source = source
        lines = [f"{source}: {len(problems)} schema problem(s):"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Problem:
    """One broken rule: the column, the rule in words and the first offending row numbers."""

    column: str
    rule: str
    rows: tuple[int, ...] = field(default=())
    count: int = 0

    def __str__(self) -> str:
        if not self.rows:
            return f"column '{self.column}': {self.rule}"
        shown = ", ".join(str(r) for r in self.rows[:MAX_ROWS_SHOWN])
        more = f" (+{self.count - MAX_ROWS_SHOWN} more)" if self.count > MAX_ROWS_SHOWN else ""
        return f"column '{self.column}': {self.rule} — {self.count} row(s), e.g. row {shown}{more}"


def _rows(mask: pd.Series, offset: int) -> tuple[tuple[int, ...], int]:
    idx = np.flatnonzero(mask.to_numpy())
    return tuple(int(i) + offset for i in idx[:MAX_ROWS_SHOWN]), int(idx.size)


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | values.astype("string").str.strip().eq("")


def row_problems(
    df: pd.DataFrame, *, require_target: bool = False, require_id: bool = False
) -> dict[int, list[str]]:
    """Per-row reasons (keyed by position) for rows that break a value rule; column problems raise.

    Columns of a row that break the same rule share one reason ("OnlineSecurity, OnlineBackup: must
    be …"). Used by batch scoring to reject bad rows while still scoring the good ones.
    """
    broken: dict[int, dict[str, list[str]]] = {}
    for problem, mask in _value_checks(df, require_target=require_target, require_id=require_id):
        for pos in np.flatnonzero(mask.to_numpy()):
            broken.setdefault(int(pos), {}).setdefault(problem.rule, []).append(problem.column)
    return {
        pos: [f"{', '.join(columns)}: {rule}" for rule, columns in rules.items()]
        for pos, rules in broken.items()
    }


def header_problems(names: list[str]) -> list[Problem]:
    """A problem for every column name written more than once in a file's header (read before pandas,
    which would rename a second `tenure` to `tenure.1`)."""
    seen: set[str] = set()
    repeated: list[str] = []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return [Problem(name, "appears more than once in the header") for name in repeated]


def _booleans(values: pd.Series) -> pd.Series:
    """True where a value is a boolean (True/False are not numbers, though pandas would make them 1/0)."""
    if pd.api.types.is_bool_dtype(values):
        return pd.Series(True, index=values.index)
    if values.dtype != object:
        return pd.Series(False, index=values.index)
    return values.map(lambda v: isinstance(v, bool | np.bool_)).astype(bool)


def _value_checks(df: pd.DataFrame, *, require_target: bool, require_id: bool):
    """Yield (problem-without-rows, row mask) for every value rule that some row breaks."""
    for col in CATEGORICAL_FEATURES:
        if col not in df.columns:
            continue
        values = df[col]
        levels = CATEGORICAL[col]
        bad = ~values.astype("string").isin(levels).fillna(False)
        if bad.any():
            yield Problem(col, f"must be one of {list(levels)}"), bad
    yield from _service_checks(df)
    for col, (lo, hi, whole) in NUMERIC.items():
        if col not in df.columns:
            continue
        raw = df[col]
        booleans = _booleans(raw)
        if booleans.any():
            yield Problem(col, "must be a number (true/false is not a number)"), booleans
            raw = raw.mask(booleans)
        num = pd.to_numeric(raw, errors="coerce")
        blank = _blank(raw)
        if col == "TotalCharges":
            # Real-data quirk: a blank TotalCharges is fine for a customer in their first month.
            tenure = pd.to_numeric(df["tenure"], errors="coerce") if "tenure" in df else None
            allowed_blank = blank & (tenure.eq(0) if tenure is not None else True)
            not_number = num.isna() & ~allowed_blank
            rule = "must be a number (blank allowed only when tenure is 0)"
        else:
            not_number = num.isna()
            rule = "must be a number"
        not_number &= ~booleans
        if not_number.any():
            yield Problem(col, rule), not_number
        finite = num.notna()
        out = finite & ((num < lo) | (num > hi) | ~np.isfinite(num.fillna(0)))
        if out.any():
            yield Problem(col, f"must be between {lo:g} and {hi:g}"), out
        if whole:
            frac = finite & ~out & (num.fillna(0) % 1 != 0)
            if frac.any():
                yield Problem(col, "must be a whole number"), frac
    if require_target and TARGET in df.columns:
        bad = ~df[TARGET].astype("string").isin(YES_NO).fillna(False)
        if bad.any():
            yield Problem(TARGET, "must be 'Yes' or 'No'"), bad
    if require_id and ID in df.columns:
        ids = df[ID].astype("string")
        bad = ids.isna() | ~ids.str.strip().str.len().gt(0).fillna(False)
        if bad.any():
            yield Problem(ID, "must not be blank"), bad
        dup = ids.duplicated(keep="first") & ~bad
        if dup.any():
            yield Problem(ID, "must be unique (duplicated customer id)"), dup


def _service_rule(service: str, none: str, has_service: bool) -> str:
    if has_service:
        return f"can be '{none}' only when {service} is 'No'"
    return f"must be '{none}' when {service} is 'No'"


def _service_checks(df: pd.DataFrame):
    """Yield (problem, row mask) where a service's level contradicts the service it depends on
    (`DEPENDENT_SERVICES`); rows with a level outside the allowed ones are left to the level rule."""
    for col, service, none in DEPENDENT_SERVICES:
        if col not in df.columns or service not in df.columns:
            continue
        values, main = df[col].astype("string"), df[service].astype("string")
        known = (values.isin(CATEGORICAL[col]) & main.isin(CATEGORICAL[service])).fillna(False)
        without = main.eq("No").fillna(False)
        mismatch = known & (values.eq(none).fillna(False) != without)
        for has_service in (False, True):
            bad = mismatch & (without != has_service)
            if bad.any():
                yield Problem(col, _service_rule(service, none, has_service)), bad


def validate(
    df: pd.DataFrame,
    *,
    require_target: bool = True,
    require_id: bool = True,
    allow_extra: bool = True,
    source: str = "data",
    row_offset: int = 2,
) -> None:
    """Raise `SchemaError` naming every column, rule and first bad rows; return None when clean.

    Row numbers are file line numbers by default (`row_offset=2`: a header line, 1-based lines).
    """
    problems: list[Problem] = []
    if df is None or len(df.columns) == 0:
        raise SchemaError([Problem("*", "the file is empty: no header and no rows")], source)
    required = list(FEATURES)
    if require_id:
        required.insert(0, ID)
    if require_target:
        required.append(TARGET)
    missing = [c for c in required if c not in df.columns]
    problems += [Problem(c, "is missing (required column)") for c in missing]
    if not allow_extra:
        known = set(COLUMNS)
        problems += [Problem(c, "is not a Telco column (unexpected)") for c in df.columns if c not in known]
    dupcols = df.columns[df.columns.duplicated()].tolist()
    problems += [Problem(str(c), "appears more than once in the header") for c in dupcols]
    if len(df) == 0:
        problems.append(Problem("*", "has no rows (empty file)"))
    if not dupcols:
        for problem, mask in _value_checks(df, require_target=require_target, require_id=require_id):
            rows, count = _rows(mask, row_offset)
            problems.append(Problem(problem.column, problem.rule, rows, count))
    if problems:
        raise SchemaError(problems, source)


def check_columns(df: pd.DataFrame, source: str = "input") -> None:
    """Raise SchemaError when a feature column is missing, unexpected or repeated (whole-file problems)."""
    problems = [Problem(c, "is missing (required column)") for c in FEATURES if c not in df]
    problems += [
        Problem(str(c), "is not a Telco column (unexpected)") for c in df.columns if c not in _COLUMN_SET
    ]
    dup = df.columns[df.columns.duplicated()].tolist()
    problems += [Problem(str(c), "appears more than once in the header") for c in dup]
    if problems:
        raise SchemaError(problems, source)


def valid_record(record: Mapping[str, Any]) -> bool:
    """True when one customer surely passes `validate` (no target or id required, no extra columns).

    The pure-Python form of the rules above for one record, microseconds instead of a DataFrame
    check. False means "check fully": `validate` then names the rule (a blank TotalCharges, for
    one, is left to it). tests/test_schema.py holds the two to the same verdict.
    """
    if len(record) < len(FEATURES) or not _COLUMN_SET.issuperset(record):
        return False
    for col, levels in CATEGORICAL.items():
        if record.get(col) not in levels:
            return False
    for col, service, none in DEPENDENT_SERVICES:
        if (record[col] == none) != (record[service] == "No"):
            return False
    for col, (lo, hi, whole) in NUMERIC.items():
        value = record.get(col)
        if isinstance(value, str):
            if not _PLAIN_NUMBER.match(value):
                return False
            value = float(value)
        elif isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            return False
        if not (math.isfinite(value) and lo <= value <= hi) or (whole and value % 1 != 0):
            return False
    return True


class Customers:
    """Customers that passed every rule here: `records` (plain dicts, small inputs) or `frame`.

    Built only by `customers` and `split_valid`; later layers (the model, the prediction log) take
    it as checked and never re-run the rules. The frame is built from the records only when needed.
    """

    def __init__(self, records: list[dict[str, Any]] | None, frame: pd.DataFrame | None = None):
        self.records = records
        self._frame = frame

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else len(self._frame)

    @property
    def frame(self) -> pd.DataFrame:
        """The customers as given (the 19 features, and `customerID` / `Churn` if they came with them)."""
        if self._frame is None:
            self._frame = pd.DataFrame(self.records)
        return self._frame

    @property
    def X(self) -> pd.DataFrame:
        return self.frame[list(FEATURES)]

    def values(self) -> dict[str, Any]:
        """The first customer's 19 feature values, as given."""
        if self.records is not None:
            return {f: self.records[0][f] for f in FEATURES}
        return self.X.iloc[0].to_dict()

    def typed_records(self) -> list[dict[str, Any]]:
        """The 19 features of each record, model-typed (numbers as float, levels as text): the values
        `churn.data.coerce_features` gives them, without a DataFrame round trip. Records only."""
        return [{f: float(r[f]) if f in NUMERIC else r[f] for f in FEATURES} for r in self.records]

    def ids(self) -> list[str | None]:
        """Each customer's `customerID` as text (at most 64 characters), None where it has none."""
        if self.records is not None:
            return [_customer_id(r.get(ID)) for r in self.records]
        if ID not in self.frame.columns:
            return [None] * len(self)
        return [_customer_id(v) for v in self.frame[ID]]


def _customer_id(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    return text[:64] or None


def customers(given: pd.DataFrame | Sequence[Mapping] | Mapping, source: str = "customers") -> Customers:
    """Check customers (a dict, a list of dicts or a DataFrame) against every rule: the one way in.

    Raises `SchemaError` naming every field and rule broken (row numbers count from 1). Up to
    `QUICK_ROWS` customers that `valid_record` accepts skip the DataFrame check.
    """
    if isinstance(given, pd.DataFrame):
        records = None
        if len(given) <= QUICK_ROWS and not given.columns.duplicated().any():
            names = list(given.columns)
            records = [dict(zip(names, row, strict=True)) for row in given.to_numpy(dtype=object).tolist()]
        out = Customers(records, given)
    elif isinstance(given, Mapping):
        out = Customers([dict(given)])
    elif isinstance(given, Sequence) and not isinstance(given, str):
        records = list(given)
        if not all(isinstance(r, Mapping) for r in records):
            raise SchemaError([Problem("*", "each customer must be a mapping")], source)
        out = Customers([dict(r) for r in records])
    else:
        raise SchemaError([Problem("*", "customers must be a dict, a list of dicts or a DataFrame")], source)
    if len(out) == 0:
        raise SchemaError([Problem("*", "no customers given")], source)
    if out.records is None or len(out.records) > QUICK_ROWS or not all(map(valid_record, out.records)):
        validate(
            out.frame, require_target=False, require_id=False, allow_extra=False, source=source, row_offset=1
        )
        out.records = None
    return out


def split_valid(df: pd.DataFrame, source: str = "input") -> tuple[Customers, dict[int, list[str]]]:
    """A file's rows split by the rules: (the valid rows, reasons of the others by position).

    Column problems (missing, unexpected or repeated columns) raise `SchemaError`; a value problem
    sets aside just its row (`row_problems`).
    """
    check_columns(df, source)
    reasons = row_problems(df)
    if not reasons:
        return Customers(None, df), reasons
    keep = np.ones(len(df), dtype=bool)
    keep[list(reasons)] = False
    return Customers(None, df.iloc[np.flatnonzero(keep)]), reasons
