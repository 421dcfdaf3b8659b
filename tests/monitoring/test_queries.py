"""queries: windows (validation, description, selection), reads, counts by SQL, outcomes joined to
predictions, alerts newest first — on a real SQLite log."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from churn.monitoring.queries import BATCH_ROWS, Window
from churn.monitoring.records import Alert, Outcome

from .logged import START, frame


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"last": 0}, "last must be a positive number"),
        ({"last": True}, "last must be a positive number"),
        ({"start": datetime(2026, 1, 2), "end": datetime(2026, 1, 2)}, "must be before end"),
    ],
)
def test_bad_windows_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Window(**kwargs)


def test_describe_says_what_the_window_holds_in_utc():
    assert Window().describe() == "all predictions"
    moscow = datetime(2026, 3, 2, 3, 0, tzinfo=UTC) + timedelta(hours=3)
    window = Window(last=50, start=moscow.astimezone(), end=datetime(2026, 3, 3), model_name="challenger")
    assert window.describe() == "last 50 from 2026-03-02 06:00 to 2026-03-03 00:00 model challenger"


def test_selections_count_last_n_time_ranges_and_models(store):
    features, results = frame(40, minutes=60, model_name=["champion", "challenger"] * 20)
    store.log_frame(features, results)
    assert store.count() == 40 and store.count(Window(last=7)) == 7 and store.count(Window(last=1000)) == 40
    assert store.count(Window(model_name="challenger")) == 20
    assert store.count(Window(last=5, model_name="challenger")) == 5
    day = Window(start=datetime(2026, 3, 2), end=datetime(2026, 3, 3))
    assert store.count(day) == 24 and store.count(Window(start=datetime(2027, 1, 1))) == 0
    selection = store.select(Window(last=3))
    assert store.select(selection) is selection  # a selection is already fixed
    store.log_frame(*frame(5, seed=4))
    assert store.count(selection) == 3 and store.count(Window(last=3)) == 3
    ids = store.read(selection, columns=["id"])["id"].tolist()
    assert ids == [38, 39, 40]  # the snapshot, not the newest rows


def test_read_and_chunks_keep_order_and_columns(store):
    features, results = frame(25)
    store.log_frame(features, results)
    whole = store.read(columns=["customer_id", "probability"])
    assert list(whole.columns) == ["customer_id", "probability"]
    assert whole["customer_id"].tolist() == results["customer_id"].tolist()
    parts = list(store.chunks(columns=["id"], chunk_rows=10))
    assert [len(p) for p in parts] == [10, 10, 5]
    assert pd.concat(parts)["id"].tolist() == list(range(1, 26))
    empty = list(store.chunks(Window(start=datetime(2030, 1, 1)), columns=["id"]))
    assert len(empty) == 1 and empty[0].empty and list(empty[0].columns) == ["id"]


def test_counts_by_sql_round_to_the_drift_grid_and_skip_nulls(store):
    features, results = frame(4, probability=[0.12344, 0.12346, 0.5, 0.5])
    features["TotalCharges"] = [None, 10.4, 10.6, 10.6]
    features.loc[0, "tenure"] = 0  # a first-month customer: no TotalCharges yet
    store.log_frame(features, results)
    assert store.numeric_counts("probability").to_dict() == {0.1234: 1, 0.1235: 1, 0.5: 2}
    assert store.numeric_counts("TotalCharges").to_dict() == {10.0: 1, 11.0: 2}
    assert store.level_counts("risk_level").to_dict() == {"High": 1, "Low": 2, "Medium": 1}
    with pytest.raises(KeyError, match="'gender' is not a numeric column"):
        store.numeric_counts("gender")
    with pytest.raises(KeyError, match="no column 'nope'"):
        store.level_counts("nope")
    summary = store.summarize()
    assert summary.n == 4 and int(summary.numeric["churn_probability"].sum()) == 4
    assert int(summary.categorical["Contract"].sum()) == 4


def test_time_bounds_and_known_customers_beyond_one_lookup(store):
    assert store.time_bounds() == (None, None)
    n = BATCH_ROWS + 5
    features, results = frame(n, minutes=1)
    store.log_frame(features, results)
    assert store.time_bounds() == (START, START + timedelta(minutes=n - 1))
    asked = [*results["customer_id"], "nobody"]
    assert store.has_customers(asked) == set(results["customer_id"])


def test_labelled_joins_the_latest_outcome_of_each_customer(store):
    features, results = frame(5)
    store.log_frame(features, results)
    ids = results["customer_id"].tolist()
    store.add_outcomes([Outcome(ids[0], True, date(2026, 4, 1)), Outcome(ids[1], False, date(2026, 4, 1))])
    store.add_outcomes([Outcome(ids[0], False, date(2026, 5, 1))])  # a correction: the latest wins
    labelled = store.labelled()
    assert labelled["customer_id"].tolist() == ids[:2]
    assert labelled["churned"].tolist() == [0, 0] and str(labelled["churned"].dtype) == "int64"
    assert labelled["outcome_date"].tolist() == [date(2026, 5, 1), date(2026, 4, 1)]
    assert len(store.read_outcomes()) == 3
    assert store.labelled(Window(last=3)).empty


def test_alerts_newest_first_by_kind_and_limit(store):
    store.add_alerts([Alert("feature_drift", f"m{i}", feature="tenure") for i in range(3)])
    store.add_alerts([Alert("dataset_drift", "d")])
    assert [a.message for a in store.read_alerts()] == ["d", "m2", "m1", "m0"]
    assert [a.message for a in store.read_alerts(limit=2, kind="feature_drift")] == ["m2", "m1"]
    assert all(a.id and a.created_at for a in store.read_alerts())
