"""The one preprocessing: raw Telco columns → model matrix (coerce, impute, scale, one-hot)."""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from churn import schema
from churn.data import coerce_features


def _coerce(df: pd.DataFrame) -> pd.DataFrame:
    return coerce_features(df)


def coercer() -> FunctionTransformer:
    """Step that accepts raw CSV rows (text numbers, blank TotalCharges, extra columns)."""
    return FunctionTransformer(_coerce, feature_names_out="one-to-one", validate=False)


def preprocessor(scale: bool = True) -> Pipeline:
    """Coerce, then impute (median / most frequent), scale numbers, one-hot categories.

    Unknown category levels encode as all-zeros instead of failing, and NaN inputs are imputed,
    so a served model never crashes on a value it has not seen.
    """
    numeric = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric.append(("scale", StandardScaler()))
    columns = ColumnTransformer(
        [
            ("num", Pipeline(numeric), list(schema.NUMERIC_FEATURES)),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                list(schema.CATEGORICAL_FEATURES),
            ),
        ],
        verbose_feature_names_out=True,
    )
    return Pipeline([("coerce", coercer()), ("columns", columns)])


def original_feature(transformed_name: str) -> str:
    """Map a transformed column name ('cat__Contract_Two year') back to its original feature."""
    _, _, rest = transformed_name.partition("__")
    if rest in schema.FEATURES:
        return rest
    for col in sorted(schema.CATEGORICAL_FEATURES, key=len, reverse=True):
        if rest.startswith(col + "_"):
            return col
    raise KeyError(f"cannot map transformed column '{transformed_name}' to a Telco feature")
