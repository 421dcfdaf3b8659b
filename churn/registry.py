"""MLflow tracking (one run per model a pipeline run builds) and the model registry."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from churn.io import save_text
from churn.params import ParamsError
from churn.paths import Layout
from churn.redact import redact_url

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
#: Runtime pins an MLflow model needs; kept in step with requirements.txt by a test.
MODEL_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")


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


def _mlflow(root: str | Path = "."):
    """Import and point mlflow at the configured store (telemetry off)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri(root)
    if redact_url(uri) != uri:  # MLflow prints "View run at <URL>" links, credentials and all
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import mlflow

    mlflow.set_tracking_uri(uri)
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
    from threadpoolctl import threadpool_limits

    from churn.mlflow_model import log_pipeline

    mlflow.set_experiment(experiment)
    # one thread: MLflow predicts on the 3-row example, where OpenMP start-up costs seconds
    with mlflow.start_run(run_name=model_name, tags=tags) as run, threadpool_limits(1):
        mlflow.log_params(
            {
                k: str(v)
                for k, v in flatten({"estimator": spec["estimator"], **spec.get("params", {})}).items()
            }
        )
        numeric = {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float) and v == v}
        mlflow.log_metrics(numeric)
        # cloudpickle is chosen on purpose (tree models fail skops): skip MLflow's warning about it
        with quiet_mlflow_logs(logging.ERROR, "mlflow.sklearn"):
            log_pipeline(
                pipeline,
                example,
                pip_requirements=pinned_requirements(Path(root) / "requirements.txt"),
                code_paths=[str(PACKAGE_DIR)],
            )
        for path in artifacts:
            if Path(path).is_dir():
                mlflow.log_artifacts(str(path), artifact_path=Path(path).name)
            elif Path(path).exists():
                mlflow.log_artifact(str(path))
        return run.info.run_id


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


# -- registry: aliases champion / challenger, status history as version tags, promotion -----------

CHAMPION, CHALLENGER, ARCHIVED = "champion", "challenger", "archived"
#: MLflow aliases are unique per model: only the two live roles are aliases.
ALIASES = (CHAMPION, CHALLENGER)
#: What a version can be; `archived` (and every earlier status) lives in the version's tags.
STATUSES = (CHAMPION, CHALLENGER, ARCHIVED)
STATUS_TAG, HISTORY_TAG = "status", "status_history"
REPORT_STAGE = "report"
LOCK_NAME = ".churn-registry.lock"
LOCK_TIMEOUT_S = 120
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
    mlflow = _mlflow(root)
    return mlflow.MlflowClient(tracking_uri=tracking_uri(root), registry_uri=tracking_uri(root))


def current_user() -> str:
    """Who runs this process (recorded in the status history of the versions it changes)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@contextlib.contextmanager
def lock(root: str | Path = ".") -> Iterator[None]:
    """Serialise registry changes (promotions, alias moves, `churn track`) of one project folder.

    A file lock on `<project>/.churn-registry.lock`: it holds across threads of the app and across
    processes (the CLI and the app), so params.yaml and the aliases always agree.
    """
    from filelock import FileLock, Timeout

    path = project_root(root) / LOCK_NAME
    try:
        with FileLock(str(path), timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout as exc:
        raise RegistryError(
            f"another registry change has held {LOCK_NAME} for over {LOCK_TIMEOUT_S} s; nothing was changed, try again"
        ) from exc


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


def register_candidates(
    runs: dict[str, str], registered_model: str, root: str | Path = ".", *, by: str = "pipeline"
) -> dict[str, str]:
    """Point the aliases at the committed pipeline's models (runs: {champion|challenger: run id}).

    `champion` is set only in a registry that has none (afterwards only promotions move it);
    `challenger` moves to the challenger's version (the one it leaves is archived), and is cleared
    when the challenger is the champion's model. Returns {alias: version} as set.
    """
    with lock(root):
        mlflow_client = client(root)
        current = aliases(mlflow_client, registered_model)
        out = {}
        if CHAMPION in runs and CHAMPION not in current:
            mv, _ = register_run(mlflow_client, registered_model, mlflow_client.get_run(runs[CHAMPION]))
            version = str(mv.version)
            mlflow_client.set_registered_model_alias(registered_model, CHAMPION, version)
            record_status(
                mlflow_client,
                registered_model,
                version,
                CHAMPION,
                by=by,
                why="first champion of this registry",
            )
            current[CHAMPION] = out[CHAMPION] = version
        if CHALLENGER in runs:
            mv, _ = register_run(mlflow_client, registered_model, mlflow_client.get_run(runs[CHALLENGER]))
            version, previous = str(mv.version), current.get(CHALLENGER)
            if current.get(CHAMPION) == version:
                log.info("challenger is identical to champion version %s; no challenger alias", version)
                if previous:
                    mlflow_client.delete_registered_model_alias(registered_model, CHALLENGER)
                    if previous != version:
                        record_status(
                            mlflow_client, registered_model, previous, ARCHIVED, by=by,
                            why=f"the pipeline's challenger is now the champion's model (version {version})",
                        )  # fmt: skip
            elif previous != version:
                mlflow_client.set_registered_model_alias(registered_model, CHALLENGER, version)
                if previous and previous != current.get(CHAMPION):
                    record_status(
                        mlflow_client, registered_model, previous, ARCHIVED, by=by,
                        why=f"replaced as challenger by version {version}",
                    )  # fmt: skip
                record_status(
                    mlflow_client, registered_model, version, CHALLENGER, by=by,
                    why="the pipeline's challenger at the committed dvc.lock",
                )  # fmt: skip
                out[CHALLENGER] = version
        return out


@contextlib.contextmanager
def _reachable(root: str | Path = ".") -> Iterator[None]:
    """Turn any store failure into one RegistryError naming the tracking URI."""
    try:
        with quiet_mlflow_logs(logging.ERROR, "urllib3"):  # the retries; the error says it all
            yield
    except (RegistryError, ParamsError):
        raise
    except Exception as exc:
        raise RegistryError(
            redact_url(
                f"cannot use the MLflow registry at {tracking_uri(root)} ({type(exc).__name__}: {exc})"
            )
        ) from exc


def list_versions(registered_model: str, root: str | Path = ".") -> list[dict[str, Any]]:
    """Every version, newest first: status, aliases, status history, source run, estimator, key metrics."""
    with _reachable(root):
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


def check_promotion(
    validation: dict[str, Any],
    ab_test: dict[str, Any],
    *,
    force: bool,
    reason: str,
    model_md5: str | None = None,
) -> str:
    """The reason to record for a promotion, or RegistryError saying why it is refused.

    Allowed when the challenger is approved and the A/B test recommends `promote`, both for the
    model file with hash `model_md5` (when given); `force` overrides, but only with a reason.
    """
    if force:
        if not reason or not reason.strip():
            raise RegistryError('--force needs --reason "…" (the reason is recorded on the model version)')
        return f"forced: {reason.strip()}"
    problems = []
    if model_md5 and validation.get("model_md5") != model_md5:
        problems.append(
            "metrics/validation.json was built for another challenger model "
            f"(md5 {validation.get('model_md5')}, the file now has {model_md5}): run `dvc repro`"
        )
    if not validation.get("approved"):
        failed = ", ".join(validation.get("failed", [])) or "none listed"
        problems.append(f"the challenger is not approved (failed gates: {failed})")
    if ab_test.get("recommendation") != "promote":
        reasons = "; ".join(ab_test.get("reasons", []))
        problems.append(f"the A/B test recommends '{ab_test.get('recommendation')}' ({reasons})")
    if problems:
        raise RegistryError(
            "promotion refused: " + "; ".join(problems) + '. Override with --force --reason "…"'
        )
    return reason.strip() if reason else "approved by every validation gate; the A/B test recommends promote"


def replace_model_spec(text: str, name: str, spec: dict[str, Any], source: str = "params.yaml") -> str:
    """params.yaml text with `models.<name>` replaced by `spec`, everything else byte-identical.

    Edits the text (comments, order and layout survive) and checks the result parses to the
    same params with only that key changed.
    """
    lines = text.splitlines(keepends=True)
    top = next((i for i, line in enumerate(lines) if re.match(r"models:\s*(#.*)?$", line)), None)
    if top is None:
        raise ParamsError(f"{source}: no top-level 'models:' section to rewrite")
    start = indent = None
    for i in range(top + 1, len(lines)):
        line = lines[i]
        if line.strip() and not line.startswith((" ", "#")):
            break
        match = re.match(rf"( +){re.escape(name)}:\s*(#.*)?$", line)
        if match:
            start, indent = i, len(match.group(1))
            break
    if start is None:
        raise ParamsError(f"{source}: 'models.{name}' must be a block mapping (`{name}:` on its own line)")
    end = start + 1
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped and len(lines[i]) - len(lines[i].lstrip(" ")) <= indent:
            break
        if stripped:
            end = i + 1
    body = yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)
    pad = " " * (indent + 2)
    new_lines = [*lines[: start + 1], *(pad + ln + "\n" for ln in body.splitlines()), *lines[end:]]
    new_text = "".join(new_lines)
    expected = yaml.safe_load(text)
    expected["models"][name] = spec
    if yaml.safe_load(new_text) != expected:
        raise ParamsError(f"{source}: could not rewrite 'models.{name}' safely; edit it by hand")
    return new_text


def _restore(
    mlflow_client, registered_model: str, before: dict[str, str], tags: dict[str, dict[str, str]], created
) -> list[str]:
    """Put aliases and the touched versions' status tags back; returns what could not be restored."""
    problems = []
    try:
        now = aliases(mlflow_client, registered_model)
    except Exception as exc:
        return [f"aliases: {exc}"]
    for alias in ALIASES:
        try:
            if alias in before and now.get(alias) != before[alias]:
                mlflow_client.set_registered_model_alias(registered_model, alias, before[alias])
            elif alias not in before and alias in now:
                mlflow_client.delete_registered_model_alias(registered_model, alias)
        except Exception as exc:
            problems.append(f"alias {alias}: {exc}")
    for version, old in tags.items():
        try:
            if version == created:
                mlflow_client.delete_model_version(registered_model, version)
                continue
            for key in (STATUS_TAG, HISTORY_TAG):
                if key in old:
                    mlflow_client.set_model_version_tag(registered_model, version, key, old[key])
                else:
                    mlflow_client.delete_model_version_tag(registered_model, version, key)
        except Exception as exc:
            problems.append(f"version {version}: {exc}")
    return problems


def promote(
    *,
    registered_model: str,
    params_path: str | Path,
    experiment: str = "churn",
    model_md5: str | None = None,
    version: str | None = None,
    reason: str = "",
    forced: bool = False,
    by: str = "",
    root: str | Path = ".",
) -> dict[str, Any]:
    """Make a model version the champion, atomically across the registry and params.yaml.

    The version is `version`, or the one holding the pipeline run of the model file with hash
    `model_md5` (registered now if needed). Under the project's registry lock: `champion` moves
    to it, the former champion's history records `archived`, `challenger` is cleared if it
    pointed there, the event (who, why, forced) is recorded on the version, and
    `models.champion` in params.yaml becomes the version's spec. If any step fails, aliases,
    status tags and params.yaml are put back and RegistryError says what happened.
    """
    params_path = Path(params_path)
    by = by or current_user()
    with lock(params_path.parent), _reachable(root):
        return _promote_locked(
            registered_model, params_path, experiment, model_md5, version, reason, forced, by, root
        )


def _promote_locked(
    registered_model, params_path: Path, experiment, model_md5, version, reason, forced, by, root
) -> dict[str, Any]:
    text = params_path.read_text()
    mlflow_client = client(root)
    before = aliases(mlflow_client, registered_model)
    if version is None:
        if not model_md5:
            raise RegistryError("promote needs a version or the challenger model's md5")
        run = find_report_run(mlflow_client, experiment, None, model_md5)
        mv, created = register_run(mlflow_client, registered_model, run)
    else:
        mv, created = get_version(mlflow_client, registered_model, str(version)), False
    target, previous = str(mv.version), before.get(CHAMPION)
    spec_text = mv.tags.get("model_spec") or (
        mlflow_client.get_run(mv.run_id).data.tags.get("model_spec") if mv.run_id else None
    )
    if not spec_text:
        raise RegistryError(f"{registered_model} version {target} has no model_spec tag to write back")
    new_text = replace_model_spec(text, CHAMPION, json.loads(spec_text), str(params_path))
    touched = {target: dict(mv.tags)}
    if previous and previous != target:
        touched[previous] = dict(mlflow_client.get_model_version(registered_model, previous).tags)
    written = False
    try:
        mlflow_client.set_registered_model_alias(registered_model, CHAMPION, target)
        if previous and previous != target:
            record_status(
                mlflow_client, registered_model, previous, ARCHIVED, by=by,
                why=f"replaced as champion by version {target}",
            )  # fmt: skip
        if before.get(CHALLENGER) == target:
            mlflow_client.delete_registered_model_alias(registered_model, CHALLENGER)
        record_status(
            mlflow_client, registered_model, target, CHAMPION, by=by, why=reason or "promoted", forced=forced
        )
        if new_text != text:
            save_text(new_text, params_path)
            written = True
    except Exception as exc:
        problems = _restore(mlflow_client, registered_model, before, touched, target if created else None)
        if written:
            save_text(text, params_path)
        state = "restored" if not problems else f"NOT fully restored ({'; '.join(problems)})"
        raise RegistryError(
            redact_url(
                f"promotion failed ({type(exc).__name__}: {exc}); registry aliases {state}, {params_path} unchanged"
            )
        ) from exc
    log.info("promoted %s version %s to champion (was %s)", registered_model, target, previous)
    return {
        "registered_model": registered_model,
        "version": target,
        "previous_champion": previous,
        "spec": json.loads(spec_text),
        "reason": reason,
        "forced": forced,
        "by": by,
        "params_changed": written,
    }


def promote_checked(
    validation: dict[str, Any],
    ab_test: dict[str, Any],
    *,
    force: bool,
    reason: str,
    registered_model: str,
    params_path: str | Path,
    experiment: str = "churn",
    model_md5: str | None = None,
    version: str | None = None,
    by: str = "",
    root: str | Path = ".",
) -> dict[str, Any]:
    """`check_promotion`, then `promote`: the one path `churn promote` and the app's champion button take."""
    why = check_promotion(validation, ab_test, force=force, reason=reason, model_md5=model_md5)
    return promote(
        registered_model=registered_model,
        params_path=params_path,
        experiment=experiment,
        model_md5=model_md5,
        version=version,
        reason=why,
        forced=force,
        by=by,
        root=root,
    )


def set_status(
    registered_model: str,
    version: str,
    status: str,
    *,
    root: str | Path = ".",
    by: str = "",
    reason: str = "",
) -> dict[str, Any]:
    """Make a version the `challenger` (alias) or `archived` (status tag), under the registry lock.

    The champion changes only by promotion (`promote_checked`), and is never relabelled here.
    """
    if status not in (CHALLENGER, ARCHIVED):
        raise RegistryError(
            f"status must be '{CHALLENGER}' or '{ARCHIVED}' here, got '{status}'"
            + (" (the champion changes only by promotion)" if status == CHAMPION else "")
        )
    by = by or current_user()
    with lock(root), _reachable(root):
        mlflow_client = client(root)
        get_version(mlflow_client, registered_model, str(version))
        current = aliases(mlflow_client, registered_model)
        if current.get(CHAMPION) == str(version):
            raise RegistryError(
                f"version {version} is the champion; promote another version instead of relabelling it"
            )
        previous = current.get(CHALLENGER)
        if status == CHALLENGER:
            mlflow_client.set_registered_model_alias(registered_model, CHALLENGER, str(version))
            if previous and previous != str(version):
                record_status(
                    mlflow_client, registered_model, previous, ARCHIVED, by=by,
                    why=f"replaced as challenger by version {version}",
                )  # fmt: skip
        elif previous == str(version):
            mlflow_client.delete_registered_model_alias(registered_model, CHALLENGER)
        record_status(
            mlflow_client, registered_model, str(version), status, by=by, why=reason or f"set {status}"
        )
    return {"registered_model": registered_model, "version": str(version), "status": status}
