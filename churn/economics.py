"""Predictions as money: expected profit of contacting a customer, EMPC, maximum profit, campaigns.

The model is the expected maximum profit measure for customer churn (EMPC; Verbraken, Verbeke &
Baesens, IEEE TKDE 2013), with the numbers of `params.yaml: economics` (`EconomicsSettings`):
customer lifetime value CLV_i, offer cost d, contact cost f, and the acceptance rate γ of a contacted
would-be churner, γ ~ Beta(α, β) with mean γ̄ = α / (α + β). Contacting customer i costs f; a
churner accepts the offer with probability γ and stays (worth CLV_i − d), else leaves anyway; a
customer who would have stayed accepts the offer too (cost d, the paper's assumption). So:

- the **expected profit** of contacting customer i, with predicted churn probability p_i, is
  `p_i · γ̄ · (CLV_i − d) − (1 − p_i) · d − f`; the **decision rule** contacts when it is positive;
- the **realised profit** of contacting i given its true label y_i is
  `y_i · γ̄ · (CLV_i − d) − (1 − y_i) · d − f` (an expectation over acceptance only), and a
  campaign's realised profit is its sum over the customers it contacts;
- the **maximum profit** MP is the best realised profit per customer over every campaign that
  contacts the top share of customers ranked by predicted probability (γ fixed at γ̄; empulse's
  `EmpiricalMaxProfit` with per-customer CLV), with that share;
- **EMPC** is the paper's measure: the maximum profit per customer integrated over γ ~ Beta(α, β)
  (empulse's `empc_score`, the best share chosen for each γ). Its CLV is one number, as in the
  paper: empulse reduces a per-customer CLV array to its mean, so the mean is passed explicitly;
  **MPC** is the paper's deterministic measure with that same one CLV and γ = γ̄ (`mpc_score`).
  EMPC ≥ MPC (the best share adapts to γ), while MP, with each customer's own CLV, is usually
  higher than both when churners pay more than average.
- The decision rule ranks by expected profit, not by probability alone, so with per-customer CLV
  it may earn more than MP (the best campaign of the probability ranking).
- a **retention action** a (churn.retention: a what-if the model re-scored, moving p_i to p_a, and
  the customer's value to CLV_a, e.g. after a discount) is the offer; the paper's offer keeps an
  accepting churner for sure, a what-if only removes the share (p_i − p_a) / p_i of their risk. So
  the expected profit of contacting with action a is
  `γ̄ · (p_i − p_a) · CLV_a − (γ̄ · p_i + 1 − p_i) · d − f` (`action_profit`): the formula above
  when p_a = 0 and CLV_a = CLV_i, and never more than it (actions only lower p and CLV), so a
  customer the decision rule skips is never worth an action.

Profits are relative to contacting nobody, in the currency of `MonthlyCharges` (or `clv`).
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from churn.settings import EconomicsSettings

log = logging.getLogger(__name__)

#: The three campaigns compared on a labelled set (`campaigns`).
CAMPAIGNS = ("decision_rule", "contact_all", "threshold")


def money(amount: float) -> str:
    """An amount as the faces show it: whole units, thousands separators (`$1,234`, `-$56`)."""
    sign = "-" if round(amount) < 0 else ""
    return f"{sign}${abs(amount):,.0f}"


def customer_value(settings: EconomicsSettings, X: pd.DataFrame) -> np.ndarray:
    """CLV_i of each customer: `clv_months` × `MonthlyCharges`, or the fixed `clv`."""
    if settings.clv is not None:
        return np.full(len(X), float(settings.clv))
    return float(settings.clv_months) * X["MonthlyCharges"].to_numpy(dtype=float)


def expected_profit(proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings) -> np.ndarray:
    """`p_i · γ̄ · (CLV_i − d) − (1 − p_i) · d − f`: what contacting each customer is expected to earn."""
    p = np.asarray(proba, dtype=float)
    d, f = settings.offer_cost, settings.contact_cost
    return p * settings.acceptance_rate * (np.asarray(clv, dtype=float) - d) - (1 - p) * d - f


def action_profit(
    proba: np.ndarray, proba_after: np.ndarray, clv_after: np.ndarray, settings: EconomicsSettings
) -> np.ndarray:
    """`γ̄ · (p − p_a) · CLV_a − (γ̄ · p + 1 − p) · d − f`: contacting with a retention action that
    moves the churn probability p to p_a and the customer's value to CLV_a (see the module docstring).

    A contacted would-be churner accepts with probability γ̄ and a customer who would have stayed
    accepts too (each paying d = `offer_cost`, the one offer cost of params: actions have no cost of
    their own); an accepting churner stays with probability (p − p_a) / p, worth CLV_a.
    """
    p = np.asarray(proba, dtype=float)
    kept = p - np.asarray(proba_after, dtype=float)
    d, f, g = settings.offer_cost, settings.contact_cost, settings.acceptance_rate
    return g * kept * np.asarray(clv_after, dtype=float) - (g * p + 1 - p) * d - f


def contact(proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings) -> np.ndarray:
    """The decision rule: contact the customers whose expected profit is positive."""
    return expected_profit(proba, clv, settings) > 0


def realised_gain(y: np.ndarray, clv: np.ndarray, settings: EconomicsSettings) -> np.ndarray:
    """`y_i · γ̄ · (CLV_i − d) − (1 − y_i) · d − f`: what contacting each customer earns, given its label."""
    return expected_profit(np.asarray(y, dtype=float), clv, settings)


def realised_profit(
    y: np.ndarray, contacted: np.ndarray, clv: np.ndarray, settings: EconomicsSettings
) -> float:
    """A campaign's realised profit: the sum of `realised_gain` over the customers it contacts."""
    return float(realised_gain(y, clv, settings)[np.asarray(contacted, dtype=bool)].sum())


def _empc_parameters(clv: np.ndarray, settings: EconomicsSettings) -> dict[str, float]:
    """Our economics in empulse's names (churn cost matrix with an absolute incentive cost)."""
    return {
        "alpha": settings.alpha,
        "beta": settings.beta,
        "clv": float(np.mean(clv)),
        "incentive_cost": settings.offer_cost,
        "contact_cost": settings.contact_cost,
    }


def empc(y: np.ndarray, proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings) -> float:
    """EMPC per customer (empulse `empc_score`; CLV = the mean of `clv`)."""
    from empulse.metrics import empc_score

    return float(
        empc_score(
            np.asarray(y, dtype=int), np.asarray(proba, dtype=float), **_empc_parameters(clv, settings)
        )
    )


def mpc(y: np.ndarray, proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings) -> float:
    """MPC per customer (empulse `mpc_score`; γ = γ̄, CLV = the mean of `clv`)."""
    from empulse.metrics import mpc_score

    kwargs = _empc_parameters(clv, settings)
    del kwargs["alpha"], kwargs["beta"]
    return float(
        mpc_score(
            np.asarray(y, dtype=int),
            np.asarray(proba, dtype=float),
            accept_rate=settings.acceptance_rate,
            **kwargs,
        )
    )


def empc_fraction(y: np.ndarray, proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings) -> float:
    """The expected share of customers EMPC contacts (the best share, averaged over γ)."""
    from empulse.metrics import empc_score

    return float(
        empc_score.optimal_rate(
            np.asarray(y, dtype=int), np.asarray(proba, dtype=float), **_empc_parameters(clv, settings)
        )
    )


@functools.cache
def _max_profit_metric() -> Any:
    """empulse's empirical maximum profit of the churn cost matrix, γ a plain number (γ̄).

    The cost matrix is empulse's own for `mpc_score` / `empc_score`: a contacted churner earns
    γ · (CLV − d − f) + (1 − γ) · (−f), a contacted non-churner costs d + f. `EmpiricalMaxProfit`
    ranks customers and sums per-customer values, so CLV may differ between customers.
    """
    import sympy
    from empulse.metrics import CostMatrix, EmpiricalMaxProfit, Metric

    gamma, clv, d, f = sympy.symbols("gamma clv d f")
    matrix = (
        CostMatrix()
        .add_tp_benefit(gamma * (clv - d - f))
        .add_tp_benefit((1 - gamma) * -f)
        .add_fp_cost(d + f)
        .alias({"accept_rate": "gamma", "incentive_cost": "d", "contact_cost": "f"})
    )
    return Metric(matrix, EmpiricalMaxProfit())


def max_profit(
    y: np.ndarray, proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings
) -> tuple[float, float]:
    """(MP per customer, the share of customers contacted to reach it), γ = γ̄, per-customer CLV."""
    metric = _max_profit_metric()
    kwargs = {
        "accept_rate": settings.acceptance_rate,
        "clv": np.asarray(clv, dtype=float),
        "incentive_cost": settings.offer_cost,
        "contact_cost": settings.contact_cost,
    }
    y, proba = np.asarray(y, dtype=int), np.asarray(proba, dtype=float)
    return float(metric(y, proba, **kwargs)), float(metric.optimal_rate(y, proba, **kwargs))


def campaigns(
    y: np.ndarray, proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings, threshold: float
) -> dict[str, dict[str, float]]:
    """Realised profit and customers contacted of three campaigns on a labelled set: the decision
    rule (expected profit > 0), contacting everyone, and the classifier's `threshold` (p ≥ threshold)."""
    proba = np.asarray(proba, dtype=float)
    chosen = {
        "decision_rule": contact(proba, clv, settings),
        "contact_all": np.ones(len(proba), dtype=bool),
        "threshold": proba >= threshold,
    }
    return {
        name: {"contacted": int(mask.sum()), "profit": realised_profit(y, mask, clv, settings)}
        for name, mask in chosen.items()
    }


def evaluate(
    y: np.ndarray, proba: np.ndarray, clv: np.ndarray, settings: EconomicsSettings, threshold: float
) -> dict[str, Any]:
    """Every money figure of one model on a labelled set (the `economics` block of its metrics)."""
    mp, mp_share = max_profit(y, proba, clv, settings)
    return {
        "acceptance_rate": settings.acceptance_rate,
        "clv_mean": float(np.mean(clv)),
        "empc": empc(y, proba, clv, settings),
        "empc_contacted_fraction": empc_fraction(y, proba, clv, settings),
        "mpc": mpc(y, proba, clv, settings),
        "mp": mp,
        "mp_contacted_fraction": mp_share,
        "campaigns": campaigns(y, proba, clv, settings, threshold),
    }
