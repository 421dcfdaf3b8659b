"""Batch tab: upload a CSV of customers → scored CSV, risk summary, histogram, rejected rows, and the
campaign: who to contact, with which offer, and what it is expected to earn."""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr
import pandas as pd

from app import files, formats, metrics
from app.state import AppState
from churn import data, retention, schema
from churn.assessment import PROBABILITY, RISK
from churn.batch import ROW
from churn.data import DataError
from churn.economics import money
from churn.io import csv_safe

log = logging.getLogger(__name__)

#: Largest upload the tab scores (bigger files: `churn predict`, which streams them in chunks).
MAX_MB = 20
REJECT_PREVIEW = 200
CAMPAIGN_PREVIEW = 500
NO_ECONOMICS = "No campaign: params.yaml has no economics section (customer value and offer costs)."
#: The campaign list's columns (the download's; the table shows the first four).
CAMPAIGN_COLUMNS = (
    schema.ID,
    PROBABILITY,
    retention.BEST_ACTION,
    retention.EXPECTED_PROFIT,
    retention.ACTION_PROFIT,
)


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


def campaign_list(decided: pd.DataFrame | None, budget: float | None = None) -> pd.DataFrame:
    """The ranked campaign (`retention.campaign`) in `CAMPAIGN_COLUMNS`, ranks from 1."""
    if decided is None or decided.empty:
        return pd.DataFrame(columns=["rank", *CAMPAIGN_COLUMNS])
    chosen = retention.campaign(decided, None if budget is None else int(budget))
    out = chosen.reindex(columns=list(CAMPAIGN_COLUMNS)).reset_index(drop=True)
    out.insert(0, "rank", range(1, len(out) + 1))
    return out


def campaign_markdown(chosen: pd.DataFrame, decided: pd.DataFrame, budget: float | None) -> str:
    """The campaign in two lines: customers to contact and the total expected gain."""
    worth = int(decided[retention.CONTACT].sum())
    capped = f" (the budget of {int(budget):,}; {worth:,} are worth contacting)" if budget is not None else ""
    return (
        f"### Campaign: contact {len(chosen):,} of {len(decided):,} customers{capped}\n\n"
        f"Total expected gain: **{money(chosen[retention.EXPECTED_PROFIT].sum())}** "
        "(expected profit of contacting each, summed; the economics of params.yaml)."
    )


def campaign_table(chosen: pd.DataFrame):
    """The first rows of the campaign for a gr.Dataframe: probabilities as percentages, profits as money."""
    shown = chosen.head(CAMPAIGN_PREVIEW)[["rank", *CAMPAIGN_COLUMNS[:4]]]
    return shown.style.format({PROBABILITY: formats.PERCENT, retention.EXPECTED_PROFIT: money})


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
    decided = gr.State(None)
    with gr.Group():
        campaign_summary = gr.Markdown(elem_id="campaign-summary")
        with gr.Row():
            budget = gr.Number(
                label="Budget: most customers to contact (0 or empty: everyone worth contacting)",
                precision=0,
                minimum=0,
                value=None,
                elem_id="campaign-budget",
            )
            campaign_file = gr.File(
                label="Campaign list (CSV)", interactive=False, elem_id="campaign-download"
            )
        campaign = gr.Dataframe(
            label=f"Customers to contact, best first (first {CAMPAIGN_PREVIEW})",
            interactive=False,
            wrap=True,
            elem_id="campaign-table",
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
                decisions = None
                if state.predictor.economics is not None:  # the columns `churn predict` writes
                    decisions = state.predictor.decide_frame(scored)
                    scored = pd.concat([scored, decisions], axis=1)
                    decisions = scored.reindex(columns=[retention.CONTACT, *CAMPAIGN_COLUMNS])
                out = folder / f"{path.stem}.scored.csv"
                csv_safe(_as_cli_writes(scored)).to_csv(out, index=False)
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
            decisions,
        )

    def show_campaign(decisions: pd.DataFrame | None, budget: float | None = None):
        """The campaign of the scored file: summary (contacted, total expected gain), ranked list
        (customerID, churn probability, best action, expected profit), and the list as CSV."""
        budget = int(budget) if budget else None  # an empty field arrives as 0: no budget
        chosen = campaign_list(decisions, budget)
        if decisions is None:
            economics = state.predictor.economics is not None
            text = "Score a file to see its campaign." if economics else NO_ECONOMICS
            return text, campaign_table(chosen), None
        with files.request_folder(files.BATCH_PREFIX) as folder:
            out = folder / "campaign.csv"
            csv_safe(chosen).to_csv(out, index=False)
            out = files.publish(campaign_file, out)
        return campaign_markdown(chosen, decisions, budget), campaign_table(chosen), out

    shown = [campaign_summary, campaign, campaign_file]
    run.click(
        score,
        inputs=[upload, explain_rows],
        outputs=[scored_file, summary, chart, rejected, decided],
        validator=validate,
        api_name="batch",
    ).success(show_campaign, inputs=[decided, budget], outputs=shown, api_name="campaign")
    budget.change(show_campaign, inputs=[decided, budget], outputs=shown, api_name="campaign_budget")


def _as_cli_writes(scored: pd.DataFrame) -> pd.DataFrame:
    """`contact` as `true` / `false`, the way `churn predict` writes it (pandas would write True / False)."""
    if retention.CONTACT not in scored:
        return scored
    return scored.assign(**{retention.CONTACT: scored[retention.CONTACT].map({True: "true", False: "false"})})
