"""The churn Pipeline as a standard MLflow model whose pyfunc answers `churn_probability`.

One logged model directory holds two flavors over the same cloudpickled Pipeline (`model.pkl`):

- `sklearn`: `mlflow.sklearn.load_model(uri)` gives the fitted Pipeline back (SHAP, `predict_proba`),
  as does `mlflow.pyfunc.load_model(uri).get_raw_model()`;
- `python_function`, loaded by this module (`loader_module: churn.mlflow_model`, the `churn`
  package shipped in the model's `code/`): `mlflow.pyfunc.load_model(uri).predict(df)` returns a
  DataFrame with one float64 column `churn_probability` = `pipeline.predict_proba(df)[:, 1]`.
  `mlflow models serve` answers `{"predictions": [{"churn_probability": p}, ...]}`.

Signature: inputs are the 19 raw Telco features as `string` (required) plus an optional `string`
`customerID` (ignored by the model), so rows read from the CSV with `dtype=str,
keep_default_na=False` pass, blank `TotalCharges` included; any other column (e.g. `Churn`) is
dropped by MLflow with a warning. Output: `churn_probability` (double). Numbers given as numbers
work where they arrive as Python numbers (JSON `dataframe_split` / `dataframe_records` bodies, an
object-dtype frame); MLflow's schema enforcement refuses numeric-dtype columns (int64, float64)
for a `string` input, so pass a typed frame as `csv_form(frame)` (or `frame.astype(object)`).

Evaluation: MLflow's built-in `classifier` evaluator reads probabilities only from the raw model
of the `mlflow.sklearn` / `xgboost` / `catboost` loaders and treats any other pyfunc's `predict`
output as class labels, so it cannot score this model. The standard way for a probability
output is `model_type=None` with `extra_metrics`::

    mlflow.models.evaluate(
        "models:/churn-model@champion", data=rows, targets="Churn",
        model_type=None, extra_metrics=evaluation_metrics(threshold),
    )

where `rows` are raw features (e.g. `csv_form(test)`) plus the target (0/1, "0"/"1" or "No"/"Yes").
`evaluation_metrics` computes `churn.metrics.classification` on the model's probabilities, so the
`roc_auc` (and accuracy, precision, recall, f1, pr_auc, log_loss, brier) it logs equal the
`evaluate` stage's figures for the same rows.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churn import metrics, schema

if TYPE_CHECKING:
    from mlflow.models import EvaluationMetric, ModelSignature
    from mlflow.models.model import ModelInfo

log = logging.getLogger(__name__)

#: The one output column of the pyfunc model.
OUTPUT = "churn_probability"
#: Metrics `evaluation_metrics` offers to `mlflow.models.evaluate`: name → greater is better.
EVALUATED = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "pr_auc": True,
    "log_loss": False,
    "brier": False,
}
_YES_NO = {"0": 0, "1": 1, "No": 0, "Yes": 1}


def csv_form(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as a CSV gives it back: every value text, a missing value the empty string, and
    whole-number float columns (tenure, SeniorCitizen of a prepared split) written as integers."""
    whole = [
        c
        for c in frame.select_dtypes("float").columns
        if np.array_equal(frame[c].dropna(), frame[c].dropna().round())
    ]
    text = frame.astype(dict.fromkeys(whole, "Int64")).to_csv(index=False)
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[])


def signature() -> ModelSignature:
    """The ModelSignature: 19 raw features + optional customerID as strings in, a double out."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    inputs = [ColSpec("string", name) for name in schema.FEATURES]
    inputs.append(ColSpec("string", schema.ID, required=False))
    return ModelSignature(inputs=Schema(inputs), outputs=Schema([ColSpec("double", OUTPUT)]))


def log_pipeline(
    pipeline: Any, example: pd.DataFrame, *, pip_requirements: list[str], code_paths: list[str]
) -> ModelInfo:
    """Log `pipeline` as the model `model` of the active run; return its `ModelInfo`.

    `example` rows (raw or prepared) become the input example in CSV form; `code_paths` must
    include the `churn` package, which loads the pyfunc flavor.
    """
    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name="model",
        flavor=sys.modules[__name__],
        pipeline=pipeline,
        example=example,
        pip_requirements=pip_requirements,
        code_paths=code_paths,
    )


def save_model(
    pipeline: Any,
    path: str,
    *,
    example: pd.DataFrame,
    pip_requirements: list[str],
    code_paths: list[str],
    mlflow_model: Any = None,
) -> None:
    """Write the model directory at `path` (the flavor hook `mlflow.models.Model.log` calls)."""
    import mlflow.sklearn
    from mlflow import pyfunc
    from mlflow.models import Model

    mlflow_model = Model() if mlflow_model is None else mlflow_model
    mlflow.sklearn.save_model(
        pipeline,
        path,
        mlflow_model=mlflow_model,
        signature=signature(),
        input_example=csv_form(example[list(schema.FEATURES)].head(3)),
        pip_requirements=pip_requirements,
        code_paths=code_paths,
        serialization_format="cloudpickle",  # tree models fail skops
    )
    env = mlflow_model.flavors[pyfunc.FLAVOR_NAME]["env"]
    pyfunc.add_to_model(  # replaces the sklearn flavor's pyfunc entry (which answers 0/1 labels)
        mlflow_model,
        loader_module=__name__,
        code=mlflow_model.flavors["sklearn"].get("code"),
        conda_env=env["conda"],
        python_env=env["virtualenv"],
    )
    mlflow_model.save(os.path.join(path, "MLmodel"))


class ChurnProbability:
    """The pyfunc implementation: a fitted Pipeline's churn probability as a one-column DataFrame."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def get_raw_model(self) -> Any:
        """The fitted scikit-learn Pipeline."""
        return self.pipeline

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        proba = self.pipeline.predict_proba(frame)[:, 1]
        return pd.DataFrame({OUTPUT: np.asarray(proba, dtype="float64")}, index=frame.index)


def _load_pyfunc(path: str) -> ChurnProbability:
    """Called by `mlflow.pyfunc.load_model` with the local model directory."""
    import mlflow.sklearn

    return ChurnProbability(mlflow.sklearn.load_model(path))


def evaluation_metrics(threshold: float = 0.5) -> list[EvaluationMetric]:
    """`extra_metrics` for `mlflow.models.evaluate(model_type=None)`: `churn.metrics` figures."""
    from mlflow.models import make_metric

    return [
        make_metric(eval_fn=_scorer(name, threshold), greater_is_better=better, name=name)
        for name, better in EVALUATED.items()
    ]


def _scorer(name: str, threshold: float):
    def eval_fn(predictions: pd.Series, targets: pd.Series) -> float:
        return metrics.classification(_labels(targets), np.asarray(predictions, dtype=float), threshold)[name]

    return eval_fn


def _labels(targets: Any) -> np.ndarray:
    """0/1 labels from 0/1 numbers, "0"/"1" or "No"/"Yes"."""
    values = pd.Series(np.asarray(targets))
    if values.dtype.kind in "biuf":
        return values.to_numpy(dtype=int)
    mapped = values.astype(str).str.strip().map(_YES_NO)
    if mapped.isna().any():
        bad = values[mapped.isna()].iloc[0]
        raise ValueError(f"{schema.TARGET}: must be 0/1 or 'No'/'Yes', got {bad!r}")
    return mapped.to_numpy(dtype=int)
