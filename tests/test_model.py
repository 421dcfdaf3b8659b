"""Estimator families from params, and behavioural tests of trained models on the real data."""

from __future__ import annotations

import joblib
import numpy as np
import pytest

from churn import data, features, model, schema
from churn.params import ParamsError, load_params

CHAMPION = {"estimator": "random_forest", "params": {"n_estimators": 100}}


@pytest.fixture(scope="module")
def real_split(real_csv):
    df, _ = data.load_clean(real_csv)
    return data.split(df, test_size=0.2, seed=42)


@pytest.fixture(scope="module", params=["champion", "challenger"])
def real_model(request, real_split, root):
    spec = load_params(root / "params.yaml")["models"][request.param]
    X, y = data.xy(real_split[0])
    return request.param, model.build(request.param, spec, seed=42).fit(X, y)


@pytest.mark.parametrize("family", sorted(model.FAMILIES))
def test_every_family_builds_fits_and_predicts(family, prepared):
    X, y = data.xy(prepared[0])
    pipe = model.build("m", {"estimator": family, "params": {}}, seed=1).fit(X, y)
    proba = pipe.predict_proba(data.xy(prepared[1])[0])[:, 1]
    assert proba.shape == (len(prepared[1]),) and ((proba >= 0) & (proba <= 1)).all()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"estimator": "xgboost"}, "models.m.estimator: must be one of extra_trees, "),
        (
            {"estimator": "random_forest", "params": {"n_trees": 5}},
            "models.m.params.n_trees: unknown hyperparameter",
        ),
        (
            {"estimator": "random_forest", "params": {"n_estimators": -5}},
            "models.m.params.n_estimators: must be an int in the range [1, inf) (got -5)",
        ),
        (
            {"estimator": "random_forest", "params": [1]},
            "models.m.params: must be a mapping of hyperparameter",
        ),
        ({"params": {}}, "models.m.estimator: is missing"),
        (
            {"estimator": "random_forest", "extra": 1},
            "models.m.extra: unknown key (allowed: estimator, params)",
        ),
    ],
)
def test_bad_specs_name_key_and_rule(spec, message):
    with pytest.raises(ParamsError, match="params.yaml") as info:
        model.build("m", spec, seed=0)
    assert message in str(info.value)


def test_fit_reports_cross_validation(prepared):
    X, y = data.xy(prepared[0])
    _, report = model.fit("m", {"estimator": "logistic_regression", "params": {}}, X, y, seed=0, cv_folds=3)
    assert report["cv_folds"] == 3 and report["n_rows"] == len(X)
    assert set(report["cv"]) == set(model.CV_SCORING)
    assert 0.6 < report["cv"]["roc_auc"]["mean"] <= 1


def test_same_seed_same_bytes(prepared, tmp_path):
    X, y = data.xy(prepared[0])
    paths = []
    for i in range(2):
        pipe = model.build("m", CHAMPION, seed=3).fit(X, y)
        paths.append(tmp_path / f"m{i}.joblib")
        joblib.dump(pipe, paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()


def test_pipeline_takes_raw_csv_rows_with_blank_total_charges(fitted, synthetic_raw):
    raw = synthetic_raw.head(20).copy()
    raw.loc[0, "tenure"], raw.loc[0, "TotalCharges"] = "0", " "
    proba = fitted.predict_proba(raw.drop(columns=["Churn"]))[:, 1]
    assert np.isfinite(proba).all()


def test_unknown_levels_and_missing_values_do_not_crash(fitted, prepared):
    X = data.xy(prepared[1])[0].head(10).copy()
    X.loc[X.index[0], "Contract"] = "Ten year"
    X.loc[X.index[1], "tenure"] = np.nan
    X.loc[X.index[2], "PaymentMethod"] = np.nan
    assert np.isfinite(fitted.predict_proba(X)[:, 1]).all()


def test_feature_importance_covers_original_features(fitted, prepared):
    X, y = data.xy(prepared[1])
    imp = model.feature_importance(fitted, X, y, seed=0, repeats=2)
    assert list(imp) and set(imp) == set(schema.FEATURES)
    assert list(imp.values()) == sorted(imp.values(), reverse=True)


def test_permutation_importance_equals_one_predict_per_shuffle(fitted, prepared):
    """Shuffled copies are scored in stacked batches (in threads); the drops equal a plain loop."""
    from sklearn.metrics import roc_auc_score

    X, y = data.xy(prepared[1])
    batched = model.feature_importance(fitted, X, y, seed=3, repeats=2)
    encoded = np.asarray(fitted[:-1].transform(X), dtype=float)
    names = fitted[:-1].get_feature_names_out()
    base = roc_auc_score(y, fitted[-1].predict_proba(encoded)[:, 1])
    rng = np.random.default_rng(3)
    for col in X.columns:
        cols = [i for i, n in enumerate(names) if features.original_feature(n) == col]
        scores = []
        for _ in range(2):
            shuffled = encoded.copy()
            shuffled[:, cols] = encoded[rng.permutation(len(encoded))][:, cols]
            scores.append(roc_auc_score(y, fitted[-1].predict_proba(shuffled)[:, 1]))
        assert batched[col] == float(base - np.mean(scores)), col


def test_fit_after_threaded_folds_equals_a_plain_fit(prepared):
    """The CV folds run in threads; nothing of theirs leaks into the fitted model: the same bytes."""
    import io

    X, y = data.xy(prepared[0].head(600))
    spec = {"estimator": "random_forest", "params": {"n_estimators": 10}}
    fitted, report = model.fit("m", spec, X, y, seed=4, cv_folds=3)
    plain = model.build("m", spec, seed=4).fit(X, y)
    dumps = [io.BytesIO(), io.BytesIO()]
    joblib.dump(fitted, dumps[0])
    joblib.dump(plain, dumps[1])
    assert report["cv_folds"] == 3
    assert dumps[0].getvalue() == dumps[1].getvalue()


# ---- behavioural tests on models trained on the real data -------------------------------------


def test_real_holdout_quality(real_model, real_split):
    name, pipe = real_model
    X, y = data.xy(real_split[1])
    from sklearn.metrics import accuracy_score, roc_auc_score

    proba = pipe.predict_proba(X)[:, 1]
    assert roc_auc_score(y, proba) > 0.80, name
    assert accuracy_score(y, proba >= 0.5) > 0.77, name


def test_month_to_month_at_least_as_risky_as_two_year(real_model, real_split):
    _, pipe = real_model
    X = data.xy(real_split[1])[0].head(300)
    m2m = pipe.predict_proba(X.assign(Contract="Month-to-month"))[:, 1]
    two = pipe.predict_proba(X.assign(Contract="Two year"))[:, 1]
    assert (m2m >= two - 1e-9).mean() >= 0.95
    assert m2m.mean() > two.mean() + 0.05


def test_customer_id_never_changes_a_prediction(real_model, real_split):
    _, pipe = real_model
    test = real_split[1].head(100)
    X = test.drop(columns=["Churn"])
    shuffled = X.assign(customerID=X["customerID"].sample(frac=1, random_state=0).to_numpy())
    np.testing.assert_array_equal(pipe.predict_proba(X), pipe.predict_proba(shuffled))
    np.testing.assert_array_equal(pipe.predict_proba(X), pipe.predict_proba(X.drop(columns=["customerID"])))


def test_encoded_permutation_equals_raw_column_permutation(fitted, prepared):
    """Shuffling a feature's encoded columns together is exactly shuffling its raw column."""
    from sklearn.metrics import roc_auc_score

    X, y = data.xy(prepared[1])
    fast = model.feature_importance(fitted, X, y, seed=5, repeats=1)
    rng = np.random.default_rng(5)
    base = roc_auc_score(y, fitted.predict_proba(X)[:, 1])
    for col in X.columns:
        shuffled = X.copy()
        shuffled[col] = X[col].to_numpy()[rng.permutation(len(X))]
        slow = base - roc_auc_score(y, fitted.predict_proba(shuffled)[:, 1])
        assert fast[col] == pytest.approx(slow, abs=1e-12), col
