"""Estimator families built from params (`{estimator: <family>, params: {...}}`), fit and cross-validate."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from churn import features
from churn.io import ParamsError

log = logging.getLogger(__name__)

#: family name → (estimator class, whether numbers are standardised first, default params)
FAMILIES: dict[str, tuple[Callable[..., ClassifierMixin], bool, dict[str, Any]]] = {
    "random_forest": (RandomForestClassifier, False, {}),
    "extra_trees": (ExtraTreesClassifier, False, {}),
    "hist_gradient_boosting": (HistGradientBoostingClassifier, False, {}),
    "logistic_regression": (LogisticRegression, True, {"max_iter": 1000}),
}
CV_SCORING = ("accuracy", "precision", "recall", "f1", "roc_auc")


def check_spec(name: str, spec: Any) -> tuple[str, dict[str, Any]]:
    """Return (family, params) of a model spec or raise ParamsError naming the key and rule."""
    key = f"models.{name}"
    if not isinstance(spec, dict) or "estimator" not in spec:
        raise ParamsError(f"params.yaml: '{key}' must be a mapping with 'estimator' and 'params'")
    family = spec["estimator"]
    if family not in FAMILIES:
        raise ParamsError(f"params.yaml: '{key}.estimator' is '{family}', must be one of {sorted(FAMILIES)}")
    hp = spec.get("params") or {}
    if not isinstance(hp, dict):
        raise ParamsError(f"params.yaml: '{key}.params' must be a mapping of hyperparameters")
    cls = FAMILIES[family][0]
    allowed = set(inspect.signature(cls).parameters) - {"random_state"}
    unknown = sorted(set(hp) - allowed)
    if unknown:
        raise ParamsError(
            f"params.yaml: '{key}.params' has unknown hyperparameter(s) {unknown} for {family}; "
            f"allowed: {sorted(allowed)}"
        )
    extra = sorted(set(spec) - {"estimator", "params"})
    if extra:
        raise ParamsError(f"params.yaml: '{key}' has unknown key(s) {extra}; allowed: estimator, params")
    return family, dict(hp)


def build(name: str, spec: dict[str, Any], seed: int) -> Pipeline:
    """An unfitted Pipeline(raw columns → preprocess → estimator) for a model spec."""
    family, hp = check_spec(name, spec)
    cls, scale, defaults = FAMILIES[family]
    kwargs = {**defaults, **hp}
    if "random_state" in inspect.signature(cls).parameters:
        kwargs["random_state"] = seed
    try:
        estimator = cls(**kwargs)
        estimator._validate_params()
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"params.yaml: 'models.{name}.params' is invalid for {family}: {exc}") from exc
    return Pipeline([("preprocess", features.preprocessor(scale=scale)), ("model", estimator)])


def cross_validate_spec(
    name: str, spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, *, folds: int, seed: int
) -> dict[str, Any]:
    """Stratified k-fold CV of a spec: mean and std of each score."""
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_validate(build(name, spec, seed), X, y, cv=cv, scoring=list(CV_SCORING))
    return {
        metric: {
            "mean": float(np.mean(scores[f"test_{metric}"])),
            "std": float(np.std(scores[f"test_{metric}"])),
        }
        for metric in CV_SCORING
    }


def fit(
    name: str, spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, *, seed: int, cv_folds: int = 5
) -> tuple[Pipeline, dict[str, Any]]:
    """Cross-validate, then fit on all rows. Returns the fitted pipeline and a report dict."""
    family, _ = check_spec(name, spec)
    report: dict[str, Any] = {"estimator": family, "n_rows": len(X), "churn_rate": float(np.mean(y))}
    if cv_folds and cv_folds >= 2:
        report["cv"] = cross_validate_spec(name, spec, X, y, folds=cv_folds, seed=seed)
        report["cv_folds"] = cv_folds
    pipeline = build(name, spec, seed).fit(X, y)
    return pipeline, report


def feature_importance(
    pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, *, seed: int, repeats: int = 3
) -> dict[str, float]:
    """Permutation importance (mean drop in ROC-AUC) of each original feature on held-out rows.

    Model-agnostic, so every family is compared on the same scale; sorted, largest first.
    Rows are encoded once and each feature's encoded columns are shuffled together: the
    preprocessing works row by row, so this equals shuffling the raw column, only faster.
    """
    encoded = np.asarray(pipeline[:-1].transform(X), dtype=float)
    estimator = pipeline[-1]
    names = pipeline[:-1].get_feature_names_out()
    groups: dict[str, list[int]] = {}
    for i, col in enumerate(names):
        groups.setdefault(features.original_feature(col), []).append(i)
    baseline = roc_auc_score(y, estimator.predict_proba(encoded)[:, 1])
    rng = np.random.default_rng(seed)
    drops: dict[str, float] = {}
    for feature in X.columns:
        cols = groups.get(feature)
        if not cols:
            drops[str(feature)] = 0.0
            continue
        scores = []
        for _ in range(repeats):
            shuffled = encoded.copy()
            shuffled[:, cols] = encoded[rng.permutation(len(encoded))][:, cols]
            scores.append(roc_auc_score(y, estimator.predict_proba(shuffled)[:, 1]))
        drops[str(feature)] = float(baseline - np.mean(scores))
    return dict(sorted(drops.items(), key=lambda kv: -kv[1]))
