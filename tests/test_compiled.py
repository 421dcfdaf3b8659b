"""treelite's GTIL on the serving path: the same churn probabilities as scikit-learn, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from churn import compiled, data, model, schema
from churn.serving import Predictor


@pytest.fixture(scope="module")
def split(prepared):
    X, y = data.xy(prepared[0])
    return X, y, data.xy(prepared[1])[0]


def _fit(spec: dict, split) -> object:
    X, y, _ = split
    return model.build("m", spec, seed=3).fit(X, y)


def _edges(est, Xt: np.ndarray) -> np.ndarray:
    """Rows of `Xt` with one feature set on, one step below, one step above each threshold of the
    first split nodes, and at the threshold's float32 rounding (the trees compare float32 inputs)."""
    if isinstance(est, HistGradientBoostingClassifier):
        nodes = est._predictors[0][0].nodes
        inner = nodes["is_leaf"] == 0
        splits = zip(nodes["feature_idx"][inner], nodes["num_threshold"][inner], strict=True)
    else:
        tree = est.estimators_[0].tree_
        inner = tree.children_left >= 0
        splits = zip(tree.feature[inner], tree.threshold[inner], strict=True)
    rows = []
    for k, (j, t) in enumerate(list(splits)[:12]):
        edge = np.repeat(Xt[k % len(Xt)][None, :], 4, axis=0)
        edge[:, j] = [t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf), float(np.float32(t))]
        rows.append(edge)
    return np.vstack(rows)


SPECS = {
    "deep": {"estimator": "random_forest", "params": {"n_estimators": 40}},  # unlimited depth
    "min-leaf-20": {"estimator": "random_forest", "params": {"n_estimators": 60, "min_samples_leaf": 20}},
    "extra-trees": {"estimator": "extra_trees", "params": {"n_estimators": 30, "max_depth": 6}},
    "class-weights": {
        "estimator": "random_forest",
        "params": {"n_estimators": 25, "class_weight": "balanced"},
    },
    "extra-trees-subsample-weights": {
        "estimator": "extra_trees",
        "params": {"n_estimators": 20, "bootstrap": True, "class_weight": "balanced_subsample"},
    },
    "boosting": {"estimator": "hist_gradient_boosting", "params": {"max_iter": 60, "max_leaf_nodes": 15}},
    "boosting-weights": {
        "estimator": "hist_gradient_boosting",
        "params": {"max_iter": 30, "class_weight": "balanced", "learning_rate": 0.3},
    },
}


@pytest.mark.parametrize("name", list(SPECS))
def test_treelite_equals_scikit_learn_bit_for_bit(name, split):
    pipe = _fit(SPECS[name], split)
    est = pipe[-1]
    trees = compiled.Trees.for_pipeline(pipe)
    assert trees is not None
    assert trees.boosted == isinstance(est, HistGradientBoostingClassifier)
    Xt = pipe[:-1].transform(split[2])
    for rows in (Xt[:1], Xt[:7], Xt[: compiled.Trees.MAX_ROWS], Xt, _edges(est, Xt)):
        assert np.array_equal(trees.proba(rows), est.predict_proba(rows)[:, 1])


def test_gtils_own_boosting_sum_is_off_in_the_last_bits_so_the_check_refuses_it(split):
    """GTIL's plain `predict` adds gradient boosting's baseline after the trees, scikit-learn before:
    up to a few units in the last place apart. The load-time check is bit for bit, so it refuses
    that evaluator; `Trees` sums GTIL's per-tree scores in scikit-learn's order instead."""
    import treelite.gtil

    pipe = _fit(SPECS["boosting"], split)
    Xt = pipe[:-1].transform(split[2])

    class BaselineLast(compiled.Trees):
        def proba(self, Xt):
            return treelite.gtil.predict(self._model, np.asarray(Xt, dtype="float64"), nthread=1)[:, 0, 0]

    gap = np.abs(BaselineLast(pipe[-1]).proba(Xt) - pipe[-1].predict_proba(Xt)[:, 1])
    assert 0 < gap.max() <= 1e-15
    assert BaselineLast.build(pipe[-1]) is None
    assert compiled.Trees.build(pipe[-1]) is not None


def test_forest_inputs_are_rounded_to_float32_as_the_trees_see_them(split):
    """Without the rounding, values between a threshold and its float32 neighbour go the wrong way;
    the load-time check catches that on its threshold rows."""
    pipe = _fit({"estimator": "random_forest", "params": {"n_estimators": 20}}, split)

    class Unrounded(compiled.Trees):
        def proba(self, Xt):
            return self._predict(self._model, np.asarray(Xt, dtype="float64"), nthread=1)[:, 0, 1]

    assert Unrounded.build(pipe[-1]) is None
    assert compiled.Trees.build(pipe[-1]) is not None


def test_missing_values_follow_the_learned_direction():
    """Gradient boosting learns where NaN goes; forests send it where scikit-learn does."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 6))
    y = (X[:, 0] + X[:, 1] + rng.normal(size=600) > 0).astype(int)
    holes = X.copy()
    holes[rng.random(X.shape) < 0.2] = np.nan
    y[np.isnan(holes[:, 2])] = 1  # a missing value carries signal of its own
    test = rng.normal(size=(200, 6))
    test[rng.random(test.shape) < 0.3] = np.nan
    for est in (
        HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(holes, y),
        HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(X, y),  # NaN only when served
        RandomForestClassifier(30, random_state=0).fit(holes, y),
    ):
        trees = compiled.Trees.build(est)
        assert trees is not None and trees.missing
        assert trees.takes(test[:5])
        assert np.array_equal(trees.proba(test), est.predict_proba(test)[:, 1])


def test_build_declines_what_it_cannot_load_or_reproduce(split, nan_breaking_model):
    X, y, _ = split
    assert compiled.Trees.for_pipeline(nan_breaking_model) is None  # logistic regression
    three_classes = model.build("m", {"estimator": "random_forest", "params": {"n_estimators": 5}}, 3)
    three_classes.fit(X, np.where(X["tenure"].astype(float) > 40, 2, y))
    assert compiled.Trees.for_pipeline(three_classes) is None
    # Categories as text inside the estimator: treelite cannot load them, scikit-learn serves.
    frame = pd.DataFrame({"contract": X["Contract"].astype("category"), "tenure": X["tenure"].astype(float)})
    textual = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(frame, y)
    with pytest.raises(
        (NotImplementedError, ValueError)
    ):  # treelite 4.8: ValueError of int('Month-to-month')
        compiled.Trees(textual)
    assert compiled.Trees.build(textual) is None

    class OffByAnUlp(compiled.Trees):
        def proba(self, Xt):
            return np.nextafter(super().proba(Xt), 1.0)

    rf = _fit({"estimator": "random_forest", "params": {"n_estimators": 10}}, split)
    assert compiled.Trees.for_pipeline(rf) is not None
    assert OffByAnUlp.for_pipeline(rf) is None  # the self-check on probe rows refuses it


@pytest.mark.parametrize("name", ["min-leaf-20", "boosting"])
def test_predictor_uses_it_for_small_inputs_and_scikit_learn_for_large(name, split, synthetic_raw):
    pipe = _fit(SPECS[name], split)
    predictor = Predictor(pipe, model_name=name, log=False)
    assert predictor._trees is not None
    rows = synthetic_raw[list(schema.FEATURES)]
    few, many = rows.head(5), rows.head(compiled.Trees.MAX_ROWS + 50)
    assert predictor._trees.takes(pipe[:-1].transform(few))
    assert not predictor._trees.takes(pipe[:-1].transform(many))
    assert np.array_equal(predictor.predict(few)["churn_probability"], pipe.predict_proba(few)[:, 1])
    assert np.array_equal(predictor.predict(many)["churn_probability"], pipe.predict_proba(many)[:, 1])
    customer = {**few.iloc[0].to_dict(), "tenure": 3, "MonthlyCharges": 89.1, "TotalCharges": 270.0}
    assessment = predictor.assess(customer)
    expected = pipe.predict_proba(pd.DataFrame([customer]))[0, 1]
    assert assessment.probability == expected
    for action in assessment.actions:
        changed = pd.DataFrame([{**customer, action.feature: action.proposed}])
        assert action.probability_after == pipe.predict_proba(changed)[0, 1]
