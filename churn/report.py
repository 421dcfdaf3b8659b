"""The pull-request report: params and metrics diffs, gates, A/B verdict and plots as Markdown."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from churn.markdown import table
from churn.metrics import HEADLINE
from churn.validation import ab_phrase, gates_phrase

#: Evaluate metrics shown in the headline table (besides the five gate metrics); money per customer
#: (EMPC, maximum profit) and the realised profit of each campaign on the test split (churn.economics).
HEADLINE_EXTRA = (
    "pr_auc",
    "brier",
    "log_loss",
    "economics.empc",
    "economics.mp",
    "economics.mp_contacted_fraction",
    "economics.campaigns.decision_rule.profit",
    "economics.campaigns.contact_all.profit",
    "economics.campaigns.threshold.profit",
)
LOWER_IS_BETTER = frozenset({"brier", "log_loss"})
#: Rows per metrics file in the full diff, so that a PR comment stays far below GitHub's 65,536 characters.
MAX_ROWS_PER_FILE = 30
_EVALUATE = re.compile(r"(?:^|/)evaluate/(?P<model>[^/]+)\.json$")


@dataclass(frozen=True)
class Change:
    """One parameter or metric: its file, dotted name, base and workspace values."""

    path: str
    name: str
    old: Any
    new: Any

    @property
    def delta(self) -> float | None:
        """new − old for numbers (rounded to 4 decimals), else None."""
        if _is_number(self.old) and _is_number(self.new):
            return round(self.new - self.old, 4)
        return None

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass
class Plot:
    """A rendered image: its title and the link to it, relative to the report."""

    title: str
    link: str


@dataclass
class ReportInputs:
    """Everything the report shows; `None` means "could not be compared", with the reason in notes."""

    base: str
    base_sha: str | None = None
    notes: list[str] = field(default_factory=list)
    params: list[Change] | None = None
    metrics: list[Change] | None = None
    validation: dict[str, Any] | None = None
    base_validation: dict[str, Any] | None = None
    ab_test: dict[str, Any] | None = None
    plots: list[Plot] = field(default_factory=list)
    plots_url: str | None = None
    plot_note: str | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def changes_from_diff(diff: dict[str, dict[str, dict[str, Any]]]) -> list[Change]:
    """Changes from `dvc params diff --json` / `dvc metrics diff --json`, sorted by file and name."""
    rows = [
        Change(path, name, entry.get("old"), entry.get("new"))
        for path, entries in diff.items()
        for name, entry in entries.items()
    ]
    return sorted(rows, key=lambda c: (c.path, c.name))


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as {"a.b.c": value}, the way DVC names metrics and params."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def changes_from_show(show: dict[str, Any]) -> list[Change]:
    """Workspace values from `dvc metrics show --json` as changes with no base value."""
    rows = []
    for rev in show.values():
        for path, entry in (rev.get("data") or {}).items():
            for name, value in flatten(entry.get("data") or {}).items():
                rows.append(Change(path, name, None, value))
    return sorted(rows, key=lambda c: (c.path, c.name))


def fmt(value: Any) -> str:
    """A cell: numbers to 4 decimals, missing as an em dash, text in code spans."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return f"`{value}`"


def fmt_delta(change: Change) -> str:
    """The signed change (`+0.0135`), `new`/`removed` when one side is missing, else blank."""
    if change.old is None and change.new is not None:
        return "new"
    if change.new is None and change.old is not None:
        return "removed"
    delta = change.delta
    if delta is None:
        return "changed" if change.changed else ""
    if delta == 0:
        return "0"
    if isinstance(change.old, int) and isinstance(change.new, int):
        return f"{int(delta):+d}"
    return f"{delta:+.4f}"


def _base_label(inputs: ReportInputs) -> str:
    return f"`{inputs.base}`"


def _params_section(inputs: ReportInputs) -> list[str]:
    out = ["## Parameters", ""]
    if inputs.params is None:
        return [*out, "Parameters were not compared (see the notes above).", ""]
    changed = [c for c in inputs.params if c.changed]
    if not changed:
        return [*out, f"No parameter changed against {_base_label(inputs)}.", ""]
    rows = [[f"`{c.path}`", f"`{c.name}`", fmt(c.old), fmt(c.new), fmt_delta(c)] for c in changed]
    return [*out, *table(["File", "Param", _base_label(inputs), "workspace", "Change"], rows), ""]


def headline(metrics: list[Change]) -> list[Change]:
    """The evaluate metrics of every model (five gate metrics first), in a stable order."""
    order = {name: i for i, name in enumerate((*HEADLINE, *HEADLINE_EXTRA))}
    rows = [c for c in metrics if _EVALUATE.search(c.path) and c.name in order]
    return sorted(rows, key=lambda c: (_EVALUATE.search(c.path)["model"], order[c.name]))


def _metrics_section(inputs: ReportInputs) -> list[str]:
    out = ["## Metrics", ""]
    if inputs.metrics is None:
        return [*out, "Metrics were not compared (see the notes above).", ""]
    if not inputs.metrics:
        return [*out, "No metrics found: the pipeline has not written any (run `dvc repro`).", ""]
    base = _base_label(inputs)
    top = headline(inputs.metrics)
    if top:
        rows = [
            [
                _EVALUATE.search(c.path)["model"],
                c.name + (" (lower is better)" if c.name in LOWER_IS_BETTER else ""),
                fmt(c.old),
                fmt(c.new),
                fmt_delta(c),
            ]
            for c in top
        ]
        out += ["Test-set metrics of each model:", ""]
        out += [*table(["Model", "Metric", base, "workspace", "Change"], rows), ""]
    changed = [c for c in inputs.metrics if c.changed]
    unchanged = len(inputs.metrics) - len(changed)
    if not changed:
        return [*out, f"No metric changed against {base} ({unchanged} compared).", ""]
    out += [f"{len(changed)} metrics changed, {unchanged} unchanged; by file:", ""]
    for path in sorted({c.path for c in changed}):
        in_file = [c for c in changed if c.path == path]
        rows = [[f"`{c.name}`", fmt(c.old), fmt(c.new), fmt_delta(c)] for c in in_file[:MAX_ROWS_PER_FILE]]
        out += ["<details>", f"<summary><code>{path}</code>: {len(in_file)} changed</summary>", ""]
        out += table(["Metric", base, "workspace", "Change"], rows)
        if len(in_file) > MAX_ROWS_PER_FILE:
            rest = len(in_file) - MAX_ROWS_PER_FILE
            out += [
                "",
                f"… and {rest} more: `dvc metrics diff {inputs.base} --targets {path}` lists them all.",
            ]
        out += ["", "</details>", ""]
    return out


_STATUS = {"pass": "✅ pass", "fail": "❌ fail", "insufficient_data": "⚠️ insufficient data"}
_RULE = {">=": "≥", "<=": "≤"}


def _status(gate: dict[str, Any] | None) -> str:
    if gate is None:
        return "—"
    status = gate.get("status")
    if status is None and isinstance(gate.get("passed"), bool):
        status = "pass" if gate["passed"] else "fail"
    return _STATUS.get(status, f"`{status}`")


def _gates(validation: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    gates = (validation or {}).get("gates")
    return {k: g for k, g in gates.items() if isinstance(g, dict)} if isinstance(gates, dict) else {}


def _verdict(validation: dict[str, Any]) -> str:
    approved = validation.get("approved")
    failed = [k for k, g in _gates(validation).items() if g.get("status") == "fail"]
    if approved is True:
        return f"{gates_phrase(True)} ✅"
    if approved is False:
        return f"{gates_phrase(False, len(failed))} ❌"
    return "no verdict recorded"


def _gates_section(inputs: ReportInputs) -> list[str]:
    out = ["## Validation gates", ""]
    validation = inputs.validation
    if validation is None:
        return [*out, "No `metrics/validation.json` on this revision: validation has not run.", ""]
    model = validation.get("model", "the candidate")
    line = f"**Verdict for {model}: {_verdict(validation)}**"
    if inputs.base_validation is not None:
        line += f" (on {_base_label(inputs)}: {_verdict(inputs.base_validation)})"
    out += [line, ""]
    gates = _gates(validation)
    if not gates:
        return [*out, "`metrics/validation.json` lists no gates.", ""]
    counts = {s: sum(g.get("status") == s for g in gates.values()) for s in _STATUS}
    out += [
        ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items()) + f" of {len(gates)} gates.",
        "",
    ]
    failed = [k for k in sorted(gates) if gates[k].get("status") == "fail"]
    out += [f"- ❌ `{k}`: {fmt(gates[k].get('value'))}, {_rule(gates[k])}" for k in failed]
    out += [""] if failed else []
    base = _gates(inputs.base_validation) if inputs.base_validation is not None else None
    champion = _gates(validation.get("champion") if isinstance(validation.get("champion"), dict) else None)
    header = ["Gate", "Value", "Rule", model]
    header += ["champion"] if champion else []
    header += [f"{model} on {_base_label(inputs)}"] if base is not None else []
    rows = []
    for name in sorted(gates):
        gate = gates[name]
        row = [f"`{name}`", fmt(gate.get("value")), _rule(gate), _status(gate)]
        row += [_status(champion.get(name))] if champion else []
        row += [_status(base.get(name))] if base is not None else []
        rows.append(row)
    return [*out, *table(header, rows), ""]


def _rule(gate: dict[str, Any]) -> str:
    rule, threshold = gate.get("rule"), gate.get("threshold")
    if threshold is None:
        return "—"
    return f"{_RULE.get(rule, rule or '')} {fmt(threshold)}".strip()


def _interval(node: Any) -> str:
    if not isinstance(node, dict) or node.get("estimate") is None:
        return "—"
    text = f"{node['estimate']:+.4f}"
    if node.get("low") is not None and node.get("high") is not None:
        text += f" (CI {node['low']:+.4f} to {node['high']:+.4f})"
    return text


def _ab_section(inputs: ReportInputs) -> list[str]:
    out = ["## A/B test: challenger vs champion", ""]
    ab = inputs.ab_test
    if ab is None:
        return [*out, "No `metrics/ab_test.json` on this revision: the A/B test has not run.", ""]
    rec = ab.get("recommendation")
    out += [f"**Recommendation: {ab_phrase(rec) if isinstance(rec, str) else '—'}** ({fmt(rec)})", ""]
    out += [f"- {reason}" for reason in ab.get("reasons") or []]
    mcnemar = ab.get("mcnemar") if isinstance(ab.get("mcnemar"), dict) else {}
    test = f"- McNemar's test: p-value {fmt(mcnemar.get('p_value'))}"
    if ab.get("alpha") is not None:
        test += f" at significance level {ab['alpha']}"
    if ab.get("n") is not None:
        test += f", on {ab['n']} test customers"
    if mcnemar.get("method"):
        test += f" — {mcnemar['method']}"
    out.append(test)
    difference = (ab.get("bootstrap") or {}).get("difference") or {}
    for metric in ("accuracy", "roc_auc", "empc"):
        if metric in difference:
            out.append(f"- {metric} difference (challenger − champion): {_interval(difference[metric])}")
    return [*out, ""]


def _plots_section(inputs: ReportInputs) -> list[str]:
    out = ["## Plots", ""]
    if inputs.plot_note:
        out += [inputs.plot_note, ""]
    if not inputs.plots:
        return out
    titles = ", ".join(p.title for p in inputs.plots)
    if inputs.plots_url:
        return [*out, f"{titles}: attached to [the workflow run]({inputs.plots_url}) as images.", ""]
    out.append(f"Solid lines: workspace; dashed: {_base_label(inputs)}.")
    out.append("")
    for plot in inputs.plots:
        out += [f"### {plot.title}", "", f"![{plot.title}]({plot.link})", ""]
    return out


def render(inputs: ReportInputs) -> str:
    """The whole report as Markdown (stable: no timestamps, sorted rows)."""
    against = _base_label(inputs)
    if inputs.base_sha:
        against += f" ({inputs.base_sha[:8]})"
    lines = ["# Churn pipeline: pull request report", "", f"Workspace compared with {against}.", ""]
    for note in inputs.notes:
        lines += [f"> **Note:** {note}", ""]
    for section in (_params_section, _metrics_section, _gates_section, _ab_section, _plots_section):
        lines += section(inputs)
    lines.append(f"<sub>Generated by `churn report --base {inputs.base}`.</sub>")
    return "\n".join(lines) + "\n"
