"""feedback: outcome files parsed row by row, every broken rule listed with its lines."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from churn.monitoring.feedback import OutcomeError, check_known, parse
from churn.monitoring.records import Outcome, RecordError


def _frame(rows: list[tuple], columns=("customerID", "churned", "date")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(columns), dtype="string")


def test_header_aliases_any_case_and_every_flag_spelling():
    df = _frame(
        [
            (" A-1 ", "Yes", "2026-01-31"),
            ("B", "n", "2026-02-01"),
            ("C", "TRUE", "2026-02-02"),
            ("D", "0", "2026-02-03"),
        ],
        columns=("Customer_ID", "CHURN", "Outcome_Date"),
    )
    assert parse(df) == [
        Outcome("A-1", True, date(2026, 1, 31)),
        Outcome("B", False, date(2026, 2, 1)),
        Outcome("C", True, date(2026, 2, 2)),
        Outcome("D", False, date(2026, 2, 3)),
    ]


def test_missing_columns_and_no_rows_name_the_source():
    with pytest.raises(OutcomeError, match=r"^f.csv: missing column\(s\): churned \(one of \['churned'"):
        parse(_frame([], columns=("customerID", "date")), source="f.csv")
    with pytest.raises(OutcomeError, match=r"^f.csv: no rows$"):
        parse(_frame([]), source="f.csv")


def test_every_broken_rule_is_listed_with_line_numbers_and_nothing_returned():
    df = _frame(
        [
            ("A", "yes", "2026-01-01"),
            ("", "maybe", "01/02/2026"),
            ("A", "no", "2026-02-30"),
            ("x" * 65, "no", "2026-01-01"),
        ]
    )
    with pytest.raises(OutcomeError) as info:
        parse(df)
    message = str(info.value)
    assert message.startswith("outcomes: 5 problem(s), nothing recorded:\n")
    assert "column 'customerID': must not be blank — 1 row(s), e.g. line 3" in message
    assert "column 'customerID': must be at most 64 characters — 1 row(s), e.g. line 5" in message
    assert "column 'customerID': appears more than once — 1 row(s), e.g. line 4" in message
    assert "column 'churned': must be yes/no, true/false or 1/0 — 1 row(s), e.g. line 3" in message
    assert "column 'date': must be a date YYYY-MM-DD — 2 row(s), e.g. line 3, 4" in message
    assert isinstance(info.value, RecordError)


def test_more_than_five_bad_lines_are_shown_as_five_and_an_ellipsis():
    df = _frame([(f"c{i}", "perhaps", "2026-01-01") for i in range(7)])
    with pytest.raises(OutcomeError, match=r"7 row\(s\), e.g. line 2, 3, 4, 5, 6 …"):
        parse(df)


def test_check_known_names_the_ids_without_a_prediction():
    outcomes = [Outcome(f"c{i}", True, date(2026, 1, 1)) for i in range(8)]
    check_known(outcomes[:2], {"c0", "c1"})  # all known: no error
    with pytest.raises(
        OutcomeError, match=r"6 customer id\(s\) have no logged prediction \(c2, c3, c4, c5, c6 …\)"
    ):
        check_known(outcomes, {"c0", "c1"})
