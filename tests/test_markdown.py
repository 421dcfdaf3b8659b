"""Markdown pieces shared by the model card and the PR report."""

from __future__ import annotations

import math

from churn import markdown


def test_table_has_a_header_separator_per_column_and_one_line_per_row():
    lines = markdown.table(["a", "b"], [[1, "x"], [2.5, None]])
    assert lines == ["| a | b |", "|---|---|", "| 1 | x |", "| 2.5 | None |"]


def test_number_formats_missing_booleans_integers_and_digits():
    assert markdown.number(None) == "—"
    assert markdown.number(math.nan) == "—"
    assert markdown.number(True) == "yes"
    assert markdown.number(7) == "7"
    assert markdown.number(0.123456) == "0.1235"
    assert markdown.number(0.5, 2) == "0.50"


def test_interval_joins_low_and_high_or_says_none():
    assert markdown.interval({"low": 0.1, "high": 0.25}) == "0.1000 – 0.2500"
    assert markdown.interval(None) == "—"
    assert markdown.interval({}) == "—"
