"""model_ref.resolve_model: a name, a path, a missing file, an untrusted place, an MLflow URI."""

from __future__ import annotations

import shutil
from pathlib import Path

import joblib
import pytest

from churn.io import UntrustedModelError, file_md5
from churn.model_ref import resolve_model


@pytest.fixture()
def project(tmp_path, fitted) -> Path:
    """A project without dvc.lock whose models/ folder holds the small fitted pipeline as champion."""
    root = tmp_path / "project"
    (root / "models").mkdir(parents=True)
    joblib.dump(fitted, root / "models" / "champion.joblib")
    return root


def test_a_name_is_the_models_file_and_its_version_the_md5(project):
    pipeline, name, version = resolve_model("champion", project)
    assert name == "champion"
    assert version == f"md5:{file_md5(project / 'models' / 'champion.joblib')[:12]}"
    assert hasattr(pipeline, "predict_proba")


def test_a_relative_joblib_path_is_read_from_the_project_not_the_cwd(project, tmp_path, monkeypatch):
    shutil.copy2(project / "models" / "champion.joblib", project / "models" / "v2.joblib")
    monkeypatch.chdir(tmp_path)  # models/v2.joblib does not exist here
    _, name, version = resolve_model("models/v2.joblib", project)
    assert name == "v2" and version.startswith("md5:")


def test_an_unknown_name_is_not_found_with_the_path_it_looked_for(project):
    with pytest.raises(FileNotFoundError, match=r"models/nobody\.joblib: model not found"):
        resolve_model("nobody", project)


def test_a_file_outside_models_needs_trust(project, tmp_path):
    outside = tmp_path / "elsewhere" / "m.joblib"
    outside.parent.mkdir()
    shutil.copy2(project / "models" / "champion.joblib", outside)
    with pytest.raises(UntrustedModelError, match="--trust-model"):
        resolve_model(str(outside), project)
    _, name, _ = resolve_model(str(outside), project, trust=True)
    assert name == "m"


def test_a_joblib_that_is_no_classifier_is_refused(project):
    joblib.dump({"not": "a model"}, project / "models" / "odd.joblib")
    with pytest.raises(ValueError, match=r"odd\.joblib: not a fitted classifier pipeline"):
        resolve_model("odd", project)


def test_an_mlflow_uri_that_does_not_exist_is_not_found_naming_the_store(project, isolated_env):
    with pytest.raises(
        FileNotFoundError, match=r"models:/nobody@champion: cannot load this model from MLflow at sqlite:"
    ):
        resolve_model("models:/nobody@champion", project)
