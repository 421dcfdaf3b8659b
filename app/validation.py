"""Validation tab: the deployment gates from metrics/validation.json and the model card."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
import pandas as pd

from app.state import AppState
from churn import validation

log = logging.getLogger(__name__)

GATE_COLUMNS = ["gate", "status", "value", "rule", "threshold", "note"]
STATUS_ICON = {
    validation.PASS: "✓ pass",
    validation.FAIL: "✗ fail",
    validation.INSUFFICIENT: "– insufficient data",
}


def gates_table(gates: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per gate, failed ones first."""
    rows = [
        (
            name,
            STATUS_ICON.get(g.get("status"), g.get("status")),
            g.get("value"),
            validation.RULES.get(g.get("rule"), g.get("rule")),
            g.get("threshold"),
            g.get("note", ""),
        )
        for name, g in gates.items()
    ]
    order = {validation.FAIL: 0, validation.INSUFFICIENT: 1, validation.PASS: 2}
    rows.sort(key=lambda r: (order.get(gates[r[0]].get("status"), 3), r[0]))
    return pd.DataFrame(rows, columns=GATE_COLUMNS)


def verdict_markdown(report: dict[str, Any]) -> str:
    counts = report.get("counts", {})
    approved, rec = report.get("approved"), report.get("recommendation")
    failed = report.get("failed") or []
    lines = [
        f"### {validation.decision_phrase(approved, rec)}",
        f"**{validation.verdict_line(approved, rec, len(failed))}**",
        f"{counts.get(validation.PASS, 0)} gates passed, {counts.get(validation.FAIL, 0)} failed, "
        f"{counts.get(validation.INSUFFICIENT, 0)} with insufficient data (the "
        f"{report.get('model', 'challenger')}, A/B gates included).",
    ]
    if failed:
        lines.append("Failed: " + ", ".join(f"`{g}`" for g in failed))
    champion = report.get("champion", {})
    if champion:
        state = "passes every one" if champion.get("passed") else f"fails {len(champion.get('failed', []))}"
        lines.append(f"The production champion, held to the same gates, {state} of them (for reference).")
    return "\n\n".join(lines)


def load(state: AppState) -> tuple[str, pd.DataFrame, str]:
    """Verdict, gates table and model card, read fresh from metrics/."""
    try:
        report = state.metrics(state.layout.metrics.validation)
        card = state.layout.metrics.model_card.read_text()
    except FileNotFoundError:
        msg = "No validation report yet: run `dvc repro` (stages validate-fairness, robustness, ab-test, report)."
        return msg, pd.DataFrame(columns=GATE_COLUMNS), ""
    return verdict_markdown(report), gates_table(report.get("gates", {})), card


def build_tab(state: AppState, tab: gr.Tab) -> None:
    """Verdict, gates and model card; event /validation (on opening the tab and on refresh)."""
    with gr.Row():
        verdict = gr.Markdown(elem_id="validation-verdict")
        refresh = gr.Button("Refresh", size="sm", scale=0)
    gates = gr.Dataframe(headers=GATE_COLUMNS, label="Deployment gates", interactive=False, wrap=True)
    with gr.Accordion("Model card", open=True):
        card = gr.Markdown(elem_id="model-card")

    def validation_report():
        """The challenger's verdict (Markdown), its gates (table) and the model card (Markdown)."""
        return load(state)

    gr.on(
        [tab.select, refresh.click], validation_report, outputs=[verdict, gates, card], api_name="validation"
    )
