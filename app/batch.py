"""Batch tab: upload a CSV of customers → scored CSV, risk summary, histogram and rejected rows."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd

from app.state import AppState
from churn import schema, serving
from churn.data import DataError, read_raw

log = logging.getLogger(__name__)

#: Largest upload the tab scores (bigger files: `churn predict`, which streams them in chunks).
MAX_MB = 20
REJECT_PREVIEW = 200


def check(upload: str | None, explain_rows: bool = False) -> list[dict]:
    """Validator: the file is there, small enough, a CSV, and has the Telco columns."""
    return [gr.validate(*_file_problem(upload)), gr.validate(True, "")]


def _file_problem(upload: str | None) -> tuple[bool, str]:
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
        header = pd.read_csv(path, dtype=str, nrows=0)
        serving.check_columns(header, source=path.name)
    except schema.SchemaError as exc:
        return False, str(exc)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        return False, f"{path.name}: not a readable CSV ({exc})"
    return True, ""


def summary_markdown(scored: pd.DataFrame, rejects: pd.DataFrame, name: str) -> str:
    counts = scored[serving.RISK].value_counts() if len(scored) else pd.Series(dtype=int)
    lines = [
        f"### {name}: {len(scored):,} customers scored, {len(rejects):,} rejected",
        "",
        "| risk level | customers | share |",
        "|---|---:|---:|",
    ]
    for level in serving.RISK_LEVELS:
        n = int(counts.get(level, 0))
        share = n / len(scored) if len(scored) else 0.0
        lines.append(f"| {level} | {n:,} | {share:.1%} |")
    if len(scored):
        lines += ["", f"Mean churn probability: **{scored[serving.PROBABILITY].mean():.1%}**."]
    if len(rejects):
        lines += ["", "Rejected rows are listed below with the rule they break; fix them and upload again."]
    return "\n".join(lines)


def histogram(scored: pd.DataFrame):
    import plotly.express as px

    fig = px.histogram(
        scored,
        x=serving.PROBABILITY,
        color=serving.RISK,
        nbins=20,
        range_x=[0, 1],
        category_orders={serving.RISK: list(serving.RISK_LEVELS)},
        color_discrete_map={"Low": "#2ca02c", "Medium": "#ff7f0e", "High": "#d62728"},
        labels={serving.PROBABILITY: "Churn probability", serving.RISK: "Risk level"},
        title="Churn probability of the scored customers",
    )
    fig.update_layout(bargap=0.05, yaxis_title="Customers", margin={"t": 50, "b": 40})
    return fig


def rejects_table(rejects: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows with their CSV line number (header is line 1) and reason, first rows only."""
    out = rejects.head(REJECT_PREVIEW).copy()
    out.insert(0, "line", out.pop(serving.ROW) + 2)
    return out


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

    def score(upload: str, explain_rows: bool = False):
        """Scored CSV (path), summary (risk breakdown), probability histogram, rejected rows with reasons."""
        path = Path(upload)
        try:
            df = read_raw(path)
            scored, rejects = state.predictor.score_frame(df, explain_rows=explain_rows)
        except (DataError, schema.SchemaError) as exc:
            raise state.error(str(exc)) from exc
        out = Path(tempfile.mkdtemp(prefix="churn-batch-")) / f"{path.stem}.scored.csv"
        scored.to_csv(out, index=False)
        log.info("batch %s: %d scored, %d rejected", path.name, len(scored), len(rejects))
        return (
            str(out),
            summary_markdown(scored, rejects, path.name),
            histogram(scored),
            rejects_table(rejects),
        )

    run.click(
        score,
        inputs=[upload, explain_rows],
        outputs=[scored_file, summary, chart, rejected],
        validator=check,
        api_name="batch",
    )
