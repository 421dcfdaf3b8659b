"""The one preprocessing: raw CSV rows in, a numeric model matrix out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churn import data, features, schema


@pytest.fixture(scope="module")
def train_X(prepared) -> pd.DataFrame:
    return data.xy(prepared[0])[0]


def test_matrix_is_numeric_finite_and_has_one_column_per_number_and_level(train_X):
    pre = features.preprocessor().fit(train_X)
    matrix = pre.transform(train_X)
    levels = sum(train_X[c].nunique() for c in schema.CATEGORICAL_FEATURES)
    assert matrix.shape == (len(train_X), len(schema.NUMERIC_FEATURES) + levels)
    assert np.isfinite(matrix).all()


def test_numbers_are_standardised_only_when_asked(train_X):
    scaled = features.preprocessor(scale=True).fit_transform(train_X)[:, : len(schema.NUMERIC_FEATURES)]
    raw = features.preprocessor(scale=False).fit_transform(train_X)[:, : len(schema.NUMERIC_FEATURES)]
    assert np.allclose(scaled.mean(axis=0), 0, atol=1e-9)
    assert np.allclose(scaled.std(axis=0), 1, atol=1e-9)
    assert raw[:, list(schema.NUMERIC_FEATURES).index("tenure")].max() > 1


def test_raw_csv_strings_blank_total_charges_and_unseen_levels_are_accepted(train_X):
    pre = features.preprocessor().fit(train_X)
    row = train_X.head(1).astype(str).copy()
    row["TotalCharges"] = " "  # a blank, as the CSV has for new customers
    row["PaymentMethod"] = "Cryptocurrency"  # a level the model never saw
    row["extra"] = "ignored"
    out = pre.transform(row)
    assert np.isfinite(out).all()
    names = list(pre.get_feature_names_out())
    payment = [i for i, n in enumerate(names) if features.original_feature(n) == "PaymentMethod"]
    assert out[0, payment].sum() == 0  # an unseen level encodes as all zeros
    median = float(pd.to_numeric(train_X["TotalCharges"], errors="coerce").median())
    total = (
        features.preprocessor(scale=False)
        .fit(train_X)
        .transform(row)[0, list(schema.NUMERIC_FEATURES).index("TotalCharges")]
    )
    assert total == pytest.approx(median)  # blank imputed with the train median


def test_every_transformed_column_maps_back_to_its_feature(train_X):
    names = features.preprocessor().fit(train_X).get_feature_names_out()
    owners = {features.original_feature(n) for n in names}
    assert owners == set(schema.FEATURES)
    with pytest.raises(KeyError, match="cannot map transformed column 'cat__Nope_1'"):
        features.original_feature("cat__Nope_1")
