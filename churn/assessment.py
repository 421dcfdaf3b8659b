"""What serving gives: the columns a scored customer gains, and one customer's `Assessment`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churn import emails, explain, retention

#: Columns a scored customer gains.
PROBABILITY = "churn_probability"
RISK = "risk_level"


@dataclass(frozen=True)
class Assessment:
    """One customer, served: prediction, explanation, retention actions, log id, and the email.

    `email` is None until `Predictor.complete` has written it. `latency_ms` is the model's part
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
        }
