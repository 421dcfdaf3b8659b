"""Money figures against hand computations and direct implementations of the paper's definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from empulse.metrics import mpc_score
from scipy import integrate, stats

from churn import economics, metrics
from churn.params import ParamsError
from churn.settings import EconomicsSettings

#: d = 10, f = 1, γ ~ Beta(6, 14): γ̄ = 0.3 (the paper's defaults, with CLV per customer).
MONEY = EconomicsSettings(clv=200, offer_cost=10, contact_cost=1, alpha=6, beta=14)

# Five customers by hand: probability, label, CLV.
P = np.array([0.9, 0.8, 0.6, 0.3, 0.1])
Y = np.array([1, 0, 1, 1, 0])
CLV = np.array([200.0, 100.0, 50.0, 20.0, 300.0])


def _customers(seed: int, n: int, max_clv: float = 2000.0):
    """Labels, probabilities rounded to 2 decimals (ties) that rank churners higher, and CLVs."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    proba = np.round(np.clip(y * 0.3 + rng.random(n) * 0.7, 0, 1), 2)
    return y, proba, rng.uniform(20, max_clv, n)


def _gains(y, clv, gamma, d, f):
    """The paper's value of contacting each customer: a churner γ(CLV − d − f) + (1 − γ)(−f), else −(d + f)."""
    return np.where(y == 1, gamma * (clv - d - f) + (1 - gamma) * -f, -(d + f))


def _ranked_profits(y, proba, clv, gamma, d, f):
    """(customers contacted, summed profit) of every campaign that contacts the top-ranked customers,
    a point at each edge of a group of tied probabilities (a threshold cannot split a tie)."""
    order = np.argsort(-proba, kind="stable")
    cum = np.r_[0.0, np.cumsum(_gains(y[order], clv[order], gamma, d, f))]
    ranked = proba[order]
    ks = [0] + [k for k in range(1, len(y) + 1) if k == len(y) or ranked[k] != ranked[k - 1]]
    return np.array(ks), cum[ks]


def _direct_mp(y, proba, clv, m: EconomicsSettings):
    ks, profits = _ranked_profits(y, proba, clv, m.acceptance_rate, m.offer_cost, m.contact_cost)
    best = int(np.argmax(profits))
    return profits[best] / len(y), ks[best] / len(y)


def _direct_empc(y, proba, clv, m: EconomicsSettings):
    """∫ max_T profit(T; γ) dBeta(γ; α, β), CLV one number (the mean), per customer; and the share."""
    clv = np.full(len(y), float(np.mean(clv)))
    beta = stats.beta(m.alpha, m.beta)

    def best(gamma):
        ks, profits = _ranked_profits(y, proba, clv, gamma, m.offer_cost, m.contact_cost)
        i = int(np.argmax(profits))
        return profits[i] / len(y), ks[i] / len(y)

    value = integrate.quad(lambda g: best(g)[0] * beta.pdf(g), 0, 1, limit=500, epsabs=1e-11)[0]
    share = integrate.quad(lambda g: best(g)[1] * beta.pdf(g), 0, 1, limit=500, epsabs=1e-11)[0]
    return value, share


def test_expected_profit_and_decision_by_hand():
    # p · 0.3 · (CLV − 10) − (1 − p) · 10 − 1
    expected = [
        0.9 * 0.3 * 190 - 1 - 1,
        0.8 * 0.3 * 90 - 2 - 1,
        0.6 * 0.3 * 40 - 4 - 1,
        0.3 * 0.3 * 10 - 7 - 1,
    ]
    expected.append(0.1 * 0.3 * 290 - 9 - 1)
    got = economics.expected_profit(P, CLV, MONEY)
    assert got == pytest.approx([49.3, 18.6, 2.2, -7.1, -1.3])
    assert got == pytest.approx(expected)
    assert economics.contact(P, CLV, MONEY).tolist() == [True, True, True, False, False]
    # given the labels: a churner 0.3 · (CLV − 10) − 1, anyone else −11
    assert economics.realised_gain(Y, CLV, MONEY) == pytest.approx([56, -11, 11, 2, -11])


def test_campaigns_by_hand():
    result = economics.campaigns(Y, P, CLV, MONEY, threshold=0.5)
    assert result["decision_rule"] == {"contacted": 3, "profit": pytest.approx(56 - 11 + 11)}
    assert result["contact_all"] == {"contacted": 5, "profit": pytest.approx(56 - 11 + 11 + 2 - 11)}
    assert result["threshold"] == {"contacted": 3, "profit": pytest.approx(56.0)}


def test_max_profit_by_hand():
    # running sums down the ranking: 56, 45, 56, 58, 47 -> best: the top four, 58 / 5 customers
    assert economics.max_profit(Y, P, CLV, MONEY) == pytest.approx((58 / 5, 4 / 5))


def test_empulse_cost_matrix_is_ours():
    """With one CLV for all, our maximum profit is empulse's prebuilt `mpc_score` (γ = γ̄)."""
    y, proba, _ = _customers(1, 300)
    clv = np.full(300, 200.0)
    kwargs = {"accept_rate": 0.3, "clv": 200.0, "incentive_cost": 10.0, "contact_cost": 1.0}
    mp, share = economics.max_profit(y, proba, clv, MONEY)
    assert mp == pytest.approx(mpc_score(y, proba, **kwargs), rel=1e-12)
    assert share == pytest.approx(mpc_score.optimal_rate(y, proba, **kwargs), rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_max_profit_equals_a_direct_implementation(seed):
    y, proba, clv = _customers(seed, 200)
    mp, share = economics.max_profit(y, proba, clv, MONEY)
    direct_mp, direct_share = _direct_mp(y, proba, clv, MONEY)
    assert mp == pytest.approx(direct_mp, rel=1e-12)
    assert share == pytest.approx(direct_share, rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_empc_equals_the_integral_of_the_maximum_profit(seed):
    y, proba, clv = _customers(seed, 60, max_clv=400.0)
    value, share = _direct_empc(y, proba, clv, MONEY)
    assert economics.empc(y, proba, clv, MONEY) == pytest.approx(value, rel=1e-6)
    assert economics.empc_fraction(y, proba, clv, MONEY) == pytest.approx(share, rel=1e-6)


def test_hand_example_empc_and_jensen():
    value, _ = _direct_empc(Y, P, CLV, MONEY)
    assert economics.empc(Y, P, CLV, MONEY) == pytest.approx(value, rel=1e-6)
    # E[max] >= max E: EMPC is at least the maximum profit at γ = γ̄, for the same (mean) CLV
    flat = np.full(5, CLV.mean())
    assert economics.empc(Y, P, flat, MONEY) >= economics.max_profit(Y, P, flat, MONEY)[0]
    assert economics.mpc(Y, P, CLV, MONEY) == pytest.approx(economics.max_profit(Y, P, flat, MONEY)[0])


def test_profit_curve_peaks_at_the_maximum_profit():
    gains = economics.realised_gain(Y, CLV, MONEY)
    points = metrics.profit_points(P, gains)
    assert [p["profit"] for p in points] == pytest.approx([0, 56, 45, 56, 58, 47])
    assert [p["share"] for p in points] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 3000)
    proba = np.round(rng.random(3000), 3)  # ties
    clv = rng.uniform(20, 2000, 3000)
    points = metrics.profit_points(proba, economics.realised_gain(y, clv, MONEY), max_points=50)
    assert len(points) <= 50
    best = max(points, key=lambda p: p["profit"])
    mp, share = economics.max_profit(y, proba, clv, MONEY)
    assert (best["profit"] / 3000, best["share"]) == pytest.approx((mp, share))
    assert points[-1]["profit"] == pytest.approx(
        economics.campaigns(y, proba, clv, MONEY, 0.5)["contact_all"]["profit"]
    )


def test_evaluate_holds_every_figure_and_ranked_campaigns_never_beat_the_maximum():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    proba = np.clip(y * 0.4 + rng.random(500) * 0.6, 0, 1)
    clv = rng.uniform(20, 2000, 500)
    out = economics.evaluate(y, proba, clv, MONEY, threshold=0.5)
    assert set(out) == {
        "acceptance_rate",
        "clv_mean",
        "empc",
        "empc_contacted_fraction",
        "mpc",
        "mp",
        "mp_contacted_fraction",
        "campaigns",
    }
    assert set(out["campaigns"]) == set(economics.CAMPAIGNS)
    # MP is the best campaign of the probability ranking in hindsight: contacting everyone or the top
    # by threshold earns no more (the decision rule also weighs each CLV, so it may)
    best = out["mp"] * len(y)
    assert out["campaigns"]["contact_all"]["profit"] <= best + 1e-9
    assert out["campaigns"]["threshold"]["profit"] <= best + 1e-9
    assert out["empc"] >= out["mpc"]  # E[max] >= max E, the same CLV
    # with one CLV for all, the decision rule is a probability threshold too
    flat = economics.campaigns(y, proba, np.full(500, 300.0), MONEY, 0.5)["decision_rule"]["profit"]
    assert flat <= economics.max_profit(y, proba, np.full(500, 300.0), MONEY)[0] * 500 + 1e-9
    assert 0 < out["mp_contacted_fraction"] <= 1 and 0 < out["empc_contacted_fraction"] <= 1


def test_customer_value():
    X = pd.DataFrame({"MonthlyCharges": [20.0, 70.5]})
    by_months = EconomicsSettings(clv_months=12, offer_cost=10, contact_cost=1, alpha=6, beta=14)
    assert economics.customer_value(by_months, X).tolist() == [240.0, 846.0]
    assert economics.customer_value(MONEY, X).tolist() == [200.0, 200.0]
    assert MONEY.acceptance_rate == pytest.approx(0.3)


def test_exactly_one_customer_value_rule():
    base = {"offer_cost": 10, "contact_cost": 1, "alpha": 6, "beta": 14}
    with pytest.raises(
        ParamsError, match=r"^params.yaml: economics.clv_months: must be set unless economics.clv is"
    ):
        EconomicsSettings.from_params(base)
    with pytest.raises(
        ParamsError, match=r"^params.yaml: economics.clv: must be null when economics.clv_months"
    ):
        EconomicsSettings.from_params({**base, "clv": 100, "clv_months": 12})
    assert EconomicsSettings.from_params({**base, "clv": 100}).clv == 100.0


def test_action_profit_by_hand_and_equal_to_the_rule_for_an_action_that_removes_all_risk():
    # p = 0.6 → 0.2, CLV_a = 1000: 0.3 · 0.4 · 1000 − (0.3 · 0.6 + 0.4) · 10 − 1 = 120 − 5.8 − 1
    assert economics.action_profit([0.6], [0.2], [1000.0], MONEY)[0] == pytest.approx(113.2)
    assert economics.action_profit(P, np.zeros(5), CLV, MONEY) == pytest.approx(
        economics.expected_profit(P, CLV, MONEY)
    )
    # an action that changes nothing only costs: the accepted offers and the contact
    assert economics.action_profit([0.5], [0.5], [1000.0], MONEY)[0] == pytest.approx(-(0.65 * 10) - 1)


@pytest.mark.parametrize(
    ("amount", "text"), [(1234.6, "$1,235"), (18300.0, "$18,300"), (-56.2, "-$56"), (-0.3, "$0"), (7.0, "$7")]
)
def test_money_is_whole_units_with_thousands_separators(amount, text):
    assert economics.money(amount) == text
