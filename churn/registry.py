"""The MLflow store and its model registry: connection, versions, aliases, status history (read and record)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from churn.params import ParamsError
from churn.paths import Layout
from churn.redact import redact_url

log = logging.getLogger(__name__)


def project_root(root: str | Path = ".") -> Path:
    """The project folder: `root`, or for a queued DVC experiment (which runs in a temporary copy
    under `<project>/.dvc/tmp/exps/`) the project it was queued from."""
    path = Path(root).resolve()
    parts = path.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return path


def tracking_uri(root: str | Path = ".") -> str:
    """`MLFLOW_TRACKING_URI` if set, else the SQLite store `sqlite:///<project>/mlflow.db` (queued
    DVC experiments log to the store of the project they were queued from)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Layout(project_root(root)).mlflow_db}"


def connect(root: str | Path = "."):
    """Import and point mlflow at the configured store (telemetry off)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(root)
    if redact_url(uri) != uri:  # MLflow prints "View run at <URL>" links, credentials and all
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow


@contextlib.contextmanager
def quiet_mlflow_logs(level: int = logging.WARNING, name: str = "mlflow") -> Iterator[None]:
    """Silence a logger's chatter below `level` around a block (MLflow's INFO by default)."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


# -- registry: aliases champion / challenger, status history as version tags --------------------

CHAMPION, CHALLENGER, ARCHIVED = "champion", "challenger", "archived"
#: MLflow aliases are unique per model: only the two live roles are aliases.
ALIASES = (CHAMPION, CHALLENGER)
#: What a version can be; `archived` (and every earlier status) lives in the version's tags.
STATUSES = (CHAMPION, CHALLENGER, ARCHIVED)
STATUS_TAG, HISTORY_TAG = "status", "status_history"
REPORT_STAGE = "report"
#: MLflow caps a model version tag value at 5,000 characters; the oldest events go first.
_HISTORY_CHARS = 4800


class RegistryError(ValueError):
    """The registry cannot do what was asked (unreachable, no run, refused); names what and why."""


def report_tags(model_md5: str, spec: dict[str, Any], approved: bool, recommendation: str) -> dict[str, str]:
    """Tags a pipeline run carries so promotion can find it: stage, model hash, spec, verdict."""
    return {
        "pipeline_stage": REPORT_STAGE,
        "model_md5": model_md5,
        "model_spec": json.dumps(spec, sort_keys=True),
        "validation_approved": str(bool(approved)).lower(),
        "ab_recommendation": recommendation,
    }


def client(root: str | Path = "."):
    """An MlflowClient on the configured store; HTTP stores fail fast instead of retrying for minutes."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    mlflow = connect(root)
    _check_database(tracking_uri(root))
    return mlflow.MlflowClient(tracking_uri=tracking_uri(root), registry_uri=tracking_uri(root))


_DATABASES_SEEN: set[str] = set()


def _check_database(uri: str) -> None:
    """Connect once to a database store (PostgreSQL, MySQL, SQL Server) before MLflow does: MLflow
    retries a refused connection ten times over about 100 s, logging a warning each time, and a wrong
    password or a stopped server does not recover meanwhile. SQLite and HTTP stores are left to MLflow."""
    if uri in _DATABASES_SEEN or uri.split(":", 1)[0].split("+")[0] not in ("postgresql", "mysql", "mssql"):
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()
    _DATABASES_SEEN.add(uri)


def current_user() -> str:
    """Who runs this process (recorded in the status history of the versions it changes)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _registered(mlflow_client, registered_model: str):
    """The RegisteredModel, or None when nothing is registered under that name yet."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_registered_model(registered_model)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise


def aliases(mlflow_client, registered_model: str) -> dict[str, str]:
    """{alias: version} of a registered model ({} when the model is not registered yet)."""
    found = _registered(mlflow_client, registered_model)
    return {} if found is None else {a: str(v) for a, v in found.aliases.items()}


def get_version(mlflow_client, registered_model: str, version: str):
    """A model version, or RegistryError saying that the model or the version does not exist."""
    from mlflow.exceptions import MlflowException

    if _registered(mlflow_client, registered_model) is None:
        raise RegistryError(
            f"no registered model '{registered_model}' at {redact_url(mlflow_client.tracking_uri)} "
            "(run `make track` to register the pipeline's models)"
        )
    try:
        return mlflow_client.get_model_version(registered_model, str(version))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            known = sorted(
                (mv.version for mv in mlflow_client.search_model_versions(f"name = '{registered_model}'")),
                key=int,
            )
            raise RegistryError(
                f"{registered_model} has no version {version!r} (versions: {', '.join(map(str, known)) or 'none'})"
            ) from exc
        raise


def find_report_run(mlflow_client, experiment: str, model_name: str | None, model_md5: str):
    """The newest finished pipeline run of a model file with hash `model_md5` (of `model_name`, if given)."""
    exp = mlflow_client.get_experiment_by_name(experiment)
    if exp is None:
        raise RegistryError(
            f"no MLflow experiment '{experiment}' at {redact_url(mlflow_client.tracking_uri)}: run `make track` first"
        )
    name = f"tags.model_name = '{model_name}' and " if model_name else ""
    runs = mlflow_client.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"{name}tags.pipeline_stage = '{REPORT_STAGE}' and tags.model_md5 = '{model_md5}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise RegistryError(
            f"no MLflow run of the {model_name or 'pipeline'} model with md5 {model_md5} in experiment "
            f"'{experiment}' at {redact_url(mlflow_client.tracking_uri)}: run `make track` (after `dvc repro`)"
        )
    return runs[0]


def _version_of(mlflow_client, registered_model: str, model_md5: str):
    found = mlflow_client.search_model_versions(
        f"name = '{registered_model}' and tags.model_md5 = '{model_md5}'"
    )
    return max(found, key=lambda v: int(v.version)) if found else None


def register_run(mlflow_client, registered_model: str, run) -> tuple[Any, bool]:
    """The version holding this run's model (matched by model hash), registering it if new.

    Returns (version, created).
    """
    md5 = run.data.tags.get("model_md5", "")
    existing = _version_of(mlflow_client, registered_model, md5) if md5 else None
    if existing is not None:
        return existing, False
    tags = {k: run.data.tags[k] for k in ("model_md5", "model_spec", "model_name") if k in run.data.tags}
    outputs = run.outputs.model_outputs if run.outputs else []
    if not outputs:
        raise RegistryError(f"MLflow run {run.info.run_id} has no logged model to register")
    model_id = max(outputs, key=lambda o: o.step).model_id
    _ensure_registered(mlflow_client, registered_model)
    mv = mlflow_client.create_model_version(
        registered_model, source=f"models:/{model_id}", run_id=run.info.run_id, tags=tags, model_id=model_id
    )
    return mv, True


def _ensure_registered(mlflow_client, registered_model: str) -> None:
    """Create the registered model unless it exists."""
    if _registered(mlflow_client, registered_model) is None:
        mlflow_client.create_registered_model(
            registered_model, description="Churn classifier: a scikit-learn Pipeline on raw Telco columns."
        )


def history(tags: dict[str, str]) -> list[dict[str, Any]]:
    """A version's status history (oldest first) from its tags; [] when it has none."""
    try:
        events = json.loads(tags.get(HISTORY_TAG) or "[]")
    except json.JSONDecodeError:
        return []
    return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []


def record_status(
    mlflow_client,
    registered_model: str,
    version: str,
    status: str,
    *,
    by: str,
    why: str,
    forced: bool = False,
) -> None:
    """Append a status event (who, why, when, forced) to a version's history and set its status tag."""
    import datetime as dt

    if status not in STATUSES:
        raise RegistryError(f"status must be one of {STATUSES}, got '{status}'")
    mv = mlflow_client.get_model_version(registered_model, str(version))
    events = history(mv.tags)
    events.append(
        {
            "status": status,
            "by": by or current_user(),
            "why": why,
            "forced": bool(forced),
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )
    text = json.dumps(events, sort_keys=True)
    while len(text) > _HISTORY_CHARS and len(events) > 1:
        events.pop(0)
        text = json.dumps(events, sort_keys=True)
    mlflow_client.set_model_version_tag(registered_model, str(version), HISTORY_TAG, text)
    mlflow_client.set_model_version_tag(registered_model, str(version), STATUS_TAG, status)


@contextlib.contextmanager
def reachable(root: str | Path = ".") -> Iterator[None]:
    """Turn any store failure into one RegistryError naming the tracking URI."""
    try:
        with quiet_mlflow_logs(logging.ERROR, "urllib3"):  # the retries; the error says it all
            yield
    except (RegistryError, ParamsError):
        raise
    except Exception as exc:
        # the first line only: SQLAlchemy appends its "(Background on this error at: …)" on another
        first = next(iter(str(exc).strip().splitlines()), "")
        raise RegistryError(
            redact_url(
                f"cannot use the MLflow registry at {tracking_uri(root)} ({type(exc).__name__}: {first})"
            )
        ) from exc


def list_versions(registered_model: str, root: str | Path = ".") -> list[dict[str, Any]]:
    """Every version, newest first: status, aliases, status history, source run, estimator, key metrics."""
    with reachable(root):
        return _list_versions(client(root), registered_model)


def status_of(aliases_: list[str], tags: dict[str, str]) -> str:
    """champion / challenger (from the aliases), else the last recorded status, else 'registered'."""
    for alias in ALIASES:
        if alias in aliases_:
            return alias
    return ARCHIVED if tags.get(STATUS_TAG) == ARCHIVED else "registered"


def _list_versions(mlflow_client, registered_model: str) -> list[dict[str, Any]]:
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases(mlflow_client, registered_model).items():
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for mv in mlflow_client.search_model_versions(f"name = '{registered_model}'"):
        metrics_: dict[str, float] = {}
        tags: dict[str, str] = {}
        if mv.run_id:
            run = mlflow_client.get_run(mv.run_id)
            metrics_, tags = run.data.metrics, run.data.tags
        spec = json.loads(mv.tags.get("model_spec") or tags.get("model_spec") or "{}")
        version_aliases = sorted(by_version.get(str(mv.version), []))
        rows.append(
            {
                "version": str(mv.version),
                "status": status_of(version_aliases, mv.tags),
                "aliases": version_aliases,
                "history": history(mv.tags),
                "run_id": mv.run_id,
                "model_name": tags.get("model_name", ""),
                "estimator": spec.get("estimator", ""),
                "accuracy": metrics_.get("test.accuracy"),
                "roc_auc": metrics_.get("test.roc_auc"),
                "approved": tags.get("validation_approved", ""),
            }
        )
    return sorted(rows, key=lambda r: -int(r["version"]))


def history_text(events: list[dict[str, Any]]) -> str:
    """One line per event: '2026-11-30T10:00:00Z champion by alice (forced): reason'."""

    def why(e: dict[str, Any]) -> str:
        text = str(e.get("why") or "")
        return text.removeprefix("forced: ") if e.get("forced") else text

    return "\n".join(
        f"{e.get('when', '?')} {e.get('status', '?')} by {e.get('by', '?')}"
        + (" (forced)" if e.get("forced") else "")
        + (f": {why(e)}" if why(e) else "")
        for e in events
    )
