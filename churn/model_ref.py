"""A model reference ('champion', 'challenger', a .joblib path or an MLflow URI) resolved to its pipeline."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from churn.io import read_model
from churn.paths import Layout

log = logging.getLogger(__name__)


def resolve_model(model: str, root: str | Path = ".", *, trust: bool = False) -> tuple[Any, str, str]:
    """Load a model: 'champion' / 'challenger' (models/<name>.joblib), a .joblib path, or an MLflow URI.

    Returns (pipeline, model name, model version). Version: the file's MD5 (the hash DVC records)
    for joblib files, the registry version or run id for MLflow models. A joblib file is checked
    before it is loaded (`churn.io.read_model`): the pipeline's models against dvc.lock; any other
    file only with `trust=True` (`--trust-model`). MLflow URIs come from the configured store.
    """
    root = Path(root)
    if model.startswith(("models:/", "runs:/")):
        return _load_mlflow(model, root)
    path = Path(model)
    if path.suffix != ".joblib" and not path.exists():
        path = Layout(root).model(model)
    elif not path.is_absolute() and not path.exists():
        path = root / path
    pipeline, md5 = read_model(path, root=root, trust=trust)
    if not hasattr(pipeline, "predict_proba"):
        raise ValueError(f"{path}: not a fitted classifier pipeline (no predict_proba)")
    return pipeline, path.stem, f"md5:{md5[:12]}"


def _load_mlflow(uri: str, root: Path) -> tuple[Any, str, str]:
    from churn import registry

    mlflow = registry.connect(root)
    from mlflow.exceptions import MlflowException

    try:
        pipeline = mlflow.sklearn.load_model(uri)
        name, version = mlflow_version(uri, root)
        return pipeline, name, version
    except MlflowException as exc:
        raise mlflow_error(uri, root, exc) from exc


def mlflow_version(uri: str, root: str | Path = ".") -> tuple[str, str]:
    """(model name, version) of an MLflow URI: `run-<id8>` and the run id for runs:/, else the
    registered reference and its registry version (an alias looked up in the configured store)."""
    from churn import registry

    mlflow = registry.connect(root)
    if uri.startswith("runs:/"):
        run_id = uri[len("runs:/") :].split("/")[0]
        return f"run-{run_id[:8]}", run_id
    ref = uri[len("models:/") :].strip("/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = mlflow.MlflowClient().get_model_version_by_alias(name, alias).version
    else:
        name, _, version = ref.partition("/")
    return ref, str(version)


def mlflow_error(uri: str, root: str | Path, exc: Exception) -> FileNotFoundError:
    """The one-line error for a model MLflow cannot load (the store's URL redacted)."""
    from churn import registry
    from churn.redact import redact_url

    reason = getattr(exc, "message", None) or str(exc)
    return FileNotFoundError(
        redact_url(f"{uri}: cannot load this model from MLflow at {registry.tracking_uri(root)} ({reason})")
    )
