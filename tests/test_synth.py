"""Synthetic customers: raw-CSV format, determinism, fidelity to the real data, privacy, errors."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churn import data, model, schema, synth
from churn.io import load_json
from churn.monitoring import distributions

ROWS, SEED = 7043, 42


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return synth.generate(rows=ROWS, seed=SEED)


@pytest.fixture(scope="module")
def figures(real_raw) -> dict:
    return synth.calibrate(real_raw)


def _num(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce")


# --- format -------------------------------------------------------------------------------------


def test_columns_order_and_text_dtypes(synthetic):
    assert list(synthetic.columns) == list(schema.COLUMNS)
    assert len(synthetic) == ROWS
    assert synthetic.select_dtypes(include="number").columns.empty  # as read with dtype=str


def test_ids_have_the_real_format_and_are_unique(synthetic):
    ids = synthetic[schema.ID]
    assert ids.str.fullmatch(schema.ID_PATTERN.pattern).all()
    assert ids.is_unique


def test_passes_schema_validation(synthetic):
    schema.validate(synthetic, allow_extra=False, source="synthetic")


def test_one_row_is_a_valid_file():
    df = synth.generate(rows=1, seed=3)
    assert len(df) == 1
    schema.validate(df)


def test_total_charges_blank_exactly_at_tenure_zero(synthetic):
    blank = synthetic["TotalCharges"] == " "  # the real file's blank is one space
    assert blank.sum() > 0
    assert (blank == (synthetic["tenure"] == "0")).all()


def test_no_internet_and_no_phone_structure(synthetic):
    no_internet = synthetic["InternetService"] == "No"
    for addon in schema.INTERNET_ADDONS:
        assert ((synthetic[addon] == schema.NO_INTERNET) == no_internet).all(), addon
    assert ((synthetic["MultipleLines"] == schema.NO_PHONE) == (synthetic["PhoneService"] == "No")).all()
    assert ((synthetic["PhoneService"] == "No") & no_internet).sum() == 0  # every customer buys something


def test_numbers_are_written_like_the_real_file(synthetic):
    money = r"\d+(\.\d?[1-9])?"  # at most 2 decimals, trailing zeros dropped (29.85, 42.3, 84)
    assert synthetic["MonthlyCharges"].str.fullmatch(money).all()
    assert synthetic.loc[synthetic["tenure"] != "0", "TotalCharges"].str.fullmatch(money).all()
    assert synthetic["tenure"].str.fullmatch(r"\d+").all()
    assert _num(synthetic["tenure"]).between(0, 72).all()
    assert set(synthetic["SeniorCitizen"]) == {"0", "1"}
    assert set(synthetic["Churn"]) == {"No", "Yes"}


def test_total_charges_track_tenure_times_monthly(synthetic):
    # Tolerances are the real file's own spread of log(Total / (tenure × Monthly)): exactly 0 at
    # tenure 1, at most 0.43 for any customer, at most 0.25 from 13 months on (history averages out).
    tenure, monthly, total = (_num(synthetic[c]) for c in ("tenure", "MonthlyCharges", "TotalCharges"))
    assert (total[tenure == 1] == monthly[tenure == 1]).all()
    later = tenure >= 2
    log_ratio = np.log(total[later] / (tenure[later] * monthly[later])).abs()
    assert log_ratio.max() <= 0.45
    assert log_ratio[tenure[later] >= 13].max() <= 0.25
    assert log_ratio.median() < 0.05


def test_csv_round_trips_through_read_raw(synthetic, tmp_path):
    path = tmp_path / "synthetic.csv"
    synth.write_csv(synthetic, path)
    pd.testing.assert_frame_equal(data.read_raw(path), synthetic)


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seed_differs(synthetic, tmp_path):
    paths = [tmp_path / name for name in ("a.csv", "b.csv", "c.csv")]
    synth.write_csv(synthetic, paths[0])
    synth.write_csv(synth.generate(rows=ROWS, seed=SEED), paths[1])
    synth.write_csv(synth.generate(rows=ROWS, seed=SEED + 1), paths[2])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_generation_is_fast():
    best = min(_timed(synth.generate) for _ in range(3))
    assert best < 1.0, f"7,043 rows took {best:.2f} s"


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def test_write_csv_leaves_nothing_behind_on_failure(tmp_path):
    path = tmp_path / "out" / "synthetic.csv"
    with pytest.raises(AttributeError):
        synth.write_csv(object(), path)  # not a frame: fails inside the atomic block
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


# --- fidelity to the real data ------------------------------------------------------------------


def test_churn_rate_within_two_points_of_real(synthetic, real_raw):
    rate = (synthetic["Churn"] == "Yes").mean()
    real = (real_raw["Churn"] == "Yes").mean()
    assert abs(rate - real) <= 0.02, (rate, real)


def test_every_column_psi_below_0_10(synthetic, real_raw):
    psi = distributions.column_psi(real_raw, synthetic)
    assert set(psi) == set(schema.COLUMNS) - {schema.ID}
    worst = max(psi, key=psi.get)
    assert psi[worst] < 0.10, f"{worst}: PSI {psi[worst]:.4f}"


def test_synthetic_trained_model_ranks_real_customers(synthetic, real_raw):
    spec = {"estimator": "logistic_regression", "params": {}}
    pipeline = model.build("challenger", spec, seed=SEED).fit(*data.xy(data.clean(synthetic)[0]))
    X_real, y_real = data.xy(data.clean(real_raw)[0])
    auc = roc_auc_score(y_real, pipeline.predict_proba(X_real)[:, 1])
    assert auc >= 0.80


def test_month_to_month_churns_more_than_two_year(synthetic):
    rate = synthetic.assign(churn=synthetic["Churn"] == "Yes").groupby("Contract")["churn"].mean()
    assert rate["Month-to-month"] > rate["One year"] > rate["Two year"]


# --- calibration and privacy --------------------------------------------------------------------


def _leaf_lists(obj):
    if isinstance(obj, dict):
        for value in obj.values():
            yield from _leaf_lists(value)
    elif isinstance(obj, list):
        if all(not isinstance(v, list | dict) for v in obj):
            yield obj
        for value in obj:
            yield from _leaf_lists(value)


def test_calibration_holds_no_ids_or_rows(figures, real_raw):
    text = json.dumps(figures)
    assert not any(customer in text for customer in real_raw[schema.ID])
    assert max(len(values) for values in _leaf_lists(figures)) < len(real_raw) / 10
    assert len(text) < 40_000  # compact aggregates, not data


def _flat(obj, prefix: str = "") -> dict:
    if isinstance(obj, dict):
        return {k: v for key, value in obj.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    if isinstance(obj, list):
        return {k: v for i, value in enumerate(obj) for k, v in _flat(value, f"{prefix}{i}.").items()}
    return {prefix: obj}


def test_committed_figures_are_the_current_calibration(figures):
    # Recalibrate with `synth.calibrate_main(REAL.csv, "churn/synth_figures.json")` when this fails.
    committed, fresh = _flat(synth.load_figures()), _flat(json.loads(json.dumps(figures)))
    assert committed.keys() == fresh.keys()
    for key, value in fresh.items():
        assert committed[key] == (pytest.approx(value, abs=2e-4) if isinstance(value, float) else value), key


def test_calibrate_main_writes_figures_that_generate(real_csv, tmp_path):
    out = tmp_path / "figures.json"
    returned = synth.calibrate_main(real_csv, out)
    saved = load_json(out)
    assert saved == json.loads(json.dumps(returned))
    assert len(synth.generate(rows=50, seed=1, figures=saved)) == 50


def test_calibrate_rejects_a_frame_that_is_not_telco(real_raw):
    with pytest.raises(schema.SchemaError, match="Contract"):
        synth.calibrate(real_raw.drop(columns=["Contract"]))


# --- bad arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize("rows", [0, -5, 1.5, True, "10", None, synth.MAX_ROWS + 1])
def test_bad_rows_are_rejected(rows):
    with pytest.raises(ValueError, match="rows"):
        synth.generate(rows=rows)


@pytest.mark.parametrize("seed", [-1, 2.5, "42"])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        synth.generate(rows=10, seed=seed)


def test_bad_figures_are_rejected():
    with pytest.raises(ValueError, match="version"):
        synth.generate(rows=10, figures={"chain": {}})
    broken = synth.load_figures()
    del broken["chain"]["Contract"]
    with pytest.raises(ValueError, match=r"chain\.Contract"):
        synth.generate(rows=10, figures=broken)
