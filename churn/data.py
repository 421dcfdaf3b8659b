"""Read the raw Telco CSV, clean its real quirks, and split it stratified by seed."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from churn import schema

log = logging.getLogger(__name__)


class DataError(ValueError):
    """The input file cannot be read as a Telco CSV; the message names the file and the rule."""


def read_raw(path: str | Path, key: str | None = None) -> pd.DataFrame:
    """Read a Telco-format CSV exactly as text columns (no type guessing), checking it is a CSV.

    `key` names the setting the path came from, for the error message (e.g. "params.yaml: data.raw").
    """
    path = Path(path)
    if not path.exists():
        hint = f" (check {key})" if key else ""
        raise DataError(f"{path}: input file not found{hint}")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from exc
    return df


def clean(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Typed, cleaned copy of a validated raw frame, and how many rows were fixed.

    Fix: a blank TotalCharges (a customer in the first month, tenure 0) becomes 0.0 — nothing
    has been billed yet. Churn becomes 1/0; SeniorCitizen and tenure integers.
    """
    out = df.copy()
    features = coerce_features(out)
    fixed = int(_blank_total(df).sum())
    for col in schema.FEATURES:
        out[col] = features[col]
    if schema.TARGET in out:
        out[schema.TARGET] = (out[schema.TARGET].astype(str) == "Yes").astype("int64")
    cols = [c for c in schema.COLUMNS if c in out.columns]
    return out[cols].reset_index(drop=True), fixed


def _blank_total(df: pd.DataFrame) -> pd.Series:
    raw = df["TotalCharges"]
    return raw.isna() | raw.astype("string").str.strip().eq("").fillna(True)


def coerce_features(df: pd.DataFrame) -> pd.DataFrame:
    """The 19 features with model dtypes: numbers as float/int, categories as strings.

    This is the first step of every model pipeline, so raw CSV rows (TotalCharges blank) and
    prepared rows go through the same code. Values that are not numbers become NaN.
    """
    columns: dict[str, pd.Series] = {}
    for col in schema.FEATURES:
        values = df[col]
        if col in schema.NUMERIC_FEATURES:
            num = pd.to_numeric(values, errors="coerce").astype("float64")
            if col == "TotalCharges":
                tenure = pd.to_numeric(df["tenure"], errors="coerce")
                num = num.mask(num.isna() & tenure.eq(0) & _blank_total(df), 0.0)
            columns[col] = num
        else:
            columns[col] = values.astype("object").where(values.notna(), np.nan)
    return pd.DataFrame(columns, index=df.index)


def split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split on the target, reproducible by seed."""
    if not 0 < test_size < 1:
        raise ValueError(f"prepare.test_size must be between 0 and 1, got {test_size}")
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=df[schema.TARGET])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def load_clean(path: str | Path, key: str | None = None) -> tuple[pd.DataFrame, int]:
    """Read, validate and clean a raw CSV; raise DataError/SchemaError naming file and rule."""
    df = read_raw(path, key)
    schema.validate(df, source=str(path))
    return clean(df)


def xy(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Features (the 19 raw columns) and the 0/1 target of a prepared frame."""
    return df[list(schema.FEATURES)], df[schema.TARGET].to_numpy(dtype="int64")


def summary(
    df: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, *, fixed: int, input_md5: str, input_path: str
) -> dict:
    """The `metrics/data.json` figures: rows, churn rates, rows fixed and the input's hash."""
    return {
        "input": {"path": str(input_path), "md5": input_md5},
        "rows": {"total": len(df), "train": len(train), "test": len(test), "fixed": fixed},
        "churn_rate": {
            "total": float(df[schema.TARGET].mean()),
            "train": float(train[schema.TARGET].mean()),
            "test": float(test[schema.TARGET].mean()),
        },
    }
