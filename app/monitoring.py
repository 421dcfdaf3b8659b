"""Monitoring tab: what the app served — volume, probabilities, risk, drift, alerts, live performance."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import gradio as gr
import pandas as pd

from app.state import AppState
from churn import data
from churn.monitoring import alerts, drift, performance, timeseries
from churn.monitoring.store import Window, utc_naive

log = logging.getLogger(__name__)

WINDOWS = {
    "Last 1,000 predictions": lambda: Window(last=1000),
    "Last 24 hours": lambda: Window(start=utc_naive(None) - timedelta(hours=24)),
    "Last 7 days": lambda: Window(start=utc_naive(None) - timedelta(days=7)),
    "Last 30 days": lambda: Window(start=utc_naive(None) - timedelta(days=30)),
    "Everything logged": lambda: Window(),
}
DEFAULT_WINDOW = "Last 7 days"
LIVE_UNITS = {"hour": "hour", "day": "day"}
RISK_COLORS = {"Low": "#2ca02c", "Medium": "#ff7f0e", "High": "#d62728"}
ALERT_COLUMNS = ["when", "kind", "feature", "message"]
MAX_DROP = 0.05


def _section(state: AppState, key: str) -> dict[str, Any]:
    return dict((state.params().get("monitoring") or {}).get(key) or {})


def drift_config(state: AppState) -> drift.DriftConfig:
    return drift.DriftConfig.from_params(_section(state, "drift"))


def drift_reference(state: AppState) -> drift.Reference:
    """The training split, plus the served model's probabilities on the test split (built once)."""

    def make() -> drift.Reference:
        X, _ = data.xy(state.test_set())
        proba = state.predictor.pipeline.predict_proba(X)[:, 1]
        return drift.reference_from_frame(
            state.reference(), drift_config(state), probabilities=proba, source="training split"
        )

    return state.once("drift_reference", make)


def _bar(frame: pd.DataFrame, title: str, y: str = "n"):
    import plotly.express as px

    fig = px.bar(frame, x="bucket", y=y, title=title, labels={"bucket": "UTC", "n": "predictions"})
    fig.update_layout(margin={"t": 50, "b": 40})
    return fig


def risk_figure(wide: pd.DataFrame, unit: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for level, color in RISK_COLORS.items():
        fig.add_bar(x=wide["bucket"], y=wide[level], name=level, marker_color=color)
    fig.update_layout(
        barmode="stack",
        title=f"Risk levels per {unit}",
        yaxis_title="predictions",
        margin={"t": 50, "b": 40},
    )
    return fig


def distribution_figure(dist: pd.DataFrame, summary: pd.DataFrame, unit: str):
    """Heatmap: share of predictions per probability bin and time bucket, with the mean on top."""
    import plotly.graph_objects as go

    labels = timeseries.bin_labels(10)
    grid = dist.pivot_table(index="bin", columns="bucket", values="share", fill_value=0.0).reindex(
        range(10), fill_value=0.0
    )
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=list(grid.columns),
            y=labels,
            colorscale="Blues",
            colorbar={"title": "share"},
        )
    )
    if len(summary):
        fig.add_scatter(
            x=summary["bucket"],
            y=[labels[min(int(m * 10), 9)] for m in summary["mean"]],
            mode="lines+markers",
            name="mean (bin)",
            line={"color": "#d62728"},
        )
    fig.update_layout(
        title=f"Churn probability distribution per {unit}",
        yaxis_title="churn probability",
        margin={"t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def live_figure(live: pd.DataFrame):
    import plotly.graph_objects as go

    fig = go.Figure()
    for metric in ("accuracy", "roc_auc"):
        fig.add_scatter(x=live["start"], y=live[metric], mode="lines+markers", name=metric)
    fig.update_layout(title="Live accuracy and ROC-AUC", yaxis={"range": [0, 1]}, margin={"t": 50, "b": 40})
    return fig


def alerts_table(active: list, stored: list) -> pd.DataFrame:
    rows = [("now", a.kind, a.feature or "", a.message) for a in active]
    rows += [(f"{a.created_at:%Y-%m-%d %H:%M}", a.kind, a.feature or "", a.message) for a in stored]
    return pd.DataFrame(rows, columns=ALERT_COLUMNS)


def _served_metrics(state: AppState) -> dict[str, float]:
    """The served model's test-set accuracy and ROC-AUC (the baseline live figures are held to)."""
    try:
        scores = state.metrics(f"evaluate/{state.predictor.model_name}.json")
    except FileNotFoundError:
        return {}
    return {k: scores[k] for k in ("accuracy", "roc_auc") if k in scores}


def report(state: AppState, window_name: str, unit: str) -> dict[str, Any]:
    """Everything the tab shows for one window, computed by the monitoring engine."""
    store = state.predictor.store
    window = WINDOWS[window_name]()
    selection = store.select(window)
    out: dict[str, Any] = {"n": selection.n, "bounds": store.time_bounds(selection)}
    out["volume_day"] = timeseries.volume(store, "day", selection)
    out["volume_hour"] = timeseries.volume(store, "hour", selection)
    out["risk"] = timeseries.risk_breakdown(store, unit, selection)
    out["distribution"] = timeseries.probability_distribution(store, unit, 10, selection)
    out["summary"] = timeseries.probability_summary(store, unit, selection)
    out["drift"] = (
        drift.compare(drift_reference(state), store.summarize(selection), drift_config(state), window_name)
        if selection.n
        else None
    )
    labelled = store.labelled(selection)
    threshold = float(state.params().get("evaluate", {}).get("threshold", 0.5))
    out["live"] = performance.live_over_time(labelled, unit, threshold) if len(labelled) else pd.DataFrame()
    overall = performance.live_metrics(labelled["churned"], labelled["probability"], threshold) if len(labelled) else None
    max_drop = float(_section(state, "performance").get("max_drop", MAX_DROP))
    active = alerts.from_drift(out["drift"]) if out["drift"] else []
    active += alerts.from_performance(None, overall, _served_metrics(state), max_drop, window_name)
    out["alerts"] = alerts_table(active, store.read_alerts(limit=50))
    out["n_active"] = len(active)
    out["overall"] = overall
    return out


def summary_markdown(r: dict[str, Any], window_name: str) -> str:
    if not r["n"]:
        return f"### {window_name}: no predictions logged yet\nPredictions made in the Predict and Batch tabs appear here."
    lo, hi = r["bounds"]
    lines = [f"### {window_name}: {r['n']:,} predictions, {lo:%Y-%m-%d %H:%M} – {hi:%Y-%m-%d %H:%M} UTC"]
    d = r["drift"]
    if d and d["status"] == "ok":
        ds = d["dataset"]
        verdict = "⚠️ **dataset drift**" if ds["drifted"] else "✅ no dataset drift"
        names = f" ({', '.join(ds['drifted_features'])})" if ds["drifted_features"] else ""
        pred = d.get("prediction") or {}
        lines.append(
            f"{verdict}: {ds['n_drifted']} of {ds['n_features']} features drifted{names} — {d['method']}; "
            f"prediction drift: {'⚠️ yes' if pred.get('drifted') else 'no'}."
        )
    elif d:
        lines.append(f"Drift: {d['message']}.")
    lines.append(f"Active alerts: **{r['n_active']}**.")
    if r["overall"]:
        o = r["overall"]
        lines.append(
            f"Live performance on {o['n']:,} predictions with a recorded outcome: accuracy {o['accuracy']:.3f}, "
            f"ROC-AUC {o['roc_auc']:.3f}."
        )
    else:
        lines.append("Live accuracy appears once outcomes are recorded (`churn monitor feedback`).")
    return "\n\n".join(lines)


def build_tab(state: AppState, tab: gr.Tab) -> None:
    """Window and unit pickers, charts, drift table, alerts, live metrics; event /monitoring."""
    with gr.Row():
        window = gr.Dropdown(list(WINDOWS), value=DEFAULT_WINDOW, label="Window", elem_id="monitor-window")
        unit = gr.Radio(list(LIVE_UNITS), value="day", label="Time unit")
        refresh = gr.Button("Refresh", variant="primary", scale=0, elem_id="monitor-refresh")
    summary = gr.Markdown(elem_id="monitor-summary")
    with gr.Row():
        volume_day = gr.Plot(label="Prediction volume by day", elem_id="volume-day")
        volume_hour = gr.Plot(label="Prediction volume by hour", elem_id="volume-hour")
    with gr.Row():
        distribution = gr.Plot(label="Probability distribution over time", elem_id="prob-dist")
        risk = gr.Plot(label="Risk-level breakdown", elem_id="risk-breakdown")
    alerts_df = gr.Dataframe(headers=ALERT_COLUMNS, label="Alerts (active now, then stored)", wrap=True)
    drift_df = gr.Dataframe(label="Drift against the training data, per feature and for the prediction", wrap=True)
    live = gr.Plot(label="Live accuracy and ROC-AUC over time", elem_id="live-perf")

    def monitoring(window: str = DEFAULT_WINDOW, unit: str = "day"):
        """Summary, daily and hourly volume, probability distribution, risk breakdown, alerts, drift table, live metrics."""
        r = report(state, window, unit)
        drift_rows = drift.drift_table(r["drift"]) if r["drift"] else pd.DataFrame()
        return (
            summary_markdown(r, window),
            _bar(r["volume_day"], "Predictions per day"),
            _bar(r["volume_hour"], "Predictions per hour"),
            distribution_figure(r["distribution"], r["summary"], unit),
            risk_figure(r["risk"], unit),
            r["alerts"],
            drift_rows.round(4),
            live_figure(r["live"]) if len(r["live"]) else None,
        )

    gr.on(
        [tab.select, refresh.click],
        monitoring,
        inputs=[window, unit],
        outputs=[summary, volume_day, volume_hour, distribution, risk, alerts_df, drift_df, live],
        api_name="monitoring",
    )
