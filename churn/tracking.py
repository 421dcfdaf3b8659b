"""Idempotent MLflow tracking of the pipeline's models: one run per model build, aliases follow the commit.

DVC skips stages whose outputs are committed and unchanged, so tracking cannot depend on a stage
having run: `track` reads what the pipeline wrote (models, metrics, plots, model card), keys each
model's run by what built it (the model file's hash, its spec, its metrics and gates) and logs a
run only for a key the store has not seen. `churn track` runs it after `dvc repro`; the `report`
stage runs it too, so `dvc exp run` experiments (queued ones included) are tracked as they run.

Aliases follow the committed pipeline state and promotions only: inside a DVC experiment
(`DVC_EXP_NAME` set) nothing moves; otherwise `challenger` points at the version of the
challenger model that `dvc.lock` at git HEAD records, and `champion` is set only in a registry
that has none (after that, only a promotion moves it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from churn import promotion, registry
from churn.io import file_md5, load_json
from churn.params import load_params, read, section
from churn.paths import LAYOUT, Layout, Metrics, model_file
from churn.redact import redact_url
from churn.settings import MlflowSettings, ModelsSettings

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
#: Runtime pins an MLflow model needs; kept in step with requirements.txt by a test.
MODEL_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "scipy", "joblib", "pyarrow")

MODELS = (registry.CHAMPION, registry.CHALLENGER)
KEY_TAG = "build_key"
TEST_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier")


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
    mlflow = registry.connect(root)
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
        with registry.quiet_mlflow_logs(logging.ERROR, "mlflow.sklearn"):
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


class TrackingError(ValueError):
    """The workspace cannot be tracked as it is (stale or missing pipeline outputs); says what to run."""


@dataclass
class Tracked:
    """What `track` did: each model's run (logged now or found), the aliases it set, notes for the user."""

    runs: dict[str, str] = field(default_factory=dict)
    logged: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    experiment_run: bool = False
    #: Where the runs are, for display (credentials redacted).
    tracking_uri: str = ""


def build_key(content: dict[str, Any]) -> str:
    """A run's identity: the hash of everything that went into it (model hash, spec, metrics, gates)."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]


def in_experiment() -> bool:
    """True inside `dvc exp run` (DVC sets DVC_EXP_NAME for the stages of an experiment)."""
    return bool(os.environ.get("DVC_EXP_NAME"))


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise TrackingError(f"{path}: not found (run `dvc repro` first)")
    obj = load_json(path)
    if not isinstance(obj, dict):
        raise TrackingError(f"{path}: must be a JSON object (run `dvc repro`)")
    return obj


def run_contents(
    root: Path, params: dict[str, Any], source: str, metrics_dir: Path, models_dir: Path
) -> dict[str, dict[str, Any]]:
    """Per model: its build key content, MLflow metrics and tags, read from the pipeline's outputs.

    Refuses (TrackingError) when the metrics were built for other model files than the ones on disk.
    """
    metrics = Metrics(metrics_dir)
    validation = _read(metrics.validation)
    data = _read(metrics.data)
    read(params, ModelsSettings, source)  # every spec checked before any is logged
    lineage = validation.get("lineage") or {}
    out = {}
    for name in MODELS:
        path = model_file(models_dir, name)
        if not path.exists():
            raise TrackingError(f"{path}: model not found (run `dvc repro` first)")
        md5 = file_md5(path)
        recorded = next((v for k, v in lineage.items() if Path(k).name == path.name), None)
        if recorded != md5:
            raise TrackingError(
                f"{metrics.validation} was built for another {name} model "
                f"(md5 {recorded}, {path} has {md5}): run `dvc repro` first"
            )
        evaluate = _read(metrics.evaluate(name))
        test = {m: evaluate[m] for m in TEST_METRICS if m in evaluate}
        cv = _read(metrics.train(name)).get("cv", {})
        if name == registry.CHALLENGER:
            gates, approved = validation["gates"], validation["approved"]
        else:
            gates, approved = validation["champion"]["gates"], validation["champion"]["passed"]
        gates = {k: {"value": g["value"], "passed": g["passed"]} for k, g in gates.items()}
        spec = section(params, f"models.{name}", source)
        recommendation = validation.get("recommendation", "") if name == registry.CHALLENGER else ""
        content = {
            "model": name,
            "spec": spec,
            "model_md5": md5,
            "data_md5": data["input"]["md5"],
            "test": test,
            "cv": cv,
            "gates": gates,
            "approved": approved,
            "recommendation": recommendation,
        }
        out[name] = {
            "path": path,
            "md5": md5,
            "spec": spec,
            "key": build_key(content),
            "metrics": {
                "test": evaluate,
                "cv": cv,
                "gates": gates,
                "validation": {"approved": approved},
            },
            "tags": {
                **run_tags(name, data["input"]["md5"], root),
                **registry.report_tags(md5, spec, approved, recommendation),
            },
        }
    return out


def _existing_run(mlflow_client, experiment: str, key: str) -> str | None:
    exp = mlflow_client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = mlflow_client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.{KEY_TAG} = '{key}' and attributes.status = 'FINISHED'",
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def committed_models(root: Path, models_dir: Path) -> tuple[dict[str, str], str]:
    """{model: md5} of the pipeline's models as committed (dvc.lock at git HEAD), and where from.

    Outside git (or before dvc.lock is committed) the workspace's dvc.lock, else the model files.
    """
    text, where = None, ""
    try:
        proc = subprocess.run(
            ["git", "show", "HEAD:./dvc.lock"], cwd=root, capture_output=True, text=True, timeout=30
        )
        if proc.returncode == 0:
            text, where = proc.stdout, "dvc.lock at git HEAD"
    except (OSError, subprocess.SubprocessError):
        pass
    if text is None and Layout(root).dvc_lock.exists():
        text, where = Layout(root).dvc_lock.read_text(), "dvc.lock"
    if text is None:
        return {n: file_md5(model_file(models_dir, n)) for n in MODELS}, "the model files"
    stages = (yaml.safe_load(text) or {}).get("stages", {})
    found = {}
    for name in MODELS:
        for out in (stages.get(f"train@{name}") or {}).get("outs", []):
            if Path(out.get("path", "")).name == model_file("", name).name:
                found[name] = out.get("md5")
    return found, where


def track(
    root: str | Path = ".",
    *,
    params_path: str | Path = LAYOUT.params,
    metrics_dir: str | Path = LAYOUT.metrics.dir,
    models_dir: str | Path = LAYOUT.models_dir,
    test_path: str | Path = LAYOUT.test,
    by: str = "churn track",
) -> Tracked:
    """Log each pipeline model's run unless its build is tracked already, then follow the commit with
    the aliases (outside experiments). Idempotent: a second call logs nothing and moves nothing."""
    root = Path(root)
    metrics_dir, models_dir = root / metrics_dir, root / models_dir
    params = load_params(root / params_path)
    names = read(params, MlflowSettings, str(params_path))
    experiment, registered_model = names.experiment, names.registered_model
    contents = run_contents(root, params, str(params_path), metrics_dir, models_dir)
    result = Tracked(experiment_run=in_experiment(), tracking_uri=redact_url(registry.tracking_uri(root)))
    with registry.reachable(root):
        mlflow_client = registry.client(root)
        for name, c in contents.items():
            found = _existing_run(mlflow_client, experiment, c["key"])
            if found is None:
                found = _log(root, name, c, experiment, metrics_dir, test_path)
                result.logged.append(name)
            result.runs[name] = found
        if result.experiment_run:
            result.notes.append(
                f"DVC experiment '{os.environ['DVC_EXP_NAME']}': runs logged, registry aliases left as they are"
            )
            return result
        _follow_commit(root, mlflow_client, experiment, registered_model, contents, models_dir, by, result)
    return result


def _log(root: Path, name: str, c: dict[str, Any], experiment: str, metrics_dir: Path, test_path) -> str:
    """Log one model's complete run: params, metrics, the model, plots, the model card, lineage tags."""
    from churn import data, model_card
    from churn.io import load_model, read_table

    X = data.xy(read_table(root / test_path))[0].head(5)
    with registry.quiet_mlflow_logs(), tempfile.TemporaryDirectory() as tmp:
        artifacts = []
        metrics = Metrics(metrics_dir)
        if metrics.plots(name).is_dir():  # logged as `plots/`, whichever model it is
            artifacts.append(Path(shutil.copytree(metrics.plots(name), Path(tmp) / "plots")))
        card = metrics.model_card
        if card.exists():
            copy = Path(tmp) / "model_card.md"
            copy.write_text(model_card.card_with_commit(card.read_text(), git_commit(root)))
            artifacts.append(copy)
        return log_model_run(
            model_name=name,
            pipeline=load_model(c["path"], md5=c["md5"]),  # the hash validation.json's lineage records
            spec=c["spec"],
            metrics=c["metrics"],
            example=X,
            tags={**c["tags"], KEY_TAG: c["key"]},
            artifacts=artifacts,
            experiment=experiment,
            root=root,
        )


def _follow_commit(
    root: Path,
    mlflow_client,
    experiment: str,
    registered_model: str,
    contents: dict[str, dict[str, Any]],
    models_dir: Path,
    by: str,
    result: Tracked,
) -> None:
    """Point the aliases at the versions of the committed models (see the module docstring)."""
    committed, where = committed_models(root, models_dir)
    runs = {}
    for name in MODELS:
        md5 = committed.get(name)
        if not md5:
            result.notes.append(f"{where} records no {name} model: its alias is left as it is")
            continue
        if md5 != contents[name]["tags"]["model_md5"]:
            result.notes.append(
                f"the workspace's {name} differs from {where}: its alias follows the committed model "
                "(commit, then run `churn track` to move it)"
            )
        try:
            runs[name] = registry.find_report_run(mlflow_client, experiment, None, md5).info.run_id
        except registry.RegistryError:
            result.notes.append(
                f"the committed {name} (md5 {md5}) has no tracked run here: run `make track` on a checkout of HEAD"
            )
    result.aliases = promotion.register_candidates(runs, registered_model, root, by=by)
    current = registry.aliases(mlflow_client, registered_model)
    champion = current.get(registry.CHAMPION)
    if champion and registry.CHAMPION in runs:
        mv = mlflow_client.get_model_version(registered_model, champion)
        if mv.tags.get("model_md5") != committed[registry.CHAMPION]:
            result.notes.append(
                f"the registry's champion (version {champion}) is not the committed champion model: "
                "the champion changes only by promotion (`churn promote`)"
            )


def summary(result: Tracked) -> list[str]:
    """Lines for the user: each run (logged or already tracked), the aliases, the notes."""
    lines = [
        f"{name}: run {run_id} ({'logged' if name in result.logged else 'already tracked, nothing logged'})"
        for name, run_id in result.runs.items()
    ]
    if result.aliases:
        lines.append("aliases set: " + ", ".join(f"{a} → version {v}" for a, v in result.aliases.items()))
    elif not result.experiment_run:
        lines.append("aliases unchanged")
    lines += result.notes
    return lines
