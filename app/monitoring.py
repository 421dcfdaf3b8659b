"""Monitoring tab: what the app served — volume, probabilities, risk, drift, alerts, live performance."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import gradio as gr
import pandas as pd

from app import metrics
from app.access import Access
from app.state import AppState
from churn.monitoring import drift, timeseries
from churn.monitoring.monitor import Monitor
from churn.monitoring.queries import Window
from churn.monitoring.records import utc_naive
from churn.settings import MonitoringSettings

log = logging.getLogger(__name__)

#: Window choices → the window of the log they select (times are UTC).
WINDOWS: dict[str, Callable[[Monitor], Window]] = {
    "Last N predictions (monitoring.window)": lambda mon: mon.window(),
    "Last 24 hours": lambda mon: mon.window(start=utc_naive(None) - timedelta(hours=24)),
    "Last 7 days": lambda mon: mon.window(start=utc_naive(None) - timedelta(days=7)),
    "Last 30 days": lambda mon: mon.window(start=utc_naive(None) - timedelta(days=30)),
    "Everything logged": lambda mon: Window(),
}
DEFAULT_WINDOW = "Last 7 days"
UNITS = ("hour", "day")
#: One time bucket in milliseconds (plotly's date unit), and how its ticks read.
BUCKET_MS = {"hour": 3_600_000, "day": 86_400_000, "week": 7 * 86_400_000, "month": 30 * 86_400_000}
TICKS = {"hour": "%b %d %H:00", "day": "%b %d", "week": "%b %d", "month": "%b %Y"}
#: Up to this many time buckets, the time axis is padded and ticked per bucket (plotly's own range breaks).
FEW_BUCKETS = 3
RISK_COLORS = {"Low": "#2ca02c", "Medium": "#ff7f0e", "High": "#d62728"}
ALERT_COLUMNS = ["when", "kind", "feature", "message"]
CHANGING = "Storing alerts and posting them to the webhook"


def picked(window: str | None, unit: str | None) -> tuple[str, str]:
    """The window and time unit as chosen, or a `gr.Error` naming the picker and its choices when one
    is missing or unknown (an API call with `window=None`, say)."""
    for label, value, choices in (("Window", window, list(WINDOWS)), ("Time unit", unit, list(UNITS))):
        if value not in choices:
            given = "nothing was chosen" if value in (None, "") else f"{str(value)[:80]!r} is not one of them"
            raise gr.Error(f"{label}: pick one of {choices} ({given}).", print_exception=False)
    return window, unit


def monitor(state: AppState) -> Monitor:
    """The monitoring service on the app's prediction log and served model (built once)."""
    return state.once(
        "monitor",
        lambda: Monitor(
            MonitoringSettings.from_params(state.params().get("monitoring"), str(state.params_path)),
            state.predictor.store,
            root=state.root,
            predictor=state.predictor,
        ),
    )


def report(state: AppState, window_name: str, unit: str) -> dict[str, Any]:
    """Everything the tab shows for one window, computed by the monitoring service."""
    mon = monitor(state)
    store = mon.store
    window = WINDOWS[window_name](mon)
    selection = store.select(window)
    out: dict[str, Any] = {"n": selection.n, "window": window_name}
    if not selection.n:
        return out
    out["bounds"] = store.time_bounds(selection)
    out["volume_day"] = timeseries.volume(store, "day", selection)
    out["volume_hour"] = timeseries.volume(store, "hour", selection)
    out["risk"] = timeseries.risk_breakdown(store, unit, selection)
    out["distribution"] = timeseries.probability_distribution(store, unit, 10, selection)
    out["summary"] = timeseries.probability_summary(store, unit, selection)
    out["drift"], active = mon.evaluate(window)  # the alerts `churn monitor check` would fire
    metrics.of(state).monitored(out["drift"], len(active))
    out["performance"] = mon.performance(window, unit) | {
        "min_estimated": mon.settings.performance.min_estimated
    }
    out["alerts"] = alerts_table(active, store.read_alerts(limit=50))
    out["n_active"] = len(active)
    return out


def time_axis(fig, stamps: Any, unit: str):
    """Bars one bucket wide, markers on every line, and with few buckets (1–3) an axis padded by one
    bucket each side and ticked per bucket — instead of plotly's milliseconds around a lone point."""
    times = pd.to_datetime(pd.Series(list(stamps))).dropna().drop_duplicates()
    width = BUCKET_MS.get(unit, BUCKET_MS["day"])
    fig.update_traces(width=0.8 * width, selector={"type": "bar"})
    fig.update_traces(mode="lines+markers", marker={"size": 9}, selector={"type": "scatter"})
    fig.update_xaxes(type="date", tickformat=TICKS.get(unit, "%b %d"))
    if 0 < len(times) <= FEW_BUCKETS:
        pad = pd.Timedelta(milliseconds=width)
        fig.update_xaxes(range=[times.min() - pad, times.max() + pad], dtick=width)
    return fig


def _bar(frame: pd.DataFrame, title: str, unit: str):
    import plotly.express as px

    fig = px.bar(frame, x="bucket", y="n", title=title, labels={"bucket": "UTC", "n": "predictions"})
    fig.update_layout(margin={"t": 50, "b": 40})
    return time_axis(fig, frame["bucket"], unit)


def risk_figure(wide: pd.DataFrame, unit: str):
    import plotly.graph_objects as go

    fig = go.Figure()
    for level, color in RISK_COLORS.items():
        fig.add_bar(x=wide["bucket"], y=wide[level], name=level, marker_color=color)
    fig.update_layout(
        barmode="stack", title=f"Risk levels per {unit}", yaxis_title="predictions", margin={"t": 50}
    )
    return time_axis(fig, wide["bucket"], unit)


def distribution_figure(dist: pd.DataFrame, summary: pd.DataFrame, unit: str):
    """Heatmap: share of predictions per probability bin and time bucket, with the mean drawn on top."""
    import plotly.graph_objects as go

    labels = timeseries.bin_labels(10)
    grid = dist.pivot_table(index="bin", columns="bucket", values="share", fill_value=0.0).reindex(
        range(10), fill_value=0.0
    )
    fig = go.Figure(go.Heatmap(z=grid.to_numpy(), x=list(grid.columns), y=labels, colorscale="Blues"))
    fig.add_scatter(
        x=summary["bucket"],
        y=[labels[min(int(m * 10), 9)] for m in summary["mean"]],
        mode="lines+markers",
        name="mean probability",
        line={"color": "#d62728"},
    )
    fig.update_layout(
        title=f"Churn probability distribution per {unit}",
        yaxis_title="churn probability",
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 50, "b": 40},
    )
    return time_axis(fig, summary["bucket"], unit)


def estimate_shown(perf: dict[str, Any]) -> bool:
    """Whether the window has the predictions the label-free estimate needs
    (`monitoring.performance.min_estimated`)."""
    return perf["n_predictions"] >= perf["min_estimated"]


def performance_figure(perf: dict[str, Any]):
    """Estimated (label-free, on large enough windows) and, once outcomes exist, live accuracy and
    ROC-AUC over time."""
    import plotly.graph_objects as go

    fig = go.Figure()
    over = perf["over_time"]
    stamps = []
    for kind, dash in (("live", "solid"), ("estimated", "dot")):
        frame = over[kind]
        if frame is None or frame.empty or (kind == "estimated" and not estimate_shown(perf)):
            continue
        stamps += list(frame["start"])
        for metric in ("accuracy", "roc_auc"):
            fig.add_scatter(
                x=frame["start"],
                y=frame[metric],
                mode="lines+markers",
                name=f"{kind} {metric}",
                line={"dash": dash},
            )
    for metric, value in perf["reference"].items():
        if metric in ("accuracy", "roc_auc"):
            fig.add_hline(
                y=value, line={"dash": "dash", "color": "grey"}, annotation_text=f"held-out {metric}"
            )
    fig.update_layout(
        title=f"Accuracy and ROC-AUC per {over['unit']} (live once outcomes are recorded)",
        yaxis={"range": [0, 1]},
        margin={"t": 50, "b": 40},
    )
    return time_axis(fig, stamps, over["unit"])


def alerts_table(active: list, stored: list) -> pd.DataFrame:
    rows = [("now", a.kind, a.feature or "", a.message) for a in active]
    rows += [(f"{a.created_at:%Y-%m-%d %H:%M}", a.kind, a.feature or "", a.message) for a in stored]
    return pd.DataFrame(rows, columns=ALERT_COLUMNS)


def drifted_first(table: pd.DataFrame) -> pd.DataFrame:
    """The drift table with drifted columns on top (stable order otherwise)."""
    if table.empty:
        return table
    return table.sort_values("drifted", ascending=False, kind="stable").reset_index(drop=True)


def summary_markdown(r: dict[str, Any]) -> str:
    if not r["n"]:
        return f"### {r['window']}: no predictions logged\nPredictions made in the Predict and Batch tabs appear here."
    lo, hi = r["bounds"]
    lines = [f"### {r['window']}: {r['n']:,} predictions, {lo:%Y-%m-%d %H:%M} – {hi:%Y-%m-%d %H:%M} UTC"]
    d = r["drift"]
    if d["status"] == "ok":
        ds = d["dataset"]
        verdict = "⚠ **dataset drift**" if ds["drifted"] else "✓ no dataset drift"
        names = f" ({', '.join(ds['drifted_features'])})" if ds["drifted_features"] else ""
        predicted = "⚠ yes" if (d.get("prediction") or {}).get("drifted") else "no"
        lines.append(
            f"{verdict}: {ds['n_drifted']} of {ds['n_features']} features drifted{names} — {d['method']}; "
            f"prediction drift: {predicted}."
        )
    else:
        lines.append(f"Drift: {d['message']}.")
    lines.append(f"Active alerts: **{r['n_active']}**.")
    perf = r["performance"]
    est = perf["estimated"]
    if estimate_shown(perf):
        lines.append(
            f"Estimated without outcomes: accuracy {est['accuracy']:.3f}, ROC-AUC {est['roc_auc']:.3f} "
            f"(held-out: {perf['reference']['accuracy']:.3f}, {perf['reference']['roc_auc']:.3f})."
        )
    else:
        lines.append(
            f"Estimated performance appears once the window holds {perf['min_estimated']} predictions "
            f"(`monitoring.performance.min_estimated`; {perf['n_predictions']} so far): fewer say nothing reliable."
        )
    if perf["live"]:
        live = perf["live"]
        lines.append(
            f"**Live** on {perf['n_labelled']:,} predictions with a recorded outcome: "
            f"accuracy {live['accuracy']:.3f}, ROC-AUC {live['roc_auc']:.3f}."
        )
    else:
        lines.append(
            f"Live accuracy appears once {perf['min_labelled']} outcomes are recorded "
            f"(`churn monitor feedback`; {perf['n_labelled']} so far)."
        )
    return "\n\n".join(lines)


def build_tab(state: AppState, tab: gr.Tab, access: Access) -> None:
    """Window and unit pickers, charts, drift table, alerts, performance; events /monitoring, and
    /check_alerts (the admin's only: it stores alerts and posts them to the webhook)."""
    with gr.Row():
        window = gr.Dropdown(list(WINDOWS), value=DEFAULT_WINDOW, label="Window", elem_id="monitor-window")
        unit = gr.Radio(list(UNITS), value="day", label="Time unit", elem_id="monitor-unit")
        refresh = gr.Button("Refresh", variant="primary", scale=0, elem_id="monitor-refresh")
        check = gr.Button("Run checks and store alerts", scale=0, interactive=access.admin is not None)
    if access.note(CHANGING):
        gr.Markdown(access.note(CHANGING), elem_id="monitor-read-only")
    summary = gr.Markdown(elem_id="monitor-summary")
    with gr.Row():
        volume_day = gr.Plot(label="Prediction volume by day", elem_id="volume-day")
        volume_hour = gr.Plot(label="Prediction volume by hour", elem_id="volume-hour")
    with gr.Row():
        distribution = gr.Plot(label="Probability distribution over time", elem_id="prob-dist")
        risk = gr.Plot(label="Risk-level breakdown", elem_id="risk-breakdown")
    alerts_df = gr.Dataframe(headers=ALERT_COLUMNS, label="Alerts (active now, then stored)", wrap=True)
    drift_df = gr.Dataframe(
        label="Drift against the training data, per feature and for the prediction", wrap=True
    )
    perf_plot = gr.Plot(label="Accuracy and ROC-AUC over time", elem_id="performance")
    outputs = [summary, volume_day, volume_hour, distribution, risk, alerts_df, drift_df, perf_plot]

    def monitoring(window: str = DEFAULT_WINDOW, unit: str = "day"):
        """Summary, volume by day and hour, probability distribution, risk breakdown, alerts, drift, performance."""
        window, unit = picked(window, unit)
        try:
            r = report(state, window, unit)
        except gr.Error:
            raise
        except Exception as exc:  # the log's database, a missing table: say it, without server details
            raise state.error(f"Cannot build the monitoring report: {exc}") from exc
        if not r["n"]:
            return summary_markdown(r), None, None, None, None, alerts_table([], []), pd.DataFrame(), None
        return (
            summary_markdown(r),
            _bar(r["volume_day"], "Predictions per day", "day"),
            _bar(r["volume_hour"], "Predictions per hour", "hour"),
            distribution_figure(r["distribution"], r["summary"], unit),
            risk_figure(r["risk"], unit),
            r["alerts"],
            drifted_first(drift.drift_table(r["drift"])).round(4),
            performance_figure(r["performance"]),
        )

    gr.on(  # the pickers apply at once; Refresh re-reads the log
        [tab.select, refresh.click, window.change, unit.change],
        monitoring,
        inputs=[window, unit],
        outputs=outputs,
        api_name="monitoring",
        trigger_mode="always_last",
    )

    def check_alerts(window: str = DEFAULT_WINDOW, unit: str = "day", request: gr.Request = None):
        """Run `churn monitor check` on the window (alerts stored and sent to the webhook), then refresh;
        the admin only."""
        refused = access.refusal(request, CHANGING)
        if refused:
            raise gr.Error(refused, print_exception=False)
        window, unit = picked(window, unit)
        try:
            mon = monitor(state)
            checked, fired = mon.check(WINDOWS[window](mon))
            metrics.of(state).monitored(checked, len(fired))
        except gr.Error:
            raise
        except Exception as exc:  # an empty window, the log's database: say it, without server details
            raise state.error(f"No alerts checked: {exc}") from exc
        gr.Info(f"{len(fired)} alert(s) fired and stored." if fired else "No alert fired.")
        return monitoring(window, unit)

    check.click(check_alerts, inputs=[window, unit], outputs=outputs, api_name="check_alerts")
