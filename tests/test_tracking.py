"""MLflow tracking: one complete run per model, loadable, linked to commit, experiment and data."""

from __future__ import annotations

import numpy as np

from churn import data, registry


def test_log_model_run_is_complete_and_loadable(isolated_env, fitted, prepared, monkeypatch, root, tmp_path):
    import mlflow

    monkeypatch.setenv("DVC_EXP_NAME", "exp-42")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "roc.json").write_text("[]")
    X = data.xy(prepared[1])[0]
    run_id = registry.log_model_run(
        model_name="challenger",
        pipeline=fitted,
        spec={"estimator": "logistic_regression", "params": {"C": 0.5}},
        metrics={
            "test": {"roc_auc": 0.81, "n": 10, "missing": float("nan")},
            "cv": {"accuracy": {"mean": 0.8}},
        },
        example=X.head(5),
        tags=registry.run_tags("challenger", "d41d8cd98f00b204e9800998ecf8427e", root),
        artifacts=[plots],
        root=root,
    )
    mlflow.set_tracking_uri(registry.tracking_uri())
    run = mlflow.get_run(run_id)
    assert run.data.params == {"estimator": "logistic_regression", "C": "0.5"}
    assert run.data.metrics["test.roc_auc"] == 0.81 and run.data.metrics["cv.accuracy.mean"] == 0.8
    assert "test.missing" not in run.data.metrics
    tags = run.data.tags
    assert tags["dvc_exp_name"] == "exp-42" and tags["data_md5"].startswith("d41d8")
    assert len(tags["git_commit"]) == 40 and tags["model_name"] == "challenger"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert "plots" in artifacts

    loaded = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    np.testing.assert_allclose(loaded.predict_proba(X), fitted.predict_proba(X))
    info = mlflow.models.get_model_info(f"runs:/{run_id}/model")
    assert info.signature is not None and "tenure" in str(info.signature.inputs)


def test_tracking_uri_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert registry.tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert registry.tracking_uri(tmp_path) == "http://127.0.0.1:5999"


def test_pinned_requirements_follow_the_lock(root):
    pins = registry.pinned_requirements(root / "requirements.txt")
    lock = set((root / "requirements.txt").read_text().splitlines())
    assert pins and all(pin in lock for pin in pins)
    assert any(p.startswith("scikit-learn==") for p in pins)
