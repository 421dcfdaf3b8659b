"""What serving gives: the columns a scored customer gains, and one customer's `Assessment`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churn import emails, explain, retention
from churn.economics import money

#: Columns a scored customer gains.
PROBABILITY = "churn_probability"
RISK = "risk_level"


@dataclass(frozen=True)
class Assessment:
    """One customer, served: prediction, explanation, retention actions, the decision, log id, and the email.

    `decision` (`churn.retention.Decision`: contact or not, the best action, its expected profit)
    is None when the project's params have no `economics` section. `email` is None until `Predictor.complete` has written it. `latency_ms` is the model's part
    (validation, prediction, explanation, actions; what the log records); `email_ms` the time the
    email took (an LLM call, or the template).
    """

    customer: dict[str, Any]
    probability: float
    risk_level: str
    explanation: explain.Explanation
    actions: list[retention.Action]
    email: emails.Email | None = None
    prediction_id: int | None = None
    latency_ms: float = 0.0
    email_ms: float = 0.0
    model_name: str = ""
    model_version: str = ""
    decision: retention.Decision | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "risk_level": self.risk_level,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "prediction_id": self.prediction_id,
            "latency_ms": self.latency_ms,
            "email_ms": self.email_ms,
            "explanation": self.explanation.to_dict(),
            "actions": [a.to_dict() for a in self.actions],
            "email": None if self.email is None else self.email.to_dict(),
            "decision": None if self.decision is None else self.decision.to_dict(),
        }

    def decision_line(self) -> str:
        """The decision in one line: 'Contact: yes — expected gain $X with <best action>' or
        'No offer: expected loss $Y' (money from `churn.economics.money`)."""
        d = self.decision
        if d is None:
            return "No decision: params.yaml has no economics section (customer value and offer costs)"
        if not d.contact:
            return f"No offer: expected loss {money(-d.expected_profit)}"
        offer = f"“{d.action.description}”" if d.action is not None else "the standard retention offer"
        return f"Contact: yes — expected gain {money(d.expected_profit)} with {offer}"
