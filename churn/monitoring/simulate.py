"""Traffic replay: seeded synthetic customers over a simulated period, with named drift scenarios."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from churn import data, schema, synth
from churn.settings import ScenarioSettings

log = logging.getLogger(__name__)

#: Default knobs of each scenario (`params.yaml: monitoring.scenarios` overrides them).
DEFAULT_KNOBS: dict[str, dict[str, float]] = {
    name: ScenarioSettings().knobs(name) for name in ScenarioSettings.model_fields
}

SCENARIOS = tuple(DEFAULT_KNOBS)
#: Share of traffic per hour of day (UTC): quiet nights, busy working hours.
HOURLY_WEIGHTS = np.array(
    [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 8, 8, 8, 7, 6, 5, 4, 3, 2, 2, 1], dtype=float
)


@dataclass(frozen=True)
class Scenario:
    """A named, seeded shift applied to a pool of synthetic customers."""

    name: str
    knobs: dict[str, float]

    @classmethod
    def get(cls, name: str, scenarios: ScenarioSettings | dict[str, Any] | None = None) -> Scenario:
        """The scenario `name` with its knobs from `scenarios` (the checked `monitoring.scenarios`
        settings, or that section as a dict: ParamsError names a bad knob)."""
        if name not in DEFAULT_KNOBS:
            raise ValueError(f"scenario must be one of {list(SCENARIOS)}, got {name!r}")
        if not isinstance(scenarios, ScenarioSettings):
            scenarios = ScenarioSettings.from_params(scenarios, key="monitoring.scenarios")
        return cls(name, scenarios.knobs(name))

    def customers(self, n: int, seed: int) -> pd.DataFrame:
        """`n` customers in raw CSV form (customerID, 19 features, Churn), shifted by this scenario."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"number of customers must be a positive whole number, got {n!r}")
        rng = np.random.default_rng(seed)
        return _SHIFTS[self.name](self, int(n), rng).reset_index(drop=True)


def _pool(n: int, rng: np.random.Generator, factor: int = 1) -> pd.DataFrame:
    """Synthetic customers from the calibrated generator, seeded from `rng`: `n` of them, or a pool of
    `factor` × n (at least 200) to pick a shifted mix from."""
    rows = n if factor == 1 else max(n * factor, 200)
    return synth.generate(rows=rows, seed=int(rng.integers(2**31 - 1)))


def _with_share(pool: pd.DataFrame, inside: np.ndarray, share: float, n: int, rng: np.random.Generator):
    """`n` rows of `pool` without replacement, a Binomial(n, share) number of them from `inside`."""
    k = int(rng.binomial(n, share))
    yes, no = np.flatnonzero(inside), np.flatnonzero(~inside)
    if k > yes.size or n - k > no.size:
        raise RuntimeError("scenario pool too small; raise the pool factor")  # pragma: no cover
    rows = np.concatenate([rng.choice(yes, k, replace=False), rng.choice(no, n - k, replace=False)])
    return pool.iloc[rng.permutation(rows)]


def _none(s: Scenario, n: int, rng: np.random.Generator) -> pd.DataFrame:
    return _pool(n, rng)


def _price_increase(s: Scenario, n: int, rng: np.random.Generator) -> pd.DataFrame:
    df = _pool(n, rng).copy()
    factor = s.knobs["factor"]
    monthly = pd.to_numeric(df["MonthlyCharges"]) * factor
    total = pd.to_numeric(df["TotalCharges"], errors="coerce") * factor
    df["MonthlyCharges"] = [f"{v:.2f}" for v in monthly]
    df["TotalCharges"] = [" " if np.isnan(v) else f"{v:.2f}" for v in total]
    return df


def _contract_mix(s: Scenario, n: int, rng: np.random.Generator) -> pd.DataFrame:
    pool = _pool(n, rng, factor=4)
    return _with_share(
        pool, (pool["Contract"] == "Month-to-month").to_numpy(), s.knobs["month_to_month_share"], n, rng
    )


def _new_fiber(s: Scenario, n: int, rng: np.random.Generator) -> pd.DataFrame:
    pool = _pool(n, rng, factor=8)
    tenure = pd.to_numeric(pool["tenure"])
    inside = ((pool["InternetService"] == "Fiber optic") & (tenure <= s.knobs["max_tenure"])).to_numpy()
    return _with_share(pool, inside, s.knobs["share"], n, rng)


def _senior_surge(s: Scenario, n: int, rng: np.random.Generator) -> pd.DataFrame:
    pool = _pool(n, rng, factor=6)
    return _with_share(
        pool, (pool["SeniorCitizen"].astype(str) == "1").to_numpy(), s.knobs["senior_share"], n, rng
    )


def _tenure_in_years(s: Scenario, n: int, rng: np.random.Generator) -> pd.DataFrame:
    df = _pool(n, rng).copy()
    df["tenure"] = (pd.to_numeric(df["tenure"]) // 12).astype(int).astype(str)
    return df


_SHIFTS: dict[str, Callable[[Scenario, int, np.random.Generator], pd.DataFrame]] = {
    "none": _none,
    "price_increase": _price_increase,
    "contract_mix": _contract_mix,
    "new_fiber_customers": _new_fiber,
    "senior_surge": _senior_surge,
    "tenure_in_years": _tenure_in_years,
}


def arrival_times(n: int, days: float, end: datetime, seed: int) -> pd.Series:
    """`n` sorted UTC arrival times over the `days` before `end`, busier in working hours."""
    if not days > 0:
        raise ValueError(f"days must be positive, got {days!r}")
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=days)
    first_day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    n_days = int(np.ceil((end - first_day) / timedelta(days=1)))
    slots = np.arange(n_days * 24)
    offsets = slots * 3600.0
    inside = (offsets + 3600 > (start - first_day).total_seconds()) & (
        offsets < (end - first_day).total_seconds()
    )
    weights = np.where(inside, HOURLY_WEIGHTS[slots % 24], 0.0)
    hours = rng.choice(slots, size=n, p=weights / weights.sum())
    seconds = hours * 3600.0 + rng.uniform(0, 3600, size=n)
    seconds = np.clip(seconds, (start - first_day).total_seconds(), (end - first_day).total_seconds() - 1e-3)
    stamps = pd.Timestamp(first_day) + pd.to_timedelta(np.sort(seconds), unit="s")
    return pd.Series(stamps.floor("ms"), name="created_at")


def traffic(
    n: int,
    scenario: Scenario,
    *,
    days: float = 7.0,
    onset: float = 0.5,
    seed: int = 42,
    end: datetime | None = None,
) -> pd.DataFrame:
    """`n` customers arriving over `days` (column `created_at`, UTC, sorted).

    Customers before `onset` (a fraction of the period) come from the unshifted population, the
    rest from `scenario` — so time series show the change and the latest window shows the drift.
    """
    if not 0 <= onset < 1:
        raise ValueError(f"onset must be in [0, 1), got {onset!r}")
    end = (end or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    times = arrival_times(n, days, end, seed)
    start = end - timedelta(days=days)
    before = int((times < pd.Timestamp(start + (end - start) * onset)).sum())
    parts = []
    if before:
        parts.append(Scenario.get("none").customers(before, seed + 1))
    if n - before:
        parts.append(scenario.customers(n - before, seed + 2))
    out = pd.concat(parts, ignore_index=True)
    out[schema.ID] = _unique_ids(out[schema.ID], seed)
    out["created_at"] = times.to_numpy()
    return out


def _unique_ids(ids: pd.Series, seed: int) -> list[str]:
    """Keep ids unique across the two halves (their generators are seeded differently)."""
    seen: set[str] = set()
    out = []
    rng = np.random.default_rng(seed + 3)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    for cid in ids.astype(str):
        while cid in seen:
            cid = f"{rng.integers(10_000):04d}-{''.join(rng.choice(letters, 5))}"
        seen.add(cid)
        out.append(cid)
    return out


def outcomes_frame(customers: pd.DataFrame, delay_days: float = 30.0) -> pd.DataFrame:
    """What happened to replayed customers, `delay_days` after their prediction (a feedback CSV)."""
    stamps = pd.to_datetime(customers["created_at"]) + pd.Timedelta(days=delay_days)
    return pd.DataFrame(
        {
            "customerID": customers[schema.ID].astype(str).to_numpy(),
            "churned": customers[schema.TARGET].astype(str).to_numpy(),
            "date": stamps.dt.strftime("%Y-%m-%d").to_numpy(),
        }
    )


def replay(predictor: Any, customers: pd.DataFrame) -> int:
    """Score `customers` (from `traffic`) with `predictor` and log them at their arrival times.

    One pass through the model and one transaction into the predictor's log; each prediction
    keeps its own simulated `created_at`. Returns how many predictions were logged.
    """
    store = predictor.store
    if store is None:
        raise ValueError("the predictor has logging switched off; replay needs a prediction log")
    columns = [c for c in customers.columns if c != "created_at"]
    start = time.perf_counter()
    scored = predictor.predict(customers[columns], log=False)
    latency = 1000 * (time.perf_counter() - start) / max(len(customers), 1)
    results = pd.DataFrame(
        {
            "probability": scored["churn_probability"].to_numpy(dtype="float64"),
            "risk_level": scored["risk_level"].to_numpy(dtype=object),
            "model_name": predictor.model_name,
            "model_version": predictor.model_version,
            "latency_ms": latency,
            "customer_id": customers[schema.ID].astype(str).to_numpy(),
            "created_at": pd.to_datetime(customers["created_at"]).dt.to_pydatetime(),
        }
    )
    store.log_frame(data.coerce_features(customers[columns]), results, return_ids=False)
    log.info("replayed %d customers", len(results))
    return len(results)
