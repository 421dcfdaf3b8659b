"""Estimator families built from params (`{estimator: <family>, params: {...}}`), fit and cross-validate."""

from __future__ import annotations

import inspect
import itertools
import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.base import ClassifierMixin
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils._param_validation import InvalidParameterError

from churn import features
from churn.params import ParamsError, line
from churn.settings import ModelSpec

log = logging.getLogger(__name__)

#: family name (churn.settings.ESTIMATORS) → (estimator class, whether numbers are standardised first, default params)
FAMILIES: dict[str, tuple[Callable[..., ClassifierMixin], bool, dict[str, Any]]] = {
    "random_forest": (RandomForestClassifier, False, {}),
    "extra_trees": (ExtraTreesClassifier, False, {}),
    "hist_gradient_boosting": (HistGradientBoostingClassifier, False, {}),
    "logistic_regression": (LogisticRegression, True, {"max_iter": 1000}),
}
#: scikit-learn's InvalidParameterError: "The 'n_estimators' parameter of X must be …. Got 0 instead."
_SKLEARN_RULE = re.compile(
    r"The '(?P<name>\w+)' parameter of \w+ (?P<rule>must be .*?)\. Got .* instead\.$", re.S
)
CV_SCORING = ("accuracy", "precision", "recall", "f1", "roc_auc")
#: rows per predict_proba call in `feature_importance` (bounds the memory of the stacked copies)
_BATCH_ROWS = 1 << 16


def check_spec(name: str, spec: Any, source: str = "params.yaml") -> ModelSpec:
    """The checked spec `models.<name>`: a known family, and hyperparameters that scikit-learn's own
    parameter validation accepts; ParamsError names the file, the dotted key and the rule."""
    key = f"models.{name}"
    checked = spec if isinstance(spec, ModelSpec) else ModelSpec.from_params(spec, source, key)
    cls, _, defaults = FAMILIES[checked.estimator]
    allowed = sorted(set(inspect.signature(cls).parameters) - {"random_state"})
    for hp in checked.params:
        if hp not in allowed:
            raise ParamsError(
                line(
                    source,
                    f"{key}.params.{hp}",
                    f"unknown hyperparameter of {checked.estimator} (allowed: {', '.join(allowed)})",
                )
            )
    constraints = getattr(cls, "_parameter_constraints", {})
    for hp, value in checked.params.items():  # scikit-learn reads true as 1 where it expects a number
        if isinstance(value, bool) and not any(c in ("boolean", bool) for c in constraints.get(hp, [])):
            raise ParamsError(line(source, f"{key}.params.{hp}", "must not be true or false", value))
    try:
        cls(**{**defaults, **checked.params})._validate_params()
    except InvalidParameterError as exc:
        found = _SKLEARN_RULE.match(str(exc))
        if not found:
            raise ParamsError(
                line(source, f"{key}.params", f"invalid for {checked.estimator}: {exc}")
            ) from None
        hp = found["name"]
        raise ParamsError(line(source, f"{key}.params.{hp}", found["rule"], checked.params.get(hp))) from None
    except (TypeError, ValueError) as exc:
        raise ParamsError(line(source, f"{key}.params", f"invalid for {checked.estimator}: {exc}")) from None
    return checked


def build(name: str, spec: Any, seed: int) -> Pipeline:
    """An unfitted Pipeline(raw columns → preprocess → estimator) for a model spec."""
    checked = check_spec(name, spec)
    cls, scale, defaults = FAMILIES[checked.estimator]
    kwargs = {**defaults, **checked.params}
    if "random_state" in inspect.signature(cls).parameters:
        kwargs["random_state"] = seed
    return Pipeline([("preprocess", features.preprocessor(scale=scale)), ("model", cls(**kwargs))])


def cross_validate_spec(
    name: str, spec: Any, X: pd.DataFrame, y: np.ndarray, *, folds: int, seed: int
) -> dict[str, Any]:
    """Stratified k-fold CV of a spec: mean and std of each score."""
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    # Folds fit in threads (the tree builders release the GIL): each fold is the same fit as in a
    # loop, so the scores are identical; stages keep one native thread per Python thread.
    with parallel_config(backend="threading"):
        scores = cross_validate(build(name, spec, seed), X, y, cv=cv, scoring=list(CV_SCORING), n_jobs=-1)
    return {
        metric: {
            "mean": float(np.mean(scores[f"test_{metric}"])),
            "std": float(np.std(scores[f"test_{metric}"])),
        }
        for metric in CV_SCORING
    }


def fit(
    name: str, spec: Any, X: pd.DataFrame, y: np.ndarray, *, seed: int, cv_folds: int = 5
) -> tuple[Pipeline, dict[str, Any]]:
    """Cross-validate, then fit on all rows. Returns the fitted pipeline and a report dict."""
    family = check_spec(name, spec).estimator
    report: dict[str, Any] = {"estimator": family, "n_rows": len(X), "churn_rate": float(np.mean(y))}
    if cv_folds and cv_folds >= 2:
        report["cv"] = cross_validate_spec(name, spec, X, y, folds=cv_folds, seed=seed)
        report["cv_folds"] = cv_folds
    return build(name, spec, seed).fit(X, y), report


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
    # every permutation drawn up front, in the order of a loop over features and repeats
    shuffles = [
        (str(feature), groups[feature], rng.permutation(len(encoded)))
        for feature in X.columns
        if groups.get(feature)
        for _ in range(repeats)
    ]
    scores: dict[str, list[float]] = {str(feature): [] for feature in X.columns}
    for batch in _permuted_scores(estimator, encoded, y, shuffles):
        for feature, score in batch:
            scores[feature].append(score)
    drops = {f: float(baseline - np.mean(s)) if groups.get(f) else 0.0 for f, s in scores.items()}
    return dict(sorted(drops.items(), key=lambda kv: -kv[1]))


def _permuted_scores(
    estimator: Any, encoded: np.ndarray, y: np.ndarray, shuffles: list[tuple[str, list[int], np.ndarray]]
) -> list[list[tuple[str, float]]]:
    """ROC-AUC of each shuffled copy of `encoded`, in order: copies are stacked into a few large
    batches (one predict_proba per batch instead of one per copy) scored in threads. A row's
    probability does not depend on the rows predicted with it, so the scores equal a plain loop."""
    if not shuffles:
        return []
    rows = len(encoded) * len(shuffles)
    n_batches = min(len(shuffles), max(os.cpu_count() or 1, -(-rows // _BATCH_ROWS)))

    def score(batch: list[tuple[str, list[int], np.ndarray]]) -> list[tuple[str, float]]:
        copies = []
        for _, cols, perm in batch:
            shuffled = encoded.copy()
            shuffled[:, cols] = encoded[perm][:, cols]
            copies.append(shuffled)
        proba = estimator.predict_proba(np.vstack(copies))[:, 1]
        return [
            (feature, roc_auc_score(y, p))
            for (feature, _, _), p in zip(batch, np.split(proba, len(batch)), strict=True)
        ]

    bounds = np.linspace(0, len(shuffles), n_batches + 1).round().astype(int)
    batches = [shuffles[a:b] for a, b in itertools.pairwise(bounds)]
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        return list(pool.map(score, batches))
