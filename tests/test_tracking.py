"""MLflow tracking: one complete run per model, loadable, linked to commit, experiment and data."""

from __future__ import annotations

import json

import numpy as np

from churn import data, registry, tracking
from churn.io import file_md5


def test_log_model_run_is_complete_and_loadable(isolated_env, fitted, prepared, monkeypatch, root, tmp_path):
    import mlflow

    monkeypatch.setenv("DVC_EXP_NAME", "exp-42")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "roc.json").write_text("[]")
    X = data.xy(prepared[1])[0]
    run_id = tracking.log_model_run(
        model_name="challenger",
        pipeline=fitted,
        spec={"estimator": "logistic_regression", "params": {"C": 0.5}},
        metrics={
            "test": {"roc_auc": 0.81, "n": 10, "missing": float("nan")},
            "cv": {"accuracy": {"mean": 0.8}},
        },
        example=X.head(5),
        tags=tracking.run_tags("challenger", "d41d8cd98f00b204e9800998ecf8427e", root),
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
    pins = tracking.pinned_requirements(root / "requirements.txt")
    lock = set((root / "requirements.txt").read_text().splitlines())
    assert pins and all(pin in lock for pin in pins)
    assert any(p.startswith("scikit-learn==") for p in pins)


# -- idempotent tracking of the pipeline's outputs (`churn track`, the report stage) --------------


def _runs(root) -> list:
    mlflow_client = registry.client(root)
    exp = mlflow_client.get_experiment_by_name("churn")
    return mlflow_client.search_runs([exp.experiment_id], max_results=1000)


def _rebuild_challenger(root, monkeypatch, **hp) -> None:
    """Retrain the challenger with other hyperparameters and rerun every later stage (no tracking)."""
    import yaml

    from stages import ab_test, evaluate, report, robustness, train, validate_fairness

    params = yaml.safe_load((root / "params.yaml").read_text())
    params["models"]["challenger"]["params"].update(hp)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(root)
    train.main(["--name", "challenger"])
    evaluate.main(["--name", "challenger", "--no-mlflow"])
    validate_fairness.main([])
    robustness.main([])
    ab_test.main([])
    report.main(["--no-mlflow"])


def test_track_logs_each_build_once_and_follows_the_workspace(private_project, monkeypatch, capsys):
    from churn import cli, tracking

    with private_project("track") as root:
        before = _runs(root)
        assert sorted(r.data.tags["model_name"] for r in before) == ["challenger", "champion"]
        assert all(r.data.tags.get(tracking.KEY_TAG) for r in before)
        monkeypatch.chdir(root)
        assert cli.main(["track"]) == 0  # the report stage tracked this build already
        out = capsys.readouterr().out
        assert out.count("already tracked, nothing logged") == 2 and "aliases unchanged" in out
        assert len(_runs(root)) == 2
        assert registry.aliases(registry.client(root), "churn-model") == {"champion": "1", "challenger": "2"}

        _rebuild_challenger(root, monkeypatch, min_samples_leaf=5)
        result = tracking.track(root)
        assert result.logged == ["challenger"]  # the champion's build did not change
        assert result.aliases == {"challenger": "3"}
        runs = _runs(root)
        assert len(runs) == 3
        new = next(r for r in runs if r.info.run_id == result.runs["challenger"])
        assert new.data.params["min_samples_leaf"] == "5"
        assert new.data.tags["model_md5"] == file_md5(root / "models/challenger.joblib")
        assert (
            new.data.metrics["test.roc_auc"]
            == json.loads((root / "metrics/evaluate/challenger.json").read_text())["roc_auc"]
        )
        assert {"plots", "model_card.md"} <= {
            a.path for a in registry.client(root).list_artifacts(new.info.run_id)
        }
        assert new.outputs.model_outputs  # the model itself is a logged model of the run
        versions = {r["version"]: r for r in registry.list_versions("churn-model", root)}
        assert versions["2"]["status"] == "archived"
        assert versions["2"]["history"][-1]["why"] == "replaced as challenger by version 3"
        assert tracking.track(root).logged == []  # and again: nothing new
        assert len(_runs(root)) == 3


def test_an_experiment_logs_its_runs_but_moves_no_alias(private_project, monkeypatch):
    from churn import tracking

    with private_project("track-exp") as root:
        _rebuild_challenger(root, monkeypatch, min_samples_leaf=7)
        monkeypatch.setenv("DVC_EXP_NAME", "leafy-7")
        result = tracking.track(root)
        assert result.logged == ["challenger"] and result.aliases == {}
        assert any("leafy-7" in note and "aliases left as they are" in note for note in result.notes)
        assert registry.aliases(registry.client(root), "churn-model") == {"champion": "1", "challenger": "2"}
        run = registry.client(root).get_run(result.runs["challenger"])
        assert run.data.tags["dvc_exp_name"] == "leafy-7"


def test_aliases_follow_the_committed_dvc_lock(private_project, monkeypatch, sh, env_for):
    """With git, the challenger alias follows dvc.lock at HEAD, not an uncommitted workspace."""
    import yaml

    from churn import tracking

    with private_project("track-git") as root:
        env = env_for()
        md5 = {n: file_md5(root / f"models/{n}.joblib") for n in ("champion", "challenger")}
        lock = {
            "schema": "2.0",
            "stages": {
                f"train@{n}": {"outs": [{"path": f"models/{n}.joblib", "md5": m}]} for n, m in md5.items()
            },
        }
        (root / "dvc.lock").write_text(yaml.safe_dump(lock))
        sh(["git", "init", "-q", "-b", "main"], root, env)
        sh(["git", "add", "dvc.lock", "params.yaml"], root, env)
        sh(["git", "commit", "-qm", "baseline"], root, env)
        assert tracking.committed_models(root, root / "models") == (md5, "dvc.lock at git HEAD")

        _rebuild_challenger(root, monkeypatch, min_samples_leaf=9)
        result = tracking.track(root)
        assert result.logged == ["challenger"] and result.aliases == {}
        assert any("differs from dvc.lock at git HEAD" in note for note in result.notes)
        assert registry.aliases(registry.client(root), "churn-model")["challenger"] == "2"

        lock["stages"]["train@challenger"]["outs"][0]["md5"] = file_md5(root / "models/challenger.joblib")
        (root / "dvc.lock").write_text(yaml.safe_dump(lock))
        sh(["git", "commit", "-qam", "new challenger"], root, env)
        result = tracking.track(root)
        assert result.logged == [] and result.aliases == {"challenger": "3"}


def test_track_refuses_stale_outputs_and_a_dead_server(private_project, monkeypatch, capsys):
    import socket

    from churn import cli

    with private_project("track-bad") as root:
        monkeypatch.chdir(root)
        runs_before = len(_runs(root))
        with socket.socket() as sock:  # a port nobody listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        assert cli.main(["track"]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("churn ")]
        assert len(err) == 1 and err[0].startswith(
            f"churn track: cannot use the MLflow registry at http://127.0.0.1:{port}"
        )
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")

        (root / "models/challenger.joblib").write_bytes(
            (root / "models/challenger.joblib").read_bytes() + b"\0"
        )
        assert cli.main(["track"]) == 1
        err = capsys.readouterr().err
        assert "was built for another challenger model" in err and "run `dvc repro` first" in err
        assert len(_runs(root)) == runs_before


def test_track_against_a_tracking_server(private_project, mlflow_server, monkeypatch):
    from churn import tracking

    with private_project("track-server") as root:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        name = "churn-track-server"
        (root / "params.yaml").write_text((root / "params.yaml").read_text().replace("churn-model", name))
        first = tracking.track(root)
        assert sorted(first.logged) == ["challenger", "champion"]
        assert first.aliases == {"champion": "1", "challenger": "2"}
        assert first.tracking_uri == mlflow_server
        again = tracking.track(root)
        assert again.logged == [] and again.aliases == {} and again.runs == first.runs
        assert registry.aliases(registry.client(root), name) == {"champion": "1", "challenger": "2"}
