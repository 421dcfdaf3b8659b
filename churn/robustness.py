"""Metric drops under seeded perturbations: numeric noise, category flips, missing values; gates."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from churn import metrics, schema
from churn.settings import PERTURBATIONS, RobustnessSettings
from churn.validation import all_passed, gate

log = logging.getLogger(__name__)

KINDS = PERTURBATIONS
GATED = ("accuracy", "roc_auc")
#: Numeric columns that get noise; the 0/1 SeniorCitizen flag is flipped like a category instead.
NOISY = tuple(c for c in schema.NUMERIC_FEATURES if schema.NUMERIC[c][:2] != (0, 1))
FLIPPABLE = {**{c: schema.CATEGORICAL[c] for c in schema.CATEGORICAL_FEATURES}, "SeniorCitizen": (0.0, 1.0)}


def perturb(X: pd.DataFrame, kind: str, level: float, seed: int) -> pd.DataFrame:
    """A perturbed copy of the raw feature frame; each (kind, level) has its own seeded stream.

    noise: Gaussian noise with sd = level × the column's std on tenure and charges, clipped to
    the schema range; flip: each categorical value switches with probability `level` to another
    valid level, chosen uniformly; missing: each cell becomes NaN with probability `level`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown perturbation '{kind}', must be one of {KINDS}")
    rng = np.random.default_rng([seed, KINDS.index(kind), round(level * 1_000_000)])
    out = X.copy()
    n = len(out)
    if kind == "noise":
        for col in NOISY:
            values = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
            lo, hi, _ = schema.NUMERIC[col]
            noisy = values + rng.normal(0.0, level * np.nanstd(values), n)
            out[col] = np.clip(noisy, lo, hi)
    elif kind == "flip":
        for col, allowed in FLIPPABLE.items():
            options = np.asarray(allowed, dtype=object)
            current = out[col].to_numpy(dtype=object)
            code = pd.Categorical(current, categories=list(allowed)).codes.astype(int)
            flip = (rng.random(n) < level) & (code >= 0)
            shifted = (code + rng.integers(1, len(options), n)) % len(options)
            values = np.where(flip, options[shifted], current)
            out[col] = values.astype(float) if col == "SeniorCitizen" else values
    else:  # missing
        mask = rng.random((n, len(out.columns))) < level
        for j, col in enumerate(out.columns):
            column = out[col].astype(float) if col in schema.NUMERIC else out[col].astype(object)
            out[col] = column.mask(mask[:, j], np.nan)
    return out


def copies(X: pd.DataFrame, cfg: RobustnessSettings, seed: int) -> dict[tuple[str, float], pd.DataFrame]:
    """Every perturbed copy of `X`, built once and shared by every model."""
    return {(k, lv): perturb(X, k, lv, seed) for k in KINDS for lv in cfg.level_list(k)}


def evaluate(
    model: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    perturbed: dict[tuple[str, float], pd.DataFrame],
    cfg: RobustnessSettings,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """Baseline and perturbed accuracy / ROC-AUC of one model, drops, and gates.

    One predict_proba over the clean and every perturbed copy together. A model that raises on a
    copy (e.g. cannot handle NaN) gets the error recorded and fails that perturbation's gates; the
    run goes on.
    """
    with threadpool_limits(1):  # one native thread, as in every stage (churn.validation.probabilities)
        return _evaluate(model, X, y, perturbed, cfg, threshold)


def _probabilities(model: Any, frames: list[pd.DataFrame]) -> list[np.ndarray | Exception]:
    """Churn probabilities of each frame, from one predict_proba over all of them stacked (each row
    is scored on its own, so a frame's figures equal its own call). If that call raises, each frame
    is scored alone, so the failure is recorded against the copy that causes it."""
    try:
        proba = model.predict_proba(pd.concat(frames, ignore_index=True))[:, 1]
        return np.split(proba, np.cumsum([len(f) for f in frames])[:-1])
    except Exception:  # scored one by one below: the failing copy's error is recorded, the clean one's raised
        out: list[np.ndarray | Exception] = []
        for frame in frames:
            try:
                out.append(model.predict_proba(frame)[:, 1])
            except Exception as exc:  # the model's failure is the finding, not a crash of the stage
                out.append(exc)
        return out


def _evaluate(model, X, y, perturbed, cfg: RobustnessSettings, threshold: float) -> dict[str, Any]:
    clean, *probas = _probabilities(model, [X, *perturbed.values()])
    if isinstance(clean, Exception):
        raise clean
    base = metrics.classification(y, clean, threshold, only=GATED)
    baseline = {m: base[m] for m in GATED}
    results: dict[str, dict[str, Any]] = {k: {} for k in KINDS}
    for (kind, level), proba in zip(perturbed, probas, strict=True):
        if isinstance(proba, Exception):
            exc = proba
            log.warning("model failed under %s at %g: %s: %s", kind, level, type(exc).__name__, exc)
            results[kind][f"{level:g}"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        scores = metrics.classification(y, proba, threshold, only=GATED)
        entry = {m: scores[m] for m in GATED}
        entry.update({f"{m}_drop": baseline[m] - scores[m] for m in GATED})
        results[kind][f"{level:g}"] = entry
    gates = {}
    for kind, limits in cfg.gated().items():
        entry = results[kind][f"{limits.level:g}"]
        for m in GATED:
            note = f"at level {limits.level:g}"
            if "error" in entry:
                note = f"model failed at level {limits.level:g}: {entry['error']}"
            gates[f"{kind}.{m}_drop"] = gate(
                entry.get(f"{m}_drop"), getattr(limits, f"max_{m}_drop"), "<=", note=note
            )
    return {"baseline": baseline, "perturbations": results, "gates": gates, "passed": all_passed(gates)}
