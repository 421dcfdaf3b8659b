"""The drift engine: statistics against scipy and hand-computed values; the engine's verdicts; SQL = pandas."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from churn import data, schema, synth
from churn.monitoring import distributions, drift
from churn.monitoring.queries import Window
from churn.monitoring.store import PredictionStore
from churn.params import ParamsError
from churn.settings import DriftConfig


def counts(values) -> pd.Series:
    return pd.Series(values).value_counts().sort_index()


@pytest.fixture(scope="module")
def reference_frame(prepared) -> pd.DataFrame:
    return prepared[0]


@pytest.fixture(scope="module")
def config() -> DriftConfig:
    return DriftConfig()


@pytest.fixture(scope="module")
def reference(reference_frame, config) -> drift.Reference:
    return drift.reference_from_frame(reference_frame, config)


def fresh(rows: int, seed: int) -> pd.DataFrame:
    df, _ = data.clean(synth.generate(rows=rows, seed=seed))
    return df


# -- statistics against scipy and by hand ----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_scipy_asymptotic_on_grid_data(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 73, 800)  # whole months, with ties, like tenure
    b = rng.integers(5, 73, 300)
    d, p = distributions.ks_from_counts(counts(a), counts(b))
    ref = stats.ks_2samp(a, b, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_ks_hand_computed():
    # ECDFs of {1,2,3,4} and {3,4,5,6}: largest gap 0.5 at x = 2 (1.0 - 0.5 ... ) → D = 0.5
    d, _ = distributions.ks_from_counts(counts([1, 2, 3, 4]), counts([3, 4, 5, 6]))
    assert d == 0.5


def test_chi_square_matches_scipy_and_a_hand_computed_table():
    # 2x2 table [[30, 70], [50, 50]]: expected [[40, 60], [40, 60]] → chi2 = 2*(100/40 + 100/60)
    ref = pd.Series({"No": 70, "Yes": 30})
    cur = pd.Series({"No": 50, "Yes": 50})
    stat, p, dof = distributions.chi2_from_counts(ref, cur)
    assert stat == pytest.approx(2 * (100 / 40 + 100 / 60), rel=1e-12)
    assert dof == 1
    assert p == pytest.approx(stats.chi2.sf(stat, 1), rel=1e-12)
    sp = stats.chi2_contingency([[70, 30], [50, 50]], correction=False)
    assert (stat, p) == pytest.approx((sp.statistic, sp.pvalue), rel=1e-12)


def test_chi_square_counts_unseen_levels_in_their_own_bucket():
    ref = pd.Series({"DSL": 40, "Fiber optic": 60})
    cur = pd.Series({"DSL": 40, "Fiber optic": 50, "Satellite": 10})
    stat, p, dof = distributions.chi2_from_counts(ref, cur)
    sp = stats.chi2_contingency([[40, 60, 0], [40, 50, 10]], correction=False)
    assert dof == 2 and stat == pytest.approx(sp.statistic) and p == pytest.approx(sp.pvalue)


def test_wasserstein_matches_scipy_the_area_between_cdfs_and_hand_values():
    rng = np.random.default_rng(3)
    a, b = rng.normal(50, 10, 500).round(2), rng.normal(53, 12, 400).round(2)
    got = distributions.wasserstein_from_counts(counts(a), counts(b))
    assert got == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-12)  # the raw samples
    # the former formula: the area between the two empirical CDFs on the union of values
    values, f_a, f_b = distributions._cdfs(counts(a), counts(b))
    assert got == pytest.approx(float(np.sum(np.abs(f_a - f_b)[:-1] * np.diff(values))), rel=1e-12)
    # hand: moving mass 1 from 0 to 3 costs 3; half the mass from 1 to 2 costs 0.5
    assert distributions.wasserstein_from_counts(counts([0, 0]), counts([3, 3])) == 3.0
    assert distributions.wasserstein_from_counts(pd.Series({1.0: 2, 2.0: 2}), pd.Series({2.0: 4})) == 0.5
    # counts are weights: a value listed twice, or with a zero count, changes nothing
    assert distributions.wasserstein_from_counts(
        pd.Series([1, 1, 0], index=[0.0, 0.0, 7.0]), pd.Series({1.0: 1})
    ) == pytest.approx(1.0)


def test_jensen_shannon_matches_scipy_and_bounds():
    ref = pd.Series({"a": 30, "b": 70})
    cur = pd.Series({"a": 60, "b": 40})
    assert distributions.jensen_shannon_from_counts(ref, cur) == pytest.approx(
        jensenshannon([0.3, 0.7, 0], [0.6, 0.4, 0])
    )
    assert distributions.jensen_shannon_from_counts(ref, ref * 3) == pytest.approx(0.0, abs=1e-7)
    disjoint = distributions.jensen_shannon_from_counts(pd.Series({"a": 5}), pd.Series({"z": 5}))
    assert disjoint == pytest.approx(math.sqrt(math.log(2)))


def test_psi_from_summary_equals_the_raw_psi_helpers():
    rng = np.random.default_rng(4)
    ref, cur = rng.integers(0, 73, 2000), rng.integers(0, 60, 500)
    edges = distributions.weighted_quantile_edges(counts(ref), 10)
    np.testing.assert_allclose(edges, distributions.numeric_bins(ref, 10))
    assert distributions.psi_from_summary(counts(ref), counts(cur), edges) == pytest.approx(
        distributions.psi_numeric(ref, cur)
    )
    cats_ref, cats_cur = ["a"] * 50 + ["b"] * 50, ["b"] * 75 + ["a"] * 20 + ["c"] * 5
    assert distributions.psi_from_summary(counts(cats_ref), counts(cats_cur)) == pytest.approx(
        distributions.psi_categorical(cats_ref, cats_cur)
    )


def test_weighted_quantile_edges_match_numpy_on_real_values(reference_frame):
    values = reference_frame["MonthlyCharges"].to_numpy()
    summary = distributions.numeric_counts(values, distributions.GRID["MonthlyCharges"])
    np.testing.assert_allclose(
        distributions.weighted_quantile_edges(summary, 10), distributions.numeric_bins(values, 10)
    )


def test_numeric_counts_round_to_the_grid():
    got = distributions.numeric_counts(np.array([1.004, 0.996, 2.5, np.nan]), 0.01)
    assert got.to_dict() == {1.0: 2, 2.5: 1}


# -- the engine --------------------------------------------------------------------------------------


def test_small_window_uses_bonferroni_tests_and_stays_quiet_without_drift(reference, config):
    report = drift.compare(reference, distributions.summarize(fresh(500, 101)), config, "batch")
    assert report["status"] == "ok" and report["method"].startswith("tests")
    tenure = report["features"]["tenure"]
    assert tenure["test"] == "ks" and tenure["threshold"] == pytest.approx(0.025 / 19)
    assert report["features"]["Contract"]["test"] == "chi_square"
    assert report["dataset"]["drifted"] is False
    assert set(report["features"]) == set(schema.FEATURES)
    assert report["prediction"] is None


def test_large_window_uses_distances(reference, config):
    report = drift.compare(reference, distributions.summarize(fresh(3000, 102)), config)
    assert report["method"].startswith("distances")
    assert report["features"]["MonthlyCharges"]["test"] == "wasserstein_norm"
    assert report["features"]["Contract"]["test"] == "jensen_shannon"
    assert report["dataset"]["drifted"] is False
    assert max(r["statistic"] for r in report["features"].values()) < 0.1


def test_a_shifted_feature_and_unseen_level_drift(reference, config):
    cur = fresh(600, 103)
    cur["MonthlyCharges"] = cur["MonthlyCharges"] * 1.3
    cur.loc[:99, "PaymentMethod"] = "Crypto"
    report = drift.compare(reference, distributions.summarize(cur), config)
    assert report["features"]["MonthlyCharges"]["drifted"]
    assert report["features"]["MonthlyCharges"]["psi_level"] == "major"
    assert report["features"]["PaymentMethod"]["drifted"]
    assert report["dataset"]["drifted"] and "MonthlyCharges" in report["dataset"]["drifted_features"]
    table = drift.drift_table(report)
    assert list(table["column"]) == list(schema.FEATURES)
    assert table.set_index("column").loc["MonthlyCharges", "drifted"]


def test_tiny_window_is_not_enough_data_and_empty_window_is_an_error(reference, config):
    report = drift.compare(reference, distributions.summarize(fresh(3, 104)), config, "last 3")
    assert report["status"] == "not_enough_data"
    assert "not enough data: 3 prediction(s)" in report["message"]
    assert report["dataset"]["drifted"] is False and report["features"] == {}
    with pytest.raises(ValueError, match="the window is empty"):
        drift.compare(reference, distributions.Summary(n=0), config, "last 10")


def test_prediction_drift_is_tested_when_both_sides_have_probabilities(reference_frame, config):
    rng = np.random.default_rng(5)
    ref = drift.reference_from_frame(reference_frame, config, rng.beta(2, 5, 1000))
    cur = fresh(400, 105)
    same = drift.compare(ref, distributions.summarize(cur, rng.beta(2, 5, 400)), config)
    moved = drift.compare(ref, distributions.summarize(cur, rng.beta(5, 2, 400)), config)
    assert same["prediction"]["drifted"] is False and moved["prediction"]["drifted"] is True
    assert moved["prediction"]["threshold"] == pytest.approx(0.025 / 20)  # 19 features + the prediction


def test_reference_that_breaks_the_schema_is_refused(reference_frame, config):
    bad = reference_frame.drop(columns=["tenure"])
    with pytest.raises(schema.SchemaError, match="tenure"):
        drift.reference_from_frame(bad, config, source="ref.parquet")
    odd = reference_frame.assign(Contract="Weekly")
    with pytest.raises(schema.SchemaError, match="Contract"):
        drift.reference_from_frame(odd, config)


def test_config_rejects_bad_thresholds():
    with pytest.raises(
        ParamsError, match=r"^params.yaml: monitoring.drift.alpha: must be greater than 0 and less than 1"
    ):
        DriftConfig.from_params({"alpha": 1.5}, key="monitoring.drift")
    with pytest.raises(ParamsError, match=r"monitoring.drift.alpah: unknown key \(allowed: min_rows,"):
        DriftConfig.from_params({"alpah": 0.1}, key="monitoring.drift")


# -- SQL summaries equal in-memory ones ---------------------------------------------------------------


def _logged(db_url, frame: pd.DataFrame, proba: np.ndarray, start: datetime) -> PredictionStore:
    store = PredictionStore(db_url)
    results = pd.DataFrame(
        {
            "probability": proba,
            "risk_level": np.where(proba >= 0.6, "High", np.where(proba >= 0.3, "Medium", "Low")),
            "model_name": "champion",
            "created_at": [start + timedelta(minutes=i) for i in range(len(frame))],
        }
    )
    store.log_frame(frame, results, return_ids=False)
    return store


def _assert_same(a: distributions.Summary, b: distributions.Summary) -> None:
    assert a.n == b.n
    for col, series in a.numeric.items():
        other = b.numeric[col]
        assert series.to_numpy().tolist() == other.to_numpy().tolist(), col
        np.testing.assert_allclose(series.index.to_numpy(), other.index.to_numpy(), rtol=0, atol=1e-9)
    for col, series in a.categorical.items():
        assert series.to_dict() == b.categorical[col].to_dict(), col


def test_sql_summary_equals_pandas_summary_for_every_kind_of_window(db_url):
    frame = fresh(400, 106)
    proba = np.random.default_rng(6).random(len(frame))
    start = datetime(2026, 5, 1, tzinfo=UTC)
    store = _logged(db_url, frame, proba, start)
    cases = {
        Window(last=400): slice(0, 400),  # whole table → "all minus complement" path
        Window(last=300): slice(100, 400),  # most of the table → same path, with a complement
        Window(last=50): slice(350, 400),  # a small window → primary-key range
        Window(start=start + timedelta(minutes=10), end=start + timedelta(minutes=110)): slice(10, 110),
    }
    for window, rows in cases.items():
        want = distributions.summarize(frame.iloc[rows], proba[rows])
        got = store.summarize(window)
        _assert_same(got, want)
    assert store.select(Window(last=400)).bounds == (1, 400)
    assert store.select(Window(last=50)).bounds is None
    store.dispose()


def test_rows_logged_after_a_selection_do_not_leak_into_it(db_url):
    frame = fresh(200, 107)
    proba = np.full(len(frame), 0.2)
    store = _logged(db_url, frame, proba, datetime(2026, 5, 1))
    selection = store.select(Window(last=200))
    _logged(db_url, frame.head(50), np.full(50, 0.9), datetime(2026, 5, 2))
    assert store.summarize(selection).n == 200
    assert store.numeric_counts("probability", selection).to_dict() == {0.2: 200}
    assert store.numeric_counts("probability").sum() == 250
    store.dispose()
