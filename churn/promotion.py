"""Changing the registry's roles, under the project's lock: promotion (checked), the pipeline's candidates, statuses.

The champion moves only through `promote` (after `check_promotion`, in `promote_checked`), which
also rewrites `models.champion` in params.yaml; `register_candidates` follows the committed
pipeline; `set_status` makes a version the challenger or archived.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from churn.io import file_md5, save_text
from churn.params import ParamsError, load_params, read
from churn.paths import Layout
from churn.redact import redact_url
from churn.registry import (
    ALIASES,
    ARCHIVED,
    CHALLENGER,
    CHAMPION,
    HISTORY_TAG,
    STATUS_TAG,
    RegistryError,
    aliases,
    client,
    current_user,
    find_report_run,
    get_version,
    project_root,
    reachable,
    record_status,
    register_run,
)
from churn.settings import MlflowSettings

log = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 120


@contextlib.contextmanager
def lock(root: str | Path = ".") -> Iterator[None]:
    """Serialise registry changes (promotions, alias moves, `churn track`) of one project folder.

    A file lock on `<project>/.churn-registry.lock`: it holds across threads of the app and across
    processes (the CLI and the app), so params.yaml and the aliases always agree.
    """
    from filelock import FileLock, Timeout

    path = Layout(project_root(root)).registry_lock
    try:
        with FileLock(str(path), timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout as exc:
        raise RegistryError(
            f"another registry change has held {path.name} for over {LOCK_TIMEOUT_S} s; nothing was changed, try again"
        ) from exc


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


def check_promotion(
    validation: dict[str, Any],
    ab_test: dict[str, Any],
    *,
    force: bool,
    reason: str,
    model_md5: str | None,
) -> str:
    """The reason to record for a promotion, or RegistryError saying why it is refused.

    Allowed when the challenger is approved and the A/B test recommends `promote`, both for the
    model with hash `model_md5`; a model whose hash is unknown (None: a registry version without a
    `model_md5` tag) cannot be matched to any verdict. `force` overrides, but only with a reason.
    """
    if force:
        if not reason or not reason.strip():
            raise RegistryError('--force needs --reason "…" (the reason is recorded on the model version)')
        return f"forced: {reason.strip()}"
    problems = []
    if not model_md5:
        problems.append(
            "the model's hash is unknown (the registry version has no model_md5 tag), "
            "so no validation verdict can be matched to it"
        )
    elif validation.get("model_md5") != model_md5:
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
    start = indent = child = None
    for i in range(top + 1, len(lines)):
        line = lines[i]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line.startswith(" "):
            break
        width = len(line) - len(line.lstrip(" "))
        child = width if child is None else child  # the models' own keys; deeper keys are their specs
        if width == child and re.match(rf"{re.escape(name)}:\s*(#.*)?$", stripped):
            start, indent = i, width
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
    with lock(params_path.parent), reachable(root):
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
    params_path: str | Path,
    force: bool,
    reason: str,
    version: str | None = None,
    model_path: str | Path | None = None,
    by: str = "",
    root: str | Path = ".",
) -> dict[str, Any]:
    """The one promotion path of `churn promote` and the app's champion button.

    The registered model and experiment come from params.yaml; the model is `version`, or the
    pipeline run of the model file `model_path` (its hash). `check_promotion` holds it against the
    verdicts (`validation`, `ab_test`: metrics/validation.json and ab_test.json) for that model's
    hash, then `promote` moves the champion under the lock and records the event.
    """
    params = load_params(params_path)
    names = read(params, MlflowSettings, str(params_path))
    name, experiment = names.registered_model, names.experiment
    if version is not None:
        with reachable(root):
            md5 = get_version(client(root), name, str(version)).tags.get("model_md5")
    elif model_path is not None:
        md5 = file_md5(model_path)
    else:
        raise RegistryError("promote needs a version or the challenger model file")
    why = check_promotion(validation, ab_test, force=force, reason=reason, model_md5=md5)
    return promote(
        registered_model=name,
        params_path=params_path,
        experiment=experiment,
        model_md5=md5,
        version=None if version is None else str(version),
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
    with lock(root), reachable(root):
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
