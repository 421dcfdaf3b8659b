"""Traffic replay: scenarios are seeded and shift what they say; arrivals, onset and replay into the log."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from churn import data, schema
from churn.monitoring import scenarios, simulate
from churn.monitoring.store import PredictionStore


def clean(df: pd.DataFrame) -> pd.DataFrame:
    schema.validate(df, require_target=True, source="scenario")
    return data.clean(df)[0]


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return clean(simulate.Scenario.get("none").customers(3000, seed=1))


@pytest.mark.parametrize("name", simulate.SCENARIOS)
def test_every_scenario_is_seeded_and_schema_valid(name):
    scenario = simulate.Scenario.get(name)
    a, b = scenario.customers(300, seed=5), scenario.customers(300, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 300 and a[schema.ID].is_unique
    clean(a)
    assert not a.equals(scenario.customers(300, seed=6))
    assert name in scenarios.DESCRIPTIONS


def test_scenarios_shift_what_they_say(baseline):
    def share(df, col, value):
        return float((df[col] == value).mean())

    price = clean(simulate.Scenario.get("price_increase").customers(3000, seed=1))
    assert price["MonthlyCharges"].mean() == pytest.approx(baseline["MonthlyCharges"].mean() * 1.15, rel=0.01)
    mix = clean(simulate.Scenario.get("contract_mix").customers(3000, seed=2))
    assert share(mix, "Contract", "Month-to-month") == pytest.approx(0.8, abs=0.03)
    assert share(baseline, "Contract", "Month-to-month") < 0.65
    fiber = clean(
        simulate.Scenario.get("new_fiber_customers", {"new_fiber_customers": {"share": 0.5}}).customers(
            3000, 3
        )
    )
    new_fiber = (fiber["InternetService"] == "Fiber optic") & (fiber["tenure"] <= 12)
    assert new_fiber.mean() == pytest.approx(0.5, abs=0.03)
    seniors = clean(simulate.Scenario.get("senior_surge").customers(3000, seed=4))
    assert seniors["SeniorCitizen"].mean() == pytest.approx(0.45, abs=0.03)
    years = clean(simulate.Scenario.get("tenure_in_years").customers(3000, seed=1))
    assert years["tenure"].max() <= 6 and baseline["tenure"].max() > 60


def test_scenario_knobs_are_checked():
    with pytest.raises(ValueError, match="scenario must be one of"):
        simulate.Scenario.get("recession")
    with pytest.raises(
        ValueError, match=r"monitoring.scenarios.price_increase.factr: unknown key \(allowed: factor\)"
    ):
        simulate.Scenario.get("price_increase", {"price_increase": {"factr": 2}})
    with pytest.raises(
        ValueError, match=r"month_to_month_share: must be greater than 0 and less than 1 \(got 1.2\)"
    ):
        simulate.Scenario.get("contract_mix", {"contract_mix": {"month_to_month_share": 1.2}})
    with pytest.raises(ValueError, match="positive whole number"):
        simulate.Scenario.get("none").customers(0, seed=1)


def test_arrivals_are_sorted_inside_the_period_and_busier_by_day():
    end = datetime(2026, 6, 8, 0, 0)
    times = simulate.arrival_times(20_000, 7, end, seed=1)
    assert times.is_monotonic_increasing
    assert times.min() >= pd.Timestamp("2026-06-01") and times.max() < pd.Timestamp(end)
    by_hour = times.dt.hour.value_counts(normalize=True)
    assert by_hour[10] > 4 * by_hour[3]  # working hours vs night, weights 8 vs 1


def test_traffic_shifts_only_after_the_onset():
    end = datetime(2026, 6, 8)
    frame = simulate.traffic(
        4000, simulate.Scenario.get("tenure_in_years"), days=4, onset=0.5, seed=9, end=end
    )
    assert frame[schema.ID].is_unique and frame["created_at"].is_monotonic_increasing
    tenure = pd.to_numeric(frame["tenure"])
    before = frame["created_at"] < pd.Timestamp("2026-06-06")
    assert tenure[before].max() > 60 and tenure[~before].max() <= 6
    outcomes = simulate.outcomes_frame(frame, delay_days=30)
    assert list(outcomes.columns) == ["customerID", "churned", "date"]
    assert outcomes["date"].iloc[0] == (frame["created_at"].iloc[0] + pd.Timedelta(days=30)).strftime(
        "%Y-%m-%d"
    )
    assert set(outcomes["churned"]) == {"Yes", "No"}


def test_replay_logs_every_customer_at_its_arrival_time(monitor_root):
    from churn.serving import Predictor

    store = PredictionStore()
    predictor = Predictor.load(model="champion", root=monitor_root, store=store)
    frame = simulate.traffic(250, simulate.Scenario.get("none"), days=2, seed=3, end=datetime(2026, 6, 8))
    assert simulate.replay(predictor, frame) == 250
    logged = store.read()
    assert len(logged) == 250 and logged["model_name"].eq("champion").all()
    np.testing.assert_array_equal(
        logged["created_at"].to_numpy(dtype="datetime64[ms]"),
        frame["created_at"].to_numpy(dtype="datetime64[ms]"),
    )
    assert logged["customer_id"].tolist() == frame[schema.ID].tolist()
    expected = predictor.predict(frame.drop(columns="created_at"), log=False)["churn_probability"]
    np.testing.assert_allclose(logged["probability"], expected)
    store.dispose()
