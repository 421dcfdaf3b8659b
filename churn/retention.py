"""Retention actions: what-ifs on the actionable features, each re-scored by the model; the decision."""

from __future__ import annotations

import logging
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
    least `min_reduction_points`, at most `max_actions` of them, ranked by reduction.
    """
    base = {f: customer[f] for f in schema.FEATURES}
    changes = candidate_changes(base, settings)
    rows = [base] + [{**base, feature: new} for feature, new, _, _ in changes]
    if hasattr(model, "predict_proba"):
        proba = model.predict_proba(pd.DataFrame(rows, columns=list(schema.FEATURES)))[:, 1]
    else:
        proba = np.asarray(model(rows), dtype="float64")
    before = float(proba[0])
    found = [
        Action(feature, base[feature], new, description, offer, before, float(after))
        for (feature, new, description, offer), after in zip(changes, proba[1:], strict=True)
    ]
    good = [a for a in found if a.reduction_points >= settings.min_reduction_points]
    good.sort(key=lambda a: (-a.reduction_points, a.feature, str(a.proposed)))
    return good[: settings.max_actions]


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
    after = [{**base, a.feature: a.proposed} for a in found]
    profits = economics.action_profit(
        np.full(len(found), probability),
        np.array([a.probability_after for a in found]),
        economics.customer_value(settings, _frame(after)),
        settings,
    )
    best = int(np.argmax(profits))
    return Decision(True, profit, found[best], float(profits[best]), clv)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Customers as a frame with numeric `MonthlyCharges` (values may arrive as text)."""
    frame = pd.DataFrame(rows, columns=list(schema.FEATURES))
    frame["MonthlyCharges"] = pd.to_numeric(frame["MonthlyCharges"])
    return frame
