"""The Telco column contract: every broken rule is named with its column and first rows."""

from __future__ import annotations

import pandas as pd
import pytest

from churn import schema


def test_contract_has_the_21_real_columns_in_order(real_raw):
    assert list(real_raw.columns) == list(schema.COLUMNS)
    assert len(schema.FEATURES) == 19
    assert set(schema.NUMERIC_FEATURES) | set(schema.CATEGORICAL_FEATURES) == set(schema.FEATURES)


def test_real_file_passes_including_blank_total_charges(real_raw):
    blanks = real_raw["TotalCharges"].str.strip().eq("")
    assert blanks.sum() == 8
    assert (real_raw.loc[blanks, "tenure"] == "0").all()
    schema.validate(real_raw)


def test_every_real_level_is_allowed(real_raw):
    for col, levels in schema.CATEGORICAL.items():
        assert set(real_raw[col].unique()) <= set(levels), col


def _errors(df: pd.DataFrame, **kw) -> schema.SchemaError:
    with pytest.raises(schema.SchemaError) as info:
        schema.validate(df, **kw)
    return info.value


def test_one_error_names_every_problem_with_rows(synthetic_raw):
    bad = synthetic_raw.head(50).copy()
    bad.loc[3, "Contract"] = "Weekly"
    bad.loc[4, "tenure"] = "-3"
    bad.loc[5, "MonthlyCharges"] = "abc"
    bad.loc[6, "customerID"] = bad.loc[7, "customerID"]
    bad.loc[8, "Churn"] = "maybe"
    bad = bad.drop(columns=["gender"])
    err = _errors(bad, source="upload.csv")
    text = str(err)
    assert text.startswith("upload.csv: 6 schema problem(s)")
    by_col = {p.column: p for p in err.problems}
    assert by_col["gender"].rule == "is missing (required column)"
    assert "Month-to-month" in by_col["Contract"].rule and by_col["Contract"].rows == (5,)
    assert by_col["tenure"].rows == (6,) and "between 0" in by_col["tenure"].rule
    assert by_col["MonthlyCharges"].rule == "must be a number" and by_col["MonthlyCharges"].rows == (7,)
    assert "unique" in by_col["customerID"].rule and by_col["customerID"].rows == (9,)
    assert by_col["Churn"].rows == (10,)


def test_blank_total_charges_only_allowed_at_tenure_zero(synthetic_raw):
    bad = synthetic_raw.head(20).copy()
    row = int((bad["tenure"] != "0").to_numpy().nonzero()[0][0])
    bad.loc[row, "TotalCharges"] = " "
    err = _errors(bad)
    assert err.problems[0].column == "TotalCharges" and "tenure is 0" in err.problems[0].rule


def test_fractional_tenure_and_senior_flag(synthetic_raw):
    bad = synthetic_raw.head(10).copy()
    bad.loc[0, "tenure"] = "2.5"
    bad.loc[1, "SeniorCitizen"] = "2"
    cols = {p.column: p.rule for p in _errors(bad).problems}
    assert cols == {"tenure": "must be a whole number", "SeniorCitizen": "must be between 0 and 1"}


def test_empty_frames():
    err = _errors(pd.DataFrame())
    assert "empty" in str(err)
    err = _errors(pd.DataFrame(columns=list(schema.COLUMNS)))
    assert "has no rows" in str(err)


def test_scoring_input_without_target_or_id(synthetic_raw):
    customers = synthetic_raw.drop(columns=["Churn", "customerID"]).head(5)
    schema.validate(customers, require_target=False, require_id=False)
    with pytest.raises(schema.SchemaError, match="not a Telco column"):
        schema.validate(customers.assign(extra=1), require_target=False, require_id=False, allow_extra=False)


def test_row_problems_keys_rows_by_position(synthetic_raw):
    df = synthetic_raw.head(10).copy()
    df.loc[2, "InternetService"] = "Satellite"
    df.loc[2, "tenure"] = "x"
    df.loc[9, "PaymentMethod"] = ""
    problems = schema.row_problems(df)
    assert sorted(problems) == [2, 9]
    assert any(r.startswith("InternetService: must be one of") for r in problems[2])
    assert any(r.startswith("tenure: must be a number") for r in problems[2])


def _mutations(base: dict) -> list[dict]:
    """The customer, and the customer with one field set to each value a form or API might send."""
    values = [
        "",
        " ",
        "Yes",
        "No",
        "Maybe",
        "1",
        "24",
        "2.5",
        "-1",
        "1e3",
        None,
        0,
        1,
        2.5,
        -3,
        1e9,
        True,
        float("nan"),
        float("inf"),
        "Fiber optic",
        "Two year",
        schema.NO_INTERNET,
        schema.NO_PHONE,
    ]
    out = [dict(base)]
    for col in schema.FEATURES:
        out += [{**base, col: v} for v in values]
    out += [
        {k: v for k, v in base.items() if k != "gender"},
        {**base, "extra": 1},
        {**base, schema.ID: "0001-ABCDE"},
    ]
    return out


def test_valid_record_never_accepts_what_validate_refuses(synthetic_raw):
    base = {c: synthetic_raw.iloc[0][c] for c in schema.FEATURES}
    base = {c: (float(v) if c in schema.NUMERIC and str(v).strip() else v) for c, v in base.items()}
    accepted = 0
    for record in _mutations(base):
        if not schema.valid_record(record):
            continue
        accepted += 1
        schema.validate(pd.DataFrame([record]), require_target=False, require_id=False, allow_extra=False)
    assert schema.valid_record(base) and accepted > 20  # the fast path really takes plain customers


def test_services_a_customer_lacks_follow_one_rule_everywhere(synthetic_raw):
    df = synthetic_raw.head(40).reset_index(drop=True)
    internet = df.index[df["InternetService"] != "No"]
    offline = df.index[df["InternetService"] == "No"][0]
    phone = df.index[(df["PhoneService"] == "Yes") & ~df.index.isin([*internet[:3], offline])][0]
    bad = df.copy()
    bad.loc[internet[0], "InternetService"] = "No"  # its add-ons say Yes / No: not possible
    bad.loc[offline, "TechSupport"] = "Yes"
    bad.loc[internet[1], "StreamingTV"] = schema.NO_INTERNET
    bad.loc[phone, ["PhoneService", "MultipleLines"]] = ["No", "Yes"]
    bad.loc[internet[2], "InternetService"] = "Cable"  # the level rule alone: no add-on complaint
    no_internet = "must be 'No internet service' when InternetService is 'No'"
    reasons = schema.row_problems(bad)
    assert reasons[internet[0]] == [f"{', '.join(schema.INTERNET_ADDONS)}: {no_internet}"]  # one reason
    assert reasons[offline] == [f"TechSupport: {no_internet}"]
    assert reasons[internet[1]] == [
        "StreamingTV: can be 'No internet service' only when InternetService is 'No'"
    ]
    assert reasons[phone] == ["MultipleLines: must be 'No phone service' when PhoneService is 'No'"]
    assert reasons[internet[2]] == [
        f"InternetService: must be one of {list(schema.CATEGORICAL['InternetService'])}"
    ]
    assert set(reasons) == {internet[0], internet[1], internet[2], offline, phone}
    by_col = {(p.column, p.rule): p.rows for p in _errors(bad).problems}
    assert by_col[("TechSupport", no_internet)] == tuple(sorted([internet[0] + 2, offline + 2]))
    for row in set(reasons) - {internet[2]}:
        record = {c: bad.loc[row, c] for c in schema.FEATURES}
        assert not schema.valid_record(record)
        with pytest.raises(schema.SchemaError, match="when (Internet|Phone)Service is 'No'"):
            schema.customers(record, "form")
    consistent = df.loc[offline, list(schema.FEATURES)].to_dict()
    assert schema.valid_record(consistent) or schema.customers(consistent)


def test_customers_is_the_one_way_in_and_names_the_rule(synthetic_raw):
    rows = synthetic_raw.head(3)[list(schema.FEATURES)]
    small = schema.customers(rows.to_dict("records"))
    assert isinstance(small, schema.Customers) and len(small) == 3
    frame = schema.customers(synthetic_raw.head(40)[list(schema.FEATURES)])
    assert frame.records is None and len(frame.X) == 40  # over QUICK_ROWS: the DataFrame check
    with pytest.raises(schema.SchemaError, match="column 'Contract': must be one of .* row 1"):
        schema.customers({**rows.iloc[0].to_dict(), "Contract": "Weekly"}, "customer")
    with pytest.raises(schema.SchemaError, match="no customers given"):
        schema.customers([])


def test_split_valid_keeps_good_rows_and_gives_reasons(synthetic_raw):
    df = synthetic_raw.head(6).copy()
    df.loc[4, "tenure"] = "-3"
    valid, reasons = schema.split_valid(df)
    assert list(valid.frame.index) == [0, 1, 2, 3, 5]
    assert reasons == {4: ["tenure: must be between 0 and 1200"]}
    with pytest.raises(schema.SchemaError, match="column 'gender': is missing"):
        schema.split_valid(df.drop(columns="gender"), "upload.csv")
