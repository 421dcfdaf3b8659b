"""timeseries: volume, risk levels and probability histograms per hour or day, windows, empty logs."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from churn.monitoring import timeseries
from churn.monitoring.queries import Window

from .logged import frame


def test_a_missing_risk_level_is_a_zero_column_and_shares_add_up(store):
    features, results = frame(6, minutes=60, risk_level=["Low", "High"] * 3)
    store.log_frame(features, results)
    risk = timeseries.risk_breakdown(store, "hour")
    assert list(risk.columns) == [
        "bucket",
        "Low",
        "Medium",
        "High",
        "n",
        "Low_share",
        "Medium_share",
        "High_share",
    ]
    assert risk["bucket"].tolist()[:3] == ["2026-03-01 22:00", "2026-03-01 23:00", "2026-03-02 00:00"]
    assert risk["Medium"].tolist() == [0] * 6 and risk["n"].tolist() == [1] * 6
    assert np.allclose(risk[["Low_share", "Medium_share", "High_share"]].sum(axis=1), 1)


def test_bin_edges_are_left_closed_and_one_is_in_the_last_bin(store):
    probs = [0.0, 0.0999, 0.1, 0.5, 0.9999, 1.0]
    features, results = frame(6, minutes=1, probability=probs)
    store.log_frame(features, results)
    dist = timeseries.probability_distribution(store, "day", bins=10)
    assert dict(zip(dist["bin"], dist["n"], strict=True)) == {0: 2, 1: 1, 5: 1, 9: 2}
    assert dist["share"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bins must be a positive whole number"):
        timeseries.probability_distribution(store, "day", bins=0)


def test_a_window_limits_every_series(store):
    store.log_frame(*frame(48, minutes=60))  # two days, 2026-03-01 22:00 … 2026-03-03 21:00
    window = Window(start=datetime(2026, 3, 2), end=datetime(2026, 3, 3))
    assert timeseries.volume(store, "day", window).to_dict("list") == {"bucket": ["2026-03-02"], "n": [24]}
    assert timeseries.volume(store, "day", Window(last=5))["n"].sum() == 5
    summary = timeseries.probability_summary(store, "day", window)
    assert summary["n"].tolist() == [24]
    assert summary["min"].iloc[0] == pytest.approx(2 / 48) and summary["max"].iloc[0] == pytest.approx(
        25 / 48
    )


def test_an_empty_log_gives_empty_frames_with_their_columns(store):
    assert timeseries.volume(store).empty
    assert list(timeseries.probability_distribution(store).columns) == ["bucket", "bin", "n", "share"]
    assert list(timeseries.risk_breakdown(store).columns)[:5] == ["bucket", "Low", "Medium", "High", "n"]


def test_units_are_hour_or_day_only(store):
    assert timeseries.UNITS == ("hour", "day")
    with pytest.raises(ValueError, match="time unit must be one of"):
        timeseries.volume(store, "week")


def test_bin_labels():
    assert timeseries.bin_labels(2) == ["0–0.5", "0.5–1"]
    assert len(timeseries.bin_labels()) == 10 and timeseries.bin_labels()[3] == "0.3–0.4"
