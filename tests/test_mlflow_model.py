"""The registered model is a standard MLflow model: pyfunc and `mlflow models serve` answer
`churn_probability` for raw CSV rows, and `mlflow.models.evaluate` reproduces the project's ROC-AUC."""

from __future__ import annotations

import contextlib
import io
import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn import data, metrics, registry, schema, tracking
from churn import mlflow_model as mm
from tests.fixtures import VENV_BIN
from tests.fixtures.servers import free_port, started_server

pytestmark = pytest.mark.slow

REGISTERED = "churn-model-test"
CHAMPION_URI = f"models:/{REGISTERED}@{registry.CHAMPION}"


@pytest.fixture(scope="module")
def store(tmp_path_factory, fitted, prepared, root):
    """A SQLite MLflow store (cwd: its artifact root) where `fitted`, logged by the pipeline's
    `tracking.log_model_run`, is version 1 of REGISTERED with alias `champion`. Yields the store dir."""
    import mlflow

    workdir = tmp_path_factory.mktemp("mlflow-model")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workdir / 'mlflow.db'}")
        mp.chdir(workdir)  # MLflow's default artifact root is ./mlruns
        with registry.quiet_mlflow_logs():
            run_id = tracking.log_model_run(
                model_name="challenger",
                pipeline=fitted,
                spec={"estimator": "logistic_regression", "params": {}},
                metrics={"test": {"roc_auc": 0.8}},
                example=data.xy(prepared[1])[0].head(5),
                tags=tracking.run_tags("challenger", "0" * 32, root),
                root=workdir,
            )
        client = mlflow.MlflowClient()
        model_id = client.get_run(run_id).outputs.model_outputs[0].model_id
        client.create_registered_model(REGISTERED)
        version = client.create_model_version(
            REGISTERED, source=f"models:/{model_id}", run_id=run_id, model_id=model_id
        )
        client.set_registered_model_alias(REGISTERED, registry.CHAMPION, version.version)
        yield workdir


@pytest.fixture(scope="module")
def raw_rows(prepared) -> pd.DataFrame:
    """The test split as a raw CSV gives it (all text, customerID and Churn included), with two
    blank TotalCharges: a new customer (tenure 0) and one whose total is missing (tenure 5)."""
    buffer = io.StringIO()
    prepared[1].to_csv(buffer, index=False)
    rows = pd.read_csv(io.StringIO(buffer.getvalue()), dtype=str, keep_default_na=False)
    rows.loc[0, ["tenure", "TotalCharges"]] = ["0", ""]
    rows.loc[1, ["tenure", "TotalCharges"]] = ["5", ""]
    return rows


def _proba(pipeline, frame: pd.DataFrame) -> np.ndarray:
    return pipeline.predict_proba(frame[list(schema.FEATURES)])[:, 1]


def test_registered_champion_answers_churn_probability(store, fitted, raw_rows):
    import mlflow
    from mlflow.types import DataType

    model = mlflow.pyfunc.load_model(CHAMPION_URI)
    assert model.loader_module == "churn.mlflow_model"
    out = model.predict(raw_rows)  # customerID (declared, optional) and Churn (dropped) included

    assert isinstance(out, pd.DataFrame) and list(out.columns) == [mm.OUTPUT]
    assert out[mm.OUTPUT].dtype == np.float64 and len(out) == len(raw_rows)
    np.testing.assert_allclose(out[mm.OUTPUT].to_numpy(), _proba(fitted, raw_rows), rtol=0, atol=1e-9)
    assert out[mm.OUTPUT].between(0, 1).all() and out[mm.OUTPUT].nunique() > 10

    sig = mlflow.models.get_model_info(CHAMPION_URI).signature
    inputs = {c.name: c for c in sig.inputs.inputs}
    assert set(inputs) == {*schema.FEATURES, schema.ID}
    assert all(c.type == DataType.string for c in inputs.values())
    assert all(inputs[f].required for f in schema.FEATURES) and not inputs[schema.ID].required
    assert [(c.name, c.type) for c in sig.outputs.inputs] == [(mm.OUTPUT, DataType.double)]

    pipeline = mlflow.sklearn.load_model(CHAMPION_URI)  # serving's SHAP path still gets the Pipeline
    np.testing.assert_array_equal(_proba(pipeline, raw_rows), _proba(fitted, raw_rows))
    raw = model.get_raw_model()
    assert type(raw) is type(fitted)
    np.testing.assert_array_equal(_proba(raw, raw_rows), _proba(fitted, raw_rows))


def test_blank_total_and_numbers_work_through_pyfunc(store, fitted, raw_rows, prepared):
    import mlflow
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(CHAMPION_URI)
    X = data.xy(prepared[1])[0]
    # a blank TotalCharges at tenure 0 is a first-month customer: the same as a typed total of 0.0
    new = X.iloc[[0]].assign(tenure=0, TotalCharges=0.0)
    blank = model.predict(raw_rows.iloc[[0, 1]])[mm.OUTPUT].to_numpy()
    assert blank[0] == pytest.approx(_proba(fitted, new)[0], abs=1e-9)
    assert np.isfinite(blank[1]) and blank[1] == pytest.approx(
        _proba(fitted, raw_rows.iloc[[1]])[0], abs=1e-9
    )

    expected = _proba(fitted, X)
    as_csv = mm.csv_form(X)
    assert as_csv.loc[0, "tenure"] == str(int(X.loc[0, "tenure"]))  # "12", as the raw file writes it
    for frame in (X.astype(object), as_csv):  # numbers as Python numbers; the CSV form
        got = model.predict(frame)[mm.OUTPUT].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    # MLflow's schema enforcement refuses numeric dtypes for a string input: documented in mm
    with pytest.raises(MlflowException, match="SeniorCitizen"):
        model.predict(X)


def test_mlflow_evaluate_gives_the_projects_roc_auc(store, fitted, prepared):
    import mlflow

    X, y = data.xy(prepared[1])
    ours = metrics.classification(y, _proba(fitted, X), threshold=0.4)
    rows = mm.csv_form(X).assign(Churn=y)
    with mlflow.start_run() as run:
        result = mlflow.models.evaluate(
            CHAMPION_URI,
            data=rows,
            targets=schema.TARGET,
            model_type=None,
            extra_metrics=mm.evaluation_metrics(threshold=0.4),
        )
    assert 0.6 < ours["roc_auc"] < 1
    for name in mm.EVALUATED:
        assert result.metrics[name] == pytest.approx(ours[name], abs=1e-9), name
    assert mlflow.get_run(run.info.run_id).data.metrics["roc_auc"] == pytest.approx(ours["roc_auc"], abs=1e-9)

    # the raw CSV's "No"/"Yes" target works the same
    with mlflow.start_run():
        yes_no = rows.assign(Churn=np.where(y == 1, "Yes", "No"))
        again = mlflow.models.evaluate(
            CHAMPION_URI, data=yes_no, targets=schema.TARGET, extra_metrics=mm.evaluation_metrics()
        )
    assert again.metrics["roc_auc"] == pytest.approx(ours["roc_auc"], abs=1e-9)


@contextlib.contextmanager
def _served(model_uri: str, workdir: Path, timeout_s: float = 90):
    """`mlflow models serve` on 127.0.0.1 (local env); yields its URL once GET /ping answers."""
    port = free_port()
    cmd = [str(VENV_BIN / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    # the server execs `uvicorn` from PATH: the venv's bin must be on it
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path}
    url = f"http://127.0.0.1:{port}"
    with started_server(
        cmd, f"{url}/ping", cwd=workdir, env=env, log_path=workdir / f"serve-{port}.log", timeout=timeout_s
    ):
        yield url


def _post(url: str, body: bytes, content_type: str) -> dict:
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": content_type}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def _answer(payload: dict) -> np.ndarray:
    """The probabilities of an /invocations answer, checking its exact shape."""
    assert list(payload) == ["predictions"]
    assert all(list(p) == [mm.OUTPUT] for p in payload["predictions"])
    return np.array([p[mm.OUTPUT] for p in payload["predictions"]], dtype=float)


def test_mlflow_models_serve_answers_json_and_csv(store, fitted, raw_rows, prepared):
    customers = raw_rows.drop(columns=[schema.TARGET]).head(100)  # two blank TotalCharges among them
    expected = _proba(fitted, customers)
    typed = data.xy(prepared[1])[0].head(100)
    as_split = {"dataframe_split": json.loads(customers.to_json(orient="split", index=False))}
    numbers = {"dataframe_split": json.loads(typed.to_json(orient="split", index=False, double_precision=15))}
    assert isinstance(numbers["dataframe_split"]["data"][0][4], float)  # tenure sent as a JSON number

    with _served(CHAMPION_URI, store) as url:
        by_json = _answer(_post(url, json.dumps(as_split).encode(), "application/json"))
        by_csv = _answer(_post(url, customers.to_csv(index=False).encode(), "text/csv"))
        by_numbers = _answer(_post(url, json.dumps(numbers).encode(), "application/json"))

    assert len(by_json) == len(by_csv) == 100
    np.testing.assert_allclose(by_json, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(by_csv, expected, rtol=0, atol=1e-9)
    np.testing.assert_allclose(by_numbers, _proba(fitted, typed), rtol=0, atol=1e-9)
