"""A/B test tab: any two models on the same test customers — McNemar, paired bootstrap, recommendation."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
import pandas as pd

from app.formats import zoomed_range
from app.state import AppState
from churn import abtest, data, registry, validation
from churn.metrics import HEADLINE
from churn.params import read
from churn.paths import LAYOUT
from churn.redact import redact_url
from churn.settings import MlflowSettings

log = logging.getLogger(__name__)

PIPELINE_MODELS = {name: f"{name} ({LAYOUT.model(name).as_posix()})" for name in ("champion", "challenger")}


def pipeline_choices() -> list[tuple[str, str]]:
    """(label, reference) of the pipeline's own models."""
    return [(label, ref) for ref, label in PIPELINE_MODELS.items()]


def model_choices(state: AppState) -> list[tuple[str, str]]:
    """(label, reference) of the pipeline's models and every registered version."""
    choices = pipeline_choices()
    try:
        name = read(state.params(), MlflowSettings).registered_model
        for row in registry.list_versions(name, root=state.root):
            tags = ", ".join(row["aliases"]) or "no alias"
            label = f"{name} v{row['version']} ({tags}; {row['estimator'] or 'unknown estimator'})"
            choices.append((label, f"models:/{name}/{row['version']}"))
    except Exception as exc:  # the registry is optional: the pipeline's models are always there
        log.warning("registry versions unavailable for the A/B tab: %s", redact_url(str(exc)))
    return choices


def checker(state: AppState):
    """Validator: two known models, and not the same one twice."""

    def check(model_a: str | None, model_b: str | None) -> list[dict]:
        known = {ref for _, ref in model_choices(state)}

        def problem(ref: str | None, which: str) -> str:
            if not ref:
                return f"Pick model {which}."
            if ref not in known:
                return f"{ref!r} is not a known model: pick one of the list (champion, challenger or a registered version)"
            return ""

        a, b = problem(model_a, "A"), problem(model_b, "B")
        if not b and model_a == model_b:
            b = "Pick a model B different from model A."
        return [gr.validate(not a, a), gr.validate(not b, b)]

    return check


def compare(state: AppState, model_a: str, model_b: str) -> dict[str, Any]:
    """The `ab-test` stage's comparison (churn.abtest.compare) for two chosen models on the test split."""
    setup = abtest.setup(state.params())
    X, y = data.xy(state.test_set())
    return abtest.compare_models(
        setup,
        state.model_for(model_a).pipeline,
        state.model_for(model_b).pipeline,
        X,
        y,
        failed_gates=_failed_gates(state, model_b),  # None: B's gates unknown (see abtest.gates_verdict)
    )


def _failed_gates(state: AppState, ref: str) -> list[str] | None:
    """The gates model B fails, as the `ab-test` stage saw them, when B is the pipeline's challenger; else None."""
    if ref != validation.CANDIDATE:
        return None
    try:
        return list(state.metrics(state.layout.metrics.ab_test)["challenger_failed_gates"])
    except (FileNotFoundError, KeyError):
        return None


def contingency_table(result: dict[str, Any]) -> pd.DataFrame:
    c = result["contingency"]
    return pd.DataFrame(
        [
            [
                "A correct",
                c["champion_correct"]["challenger_correct"],
                c["champion_correct"]["challenger_wrong"],
            ],
            ["A wrong", c["champion_wrong"]["challenger_correct"], c["champion_wrong"]["challenger_wrong"]],
        ],
        columns=["", "B correct", "B wrong"],
    )


def _ci(interval: dict[str, float]) -> str:
    return f"{interval['estimate']:.4f} ({interval['low']:.4f} – {interval['high']:.4f})"


def metrics_table(result: dict[str, Any]) -> pd.DataFrame:
    boot = result["bootstrap"]
    level = f"{boot['confidence']:.0%} CI"
    rows = [
        (m, _ci(boot["champion"][m]), _ci(boot["challenger"][m]), _ci(boot["difference"][m]))
        for m in (*HEADLINE, *(["empc"] if "empc" in boot["difference"] else []))  # EMPC: profit per customer
    ]
    return pd.DataFrame(
        rows, columns=["metric", f"model A ({level})", f"model B ({level})", f"B − A ({level})"]
    )


def metrics_figure(result: dict[str, Any], label_a: str, label_b: str):
    import plotly.graph_objects as go

    boot = result["bootstrap"]
    fig = go.Figure()
    for key, label, color in (("champion", label_a, "#1f77b4"), ("challenger", label_b, "#ff7f0e")):
        est = [boot[key][m]["estimate"] for m in HEADLINE]
        fig.add_bar(
            name=label,
            x=list(HEADLINE),
            y=est,
            marker_color=color,
            error_y={
                "type": "data",
                "array": [boot[key][m]["high"] - e for m, e in zip(HEADLINE, est, strict=True)],
                "arrayminus": [e - boot[key][m]["low"] for m, e in zip(HEADLINE, est, strict=True)],
            },
        )
    bounds = [
        boot[key][m][side] for key in ("champion", "challenger") for m in HEADLINE for side in ("low", "high")
    ]
    low, high = zoomed_range(pd.Series(bounds, dtype=float))
    fig.update_layout(
        barmode="group",
        title=f"Test-set metrics with {boot['confidence']:.0%} bootstrap intervals<br><sup>value axis "
        f"zoomed to {low:.4g} – {high:.4g} (not from 0): compare the table's figures</sup>",
        yaxis={"range": [low, high]},
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 70, "b": 40},
    )
    return fig


def recommendation_markdown(result: dict[str, Any], label_a: str, label_b: str) -> str:
    m = result["mcnemar"]
    approved, failed = abtest.gates_verdict(result)
    rec = result["recommendation"]
    lines = [
        f"### {validation.decision_phrase(approved, rec, 'model B', 'model A')}",
        f"**{validation.verdict_line(approved, rec, len(failed), 'model B', 'model A')}**",
        "",
        f"A = {label_a} · B = {label_b} · {result['n']:,} test customers, threshold {result['threshold']:g}",
        "",
        *[f"- {reason}" for reason in result["reasons"]],
        "",
        f"McNemar's test: statistic {m['statistic']:.3f}, p = {m['p_value']:.4g} ({m['method']}); "
        f"significance level {result['alpha']:g}.",
    ]
    if failed:
        lines.append("\nFailed gates: " + ", ".join(f"`{g}`" for g in failed))
    if approved is None:
        lines.append(
            "\nModel B's validation gates are only known for the pipeline's challenger: this recommendation "
            "weighs the test-set comparison alone."
        )
    return "\n".join(lines)


def build_tab(state: AppState, tab: gr.Tab) -> None:
    """Two model pickers and the comparison; events /ab_models and /ab_test."""
    gr.Markdown(
        "Compare any two models on the same held-out customers, exactly as the pipeline's `ab-test` stage does: "
        "McNemar's test on the paired predictions and a paired bootstrap of every metric."
    )
    with gr.Row():
        choices = pipeline_choices()  # registered versions join when the tab opens (no MLflow at start-up)
        model_a = gr.Dropdown(
            choices,
            value="champion",
            label="Model A (in production)",
            allow_custom_value=True,
            elem_id="ab-model-a",
        )
        model_b = gr.Dropdown(
            choices,
            value="challenger",
            label="Model B (candidate)",
            allow_custom_value=True,
            elem_id="ab-model-b",
        )
        run = gr.Button("Run the A/B test", variant="primary", scale=0, elem_id="ab-btn")
    recommendation = gr.Markdown(elem_id="ab-recommendation")
    with gr.Row():
        table = gr.Dataframe(label="Contingency table (test customers)", interactive=False)
        scores = gr.Dataframe(label="Metrics side by side", interactive=False, wrap=True)
    chart = gr.Plot(label="Visual comparison", elem_id="ab-chart")

    def ab_models():
        """The models one can compare: the pipeline's champion and challenger and every registered version."""
        choices = model_choices(state)
        return (
            gr.Dropdown(choices=choices, value="champion"),
            gr.Dropdown(choices=choices, value="challenger"),
        )

    tab.select(ab_models, outputs=[model_a, model_b], api_name="ab_models")

    def ab_test(model_a: str, model_b: str):
        """Recommendation (Markdown), contingency table, metrics side by side, comparison chart."""
        labels = dict((ref, label) for label, ref in model_choices(state))
        try:
            result = compare(state, model_a, model_b)
        except (FileNotFoundError, ValueError) as exc:
            raise state.error(str(exc)) from exc
        la, lb = labels.get(model_a, model_a), labels.get(model_b, model_b)
        return (
            recommendation_markdown(result, la, lb),
            contingency_table(result),
            metrics_table(result),
            metrics_figure(result, f"A: {la}", f"B: {lb}"),
        )

    run.click(
        ab_test,
        inputs=[model_a, model_b],
        outputs=[recommendation, table, scores, chart],
        validator=checker(state),
        api_name="ab_test",
    )
