"""Experiments & registry tab: every MLflow run (and DVC experiment), comparisons, the model registry."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from app import files
from app.access import Access
from app.formats import zoomed_range
from app.registry import RegistryPanel
from app.state import AppState
from churn import registry, tracking
from churn.io import csv_safe
from churn.metrics import HEADLINE
from churn.params import read
from churn.redact import display_uri, scrub
from churn.settings import MlflowSettings

log = logging.getLogger(__name__)

RUN_COLUMNS = {
    "run_id": "run id",
    "tags.mlflow.runName": "run",
    "tags.model_name": "model",
    "tags.pipeline_stage": "stage",
    "start_time": "started (UTC)",
    "params.estimator": "estimator",
}
TAG_COLUMNS = {
    "tags.validation_approved": "approved",
    "tags.dvc_exp_name": "DVC experiment",
    "tags.git_commit": "git commit",
}
DVC_TIMEOUT = 60
DEFAULT_METRIC = "test.roc_auc"


def search_runs(state: AppState) -> pd.DataFrame:
    """Every run of the project's MLflow experiment, newest first, as MLflow returns them."""
    experiment = read(state.params(), MlflowSettings).experiment
    registry.client(state.root)  # points mlflow at the project's tracking store
    import mlflow

    if mlflow.get_experiment_by_name(experiment) is None:
        return pd.DataFrame()
    return mlflow.search_runs(experiment_names=[experiment], order_by=["attributes.start_time DESC"])


def _metric_columns(raw: pd.DataFrame) -> list[str]:
    """Test metrics, then cross-validation means (the gate details stay in the CSV export)."""
    cols = [c for c in raw.columns if c.startswith("metrics.test.") and "confusion" not in c]
    cols += [c for c in raw.columns if c.startswith("metrics.cv.") and c.endswith(".mean")]
    head = [f"metrics.test.{m}" for m in HEADLINE if f"metrics.test.{m}" in cols]
    return head + sorted(c for c in cols if c not in head)


def runs_table(raw: pd.DataFrame) -> pd.DataFrame:
    """The readable, sortable runs table: identity, estimator, metrics, hyperparameters, lineage."""
    if raw.empty:
        return pd.DataFrame(columns=list(RUN_COLUMNS.values()))
    params = sorted(c for c in raw.columns if c.startswith("params.") and c != "params.estimator")
    table = pd.DataFrame(index=raw.index)
    for col, label in RUN_COLUMNS.items():
        table[label] = raw.get(col, "")
    table["run id"] = table["run id"].str[:8]
    table["started (UTC)"] = pd.to_datetime(raw["start_time"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    for col in _metric_columns(raw):
        table[col.removeprefix("metrics.")] = raw[col].round(4)
    for col in params:
        table[col.removeprefix("params.")] = raw[col]
    for col, label in TAG_COLUMNS.items():
        table[label] = raw.get(col, "")
    table["git commit"] = table["git commit"].fillna("").astype(str).str[:8]
    return table.fillna("").reset_index(drop=True)


def metric_names(raw: pd.DataFrame) -> list[str]:
    return [c.removeprefix("metrics.") for c in _metric_columns(raw)]


def param_names(raw: pd.DataFrame) -> list[str]:
    return sorted(
        c.removeprefix("params.") for c in raw.columns if c.startswith("params.") and c != "params.estimator"
    )


def _label(raw: pd.DataFrame) -> pd.Series:
    name = raw.get("tags.mlflow.runName", pd.Series("", index=raw.index)).fillna("")
    return name + " · " + raw["run_id"].str[:6]


def comparison_figure(raw: pd.DataFrame, metric: str | None):
    """Bar chart: one metric across every run, coloured by model."""
    import plotly.express as px

    col = f"metrics.{metric}"
    if raw.empty or col not in raw:
        return None
    frame = pd.DataFrame(
        {
            "run": _label(raw),
            metric: raw[col],
            "model": raw.get("tags.model_name", pd.Series("", index=raw.index)).fillna(""),
        }
    ).dropna(subset=[metric])
    low, high = zoomed_range(frame[metric])
    fig = px.bar(
        frame,
        x="run",
        y=metric,
        color="model",
        text=metric,
        title=f"{metric} across runs<br><sup>value axis zoomed to {low:.4g} – {high:.4g} (not from 0): "
        "compare the printed values</sup>",
    )
    fig.update_traces(texttemplate="%{y:.4f}", textposition="outside", cliponaxis=False)
    fig.update_layout(xaxis_title="run (name · id)", yaxis={"range": [low, high]}, margin={"t": 70, "b": 40})
    return fig


def varying_param(raw: pd.DataFrame, params: list[str]) -> str | None:
    """The hyperparameter that takes most distinct values across the runs (ties: most runs with a
    value, then by name); None when none varies."""
    spread = {p: raw[f"params.{p}"].dropna().astype(str) for p in params if f"params.{p}" in raw}
    varying = [p for p, values in spread.items() if values.nunique() > 1]
    return min(varying, key=lambda p: (-spread[p].nunique(), -len(spread[p]), p), default=None)


def impact_figure(raw: pd.DataFrame, param: str | None, metric: str | None):
    """Scatter: a hyperparameter's value against a metric, one point per run, coloured by estimator."""
    import plotly.express as px

    pcol, mcol = f"params.{param}", f"metrics.{metric}"
    if raw.empty or pcol not in raw or mcol not in raw:
        return None
    values = raw[pcol]
    numeric = pd.to_numeric(values, errors="coerce")
    frame = pd.DataFrame(
        {
            param: numeric if numeric.notna().sum() == values.notna().sum() else values,
            metric: raw[mcol],
            "estimator": raw.get("params.estimator", pd.Series("", index=raw.index)).fillna(""),
            "run": _label(raw),
        }
    ).dropna(subset=[param, metric])
    same = frame[param].astype(str).nunique() <= 1
    title = f"{param} vs {metric}" + (
        f"<br><sup>{param} has the same value in every run shown: pick a hyperparameter that varies</sup>"
        if same
        else ""
    )
    fig = px.scatter(frame, x=param, y=metric, color="estimator", hover_name="run", title=title)
    fig.update_traces(marker={"size": 12})
    fig.update_layout(margin={"t": 50, "b": 40})
    return fig


def dvc_experiments(root: Path) -> tuple[pd.DataFrame, str]:
    """`dvc exp show --json` flattened to one row per workspace/commit/experiment, and a note."""
    if not (root / ".dvc").is_dir():
        return pd.DataFrame(), "No DVC experiments: the project folder is not a DVC repository."
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "dvc",
                "exp",
                "show",
                "--json",
            ],  # this interpreter's dvc: PATH may lack it
            cwd=root,
            capture_output=True,
            text=True,
            timeout=DVC_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return pd.DataFrame(), scrub(f"`dvc exp show` could not run ({exc}).", root)
    if proc.returncode != 0:
        return pd.DataFrame(), scrub(f"`dvc exp show` failed: {proc.stderr.strip()[-300:]}", root)
    rows = []
    for entry in json.loads(proc.stdout or "[]"):
        rows.append(_dvc_row(entry, entry.get("rev", "")))
        for exp in entry.get("experiments") or []:
            for rev in exp.get("revs") or []:
                rows.append(_dvc_row(rev, entry.get("rev", "")))
    table = pd.DataFrame(rows).fillna("")
    return table, f"{len(table)} DVC workspace/commit/experiment rows (`dvc exp show`)."


def _dvc_row(entry: dict[str, Any], baseline: str) -> dict[str, Any]:
    data = entry.get("data") or {}
    row: dict[str, Any] = {
        "experiment": entry.get("name") or entry.get("rev", ""),
        "rev": str(entry.get("rev", ""))[:8],
        "baseline": str(baseline)[:8],
        "time": data.get("timestamp") or "",
    }
    for content in (data.get("metrics") or {}).values():  # the scorecard: keys unique across files
        row.update(tracking.flatten(content.get("data") or {}))
    for content in (data.get("params") or {}).values():
        models = (content.get("data") or {}).get("models") or {}
        for key, value in tracking.flatten(models).items():
            row[f"models.{key}"] = value if not isinstance(value, list) else str(value)
    return row


def build_tab(state: AppState, tab: gr.Tab, access: Access) -> None:
    """Runs, comparisons, DVC experiments, then the registry panel (app.registry); events /runs,
    /compare_runs, /param_impact, /export_runs, and the panel's /registry_controls, /set_champion,
    /set_challenger, /set_archived (the admin's only)."""
    with gr.Row():
        note = gr.Markdown(elem_id="runs-note")
        refresh = gr.Button("Refresh", size="sm", scale=0, elem_id="runs-refresh")
    runs = gr.Dataframe(
        label="Training runs (MLflow) — click a header to sort", interactive=False, elem_id="runs"
    )
    with gr.Accordion("Export every run (all params, metrics and tags) as CSV", open=False):
        export = gr.Button("Export runs as CSV", size="sm")
        export_file = gr.File(label="Runs CSV", interactive=False)
    with gr.Row():
        with gr.Column():
            metric = gr.Dropdown(label="Metric", allow_custom_value=True, elem_id="compare-metric")
            compare_plot = gr.Plot(label="Metric comparison across runs", elem_id="compare-plot")
        with gr.Column():
            with gr.Row():
                param = gr.Dropdown(label="Hyperparameter", allow_custom_value=True, elem_id="impact-param")
                impact_metric = gr.Dropdown(label="Metric", allow_custom_value=True)
            impact_plot = gr.Plot(label="Hyperparameter impact", elem_id="impact-plot")
    with gr.Accordion("DVC experiments (dvc exp show)", open=False):
        dvc_note = gr.Markdown(elem_id="dvc-note")
        dvc_table = gr.Dataframe(interactive=False)
    panel = RegistryPanel(state, tab, access)

    def store_text() -> str:
        return display_uri(registry.tracking_uri(state.root), state.root)

    def runs_or_error() -> pd.DataFrame:
        try:
            return search_runs(state)
        except Exception as exc:
            raise state.error(f"Cannot read MLflow runs at {store_text()}: {exc}") from exc

    def runs_view():
        """Note, runs table, metric/param choices, both plots, DVC experiments, registry and versions."""
        raw = runs_or_error()
        metrics, params = metric_names(raw), param_names(raw)
        chosen = DEFAULT_METRIC if DEFAULT_METRIC in metrics else (metrics[0] if metrics else None)
        first_param = varying_param(raw, params) or (params[0] if params else None)
        dvc_rows, dvc_text = dvc_experiments(state.root)
        text = (
            f"{len(raw)} run(s) in MLflow at `{store_text()}`."
            if len(raw)
            else "No MLflow runs yet: run `make repro` (or `dvc repro` then `churn track`)."
        )
        table = panel.view()
        return (
            text,
            runs_table(raw),
            gr.Dropdown(choices=metrics, value=chosen),
            comparison_figure(raw, chosen),
            gr.Dropdown(choices=params, value=first_param),
            gr.Dropdown(choices=metrics, value=chosen),
            impact_figure(raw, first_param, chosen),
            dvc_text,
            dvc_rows,
            table,
            gr.Dropdown(choices=list(table["version"]), value=None),
        )

    gr.on(
        [tab.select, refresh.click],
        runs_view,
        outputs=[
            note,
            runs,
            metric,
            compare_plot,
            param,
            impact_metric,
            impact_plot,
            dvc_note,
            dvc_table,
            panel.table,
            panel.version,
        ],
        api_name="runs",
    )

    def compare_runs(metric: str):
        """Bar chart of one metric (e.g. test.roc_auc) across every run."""
        return comparison_figure(runs_or_error(), metric)

    metric.change(compare_runs, inputs=metric, outputs=compare_plot, api_name="compare_runs")

    def param_impact(param: str, metric: str):
        """Scatter of a hyperparameter (e.g. n_estimators) against a metric, one point per run."""
        return impact_figure(runs_or_error(), param, metric)

    gr.on(
        [param.change, impact_metric.change],
        param_impact,
        inputs=[param, impact_metric],
        outputs=impact_plot,
        api_name="param_impact",
    )

    def export_runs():
        """Every run with all its params, metrics and tags, as a CSV file."""
        runs = runs_or_error()
        for col in runs.select_dtypes(
            exclude="number"
        ).columns:  # artifact URIs, source paths: no server paths
            runs[col] = runs[col].map(lambda v: scrub(v, state.root) if isinstance(v, str) else v)
        runs = csv_safe(runs)  # run names and tags are user text
        with files.request_folder(files.RUNS_PREFIX) as folder:  # removed once Gradio has its copy
            out = folder / "mlflow_runs.csv"
            runs.to_csv(out, index=False)
            return files.publish(export_file, out)

    export.click(export_runs, outputs=export_file, api_name="export_runs")
    panel.connect()
