"""The drift scenarios of the traffic replay in words (no heavy imports: `churn monitor simulate --help` shows them)."""

from __future__ import annotations

#: What each scenario does, in words (shown by `churn monitor simulate --help` and the README).
DESCRIPTIONS: dict[str, str] = {
    "none": "fresh customers from the same population as the training data (no drift)",
    "price_increase": "monthly prices go up by `factor` (TotalCharges scale with them)",
    "contract_mix": "month-to-month contracts rise to `month_to_month_share` of customers",
    "new_fiber_customers": "fibre-optic customers with tenure ≤ `max_tenure` months become `share` of traffic",
    "senior_surge": "senior citizens become `senior_share` of customers",
    "tenure_in_years": "an upstream bug sends tenure in whole years instead of months",
}
