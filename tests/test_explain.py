"""SHAP explanations: additivity in the stated space, the one-hot sums, plain words, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
from scipy.special import expit

from churn import data, explain, features, model, schema
from churn.params import load_params

#: The space each family is explained in: forests average probabilities, the others add log-odds.
SPACES = {
    "random_forest": "probability",
    "extra_trees": "probability",
    "hist_gradient_boosting": "log_odds",
    "logistic_regression": "log_odds",
}
MODELS = ("champion", "challenger", "logistic_regression")


def _family(name: str, root) -> str:
    """The estimator family of a `serving_models` entry (the params.yaml specs, and a logistic regression)."""
    if name == "logistic_regression":
        return name
    return load_params(root / "params.yaml")["models"][name]["estimator"]


@pytest.fixture(scope="module")
def customers(prepared) -> pd.DataFrame:
    return data.xy(prepared[1])[0].head(25).reset_index(drop=True)


@pytest.fixture(scope="module")
def explainers(serving_models, prepared) -> dict[str, explain.Explainer]:
    background = data.xy(prepared[0])[0].sample(100, random_state=0)
    return {name: explain.Explainer(pipe, background) for name, pipe in serving_models.items()}


def _native_output(pipe, X: pd.DataFrame, space: str) -> np.ndarray:
    if space == "probability":
        return pipe.predict_proba(X)[:, 1]
    return pipe.decision_function(X)


@pytest.mark.parametrize("name", MODELS)
def test_additivity_in_the_stated_space_and_in_probability(name, serving_models, explainers, customers, root):
    family = _family(name, root)
    space = SPACES[family]
    pipe, ex = serving_models[name], explainers[name]
    assert type(pipe[-1]).__name__.lower().replace("classifier", "") in family.replace("_", "")
    att = ex.attribute(customers)
    assert att.space == space and att.values.shape == (len(customers), 19)
    np.testing.assert_allclose(
        att.base_value + att.values.sum(1), _native_output(pipe, customers, space), atol=1e-6
    )
    proba = pipe.predict_proba(customers)[:, 1]
    np.testing.assert_allclose(att.probability, proba, atol=1e-12)
    np.testing.assert_allclose(att.base_probability + att.points.sum(1) / 100, proba, atol=1e-6)
    one = ex.explain(customers.iloc[[3]])
    assert list(one.contributions) == list(schema.FEATURES) and one.space == space
    assert one.base_value + sum(one.contributions.values()) == pytest.approx(
        att.base_value + att.values[3].sum()
    )
    assert one.base_probability + sum(one.points.values()) / 100 == pytest.approx(proba[3], abs=1e-6)
    if space == "log_odds":
        assert one.base_probability == pytest.approx(expit(one.base_value))


def test_one_hot_columns_are_summed_back_to_their_feature(serving_models, explainers, customers):
    """Reference: shap on the transformed matrix, then a pandas groupby over original feature names."""
    pipe = serving_models["challenger"]
    Xt = pipe[:-1].transform(customers)
    names = pipe[:-1].get_feature_names_out()
    raw = np.asarray(shap.TreeExplainer(pipe[-1]).shap_values(Xt))
    raw = raw[:, :, 1] if raw.ndim == 3 else raw  # forests: one column of values per class
    owners = [features.original_feature(n) for n in names]
    expected = pd.DataFrame(raw, columns=names).T.groupby(owners).sum().T[list(schema.FEATURES)]
    np.testing.assert_allclose(
        explainers["challenger"].attribute(customers).values, expected.to_numpy(), atol=1e-12
    )


def test_linear_values_match_the_textbook_formula(serving_models, explainers, customers, prepared):
    """Linear SHAP (independent features) is coef * (x - mean(background)) in log-odds."""
    pipe = serving_models["logistic_regression"]
    background = data.xy(prepared[0])[0].sample(100, random_state=0)
    bt, xt = pipe[:-1].transform(background), pipe[:-1].transform(customers)
    coef = pipe[-1].coef_[0]
    by_column = coef * (xt - bt.mean(0))
    owners = [features.original_feature(n) for n in pipe[:-1].get_feature_names_out()]
    expected = pd.DataFrame(by_column).T.groupby(owners).sum().T
    got = pd.DataFrame(explainers["logistic_regression"].attribute(customers).values, columns=schema.FEATURES)
    np.testing.assert_allclose(got[expected.columns].to_numpy(), expected.to_numpy(), atol=1e-9)
    assert explainers["logistic_regression"].base_value == pytest.approx(
        pipe[-1].intercept_[0] + coef @ bt.mean(0)
    )


def test_plain_language_names_drivers_with_direction_and_points(explainers, customers):
    one = explainers["challenger"].explain(customers.iloc[[0]])
    assert one.sentences[0].startswith("Estimated churn probability: ")
    top = one.drivers(3)
    assert len(one.sentences) == 1 + sum(abs(p) >= 0.05 for _, p in top)
    feature, points = top[0]
    assert one.sentences[1] == explain.sentence(feature, one.customer[feature], points)
    assert ("raises" if points > 0 else "lowers") in one.sentences[1]
    assert one.text == " ".join(one.sentences)
    assert abs(top[0][1]) >= abs(top[1][1]) >= abs(top[2][1])


@pytest.mark.parametrize(
    ("feature", "value", "points", "text"),
    [
        ("Contract", "Month-to-month", 12.3, "A month-to-month contract raises churn risk by 12 points."),
        ("tenure", "1", -4.04, "A tenure of 1 month lowers churn risk by 4.0 points."),
        (
            "PaymentMethod",
            "Electronic check",
            3.26,
            "Paying by electronic check raises churn risk by 3.3 points.",
        ),
        ("OnlineSecurity", "No", 2, "Not having online security raises churn risk by 2.0 points."),
        ("TotalCharges", np.nan, 0.5, "No total charges billed yet raises churn risk by 0.5 points."),
        ("MonthlyCharges", 95.5, 10.0, "Monthly charges of $95.50 raises churn risk by 10 points."),
        ("SeniorCitizen", 1, 1.0, "Being a senior citizen raises churn risk by 1.0 points."),
    ],
)
def test_sentences(feature, value, points, text):
    assert explain.sentence(feature, value, points) == text


def test_waterfall_goes_from_baseline_to_the_probability(explainers, customers):
    one = explainers["champion"].explain(customers.iloc[[1]])
    fig = one.figure(top=5)
    trace = fig.data[0]
    assert trace.type == "waterfall"
    measures, x = list(trace.measure), list(trace.x)
    assert measures[0] == "absolute" and measures[-1] == "total" and len(x) == 1 + 5 + 1 + 1
    assert x[0] == pytest.approx(100 * one.base_probability)
    assert x[0] + sum(x[1:-1]) == pytest.approx(100 * one.probability, abs=1e-6)
    assert x[-1] == pytest.approx(100 * one.probability)
    assert trace.y[-2] == "14 other features"


def test_global_importance_is_sorted_and_covers_every_feature(explainers, customers):
    imp = explainers["challenger"].global_importance(customers)
    assert list(imp) == sorted(imp, key=lambda k: -imp[k]) and set(imp) == set(schema.FEATURES)
    att = explainers["challenger"].attribute(customers)
    assert imp["Contract"] == pytest.approx(np.abs(att.points[:, schema.FEATURES.index("Contract")]).mean())
    bar = explain.importance_figure(imp)
    assert bar.data[0].type == "bar" and list(bar.data[0].y) == list(imp)


def test_unsupported_models_are_named(prepared):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline

    X, y = data.xy(prepared[0])
    pipe = Pipeline([("preprocess", features.preprocessor()), ("model", KNeighborsClassifier())]).fit(X, y)
    with pytest.raises(explain.ExplainError, match="cannot explain a KNeighborsClassifier"):
        explain.Explainer(pipe)


def test_month_to_month_fiber_customers_are_driven_by_contract(real_csv, root):
    """Behaviour on the real Telco data: for month-to-month fiber customers, Contract is a top driver
    and always raises the risk."""
    from churn.params import load_params

    df, _ = data.load_clean(real_csv)
    train, test = data.split(df, test_size=0.2, seed=42)
    spec = load_params(root / "params.yaml")["models"]["challenger"]
    X, y = data.xy(train)
    ex = explain.Explainer(model.build("challenger", spec, seed=42).fit(X, y))
    Xt = data.xy(test)[0]
    group = Xt[(Xt["Contract"] == "Month-to-month") & (Xt["InternetService"] == "Fiber optic")]
    att = ex.attribute(group)
    j = schema.FEATURES.index("Contract")
    rank = (np.abs(att.points) > np.abs(att.points[:, [j]])).sum(axis=1)
    assert len(group) > 200
    assert (rank < 3).mean() >= 0.95
    assert (att.points[:, j] > 0).all()
    two_year = group.assign(Contract="Two year")
    assert (ex.attribute(two_year).probability <= att.probability + 1e-12).mean() >= 0.95
