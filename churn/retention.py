"""Retention actions: what-ifs on the actionable features, each re-scored by the model; the decision."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn import economics, schema
from churn.settings import OFFERS, EconomicsSettings, RetentionSettings

log = logging.getLogger(__name__)

#: Never changed by an action and never sent to the LLM (churn.settings.DEMOGRAPHICS); facts of the
#: past no offer changes (churn.settings.HISTORY); what a retention offer can change by default
#: (ACTIONABLE; params.yaml: retention.actionable): see churn.settings.RetentionSettings.
ACTIONABLE = RetentionSettings().actionable
_AUTOMATIC = ("Bank transfer (automatic)", "Credit card (automatic)")
_LONGER = {"Month-to-month": ("One year", "Two year"), "One year": ("Two year",)}
_ADDON_WORDS = schema.ADDON_LABELS
#: Features `candidate_changes` knows an offer for.
SUPPORTED = OFFERS


@dataclass(frozen=True)
class Action:
    """One what-if: change `feature` from `current` to `proposed`; the model re-scored the customer."""

    feature: str
    current: Any
    proposed: Any
    description: str
    offer: str
    probability_before: float
    probability_after: float

    @property
    def reduction_points(self) -> float:
        """Percentage points of churn probability this change removes (positive = lower risk)."""
        return 100 * (self.probability_before - self.probability_after)

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "current": self.current,
            "proposed": self.proposed,
            "description": self.description,
            "offer": self.offer,
            "probability_before": self.probability_before,
            "probability_after": self.probability_after,
            "reduction_points": self.reduction_points,
        }


def candidate_changes(
    customer: dict[str, Any], settings: RetentionSettings
) -> list[tuple[str, Any, str, str]]:
    """Every offer that applies to this customer: (feature, new value, description, customer-facing offer).

    Only changes a retention team can make and a customer would accept: longer contracts, an
    automatic payment method, adding an internet add-on the customer lacks (never removing one),
    the other billing format, and a discount on the monthly charge.
    """
    out: list[tuple[str, Any, str, str]] = []
    has_internet = str(customer.get("InternetService")) in ("DSL", "Fiber optic")
    for feature in settings.actionable:
        value = customer.get(feature)
        text = str(value)
        if feature == "Contract":
            for longer in _LONGER.get(text, ()):
                words = "one-year" if longer == "One year" else "two-year"
                out.append((feature, longer, f"Offer a {words} contract", f"a {words} contract"))
        elif feature == "PaymentMethod" and text not in _AUTOMATIC:
            for method in _AUTOMATIC:
                how = method.split(" (")[0].lower()
                out.append(
                    (feature, method, f"Move payment to {method.lower()}", f"automatic payment by {how}")
                )
        elif feature in _ADDON_WORDS and has_internet and text == "No":
            name = _ADDON_WORDS[feature]
            out.append((feature, "Yes", f"Add {name}", f"{name} added to your plan"))
        elif feature == "PaperlessBilling" and text in schema.YES_NO:
            if text == "Yes":
                out.append((feature, "No", "Switch to paper bills", "paper bills by post"))
            else:
                out.append((feature, "Yes", "Switch to paperless billing", "paperless billing"))
        elif feature == "MonthlyCharges":
            try:
                charge = float(value)
            except (TypeError, ValueError):
                continue
            new = round(charge * (1 - settings.discount), 2)
            pct = f"{100 * settings.discount:.0f}%"
            out.append(
                (
                    feature,
                    new,
                    f"Offer a {pct} discount (monthly charge ${charge:,.2f} → ${new:,.2f})",
                    f"a {pct} discount on your monthly charge",
                )
            )
    return out


def actions(model: Any, customer: dict[str, Any], settings: RetentionSettings) -> list[Action]:
    """What-ifs for one customer (raw feature values), re-scored in one batch, best first.

    `model` is a fitted pipeline, or a function from a list of customers (dicts of the 19
    features) to churn probabilities. Keeps the changes that lower the churn probability by at
    least `min_reduction_points`, at most `max_actions` of them, ranked by reduction (`ranked`,
    the batch path's ranking too).
    """
    base = {f: customer[f] for f in schema.FEATURES}
    changes = candidate_frame(pd.DataFrame([base], columns=list(schema.FEATURES)), settings)
    rows = [base] + [{**base, f: new} for f, new in zip(changes[FEATURE], changes[PROPOSED], strict=True)]
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(pd.DataFrame(rows, columns=list(schema.FEATURES)))[:, 1]
    else:
        proba = np.asarray(model(rows), dtype="float64")
    changes[BEFORE], changes[AFTER] = float(proba[0]), proba[1:]
    return [
        Action(
            r[FEATURE], base[r[FEATURE]], r[PROPOSED], r[DESCRIPTION], r[OFFER], r[BEFORE], float(r[AFTER])
        )
        for r in ranked(changes, settings).to_dict("records")
    ]


# -- many customers at once: the batch engines' path (local and Spark) -----------------------------

#: Columns of `candidate_frame`: the customer's position, the change, the probabilities around it.
CUSTOMER, FEATURE, PROPOSED, DESCRIPTION, OFFER = "_customer", "feature", "proposed", "description", "offer"
BEFORE, AFTER = "probability_before", "probability_after"
#: Columns `decide_frame` adds to scored customers (and `churn predict` writes).
EXPECTED_PROFIT, CONTACT, BEST_ACTION, ACTION_PROFIT = (
    "expected_profit",
    "contact",
    "best_action",
    "action_profit",
)
DECISION_COLUMNS = (EXPECTED_PROFIT, CONTACT, BEST_ACTION, ACTION_PROFIT)


def candidate_frame(customers: pd.DataFrame, settings: RetentionSettings) -> pd.DataFrame:
    """Every customer's what-ifs (`candidate_changes`) as rows: the customer's position in
    `customers` (`_customer`), the change (`feature`, `proposed`, `description`, `offer`) and the 19
    features with the change applied (text columns get the new value as text), customers in order.
    """
    features = customers[list(schema.FEATURES)].reset_index(drop=True)
    keys: list[int] = []
    changes: list[tuple[str, Any, str, str]] = []
    for i, record in enumerate(features.to_dict("records")):
        found = candidate_changes(record, settings)
        keys += [i] * len(found)
        changes += found
    out = features.iloc[keys].reset_index(drop=True)
    info = pd.DataFrame(changes, columns=[FEATURE, PROPOSED, DESCRIPTION, OFFER], dtype=object)
    for feature, rows in info.groupby(FEATURE).indices.items():
        new = info[PROPOSED].iloc[rows]
        if not pd.api.types.is_numeric_dtype(out[feature]):
            new = new.map(str)
        out[feature] = out[feature].astype(object)
        out.iloc[rows, out.columns.get_loc(feature)] = new.to_numpy()
    out.insert(0, CUSTOMER, np.asarray(keys, dtype="int64"))
    return pd.concat([out, info], axis=1)


def ranked(candidates: pd.DataFrame, settings: RetentionSettings, key: str = CUSTOMER) -> pd.DataFrame:
    """Scored what-ifs (`probability_before`, `probability_after`) that lower the risk by at least
    `min_reduction_points`, biggest reduction first (ties: feature, then proposed value as text),
    at most `max_actions` per customer (`key`), customers in order."""
    reduction = 100 * (candidates[BEFORE].astype(float) - candidates[AFTER].astype(float))
    good = candidates.assign(_reduction=reduction, _proposed=candidates[PROPOSED].map(str))
    good = good[good["_reduction"] >= settings.min_reduction_points]
    good = good.sort_values(
        [key, "_reduction", FEATURE, "_proposed"], ascending=[True, False, True, True], kind="stable"
    )
    return good.groupby(key, sort=False).head(settings.max_actions).drop(columns=["_reduction", "_proposed"])


def _action_profits(
    after: pd.DataFrame, before: Any, proba_after: Any, settings: EconomicsSettings
) -> np.ndarray:
    """`economics.action_profit` of what-ifs, the customer's value taken after the change (`after`)."""
    return economics.action_profit(
        np.asarray(before, dtype=float),
        np.asarray(proba_after, dtype=float),
        economics.customer_value(settings, _numeric(after)),
        settings,
    )


def best_of(
    candidates: pd.DataFrame, retention: RetentionSettings, money: EconomicsSettings, key: str = CUSTOMER
) -> pd.DataFrame:
    """The best action of each customer (`key`) among its scored what-ifs: `ranked`, then the highest
    `action_profit` (ties to the earlier), as `decide` picks. Columns: key, best_action, action_profit."""
    good = ranked(candidates, retention, key)
    if good.empty:
        return pd.DataFrame({key: pd.Series(dtype="int64"), BEST_ACTION: [], ACTION_PROFIT: []})
    good = good.assign(_profit=_action_profits(good, good[BEFORE], good[AFTER], money))
    best = good.loc[good.groupby(key, sort=False)["_profit"].idxmax()]
    return pd.DataFrame(
        {
            key: best[key].to_numpy(),
            BEST_ACTION: best[DESCRIPTION].astype(str).to_numpy(),
            ACTION_PROFIT: best["_profit"].to_numpy(dtype=float),
        }
    )


def decide_frame(
    customers: pd.DataFrame,
    proba: np.ndarray,
    score: Callable[[pd.DataFrame], np.ndarray] | None,
    retention: RetentionSettings,
    money: EconomicsSettings,
    floor: float = 0.0,
) -> pd.DataFrame:
    """`decide` for many customers at once: expected_profit, contact, best_action, action_profit.

    `score` maps a frame of the 19 features to churn probabilities (all the contacted customers'
    what-ifs in one call); None skips the actions (best_action empty).
    `floor` raises the bar (a budget's running cut): contact when the expected profit is above it
    (0: the decision rule). The actions are found for the contacted customers only.
    """
    profit = economics.expected_profit(proba, economics.customer_value(money, _numeric(customers)), money)
    chosen = profit > floor
    out = pd.DataFrame(
        {EXPECTED_PROFIT: profit, CONTACT: chosen, BEST_ACTION: "", ACTION_PROFIT: np.nan},
        index=customers.index,
    )
    picked = np.flatnonzero(chosen)
    if score is None or not len(picked):
        return out
    candidates = candidate_frame(customers.iloc[picked], retention)
    if candidates.empty:
        return out
    candidates[BEFORE] = np.asarray(proba, dtype=float)[picked][candidates[CUSTOMER].to_numpy()]
    candidates[AFTER] = score(candidates[list(schema.FEATURES)])
    best = best_of(candidates, retention, money)
    rows = picked[best[CUSTOMER].to_numpy()]
    out.iloc[rows, out.columns.get_loc(BEST_ACTION)] = best[BEST_ACTION].to_numpy()
    out.iloc[rows, out.columns.get_loc(ACTION_PROFIT)] = best[ACTION_PROFIT].to_numpy()
    return out


def campaign(decided: pd.DataFrame, budget: int | None = None) -> pd.DataFrame:
    """The customers to contact (rows of `decide_frame`'s columns with `contact` true), highest
    expected profit first (ties: the earlier row), at most `budget` of them — the `--budget` rule."""
    chosen = decided[decided[CONTACT].astype(bool)]
    ranked_rows = chosen.sort_values(EXPECTED_PROFIT, ascending=False, kind="stable")
    return ranked_rows if budget is None else ranked_rows.head(budget)


@dataclass(frozen=True)
class Decision:
    """Whether to contact one customer, with which action, and what that is expected to earn.

    `expected_profit` is the decision rule's (`churn.economics.expected_profit`: an offer that keeps
    every accepting churner), the same figure `churn predict` writes; `contact` is True when it is
    positive — one rule for the app, the CLI and batches. `action` is then the retention action
    with the highest expected profit of its own (`action_profit`, `churn.economics.action_profit`,
    never above `expected_profit`), or None when no what-if lowers the risk (the standard offer).
    """

    contact: bool
    expected_profit: float
    action: Action | None
    action_profit: float | None
    clv: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "contact": self.contact,
            "expected_profit": self.expected_profit,
            "best_action": None if self.action is None else self.action.to_dict(),
            "action_profit": self.action_profit,
            "clv": self.clv,
        }


def decide(
    customer: dict[str, Any], probability: float, found: list[Action], settings: EconomicsSettings
) -> Decision:
    """The decision for one customer with churn `probability` and its what-ifs `found` (`actions`).

    Every action is valued with the probability after it and the customer's value after it (a
    discount lowers CLV); the best is the one with the highest expected profit, ties to the earlier
    (bigger reduction). Under one offer cost the best always lies among the biggest reductions, so
    `max_actions` never drops it.
    """
    base = {f: customer[f] for f in schema.FEATURES}
    clv = float(economics.customer_value(settings, _frame([base]))[0])
    profit = float(economics.expected_profit(np.array([probability]), np.array([clv]), settings)[0])
    if profit <= 0:
        return Decision(False, profit, None, None, clv)
    if not found:
        return Decision(True, profit, None, None, clv)
    after = pd.DataFrame([{**base, a.feature: a.proposed} for a in found], columns=list(schema.FEATURES))
    profits = _action_profits(
        after, np.full(len(found), probability), [a.probability_after for a in found], settings
    )
    best = int(np.argmax(profits))
    return Decision(True, profit, found[best], float(profits[best]), clv)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Customers as a frame with numeric `MonthlyCharges` (values may arrive as text)."""
    return _numeric(pd.DataFrame(rows, columns=list(schema.FEATURES)))


def _numeric(customers: pd.DataFrame) -> pd.DataFrame:
    """`customers` with numeric `MonthlyCharges` (what `economics.customer_value` reads)."""
    return customers.assign(MonthlyCharges=pd.to_numeric(customers["MonthlyCharges"]))
