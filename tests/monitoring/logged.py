"""Small seeded prediction-log inputs shared by the monitoring test modules (not a test module)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from churn import data, schema, synth

START = datetime(2026, 3, 1, 22, 0)


def frame(n: int = 30, seed: int = 3, *, start: datetime = START, minutes: int = 30, **columns):
    """(features, results) of `n` synthetic customers, one prediction every `minutes` from `start`
    (naive UTC); probabilities i/n, risk levels cycling Low/Medium/High; `columns` override results."""
    raw = synth.generate(rows=n, seed=seed)
    features = data.coerce_features(raw[list(schema.FEATURES)])
    results = pd.DataFrame(
        {
            "probability": [i / n for i in range(n)],
            "risk_level": [("Low", "Medium", "High")[i % 3] for i in range(n)],
            "model_name": "champion",
            "customer_id": raw[schema.ID].to_numpy(),
            "created_at": [start + timedelta(minutes=minutes * i) for i in range(n)],
        }
    )
    for name, values in columns.items():
        results[name] = values
    return features, results
