"""SHAP explanations per customer and overall, summed back to the 19 Telco features, in plain words."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from churn import features, schema

log = logging.getLogger(__name__)

#: Where `base_value` and `contributions` live: churn probability, or the model's log-odds margin.
SPACES = ("probability", "log_odds")
_ADDON_NAMES = schema.ADDON_LABELS
_YES_NO_PHRASES = {
    "PaperlessBilling": ("Paper billing", "Paperless billing"),
    "PhoneService": ("Having no phone service", "Having phone service"),
    "Partner": ("Having no partner", "Having a partner"),
    "Dependents": ("Having no dependents", "Having dependents"),
}


class ExplainError(ValueError):
    """The model cannot be explained (unsupported estimator); the message names it."""


@dataclass(frozen=True)
class Attribution:
    """SHAP values of a batch, per original feature, in the native space and in probability points.

    `base_value + values.sum(1)` equals the model output in `space`;
    `base_probability + points.sum(1) / 100` equals the churn probability.
    """

    space: str
    method: str
    base_value: float
    values: np.ndarray
    probability: np.ndarray
    base_probability: float
    points: np.ndarray


@dataclass(frozen=True)
class Explanation:
    """Why the model gave one customer its churn probability.

    `contributions` (per original feature, in `space`) plus `base_value` add up to the model's
    output for this customer in that space; `points` are the same contributions in percentage
    points of churn probability, adding up from `base_probability` to `probability`.
    """

    customer: dict[str, Any]
    probability: float
    space: str
    method: str
    base_value: float
    contributions: dict[str, float]
    base_probability: float
    points: dict[str, float]
    sentences: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        """The plain-language explanation: the probability, then the top drivers."""
        return " ".join(self.sentences)

    def drivers(self, n: int = 3) -> list[tuple[str, float]]:
        """The `n` features that move this customer's probability most: (feature, points)."""
        ranked = sorted(self.points.items(), key=lambda kv: (-abs(kv[1]), kv[0]))
        return ranked[:n]

    def figure(self, top: int = 8):
        """A plotly waterfall from the baseline to this customer's probability (percentage points)."""
        return waterfall_figure(self, top)

    def to_dict(self) -> dict[str, Any]:
        return {
            "probability": self.probability,
            "space": self.space,
            "method": self.method,
            "base_value": self.base_value,
            "contributions": dict(self.contributions),
            "base_probability": self.base_probability,
            "points": dict(self.points),
            "text": self.text,
            "sentences": list(self.sentences),
        }


def _sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype="float64")))


def family_of(estimator: Any) -> tuple[str, str]:
    """(method, space) used to explain a fitted estimator; ExplainError for unsupported ones."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression

    if isinstance(estimator, RandomForestClassifier | ExtraTreesClassifier):
        return "tree_path_dependent", "probability"
    if isinstance(estimator, HistGradientBoostingClassifier | GradientBoostingClassifier):
        return "tree_path_dependent", "log_odds"
    if isinstance(estimator, LogisticRegression):
        return "linear_interventional", "log_odds"
    raise ExplainError(
        f"cannot explain a {type(estimator).__name__}: explanations support random_forest, extra_trees, "
        "hist_gradient_boosting and logistic_regression models"
    )


class Explainer:
    """Built once per model: the SHAP explainer of the model step and the one-hot → feature map.

    Tree ensembles use exact path-dependent TreeSHAP (no background needed: the base value is the
    training-weighted mean of the trees); random forests explain the probability directly,
    gradient boosting its log-odds. Logistic regression uses the exact linear SHAP values against
    the mean of `background` (log-odds). Log-odds contributions are converted to probability
    points by the secant of the logistic curve between the baseline and the customer, so points
    add up exactly to the probability.
    """

    def __init__(self, pipeline: Pipeline, background: pd.DataFrame | None = None):
        import shap

        self.preprocess = pipeline[:-1]
        self.model = pipeline[-1]
        classes = list(getattr(self.model, "classes_", []))
        if len(classes) != 2:
            raise ExplainError(
                f"cannot explain a model with classes {classes}: a binary classifier is needed"
            )
        self.method, self.space = family_of(self.model)
        names = list(self.preprocess.get_feature_names_out())
        self.features = list(schema.FEATURES)
        owner = [self.features.index(features.original_feature(n)) for n in names]
        self._sum = np.zeros((len(names), len(self.features)))
        self._sum[np.arange(len(names)), owner] = 1.0
        if self.method == "tree_path_dependent":
            self._shap = shap.TreeExplainer(self.model, feature_perturbation="tree_path_dependent")
        else:
            if background is None or len(background) == 0:
                raise ExplainError("a linear model needs background customers to explain against")
            bg = self.preprocess.transform(background[self.features])
            self._shap = shap.LinearExplainer(self.model, bg)
        self.base_value = float(np.asarray(self._shap.expected_value, dtype="float64").ravel()[-1])
        log.debug("explainer ready: %s in %s space", self.method, self.space)

    def attribute(self, X: pd.DataFrame) -> Attribution:
        """SHAP values of every row of raw customers `X` (the 19 features), per original feature."""
        return self.attribute_matrix(self.preprocess.transform(X[self.features]))

    def attribute_matrix(self, Xt: np.ndarray, probability: np.ndarray | None = None) -> Attribution:
        """As `attribute`, for rows already through the pipeline's preprocessing.

        `probability`: the model's churn probabilities of these rows when the caller has them
        (the serving fast path); otherwise the model computes them.
        """
        if self.method == "tree_path_dependent":
            raw = self._shap.shap_values(Xt, check_additivity=False)
        else:
            raw = self._shap.shap_values(Xt)
        raw = np.asarray(raw, dtype="float64")
        if raw.ndim == 3:
            raw = raw[:, :, 1]
        values = raw @ self._sum
        if probability is None:
            probability = self.model.predict_proba(Xt)[:, 1]
        probability = np.asarray(probability, dtype="float64")
        if self.space == "probability":
            return Attribution(
                self.space, self.method, self.base_value, values, probability, self.base_value, values * 100
            )
        base_p = float(_sigmoid(self.base_value))
        total = values.sum(axis=1)
        tiny = np.abs(total) < 1e-9
        slope = np.where(tiny, base_p * (1 - base_p), (probability - base_p) / np.where(tiny, 1.0, total))
        points = values * slope[:, None] * 100
        return Attribution(self.space, self.method, self.base_value, values, probability, base_p, points)

    def explain(self, X: pd.DataFrame, *, top: int = 3) -> Explanation:
        """The explanation of the single customer in `X` (one row, raw columns)."""
        if len(X) != 1:
            raise ValueError(f"explain takes one customer, got {len(X)} rows")
        return explanation_from(self.attribute(X), 0, X[self.features].iloc[0].to_dict(), top=top)

    def global_importance(self, X: pd.DataFrame) -> dict[str, float]:
        """Mean absolute contribution (percentage points) of each feature over customers `X`, largest first."""
        att = self.attribute(X)
        mean_abs = np.abs(att.points).mean(axis=0)
        pairs = sorted(zip(self.features, mean_abs, strict=True), key=lambda kv: (-kv[1], kv[0]))
        return {k: float(v) for k, v in pairs}


def explanation_from(att: Attribution, row: int, customer: dict[str, Any], *, top: int = 3) -> Explanation:
    """The `Explanation` of row `row` of a batch attribution."""
    names = list(schema.FEATURES)
    points = {f: float(v) for f, v in zip(names, att.points[row], strict=True)}
    contributions = {f: float(v) for f, v in zip(names, att.values[row], strict=True)}
    probability = float(att.probability[row])
    ranked = sorted(points.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    sentences = [
        f"Estimated churn probability: {_pct(probability)} (baseline customer: {_pct(att.base_probability)})."
    ]
    sentences += [sentence(f, customer.get(f), p) for f, p in ranked if abs(p) >= 0.05]
    return Explanation(
        customer=dict(customer),
        probability=probability,
        space=att.space,
        method=att.method,
        base_value=att.base_value,
        contributions=contributions,
        base_probability=att.base_probability,
        points=points,
        sentences=tuple(sentences),
    )


def _pct(p: float) -> str:
    return f"{p:.1%}"


def format_points(points: float) -> str:
    """'12' for big moves, '3.4' for small ones (absolute value)."""
    size = abs(points)
    return f"{size:.0f}" if size >= 9.95 else f"{size:.1f}"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def phrase(feature: str, value: Any) -> str:
    """A customer's value of a feature in words: 'A month-to-month contract', 'Paying by electronic check'."""
    text = "" if value is None else str(value)
    if feature == "Contract":
        return {
            "Month-to-month": "A month-to-month contract",
            "One year": "A one-year contract",
            "Two year": "A two-year contract",
        }.get(text, f"Contract '{text}'")
    if feature == "tenure":
        months = _number(value)
        if months is None:
            return "An unknown tenure"
        return f"A tenure of {months:.0f} month{'' if months == 1 else 's'}"
    if feature in ("MonthlyCharges", "TotalCharges"):
        amount = _number(value)
        label = "Monthly charges" if feature == "MonthlyCharges" else "Total charges"
        return f"{label} of ${amount:,.2f}" if amount is not None else f"No {label.lower()} billed yet"
    if feature == "InternetService":
        return {
            "Fiber optic": "Fiber-optic internet",
            "DSL": "DSL internet",
            "No": "Having no internet service",
        }.get(text, f"Internet service '{text}'")
    if feature in _ADDON_NAMES:
        name = _ADDON_NAMES[feature]
        if text == "Yes":
            return f"Having {name}"
        if text == "No":
            return f"Not having {name}"
        return f"No {name} (no internet service)"
    if feature == "PaymentMethod":
        return f"Paying by {text.lower()}"
    if feature == "MultipleLines":
        return {"Yes": "Multiple phone lines", "No": "A single phone line"}.get(
            text, "Having no phone service"
        )
    if feature == "SeniorCitizen":
        return "Being a senior citizen" if _number(value) == 1 else "Not being a senior citizen"
    if feature in _YES_NO_PHRASES:
        no, yes = _YES_NO_PHRASES[feature]
        return yes if text == "Yes" else no
    return f"{feature} '{text}'"


def sentence(feature: str, value: Any, points: float) -> str:
    """'A month-to-month contract raises churn risk by 12 points.'"""
    verb = "raises" if points > 0 else "lowers"
    return f"{phrase(feature, value)} {verb} churn risk by {format_points(points)} points."


def top_reasons(att: Attribution, X: pd.DataFrame, top: int = 3) -> list[str]:
    """Per row, the `top` drivers as 'A month-to-month contract (+12 pts); …' (batch output column)."""
    order = np.argsort(-np.abs(att.points), axis=1, kind="stable")[:, :top]
    names = list(schema.FEATURES)
    values = X[names].to_numpy(dtype=object)
    out = []
    for i, idx in enumerate(order):
        parts = []
        for j in idx:
            pts = att.points[i, j]
            sign = "+" if pts >= 0 else "-"
            parts.append(f"{phrase(names[j], values[i, j])} ({sign}{format_points(pts)} pts)")
        out.append("; ".join(parts))
    return out


def waterfall_figure(explanation: Explanation, top: int = 8):
    """Plotly waterfall: baseline → the top drivers (+ the rest together) → this customer (in %)."""
    import plotly.graph_objects as go

    ranked = explanation.drivers(len(explanation.points))
    shown, rest = ranked[:top], ranked[top:]
    labels = ["Baseline customer"]
    labels += [f"{phrase(f, explanation.customer.get(f))}" for f, _ in shown]
    values = [100 * explanation.base_probability] + [p for _, p in shown]
    measures = ["absolute"] + ["relative"] * len(shown)
    if rest:
        labels.append(f"{len(rest)} other features")
        values.append(sum(p for _, p in rest))
        measures.append("relative")
    labels.append("This customer")
    values.append(100 * explanation.probability)
    measures.append("total")
    text = [f"{v:.1f}%" if m != "relative" else f"{v:+.1f}" for v, m in zip(values, measures, strict=True)]
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            measure=measures,
            y=labels,
            x=values,
            text=text,
            textposition="outside",
            cliponaxis=False,  # labels of bars near the edge stay readable in the margin
            increasing={"marker": {"color": "#d62728"}},
            decreasing={"marker": {"color": "#2ca02c"}},
            totals={"marker": {"color": "#1f77b4"}},
        )
    )
    fig.update_layout(
        title=f"Why churn probability is {_pct(explanation.probability)}",
        xaxis_title="Churn probability (%)",
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 70, "t": 50, "b": 40},
        showlegend=False,
    )
    return fig


def importance_figure(importance: dict[str, float], top: int = 19):
    """Plotly horizontal bar chart of global importance (mean |contribution|, percentage points)."""
    import plotly.graph_objects as go

    items = list(importance.items())[:top]
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in items],
            y=[k for k, _ in items],
            orientation="h",
            marker={"color": "#1f77b4"},
        )
    )
    fig.update_layout(
        title="What drives churn predictions overall",
        xaxis_title="Mean absolute contribution (percentage points)",
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 20, "t": 50, "b": 40},
    )
    return fig
