"""Telco-schema synthetic customers drawn from a chain of distributions calibrated on the real data."""

from __future__ import annotations

import importlib.resources
import itertools
import json
import logging
import numbers
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from churn import schema
from churn.data import read_raw
from churn.io import rounded, save_json
from churn.io import write_csv as _write_safe_csv

log = logging.getLogger(__name__)

FIGURES_FILE = "synth_figures.json"
FIGURES_VERSION = 1
#: Band i holds tenure in [edge_i, edge_i+1); the last band is 72 months and more (the real cap).
TENURE_BANDS = (0, 1, 7, 13, 25, 37, 49, 61, 72)
#: Added to every cell of a conditional table: keeps rare combinations possible, small cells stable.
PSEUDO_COUNT = 0.5
#: Divisors of the numeric churn-model inputs, so coefficients are of comparable size.
CHURN_SCALE = {"tenure": 72.0, "MonthlyCharges": 100.0, "TotalCharges": 1000.0}
CHURN_C = 1.0
MAX_ROWS = 10_000_000
_ID_LETTERS = 26**5
_ID_SPACE = 10_000 * _ID_LETTERS
_ADDONS = schema.INTERNET_ADDONS
_NO_INTERNET = schema.CATEGORICAL["InternetService"].index("No")
_STRUCTURAL = 2  # code of "No phone service" / "No internet service" in schema level order

#: The chain: each variable is drawn given its parents, in this order (after tenure).
_CHAIN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Contract", ("tenure_band",)),
    ("demographics", ("tenure_band",)),
    ("gender", ()),
    ("InternetService", ("tenure_band", "Contract", "SeniorCitizen")),
    ("PhoneService", ("InternetService",)),
    ("MultipleLines", ("InternetService", "tenure_band")),
    *((addon, ("InternetService", "Contract", "addons_before")) for addon in _ADDONS),
    ("PaperlessBilling", ("InternetService", "Contract")),
    ("PaymentMethod", ("Contract", "PaperlessBilling")),
)
_DEMOGRAPHICS = ("SeniorCitizen", "Partner", "Dependents")


def _band_labels() -> tuple[str, ...]:
    edges = TENURE_BANDS
    labels = [str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}" for lo, hi in itertools.pairwise(edges)]
    return (*labels, f"{edges[-1]}+")


def _levels(name: str) -> tuple[str, ...]:
    """Levels of a chain variable (MultipleLines and add-ons: only among customers who can have them)."""
    if name == "tenure_band":
        return _band_labels()
    if name == "demographics":
        return tuple(f"{s}|{p}|{d}" for s in ("0", "1") for p in schema.YES_NO for d in schema.YES_NO)
    if name == "SeniorCitizen":
        return ("0", "1")
    if name == "addons_before":
        return ("0", "1", "2+")
    if name == "MultipleLines" or name in _ADDONS:
        return schema.YES_NO
    return schema.CATEGORICAL[name]


def _band(tenure: np.ndarray, edges: tuple[int, ...] | list[int] = TENURE_BANDS) -> np.ndarray:
    return np.searchsorted(edges, tenure, side="right") - 1


def _split_demographics(codes: dict[str, np.ndarray]) -> None:
    demo = codes["demographics"]
    codes["SeniorCitizen"], codes["Partner"], codes["Dependents"] = demo // 4, (demo // 2) % 2, demo % 2


def _real_codes(real: pd.DataFrame) -> dict[str, np.ndarray]:
    """Integer codes (schema level order) and numbers of a validated raw frame."""
    codes = {
        col: pd.Categorical(real[col], categories=levels).codes.astype("int64")
        for col, levels in schema.CATEGORICAL.items()
    }
    codes["SeniorCitizen"] = pd.to_numeric(real["SeniorCitizen"]).to_numpy("int64")
    codes["tenure"] = pd.to_numeric(real["tenure"]).to_numpy("int64")
    codes["MonthlyCharges"] = pd.to_numeric(real["MonthlyCharges"]).to_numpy("float64")
    total = pd.to_numeric(real["TotalCharges"], errors="coerce").to_numpy("float64")
    codes["TotalCharges"] = np.nan_to_num(total, nan=0.0)  # blank only at tenure 0: nothing billed yet
    codes["Churn"] = (real[schema.TARGET].to_numpy() == "Yes").astype("int64")
    codes["tenure_band"] = _band(codes["tenure"])
    codes["demographics"] = codes["SeniorCitizen"] * 4 + codes["Partner"] * 2 + codes["Dependents"]
    return codes


def _applies(child: str, codes: dict[str, np.ndarray]) -> np.ndarray | None:
    """Rows where the child is a real choice (None: all rows)."""
    if child == "MultipleLines":
        return codes["PhoneService"] == 1
    if child in _ADDONS:
        return codes["InternetService"] != _NO_INTERNET
    return None


def _table(child: str, parents: tuple[str, ...], codes: dict[str, np.ndarray]) -> dict[str, Any]:
    """Smoothed conditional distribution P(child | parents) as nested lists."""
    shape = (*(len(_levels(p)) for p in parents), len(_levels(child)))
    rows = _applies(child, codes)
    index = tuple(codes[name] if rows is None else codes[name][rows] for name in (*parents, child))
    counts = np.zeros(shape)
    np.add.at(counts, index, 1.0)
    counts += PSEUDO_COUNT
    return {
        "given": list(parents),
        "levels": list(_levels(child)),
        "p": (counts / counts.sum(axis=-1, keepdims=True)).tolist(),
    }


def _monthly_design(codes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    internet = codes["InternetService"]
    design = {
        "intercept": np.ones(len(internet)),
        "PhoneService": (codes["PhoneService"] == 1).astype(float),
        "MultipleLines": (codes["MultipleLines"] == 1).astype(float),
        "DSL": (internet == 0).astype(float),
        "Fiber optic": (internet == 1).astype(float),
    }
    design.update({addon: (codes[addon] == 1).astype(float) for addon in _ADDONS})
    return design


def _churn_design(codes: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Churn-model inputs: scaled numbers, 0/1 flags and one-hot levels (first level dropped)."""
    design = {name: codes[name] / scale for name, scale in CHURN_SCALE.items()}
    design["SeniorCitizen"] = codes["SeniorCitizen"].astype(float)
    for col, levels in schema.CATEGORICAL.items():
        for i, level in enumerate(levels[1:], start=1):
            if level not in (
                schema.NO_PHONE,
                schema.NO_INTERNET,
            ):  # implied by PhoneService / InternetService
                design[f"{col}={level}"] = (codes[col] == i).astype(float)
    return design


def _matrix(design: dict[str, np.ndarray], coef: dict[str, float]) -> np.ndarray:
    return np.column_stack([design[name] for name in coef])


def calibrate(real: pd.DataFrame) -> dict[str, Any]:
    """The generator's figures from a raw real frame (as `churn.data.read_raw` reads it).

    Aggregates only — probabilities, regression coefficients, spreads — never a row or an id.
    """
    from sklearn.linear_model import LogisticRegression

    schema.validate(real, source="real data")
    codes = _real_codes(real)
    tenure_counts = np.bincount(codes["tenure"])
    running = np.zeros(len(real), dtype="int64")
    chain = {}
    for child, parents in _CHAIN:
        if child in _ADDONS:
            codes["addons_before"] = np.minimum(running, 2)
            running += codes[child] == 1
        chain[child] = _table(child, parents, codes)

    design = _monthly_design(codes)
    names = list(design)
    beta, *_ = np.linalg.lstsq(_matrix(design, dict.fromkeys(names)), codes["MonthlyCharges"], rcond=None)
    residual = codes["MonthlyCharges"] - _matrix(design, dict.fromkeys(names)) @ beta
    noise = {
        level: float(residual[codes["InternetService"] == i].std())
        for i, level in enumerate(schema.CATEGORICAL["InternetService"])
    }

    # sd of log(Total / (tenure × Monthly)) shrinks like 1/sqrt(tenure); exact at tenure 1.
    tenure, monthly = codes["tenure"], codes["MonthlyCharges"]
    later = (tenure >= 2) & (monthly > 0) & (codes["TotalCharges"] > 0)
    log_ratio = np.log(codes["TotalCharges"][later] / (tenure[later] * monthly[later]))
    per_month = pd.Series(log_ratio).groupby(tenure[later]).agg(["std", "count"]).dropna()
    weights, inv_root = per_month["count"].to_numpy(), 1 / np.sqrt(per_month.index.to_numpy(float))
    spread = float(np.sum(weights * per_month["std"].to_numpy() * inv_root) / np.sum(weights * inv_root**2))

    churn_design = _churn_design(codes)
    model = LogisticRegression(C=CHURN_C, max_iter=5000)
    model.fit(_matrix(churn_design, dict.fromkeys(churn_design)), codes["Churn"])
    figures = {
        "version": FIGURES_VERSION,
        "source": {"rows": len(real)},
        "tenure": {"p": (tenure_counts / tenure_counts.sum()).tolist(), "bands": list(TENURE_BANDS)},
        "chain": chain,
        "monthly_charges": {"coef": dict(zip(names, beta.tolist(), strict=True)), "noise_sd": noise},
        "total_charges": {
            "log_ratio_sd": spread,
            "rule": "sd = log_ratio_sd / sqrt(tenure), cut at 3 sd; 0 at tenure 1",
        },
        "churn": {
            "rate": float(codes["Churn"].mean()),
            "intercept": float(model.intercept_[0]),
            "coef": dict(zip(churn_design, model.coef_[0].tolist(), strict=True)),
            "scale": dict(CHURN_SCALE),
        },
    }
    log.info(
        "calibrated synthetic figures on %d real rows (churn rate %.3f)", len(real), figures["churn"]["rate"]
    )
    return rounded(figures)


def load_figures() -> dict[str, Any]:
    """The committed figures (`churn/synth_figures.json`, calibrated on the IBM Telco data)."""
    try:
        resource = importlib.resources.files("churn").joinpath(FIGURES_FILE)
    except (NotADirectoryError, TypeError):  # Python 3.11 on a namespace-package (no __init__) checkout
        resource = Path(__file__).with_name(FIGURES_FILE)
    if not resource.is_file():
        raise FileNotFoundError(f"churn/{FIGURES_FILE}: not found (run `churn synth --calibrate REAL.csv`)")
    return json.loads(resource.read_text())


def _check_args(rows: Any, seed: Any, figures: Any) -> None:
    if isinstance(rows, bool) or not isinstance(rows, numbers.Integral) or not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be a whole number between 1 and {MAX_ROWS:,}, got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative whole number, got {seed!r}")
    if not isinstance(figures, dict) or figures.get("version") != FIGURES_VERSION:
        got = figures.get("version") if isinstance(figures, dict) else type(figures).__name__
        raise ValueError(
            f"figures must be a dict with version {FIGURES_VERSION} (from calibrate), got {got!r}"
        )
    missing = [
        k for k in ("tenure", "chain", "monthly_charges", "total_charges", "churn") if k not in figures
    ]
    missing += [f"chain.{child}" for child, _ in _CHAIN if child not in figures.get("chain", {})]
    if missing:
        raise ValueError(f"figures are missing key(s) {missing}; recalibrate with calibrate()")


def _draw(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One draw per row of a (rows, levels) probability matrix (rows renormalised)."""
    cdf = np.cumsum(p, axis=-1)
    cdf /= cdf[..., -1:]
    u = rng.random(p.shape[0])
    return np.minimum((u[:, None] >= cdf).sum(axis=1), p.shape[1] - 1)


def _shift_to_rate(z: np.ndarray, rate: float) -> float:
    """Intercept shift so the mean churn probability equals `rate` (bisection; mean is monotone)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expit(z + mid).mean() < rate else (lo, mid)
    return (lo + hi) / 2


def _money(values: np.ndarray) -> list[str]:
    """Format like the real file: at most 2 decimals, trailing zeros dropped (29.85, 42.3, 84)."""
    return [f"{v:.2f}".rstrip("0").rstrip(".") for v in values.tolist()]


def _ids(rng: np.random.Generator, rows: int) -> list[str]:
    numbers_ = rng.choice(_ID_SPACE, size=rows, replace=False)
    digits, letters = np.divmod(numbers_, _ID_LETTERS)
    chars = np.empty((rows, 5), dtype="int64")
    for k in range(4, -1, -1):
        letters, chars[:, k] = np.divmod(letters, 26)
    text = (chars + ord("A")).astype("uint8").view("S5").ravel().astype(str)
    return [f"{d:04d}-{t}" for d, t in zip(digits.tolist(), text.tolist(), strict=True)]


def generate(rows: int = 7043, seed: int = 42, figures: dict[str, Any] | None = None) -> pd.DataFrame:
    """`rows` synthetic customers as the raw CSV reads with dtype=str, deterministic for a seed.

    Columns are `schema.COLUMNS`; TotalCharges is a single-space blank at tenure 0, as in the real
    file. Churn is drawn from the calibrated logistic model, its intercept shifted so the expected
    churn rate equals the real one.
    """
    figures = load_figures() if figures is None else figures
    _check_args(rows, seed, figures)
    rng = np.random.default_rng(seed)
    tenure_p = np.asarray(figures["tenure"]["p"], dtype=float)
    codes: dict[str, np.ndarray] = {"tenure": _draw(rng, np.broadcast_to(tenure_p, (rows, tenure_p.size)))}
    codes["tenure_band"] = _band(codes["tenure"], figures["tenure"]["bands"])
    running = np.zeros(rows, dtype="int64")
    for child, parents in _CHAIN:
        if child in _ADDONS:
            codes["addons_before"] = np.minimum(running, 2)
        table = np.asarray(figures["chain"][child]["p"], dtype=float)
        p = (
            table[tuple(codes[name] for name in parents)]
            if parents
            else np.broadcast_to(table, (rows, table.size))
        )
        codes[child] = _draw(rng, p)
        if child == "demographics":
            _split_demographics(codes)
        elif child == "MultipleLines":
            codes[child][codes["PhoneService"] == 0] = _STRUCTURAL
        elif child in _ADDONS:
            codes[child][codes["InternetService"] == _NO_INTERNET] = _STRUCTURAL
            running += codes[child] == 1

    tenure = codes["tenure"]
    mc = figures["monthly_charges"]
    sd = np.asarray([mc["noise_sd"][level] for level in schema.CATEGORICAL["InternetService"]])
    noise = rng.standard_normal(rows) * sd[codes["InternetService"]]
    monthly = _matrix(_monthly_design(codes), mc["coef"]) @ np.asarray(list(mc["coef"].values())) + noise
    codes["MonthlyCharges"] = np.round(np.maximum(monthly, 0.0), 2)
    spread = figures["total_charges"]["log_ratio_sd"] / np.sqrt(np.maximum(tenure, 1)) * (tenure >= 2)
    ratio = np.exp(np.clip(rng.standard_normal(rows), -3.0, 3.0) * spread)  # bounded, as in the real file
    codes["TotalCharges"] = np.round(tenure * codes["MonthlyCharges"] * ratio, 2)

    churn = figures["churn"]
    z = churn["intercept"] + _matrix(_churn_design(codes), churn["coef"]) @ np.asarray(
        list(churn["coef"].values())
    )
    shift = _shift_to_rate(z, churn["rate"])
    log.debug("churn intercept shifted by %.4f to reach rate %.4f", shift, churn["rate"])
    churned = rng.random(rows) < expit(z + shift)

    out: dict[str, Any] = {schema.ID: _ids(rng, rows)}
    for col in schema.COLUMNS[1:-1]:
        if col in schema.CATEGORICAL:
            out[col] = np.asarray(schema.CATEGORICAL[col], dtype=object)[codes[col]]
        elif col in ("SeniorCitizen", "tenure"):
            out[col] = codes[col].astype(str)
        else:
            out[col] = _money(codes[col])
    out["TotalCharges"] = np.where(tenure == 0, " ", np.asarray(out["TotalCharges"], dtype=object))
    out[schema.TARGET] = np.where(churned, "Yes", "No")
    return pd.DataFrame(out, columns=list(schema.COLUMNS)).astype("str")


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a generated frame as CSV atomically (never half-written; formula cells neutralised)."""
    _write_safe_csv(df, path)


def calibrate_main(real_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Read the real CSV, calibrate and save the figures JSON; returns the figures."""
    real = read_raw(real_path)
    schema.validate(real, source=str(real_path))
    figures = calibrate(real)
    save_json(figures, out_path)
    log.info("wrote synthetic figures to %s", out_path)
    return figures
