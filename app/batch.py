"""Batch tab: upload a CSV of customers → scored CSV, risk summary, histogram and rejected rows."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from app import files, metrics
from app.state import AppState
from churn import data, schema
from churn.assessment import PROBABILITY, RISK
from churn.batch import ROW
from churn.data import DataError
from churn.io import csv_safe

log = logging.getLogger(__name__)

#: Largest upload the tab scores (bigger files: `churn predict`, which streams them in chunks).
MAX_MB = 20
REJECT_PREVIEW = 200


def check(
    upload: str | None, explain_rows: bool = False, max_line_bytes: int = data.MAX_LINE_BYTES
) -> list[dict]:
    """Validator: the file is there, small enough, passes the CSV reader's file rules (the ones
    `churn predict` applies) and has the Telco columns."""
    return [gr.validate(*_file_problem(upload, max_line_bytes)), gr.validate(True, "")]


def _file_problem(upload: str | None, max_line_bytes: int = data.MAX_LINE_BYTES) -> tuple[bool, str]:
    if not upload:
        return False, "Upload a CSV file of customers first."
    path = Path(upload)  # Gradio itself refuses files that are not .csv (file_types)
    size_mb = path.stat().st_size / 1e6
    if size_mb > MAX_MB:
        return False, (
            f"{path.name}: {size_mb:.1f} MB is over the {MAX_MB} MB limit of this page; "
            "score big files with `churn predict FILE.csv -o scored.csv`"
        )
    try:
        source = data.CsvInput(path, max_line_bytes=max_line_bytes, name=path.name)
        schema.check_columns(pd.DataFrame(columns=source.header), source=path.name)
    except (DataError, schema.SchemaError) as exc:
        return False, str(exc)
    return True, ""


def summary_markdown(
    scored: pd.DataFrame, rejects: pd.DataFrame, name: str, duplicates: int = 0, logged: str = ""
) -> str:
    """The risk breakdown of a scored file, and what happened in the prediction log (`logged`)."""
    counts = scored[RISK].value_counts() if len(scored) else pd.Series(dtype=int)
    lines = [
        f"### {name}: {len(scored):,} customers scored, {len(rejects):,} rejected",
        "",
        "| risk level | customers | share |",
        "|---|---:|---:|",
    ]
    for level in schema.RISK_LEVELS:
        n = int(counts.get(level, 0))
        share = n / len(scored) if len(scored) else 0.0
        lines.append(f"| {level} | {n:,} | {share:.1%} |")
    if len(scored):
        lines += ["", f"Mean churn probability: **{scored[PROBABILITY].mean():.1%}**."]
    if len(rejects):
        lines += ["", "Rejected rows are listed below with the rule they break; fix them and upload again."]
    if duplicates:
        lines += [
            "",
            f"⚠ {duplicates:,} row(s) repeat an earlier row's customerID: each customer is scored once, "
            "the repeats are listed as rejected.",
        ]
    if logged:
        lines += ["", f"Prediction log: {logged}."]
    return "\n".join(lines)


def histogram(scored: pd.DataFrame):
    import plotly.express as px

    fig = px.histogram(
        scored,
        x=PROBABILITY,
        color=RISK,
        nbins=20,
        range_x=[0, 1],
        category_orders={RISK: list(schema.RISK_LEVELS)},
        color_discrete_map={"Low": "#2ca02c", "Medium": "#ff7f0e", "High": "#d62728"},
        labels={PROBABILITY: "Churn probability", RISK: "Risk level"},
        title="Churn probability of the scored customers",
    )
    fig.update_layout(bargap=0.05, yaxis_title="Customers", margin={"t": 50, "b": 40})
    fig.update_xaxes(tickformat=".0%", hoverformat=".1%")
    return fig


def rejects_table(rejects: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows, first rows only: customerID (when the file has it), the CSV line number (header
    is line 1) and the reason(s), then the row's fields as read."""
    first = [c for c in (schema.ID, data.LINE, data.REASON) if c in rejects.columns]
    rest = [c for c in rejects.columns if c not in first]
    return rejects.head(REJECT_PREVIEW)[[*first, *rest]].reset_index(drop=True)


def build_tab(state: AppState) -> None:
    """Upload, score, download; event /batch."""
    gr.Markdown(
        f"Upload a CSV in the Telco format (the 19 customer columns; `customerID` and `Churn` optional; "
        f"up to {MAX_MB} MB). Valid rows are scored and logged; rows that break a rule are listed with the reason."
    )
    with gr.Row():
        upload = gr.File(label="Customers CSV", file_types=[".csv"], elem_id="batch-upload")
        with gr.Column():
            explain_rows = gr.Checkbox(label="Add the top reasons and SHAP columns (slower)", value=False)
            run = gr.Button("Score the file", variant="primary", elem_id="batch-btn")
            scored_file = gr.File(label="Scored CSV", interactive=False, elem_id="batch-download")
    summary = gr.Markdown(elem_id="batch-summary")
    chart = gr.Plot(label="Probability histogram", elem_id="batch-hist")
    rejected = gr.Dataframe(
        label="Rejected rows (first 200)", interactive=False, wrap=True, elem_id="batch-rejects"
    )

    def max_line_bytes() -> int:
        return state.predictor.settings.max_line_bytes

    def validate(upload: str | None, explain_rows: bool = False) -> list[dict]:
        """Validator: `check` with the served project's `serving.max_line_bytes`."""
        return check(upload, explain_rows, max_line_bytes())

    def score(upload: str, explain_rows: bool = False):
        """Scored CSV (path), summary (risk breakdown), probability histogram, rejected rows with reasons."""
        path = Path(upload)
        try:  # the reader `churn predict` uses: the same file gets the same verdict
            source = data.CsvInput(path, max_line_bytes=max_line_bytes(), name=path.name)
            rows = source.read()
            schema.check_columns(rows.frame, source=path.name)
            # The file's rows are logged as one batch, visible once all is done, and only once per
            # file and model; the scored CSV leaves its private folder for Gradio's cache.
            with (
                state.predictor.batch_log(path) as entry,
                files.request_folder(files.BATCH_PREFIX) as folder,
            ):
                scored, value_rejects = state.predictor.score_frame(
                    rows.frame, explain_rows=explain_rows, batch=entry
                )
                out = folder / f"{path.stem}.scored.csv"
                csv_safe(scored).to_csv(out, index=False)
                out = files.publish(scored_file, out)
        except (DataError, schema.SchemaError) as exc:
            raise state.error(str(exc)) from exc
        metrics.of(state).predicted(scored[RISK])
        rejects = rows.with_rejects(value_rejects, row=ROW)
        log.info("batch %s: %d scored, %d rejected", path.name, len(scored), len(rejects))
        return (
            str(out),
            summary_markdown(scored, rejects, path.name, rows.duplicates, entry.message() if entry else ""),
            histogram(scored),
            rejects_table(rejects),
        )

    run.click(
        score,
        inputs=[upload, explain_rows],
        outputs=[scored_file, summary, chart, rejected],
        validator=validate,
        api_name="batch",
    )
