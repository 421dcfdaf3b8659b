"""The compiled forest: the same churn probabilities as scikit-learn, bit for bit, without its per-tree overhead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn import compiled, data, model, schema
from churn.serving import Predictor


@pytest.fixture(scope="module")
def split(prepared):
    X, y = data.xy(prepared[0])
    return X, y, data.xy(prepared[1])[0]


def _fit(spec: dict, split) -> object:
    X, y, _ = split
    return model.build("m", spec, seed=3).fit(X, y)


@pytest.mark.parametrize(
    "spec",
    [
        {"estimator": "random_forest", "params": {"n_estimators": 40}},  # unlimited depth
        {"estimator": "random_forest", "params": {"n_estimators": 60, "min_samples_leaf": 20}},
        {"estimator": "extra_trees", "params": {"n_estimators": 30, "max_depth": 6}},
        {"estimator": "random_forest", "params": {"n_estimators": 25, "class_weight": "balanced"}},
    ],
    ids=["deep", "min-leaf-20", "extra-trees", "class-weights"],
)
def test_forest_equals_scikit_learn_bit_for_bit(spec, split):
    pipe = _fit(spec, split)
    forest = compiled.Forest.build(pipe[-1])
    assert forest is not None
    Xt = pipe[:-1].transform(split[2])
    for rows in (Xt[:1], Xt[:7], Xt[: compiled.Forest.MAX_ROWS]):
        assert np.array_equal(forest.proba(rows), pipe[-1].predict_proba(rows)[:, 1])
    # every row lands in a leaf of every tree, the leaf scikit-learn's own apply() finds
    assert np.array_equal(forest.leaves(Xt[:5]) - forest.roots, pipe[-1].apply(Xt[:5]))


def test_values_on_a_threshold_go_left_as_in_scikit_learn(split):
    """Inputs are rounded to float32 before the comparison, as the trees see them."""
    pipe = _fit({"estimator": "random_forest", "params": {"n_estimators": 20}}, split)
    est = pipe[-1]
    forest = compiled.Forest.build(est)
    Xt = pipe[:-1].transform(split[2].head(8))
    tree = est.estimators_[0].tree_
    j, t = int(tree.feature[0]), float(tree.threshold[0])
    edge = np.repeat(Xt[:1], 3, axis=0)
    edge[:, j] = [t, np.nextafter(t, np.inf), np.nextafter(np.float32(t), np.float32(np.inf))]
    assert np.array_equal(forest.proba(edge), est.predict_proba(edge)[:, 1])


def test_build_declines_what_it_cannot_reproduce(split):
    boosted = _fit({"estimator": "hist_gradient_boosting", "params": {"max_iter": 10}}, split)
    assert compiled.Forest.build(boosted[-1]) is None
    X, y, _ = split
    three_classes = model.build("m", {"estimator": "random_forest", "params": {"n_estimators": 5}}, 3)
    three_classes.fit(X, np.where(X["tenure"].astype(float) > 40, 2, y))
    assert compiled.Forest.build(three_classes[-1]) is None

    class OffByAnUlp(compiled.Forest):
        def proba(self, Xt):
            return np.nextafter(super().proba(Xt), 1.0)

    rf = _fit({"estimator": "random_forest", "params": {"n_estimators": 10}}, split)
    assert compiled.Forest.build(rf[-1]) is not None
    assert OffByAnUlp.build(rf[-1]) is None  # the self-check on probe rows refuses it


def test_predictor_uses_it_for_small_inputs_and_scikit_learn_for_large(split, synthetic_raw):
    pipe = _fit({"estimator": "random_forest", "params": {"n_estimators": 30, "min_samples_leaf": 5}}, split)
    predictor = Predictor(pipe, model_name="rf", log=False)
    assert predictor._forest is not None
    rows = synthetic_raw[list(schema.FEATURES)]
    few, many = rows.head(5), rows.head(compiled.Forest.MAX_ROWS + 50)
    assert np.array_equal(predictor.predict(few)["churn_probability"], pipe.predict_proba(few)[:, 1])
    assert np.array_equal(predictor.predict(many)["churn_probability"], pipe.predict_proba(many)[:, 1])
    customer = {**few.iloc[0].to_dict(), "tenure": 3, "MonthlyCharges": 89.1, "TotalCharges": 270.0}
    assessment = predictor.assess(customer)
    expected = pipe.predict_proba(pd.DataFrame([customer]))[0, 1]
    assert assessment.probability == expected
    points = sum(assessment.explanation.points.values()) / 100
    assert assessment.explanation.base_probability + points == pytest.approx(expected, abs=1e-9)
    for action in assessment.actions:
        changed = pd.DataFrame([{**customer, action.feature: action.proposed}])
        assert action.probability_after == pipe.predict_proba(changed)[0, 1]
