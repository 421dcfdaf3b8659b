"""The prediction log: typed columns, concurrent writers, windows, outcomes, alerts, bad records."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from churn import data, schema, synth
from churn.monitoring.queries import Window
from churn.monitoring.records import Alert, Outcome, PredictionRecord, RecordError
from churn.monitoring.store import PredictionStore
from churn.monitoring.tables import predictions


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    df, _ = data.clean(synth.generate(rows=200, seed=11))
    return df


def records(customers: pd.DataFrame, n: int, tag: str = "", **overrides) -> list[PredictionRecord]:
    rows = customers.to_dict("records")
    out = []
    for i in range(n):
        row = rows[i % len(rows)]
        fields = {
            "features": {c: row[c] for c in schema.FEATURES},
            "probability": (i % 100) / 100,
            "risk_level": ("Low", "Medium", "High")[i % 3],
            "model_name": "champion",
            "customer_id": f"{tag}{row[schema.ID]}",
        }
        fields.update(overrides)
        out.append(PredictionRecord(**fields))
    return out


def _write_from_process(url: str, n: int, tag: str, go=None) -> None:
    df, _ = data.clean(synth.generate(rows=200, seed=11))
    store = PredictionStore(url)
    if go is not None:
        go.wait(120)  # every writer ready: they all write at once
    for start in range(0, n, 10):
        store.log(records(df, 10, tag=f"{tag}{start}-"))
    store.dispose()


def test_features_are_typed_columns_and_values_round_trip(db_url, customers):
    store = PredictionStore(db_url)
    recs = records(customers, 5)
    ids = store.log(recs)
    assert ids == sorted(ids) and len(set(ids)) == 5
    got = store.read()
    for col in schema.FEATURES:
        assert got[col].tolist() == [r.features[col] for r in recs], col
    assert got["probability"].tolist() == [r.probability for r in recs]
    assert isinstance(predictions.c["tenure"].type, sa.Integer)
    assert isinstance(predictions.c["MonthlyCharges"].type, sa.Float)
    assert isinstance(predictions.c["Contract"].type, sa.String)
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    store.dispose()


def test_default_url_comes_from_env_then_current_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_DB_URL", f"sqlite:///{tmp_path / 'env.db'}")
    store = PredictionStore()
    assert store.count() == 0 and (tmp_path / "env.db").exists()
    store.dispose()
    monkeypatch.delenv("CHURN_DB_URL")
    monkeypatch.chdir(tmp_path)
    PredictionStore().dispose()
    assert (tmp_path / "predictions.db").exists()


def test_eight_threads_of_two_hundred_predictions_lose_and_duplicate_nothing(db_url, customers):
    store = PredictionStore(db_url)
    ids: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(t: int) -> None:
        try:
            for i in range(20):
                got = store.log(records(customers, 10, tag=f"t{t}-{i}-"))
                with lock:
                    ids.extend(got)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert store.count() == 1600
    assert len(ids) == 1600 and len(set(ids)) == 1600
    assert set(store.read(columns=["id"])["id"]) == set(ids)
    store.dispose()


def test_eight_processes_of_two_hundred_predictions_lose_and_duplicate_nothing(db_url):
    PredictionStore(db_url).dispose()  # the schema exists first: this races the writes, not its creation
    # forked from a clean server process that imported this module once (no engine, no threads):
    # eight real processes sharing nothing but the database, without eight interpreter start-ups
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    go = ctx.Barrier(8)
    procs = [ctx.Process(target=_write_from_process, args=(db_url, 200, f"p{i}-", go)) for i in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * 8
    store = PredictionStore(db_url)
    frame = store.read(columns=["id", "customer_id"])
    assert len(frame) == store.count() == 1600 and frame["id"].is_unique
    assert frame["customer_id"].is_unique  # each writer's ids are tagged: no row twice, none lost
    assert frame["customer_id"].str.split("-").str[0].value_counts().to_dict() == {
        f"p{i}": 200 for i in range(8)
    }
    store.dispose()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"probability": 1.5}, "probability must be between 0 and 1"),
        ({"probability": float("nan")}, "probability"),
        ({"risk_level": "Extreme"}, "risk_level must be one of"),
        ({"model_name": " "}, "model_name must be non-blank text"),
        ({"features": {"tenure": 3}}, "features missing"),
        ({"feature": ("Contract", "Weekly")}, "Contract: must be one of"),
        ({"feature": ("tenure", -1)}, "tenure: must be between"),
        ({"feature": ("tenure", 2.5)}, "tenure: must be a whole number"),
        ({"feature": ("MonthlyCharges", "lots")}, "MonthlyCharges must be a number"),
        ({"feature": ("MonthlyCharges", None)}, "MonthlyCharges: must be a number"),
        ({"feature": ("Colour", "red")}, "unknown"),
    ],
)
def test_a_bad_record_rejects_its_whole_batch(db_url, customers, change, match):
    store = PredictionStore(db_url)
    good = records(customers, 3)
    bad = records(customers, 1)[0]
    change = dict(change)  # the parameter is shared by both backends' runs
    if "feature" in change:
        name, value = change.pop("feature")
        bad.features = {**bad.features, name: value}
    for key, value in change.items():
        setattr(bad, key, value)
    with pytest.raises(RecordError, match=match) as info:
        store.log([*good, bad])
    assert "prediction record 3" in str(info.value)
    assert store.count() == 0
    store.dispose()


def test_first_month_customer_may_have_no_total_charges(db_url, customers):
    store = PredictionStore(db_url)
    rec = records(customers, 1)[0]
    rec.features = {**rec.features, "tenure": 0, "TotalCharges": None}
    store.log([rec])
    assert store.read()["TotalCharges"].isna().all()
    rec.features = {**rec.features, "tenure": 5}
    with pytest.raises(RecordError, match="TotalCharges"):
        store.log([rec])
    store.dispose()


def test_windows_by_last_n_time_range_and_model(db_url, customers):
    store = PredictionStore(db_url)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    recs = records(customers, 48)
    for i, rec in enumerate(recs):
        rec.created_at = start + timedelta(hours=i)
        rec.model_name = "champion" if i % 4 else "challenger"
    store.log(recs)
    assert store.count(Window(last=10)) == 10
    assert store.read(Window(last=3))["id"].tolist() == [46, 47, 48]
    day2 = Window(start=start + timedelta(days=1), end=start + timedelta(days=2))
    assert store.count(day2) == 24
    assert store.count(Window(model_name="challenger")) == 12
    assert store.read(Window(last=2, model_name="challenger"))["id"].tolist() == [41, 45]
    assert store.count(Window(last=500)) == 48
    daily = store.bucket_counts("day")
    assert daily.to_dict("list") == {"bucket": ["2026-03-01", "2026-03-02"], "n": [24, 24]}
    assert len(store.bucket_counts("hour")) == 48
    # a time-zone-aware bound is converted to UTC
    cet = datetime(2026, 3, 2, 1, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    assert store.count(Window(start=cet)) == 23
    with pytest.raises(ValueError, match="last must be a positive"):
        Window(last=0)
    store.dispose()


def test_sql_counts_match_pandas(db_url, customers):
    store = PredictionStore(db_url)
    store.log(records(customers, 200))
    frame = store.read()
    assert store.level_counts("PaymentMethod").to_dict() == frame["PaymentMethod"].value_counts().to_dict()
    got = store.numeric_counts("MonthlyCharges")
    want = frame["MonthlyCharges"].round(2).value_counts().sort_index()
    assert got.sum() == 200
    pd.testing.assert_series_equal(got, want, check_names=False, check_index=False, check_exact=False)
    np.testing.assert_allclose(got.index.to_numpy(), want.index.to_numpy(), rtol=1e-12)
    store.dispose()


def test_email_source_outcomes_and_alerts_round_trip(db_url, customers):
    store = PredictionStore(db_url)
    ids = store.log(records(customers, 4))
    store.set_email_source(ids[1], "template:no_api_key")
    sources = store.read()["email_source"]
    assert sources.isna().tolist() == [True, False, True, True]
    assert sources[1] == "template:no_api_key"
    with pytest.raises(RecordError, match="no such prediction"):
        store.set_email_source(999, "groq:llama-3.1-8b-instant")

    cid = records(customers, 1)[0].customer_id
    assert store.add_outcomes([Outcome(cid, True, date(2026, 4, 1))]) == 1
    got = store.read_outcomes()
    assert got[["customer_id", "churned"]].to_dict("records") == [{"customer_id": cid, "churned": True}]
    assert got["outcome_date"].tolist() == [date(2026, 4, 1)]
    joined = store.labelled()
    assert joined["id"].tolist() == [ids[0]] and joined["churned"].tolist() == [1]
    with pytest.raises(RecordError, match="outcome 1: churned must be true or false"):
        store.add_outcomes([Outcome("a", False, date(2026, 4, 1)), Outcome("b", "maybe", date(2026, 4, 1))])
    assert len(store.read_outcomes()) == 1

    saved = store.add_alerts(
        [
            Alert("feature_drift", "tenure drifted", feature="tenure", value=0.31, threshold=0.25),
            Alert("dataset_drift", "3 of 19 features drifted", value=0.16, threshold=0.1, window="last 500"),
        ]
    )
    assert [a.id for a in saved] == [1, 2]
    newest = store.read_alerts()
    assert [a.kind for a in newest] == ["dataset_drift", "feature_drift"]
    assert newest[1].as_dict() | {"created_at": None} == {
        "id": 1,
        "created_at": None,
        "kind": "feature_drift",
        "feature": "tenure",
        "value": 0.31,
        "threshold": 0.25,
        "message": "tenure drifted",
        "window": "",
    }
    with pytest.raises(RecordError, match="alert 0: value must be between"):
        store.add_alerts([Alert("x", "y", value=float("nan"))])
    assert len(store.read_alerts()) == 2
    store.dispose()


def test_log_frame_is_the_bulk_form_of_log(db_url, customers):
    store = PredictionStore(db_url)
    results = pd.DataFrame(
        {"probability": [0.1, 0.9], "risk_level": ["Low", "High"], "model_name": "challenger"}
    )
    ids = store.log_frame(customers.head(2), results)
    assert store.read()["risk_level"].tolist() == ["Low", "High"] and len(ids) == 2
    with pytest.raises(RecordError, match="unknown column"):
        store.log_frame(customers.head(2), results.assign(colour="red"))
    bad = customers.head(2).copy()
    bad.loc[1, "gender"] = "?"
    with pytest.raises(RecordError, match="prediction record 1: feature gender"):
        store.log_frame(bad, results)
    assert store.count() == 2
    store.dispose()


def test_records_and_frames_store_the_same_rows(db_url, customers):
    store = PredictionStore(db_url)
    when = datetime(2026, 3, 1, 12, tzinfo=UTC)
    recs = records(customers, 5, created_at=when, latency_ms=3)
    recs[0].features = {**recs[0].features, "tenure": 0, "TotalCharges": None}
    store.log(recs)  # the record form
    fields = ["probability", "risk_level", "model_name", "customer_id", "created_at", "latency_ms"]
    results = pd.DataFrame([{f: getattr(r, f) for f in fields} for r in recs])
    store.log_frame(pd.DataFrame([r.features for r in recs]), results)  # the frame form
    got = store.read().drop(columns="id")
    first, second = got.iloc[:5].reset_index(drop=True), got.iloc[5:].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, second)
    assert first["created_at"].iloc[0] == pd.Timestamp("2026-03-01 12:00")
    assert first["TotalCharges"].isna().iloc[0]
    store.dispose()


def test_a_simulated_clock_dates_records_without_created_at(db_url, customers):
    moment = datetime(2026, 1, 2, 3, 4, 5)
    store = PredictionStore(db_url, clock=lambda: moment)
    store.log(records(customers, 2))
    store.log(records(customers, 30))
    assert (store.read()["created_at"] == pd.Timestamp(moment)).all()
    store.dispose()


def test_validated_predictions_are_checked_for_shape_only(db_url, customers):
    from churn.monitoring.records import Predictions

    store = PredictionStore(db_url)
    given = schema.customers(customers.head(2)[list(schema.FEATURES)])
    results = [{"probability": 0.2, "risk_level": "Low", "model_name": "champion"}] * 2
    assert len(store.write(Predictions.of(given, given.typed_records(), results))) == 2
    with pytest.raises(RecordError, match="must come from the schema's validated customers"):
        Predictions.of(customers.head(2), given.typed_records(), results)
    with pytest.raises(RecordError, match="predictions must be Predictions"):
        store.write([given.typed_records(), results])
    wrong = [{**given.typed_records()[0], "tenure": "24"}, given.typed_records()[1]]
    with pytest.raises(RecordError, match="prediction record 0: feature tenure must be a number"):
        store.write(Predictions.of(given, wrong, results))
    assert store.count() == 2
    store.dispose()


def test_the_bulk_path_keeps_awkward_text_nulls_and_times(db_url, customers):
    """`return_ids=False` (COPY on PostgreSQL, executemany on SQLite) stores what the checked path does."""
    store = PredictionStore(db_url)
    awkward = ["tab\there", "new\nline", "back\\slash", "quote\"'", "ünï€ode", None]
    when = datetime(2026, 3, 1, 12, 30, 15, 123456)
    results = pd.DataFrame(
        {
            "probability": [0.0, 0.25, 0.5, 0.75, 1.0, 0.5],
            "risk_level": ["Low", "Low", "Medium", "High", "High", "Medium"],
            "model_name": "champion",
            "model_version": ["", "v\\N", "v1", "v1", "v1", "v1"],
            "email_source": awkward,
            "customer_id": [f"{text}-{i}" if text else None for i, text in enumerate(awkward)],
            "created_at": [when] * 6,
        }
    )
    feats = customers.head(6).reset_index(drop=True)
    feats.loc[0, ["tenure", "TotalCharges"]] = [0, None]
    assert store.log_frame(feats, results, return_ids=False) == []
    store.log_frame(feats, results)  # the checked path, ids returned
    got = store.read().drop(columns="id")
    bulk, checked = got.iloc[:6].reset_index(drop=True), got.iloc[6:].reset_index(drop=True)
    pd.testing.assert_frame_equal(bulk, checked)
    assert bulk["email_source"].tolist()[:5] == awkward[:5] and pd.isna(bulk["email_source"].iloc[5])
    assert bulk["model_version"].tolist()[:2] == ["", "v\\N"] and pd.isna(bulk["TotalCharges"].iloc[0])
    assert (bulk["created_at"] == pd.Timestamp(when)).all()
    store.dispose()
