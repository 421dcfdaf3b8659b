"""records: UTC handling, field checks, `Predictions` built from checked or validated customers,
rows typed for insertion, and the first bad record named by position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from churn import schema
from churn.monitoring.records import (
    Alert,
    Predictions,
    RecordError,
    check_number,
    check_text,
    feature_row,
    insert_frame,
    insert_rows,
    result_row,
    utc_naive,
)

from .logged import frame

NOW = datetime(2026, 3, 1, 12, 0)


@pytest.fixture(scope="module")
def pair():
    return frame(4)


def test_utc_naive_converts_aware_times_and_refuses_other_types():
    plus2 = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc_naive(plus2) == NOW and utc_naive(plus2).tzinfo is None
    assert utc_naive(NOW) == NOW  # naive input is taken as UTC
    assert utc_naive(pd.Timestamp("2026-03-01 12:00", tz="UTC")) == NOW
    assert abs(utc_naive(None) - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
    with pytest.raises(RecordError, match="created_at must be a datetime, got str"):
        utc_naive("2026-03-01")


def test_text_and_number_checks_name_where_and_rule():
    assert check_text(None, "f", "rec 1", required=False) is None
    assert check_text(float("nan"), "f", "rec 1", required=False) is None
    for value, match in [(None, "rec 1: f is required"), ("  ", "must not be blank"), (3, "must be text, got int"),
                         ("x" * 6, "must be at most 5 characters")]:  # fmt: skip
        with pytest.raises(RecordError, match=match):
            check_text(value, "f", "rec 1", required=True, limit=5)
    assert check_number(np.float32(0.5), "p", "rec", 0, 1) == 0.5
    for value in (True, "0.5", float("nan"), 1.5):
        with pytest.raises(RecordError, match="rec: p must be"):
            check_number(value, "p", "rec", 0, 1)


def test_alert_as_dict_is_plain():
    alert = Alert("feature_drift", "m", feature="tenure", value=0.1, created_at=NOW, id=3)
    assert alert.as_dict() == {
        "id": 3, "created_at": "2026-03-01T12:00:00", "kind": "feature_drift", "feature": "tenure",
        "value": 0.1, "threshold": None, "message": "m", "window": "",
    }  # fmt: skip


def test_checked_names_the_first_record_breaking_a_schema_rule(pair):
    features, results = pair
    bad = features.copy()
    bad.loc[2, "Contract"] = "Weekly"
    with pytest.raises(RecordError, match=r"^prediction record 2: feature Contract"):
        Predictions.checked(bad, results)
    dicts = features.to_dict("records")
    dicts[1] = {**dicts[1], "tenure": "12"}
    with pytest.raises(RecordError, match="prediction record 1: feature tenure must be a number, got '12'"):
        Predictions.checked(dicts, results.to_dict("records"))
    with pytest.raises(RecordError, match=r"prediction record 0: features missing \['gender'\]"):
        Predictions.checked([{k: v for k, v in dicts[0].items() if k != "gender"}], [{}])
    assert len(Predictions.checked(features, results)) == 4


def test_of_refuses_features_that_are_not_the_validated_customers(pair):
    features, results = pair
    with pytest.raises(RecordError, match="must come from the schema's validated customers"):
        Predictions.of(features, features, results)  # a frame is not schema.Customers


def test_feature_and_result_rows_are_typed(pair):
    features, _ = pair
    feats = features.to_dict("records")[0]
    row = feature_row({**feats, "tenure": 5.0, "TotalCharges": float("nan")}, 0)
    assert row["tenure"] == 5 and isinstance(row["tenure"], int) and row["TotalCharges"] is None
    with pytest.raises(RecordError, match="feature tenure must be a whole number"):
        feature_row({**feats, "tenure": 5.5}, 0)
    with pytest.raises(RecordError, match="feature MonthlyCharges: must be a number"):
        feature_row({**feats, "MonthlyCharges": None}, 0)
    result = result_row({"probability": 1, "risk_level": "High", "model_name": "m"}, 0, NOW)
    assert result == {
        "probability": 1.0, "risk_level": "High", "model_name": "m", "model_version": "", "email_source": None,
        "customer_id": None, "latency_ms": 0.0, "created_at": NOW,
    }  # fmt: skip
    with pytest.raises(RecordError, match=r"unknown column\(s\) \['score'\]"):
        result_row({"score": 1}, 0, NOW)


def test_insert_rows_and_insert_frame_agree(pair):
    features, results = pair
    results = results.drop(columns="created_at")
    rows = insert_rows(Predictions(features.to_dict("records"), results.to_dict("records")), NOW)
    table = insert_frame(Predictions(features, results), NOW)
    assert len(rows) == len(table) == 4
    from_frame = table.to_dict("records")
    for a, b in zip(rows, from_frame, strict=True):
        assert set(a) == set(b) == {*schema.FEATURES, *(c for c in b if c not in schema.FEATURES)}
        assert {k: a[k] for k in a if k != "TotalCharges"} == {k: b[k] for k in b if k != "TotalCharges"}
        assert a["created_at"] == NOW


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"probability": [0.1, 0.2, 1.2, 0.3]},
            r"prediction record 2: probability must be between 0 and 1, got 1.2$",
        ),
        ({"risk_level": ["Low", "Severe", "Low", "Low"]}, "prediction record 1: risk_level must be one of"),
        ({"model_name": ["a", "b", "c", " "]}, "prediction record 3: model_name must be non-blank text"),
        (
            {"customer_id": ["a", "b" * 65, "c", "d"]},
            "prediction record 1: customer_id must be text or None of at most 64",
        ),
        ({"latency_ms": [1.0, -1.0, 1.0, 1.0]}, "prediction record 1: latency_ms must be between 0 and inf"),
        ({"created_at": ["yesterday"] * 4}, "created_at must be a datetime"),
    ],
)
@pytest.mark.filterwarnings("ignore:Could not infer format")
def test_insert_frame_names_the_first_bad_record(pair, change, match):
    features, results = pair
    with pytest.raises(RecordError, match=match):
        insert_frame(Predictions(features, results.assign(**change)), NOW)


def test_insert_frame_checks_lengths_and_columns(pair):
    features, results = pair
    with pytest.raises(RecordError, match=r"features \(4 rows\) and results \(3 rows\) differ in length"):
        insert_frame(Predictions(features, results.head(3)), NOW)
    with pytest.raises(RecordError, match=r"missing \['model_name'\]"):
        insert_frame(Predictions(features, results.drop(columns="model_name")), NOW)
