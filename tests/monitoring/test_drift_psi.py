"""PSI helpers of churn.monitoring.drift against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from churn.monitoring import distributions

EPS = distributions.PSI_EPS


def test_numeric_bins_are_reference_quantiles_with_infinite_outer_edges():
    # 1..10, quintiles by linear interpolation: positions 1.8, 3.6, 5.4, 7.2 → 2.8, 4.6, 6.4, 8.2
    edges = distributions.numeric_bins(np.arange(1, 11), n_bins=5)
    np.testing.assert_allclose(edges, [-np.inf, 2.8, 4.6, 6.4, 8.2, np.inf])


def test_numeric_bins_deduplicate_tied_quantiles_and_ignore_nan():
    edges = distributions.numeric_bins(np.array([0, 0, 0, 0, 1, np.nan]), n_bins=4)
    np.testing.assert_array_equal(edges, [-np.inf, 0.0, np.inf])


@pytest.mark.parametrize(("reference", "n_bins", "match"), [([], 10, "reference"), ([1, 2], 0, "n_bins")])
def test_numeric_bins_reject_bad_input(reference, n_bins, match):
    with pytest.raises(ValueError, match=match):
        distributions.numeric_bins(np.asarray(reference, dtype=float), n_bins=n_bins)


def test_psi_from_counts_hand_computed():
    # r = (.5, .5), c = (.25, .75): (-.25)·ln(.5) + (.25)·ln(1.5)
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert distributions.psi_from_counts([50, 50], [25, 75]) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.274653, abs=1e-6)


def test_psi_is_zero_for_equal_proportions_and_symmetric():
    assert distributions.psi_from_counts([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-15)
    a, b = [10, 30, 60], [20, 20, 60]
    assert distributions.psi_from_counts(a, b) == pytest.approx(distributions.psi_from_counts(b, a))
    assert distributions.psi_from_counts(a, b) > 0


def test_psi_from_counts_clips_empty_bins_at_eps():
    # r = (1, 0→eps), c = (.5, .5); proportions are clipped, not renormalised
    expected = (0.5 - 1) * math.log(0.5 / 1) + (0.5 - EPS) * math.log(0.5 / EPS)
    assert distributions.psi_from_counts([10, 0], [5, 5]) == pytest.approx(expected, rel=1e-12)
    assert (
        distributions.psi_from_counts([10, 0], [5, 5], eps=1e-2) < expected
    )  # a larger eps tempers the shift


@pytest.mark.parametrize(
    ("ref", "cur", "match"),
    [([1, 2], [1, 2, 3], "same length"), ([1, -1], [1, 1], "negative"), ([0, 0], [1, 1], "all be zero")],
)
def test_psi_from_counts_rejects_bad_counts(ref, cur, match):
    with pytest.raises(ValueError, match=match):
        distributions.psi_from_counts(ref, cur)


def test_psi_numeric_hand_computed():
    # reference 1..10 in 5 quantile bins: 2 per bin (r = .2 each); current only 1s and 10s
    current = np.array([1] * 5 + [10] * 5)
    expected = 2 * (0.5 - 0.2) * math.log(0.5 / 0.2) + 3 * (EPS - 0.2) * math.log(EPS / 0.2)
    assert distributions.psi_numeric(np.arange(1, 11), current, n_bins=5) == pytest.approx(
        expected, rel=1e-12
    )
    assert distributions.psi_numeric(np.arange(1, 11), np.arange(1, 11), n_bins=5) == 0.0


def test_psi_numeric_bins_are_left_closed():
    # reference median 2 → bins (-inf, 2) and [2, inf): r = (.25, .75); current all 2 → c = (0→eps, 1)
    expected = (EPS - 0.25) * math.log(EPS / 0.25) + 0.25 * math.log(1 / 0.75)
    assert distributions.psi_numeric(
        np.array([1, 2, 2, 3]), np.array([2, 2, 2, 2]), n_bins=2
    ) == pytest.approx(expected)


def test_psi_numeric_ignores_nan_in_current():
    ref = np.arange(100, dtype=float)
    assert distributions.psi_numeric(ref, np.append(ref, np.nan)) == pytest.approx(0.0, abs=1e-12)


def test_psi_categorical_hand_computed():
    expected = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    ref, cur = ["a"] * 50 + ["b"] * 50, ["b"] * 75 + ["a"] * 25
    assert distributions.psi_categorical(ref, cur) == pytest.approx(expected, abs=1e-12)


def test_psi_categorical_puts_new_levels_in_the_unseen_bucket():
    # r = (.5, .5, 0→eps) for (a, b, unseen); c = (.25, .25, .5): "c" and "d" are both unseen
    expected = 2 * (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - EPS) * math.log(0.5 / EPS)
    got = distributions.psi_categorical(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "c", "d"]))
    assert got == pytest.approx(expected, rel=1e-12)


def test_psi_categorical_compares_values_as_strings():
    assert distributions.psi_categorical([0, 1, 1], ["0", "1", "1"]) == pytest.approx(0.0, abs=1e-15)
