"""The Experiments & registry tab's registry panel: versions, status history, the admin's buttons."""

from __future__ import annotations

import json
import logging

import gradio as gr
import pandas as pd

from app.access import Access
from app.state import AppState
from churn import promotion, registry
from churn.params import read
from churn.redact import scrub
from churn.settings import MlflowSettings

log = logging.getLogger(__name__)

REGISTRY_COLUMNS = [
    "version",
    "status",
    "model",
    "estimator",
    "accuracy",
    "roc_auc",
    "approved",
    "status history (oldest first)",
    "run id",
]
CHANGING = "Changing the registry"


def _name(state: AppState) -> str:
    return read(state.params(), MlflowSettings).registered_model


def registry_table(state: AppState) -> pd.DataFrame:
    name = _name(state)
    rows = registry.list_versions(name, root=state.root)
    return pd.DataFrame(
        [
            (
                r["version"],
                r["status"],
                r["model_name"],
                r["estimator"],
                r["accuracy"],
                r["roc_auc"],
                r["approved"],
                registry.history_text(r["history"]).replace("\n", " · "),
                (r["run_id"] or "")[:8],
            )
            for r in rows
        ],
        columns=REGISTRY_COLUMNS,
    )


def set_alias(
    state: AppState, version: str, alias: str, reason: str = "", force: bool = False, by: str = "app"
) -> str:
    """Give `version` a status through the library's one path for it: champion is `churn promote`'s
    checked promotion (`promotion.promote_checked`); challenger / archived are `promotion.set_status`.
    Every change is recorded in the version's status history under the project's registry lock.

    Returns a sentence saying what changed; RegistryError says why nothing did.
    """
    name = _name(state)
    if alias != registry.CHAMPION:
        promotion.set_status(name, str(version), alias, root=state.root, by=by, reason=reason)
        return f"{name} version {version} is now `{alias}`."
    try:
        verdict, ab = (
            state.metrics(state.layout.metrics.validation),
            state.metrics(state.layout.metrics.ab_test),
        )
    except FileNotFoundError as exc:
        if not force:
            raise registry.RegistryError(
                f"promotion refused: {exc}. Tick 'force' and give a reason to override"
            ) from exc
        verdict, ab = {}, {}
    result = promotion.promote_checked(
        verdict,
        ab,
        params_path=state.params_path,
        force=force,
        reason=reason,
        version=str(version),
        by=by,
        root=state.root,
    )
    previous = result.get("previous_champion")
    archived = f"; version {previous} archived" if previous and previous != result["version"] else ""
    return (
        f"{name} version {result['version']} is now the **champion**{archived}. "
        f"params.yaml models.champion = `{json.dumps(result['spec'], sort_keys=True)}`. "
        "Run `dvc repro` so the pipeline's outputs match, then restart the app to serve it."
    )


class RegistryPanel:
    """The registry's table, version picker and status buttons, laid out where it is built; `view`
    reads the versions (the tab's /runs refreshes them too) and `connect` wires /set_champion,
    /set_challenger and /set_archived (the admin's only)."""

    def __init__(self, state: AppState, tab: gr.Tab, access: Access) -> None:
        self.state, self.access = state, access
        gr.Markdown("### Model registry")
        self.table = gr.Dataframe(headers=REGISTRY_COLUMNS, interactive=False, wrap=True, elem_id="registry")
        with gr.Row():
            self.version = gr.Dropdown(label="Version", allow_custom_value=True, elem_id="registry-version")
            self._reason = gr.Textbox(label="Reason (recorded on the version)", scale=2)
            self._force = gr.Checkbox(label="Force (override refused checks; needs a reason)", value=False)
        admin = access.admin is not None
        with gr.Row():
            champion_btn = gr.Button("Set champion", variant="primary", interactive=admin)
            challenger_btn = gr.Button("Set challenger", interactive=admin)
            archived_btn = gr.Button("Set archived", interactive=admin)
        self._buttons = {"champion": champion_btn, "challenger": challenger_btn, "archived": archived_btn}
        self._message = gr.Markdown(access.note(CHANGING), elem_id="registry-message")

        def registry_controls(request: gr.Request = None):
            """The registry buttons, usable only by the signed-in admin (greyed for a reader)."""
            allowed = access.is_admin(request)
            return [gr.Button(interactive=allowed) for _ in range(3)]

        tab.select(
            registry_controls,
            outputs=[champion_btn, challenger_btn, archived_btn],
            api_name="registry_controls",
        )

    def view(self) -> pd.DataFrame:
        """The registered model's versions with aliases and key metrics."""
        try:
            return registry_table(self.state)
        except Exception as exc:
            raise self.state.error(f"Cannot read the model registry: {exc}") from exc

    def connect(self) -> None:
        """Wire the status buttons: /set_champion, /set_challenger, /set_archived (the admin's only)."""
        state, access, registry_view = self.state, self.access, self.view

        def version_check(version: str | None, reason: str = "", force: bool = False) -> list[dict]:
            versions = set(registry_view()["version"])
            ok_version = bool(version) and str(version) in versions
            msg = "Pick a registered version." if not version else f"Version {version!r} is not registered."
            ok_reason = not force or bool(reason and reason.strip())
            return [
                gr.validate(ok_version, "" if ok_version else msg),
                gr.validate(ok_reason, "" if ok_reason else "Forcing needs a reason."),
                gr.validate(True, ""),
            ]

        def setter(alias: str):
            def set_version(version: str, reason: str = "", force: bool = False, request: gr.Request = None):
                refused = access.refusal(request, CHANGING)
                if refused:
                    return f"✗ {refused}", registry_view()
                by = f"app:{request.username}" if request is not None and request.username else "app"
                try:
                    message = set_alias(state, version, alias, reason, force, by)
                except (registry.RegistryError, ValueError) as exc:
                    message = f"✗ Nothing changed: {scrub(str(exc), state.root)}"
                    if alias == registry.CHAMPION and not force:
                        message += " (here: tick Force and give a reason)"
                except Exception as exc:  # the store failed outside the registry's own checks
                    raise state.error(f"Nothing changed: {type(exc).__name__}: {exc}") from exc
                state.forget("model:models:/")
                return message, registry_view()

            set_version.__doc__ = f"Give a registered version the `{alias}` alias (message, refreshed registry); the admin only."
            return set_version

        for alias, button in self._buttons.items():
            button.click(
                setter(alias),
                inputs=[self.version, self._reason, self._force],
                outputs=[self._message, self.table],
                validator=version_check,
                api_name=f"set_{alias}",
            )
