"""The pull-request report's figures (plotly): curves and feature importance, workspace vs base revision."""

from __future__ import annotations

from typing import Any

#: Curve files under metrics/plots/<model>/ and how each is drawn: (title, x key, y key, diagonal).
CURVES = {
    "roc": ("ROC", "fpr", "tpr", True),
    "precision_recall": ("Precision–recall", "recall", "precision", False),
    "calibration": ("Calibration", "mean_predicted", "fraction_positive", True),
    "profit": ("Profit curve", "share", "profit", False),
}
AXIS_LABELS = {
    "fpr": "False positive rate",
    "tpr": "True positive rate",
    "recall": "Recall",
    "precision": "Precision",
    "mean_predicted": "Mean predicted churn probability",
    "fraction_positive": "Observed churn rate",
    "share": "Share of test customers contacted (highest churn probability first)",
    "profit": "Realised campaign profit (params.yaml economics)",
}
TOP_FEATURES = 12


def curve_figure(kind: str, curves: dict[tuple[str, str], list[dict[str, float]]]) -> Any:
    """A plotly figure of one curve kind; `curves` maps (model, revision label) to points."""
    import plotly.graph_objects as go

    title, x, y, diagonal = CURVES[kind]
    fig = go.Figure()
    models = sorted({model for model, _ in curves})
    for (model, revision), points in sorted(curves.items()):
        fig.add_trace(
            go.Scatter(
                x=[p[x] for p in points],
                y=[p[y] for p in points],
                mode="lines+markers" if kind == "calibration" else "lines",
                name=f"{model} · {revision}",
                line={"dash": "solid" if revision == "workspace" else "dash"},
                marker_color=_colour(models.index(model)),
                line_color=_colour(models.index(model)),
            )
        )
    if diagonal:
        fig.add_trace(
            go.Scatter(
                x=[0, 1], y=[0, 1], mode="lines", name="reference", line={"dash": "dot", "color": "#999"}
            )
        )
    fig.update_layout(
        title=title,
        xaxis_title=AXIS_LABELS[x],
        yaxis_title=AXIS_LABELS[y],
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def importance_figure(model: str, by_revision: dict[str, list[dict[str, Any]]]) -> Any:
    """Horizontal bars of the top features of one model, one bar per revision."""
    import plotly.graph_objects as go

    workspace = by_revision.get("workspace") or next(iter(by_revision.values()))
    top = [row["feature"] for row in sorted(workspace, key=lambda r: -r["importance"])[:TOP_FEATURES]]
    fig = go.Figure()
    for i, (revision, rows) in enumerate(sorted(by_revision.items(), key=lambda kv: kv[0] != "workspace")):
        value = {row["feature"]: row["importance"] for row in rows}
        fig.add_trace(
            go.Bar(
                y=top[::-1],
                x=[value.get(f) for f in top[::-1]],
                orientation="h",
                name=revision,
                marker_color=_colour(i),
                opacity=1.0 if revision == "workspace" else 0.55,
            )
        )
    fig.update_layout(
        title=f"Feature importance: {model}",
        xaxis_title="Permutation importance (drop in ROC-AUC)",
        barmode="group",
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


def _colour(i: int) -> str:
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
    return palette[i % len(palette)]
