"""MLflow tracking (one run per model a pipeline run builds) and the model registry."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
#: Runtime pins an MLflow model needs; kept in step with requirements.txt by a test.
MODEL_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")


def tracking_uri(root: str | Path = ".") -> str:
    """`MLFLOW_TRACKING_URI` if set, else the SQLite store `sqlite:///<root>/mlflow.db`."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def _mlflow(root: str | Path = "."):
    """Import and point mlflow at the configured store (telemetry off)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    mlflow.set_tracking_uri(tracking_uri(root))
    return mlflow


def pinned_requirements(requirements: str | Path = "requirements.txt") -> list[str]:
    """`name==version` for the packages a logged model needs, read from the lock file."""
    wanted = {n.lower() for n in MODEL_REQUIREMENTS}
    pins = []
    path = Path(requirements)
    if path.exists():
        for line in path.read_text().splitlines():
            name = line.split("==")[0].strip().lower()
            if name in wanted and "==" in line:
                pins.append(line.strip())
    if not pins:
        from importlib.metadata import version

        pins = [f"{n}=={version(n)}" for n in MODEL_REQUIREMENTS]
    return sorted(pins)


def git_commit(root: str | Path = ".") -> str:
    """The current git commit, or 'unknown' outside a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_tags(model_name: str, data_md5: str, root: str | Path = ".") -> dict[str, str]:
    """Tags linking an MLflow run to its git commit, DVC experiment and data hash."""
    return {
        "model_name": model_name,
        "git_commit": git_commit(root),
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME", ""),
        "data_md5": data_md5,
    }


def _flatten(prefix: str, obj: Any, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = obj
    return out


def flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """{'a': {'b': 1}} → {'a.b': 1}."""
    return _flatten("", obj, {})


def log_model_run(
    *,
    model_name: str,
    pipeline: Any,
    spec: dict[str, Any],
    metrics: dict[str, Any],
    example: pd.DataFrame,
    tags: dict[str, str],
    artifacts: list[Path] = (),
    experiment: str = "churn",
    root: str | Path = ".",
) -> str:
    """Log one complete run (params, metrics, model with signature, plots, tags); return its id."""
    mlflow = _mlflow(root)
    from mlflow.models import infer_signature

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=model_name, tags=tags) as run:
        mlflow.log_params(
            {
                k: str(v)
                for k, v in flatten({"estimator": spec["estimator"], **spec.get("params", {})}).items()
            }
        )
        numeric = {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float) and v == v}
        mlflow.log_metrics(numeric)
        signature = infer_signature(example, pipeline.predict_proba(example))
        mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example.head(3),
            pip_requirements=pinned_requirements(Path(root) / "requirements.txt"),
            code_paths=[str(PACKAGE_DIR)],
            serialization_format="cloudpickle",
        )
        for path in artifacts:
            if Path(path).is_dir():
                mlflow.log_artifacts(str(path), artifact_path=Path(path).name)
            elif Path(path).exists():
                mlflow.log_artifact(str(path))
        return run.info.run_id


@contextlib.contextmanager
def quiet_mlflow_logs() -> Iterator[None]:
    """Silence MLflow's INFO chatter around a block (stage output stays one line)."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
