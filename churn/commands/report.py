"""`churn report`: the pull-request report against a base revision, from git, DVC and the metrics files."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from churn import report, report_figures
from churn.commands import UsageError
from churn.io import save_text
from churn.paths import LAYOUT
from churn.validation import MODELS

log = logging.getLogger(__name__)

_METRICS = LAYOUT.metrics
PLOTS_DIR = _METRICS.plots_dir.as_posix()
VALIDATION = _METRICS.validation.as_posix()
AB_TEST = _METRICS.ab_test.as_posix()
#: The detailed results the report compares. DVC declares only the scorecard (metrics/scorecard/) as
#: metrics; these are plain git-tracked outputs, so `dvc metrics diff/show` are given them as targets.
DETAIL_METRICS = tuple(
    p.as_posix()
    for p in (
        _METRICS.data,
        *(_METRICS.train(model) for model in MODELS),
        *(_METRICS.evaluate(model) for model in MODELS),
        _METRICS.fairness,
        _METRICS.robustness,
        _METRICS.ab_test,
        _METRICS.validation,
    )
)
TIMEOUT = 300
PNG_SIZE = {"width": 720, "height": 480}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write the pull-request report (params, metrics, gates, A/B, plots) as Markdown",
        description="Compare the workspace with a base git revision and write the pull-request report.",
    )
    p.add_argument("--base", default="main", help="git revision to compare with (default: main)")
    p.add_argument(
        "-o", "--out", default="report.md", help="Markdown file, or - for stdout (default: report.md)"
    )
    p.add_argument(
        "--plots-dir", help="where the PNG plots go (default: <report name>-plots beside the report)"
    )
    p.add_argument(
        "--plots-url",
        help="link to the plots (e.g. the CI run with its artifacts) instead of embedding the images",
    )
    p.add_argument("--no-plots", action="store_true", help="skip rendering the plots")
    p.set_defaults(func=_report)


def _report(args: argparse.Namespace) -> int:
    if args.base.startswith("-"):
        raise UsageError(f"--base: a git revision cannot start with '-', got {args.base!r}")
    root = _git_root()
    inputs = collect(root, args.base)
    out = None if args.out == "-" else Path(args.out)
    if args.no_plots:
        inputs.plot_note = "Not rendered (`--no-plots`); `dvc plots diff` draws them."
    else:
        link_from = out.parent if out else Path()
        plots_dir = Path(args.plots_dir) if args.plots_dir else _default_plots_dir(out)
        inputs.plots, inputs.plot_note = render_plots(
            root, inputs.base, inputs.base_sha, plots_dir, link_from
        )
    inputs.plots_url = args.plots_url
    text = report.render(inputs)
    if out is None:
        sys.stdout.write(text)
    else:
        save_text(text, out)
        sys.stdout.write(
            f"PR report written to {out} ({len(inputs.plots)} plots, {len(inputs.notes)} notes)\n"
        )
    return 0


def _default_plots_dir(out: Path | None) -> Path:
    return Path("report-plots") if out is None else out.with_name(f"{out.stem}-plots")


def collect(root: Path, base: str) -> report.ReportInputs:
    """Gather the diffs (via DVC), gates, A/B result and notes; problems become notes, never errors."""
    inputs = report.ReportInputs(base=base)
    sha = _git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    if sha is None:
        inputs.notes.append(
            f"the base revision `{base}` does not exist in this clone, so nothing was compared with it "
            "(in CI check out with `fetch-depth: 0`; locally run `git fetch`). Workspace values only."
        )
        targets = _present(root, None)
        show = _dvc_json(root, ["metrics", "show", "--json"], inputs.notes, {}, targets)
        inputs.metrics = None if show is None else report.changes_from_show(show)
    else:
        inputs.base_sha = sha
        names = {sha: base}
        params = _dvc_json(root, ["params", "diff", sha, "--json"], inputs.notes, names)
        present = _present(root, sha)
        targets = ("--targets", *present) if present else ()
        metrics = _dvc_json(root, ["metrics", "diff", sha, "--all", "--json"], inputs.notes, names, targets)
        inputs.params = None if params is None else report.changes_from_diff(params)
        inputs.metrics = None if metrics is None else report.changes_from_diff(metrics)
        _note_missing_sides(inputs)
        text = _git(root, "show", f"{sha}:{VALIDATION}")
        inputs.base_validation = _json_or_note(text, f"{VALIDATION} on `{base}`", inputs.notes)
    inputs.validation = _workspace_json(root, VALIDATION, inputs.notes)
    inputs.ab_test = _workspace_json(root, AB_TEST, inputs.notes)
    return inputs


def _present(root: Path, sha: str | None) -> list[str]:
    """The detailed metrics files in the workspace or at `sha` (DVC warns about a target on neither)."""
    return [
        path
        for path in DETAIL_METRICS
        if (root / path).is_file() or (sha and _git(root, "cat-file", "-e", f"{sha}:{path}") is not None)
    ]


def _workspace_json(root: Path, path: str, notes: list[str]) -> Any:
    file = root / path
    return _json_or_note(file.read_text() if file.exists() else None, f"workspace {path}", notes)


def _note_missing_sides(inputs: report.ReportInputs) -> None:
    metrics = inputs.metrics or []
    if metrics and all(c.old is None for c in metrics):
        inputs.notes.append(
            f"`{inputs.base}` has no metrics yet (a first pull request, or the pipeline never ran there): "
            "every metric below is new."
        )
    if metrics and all(c.new is None for c in metrics):
        inputs.notes.append("the workspace has no metrics: run `dvc repro` before `churn report`.")


def _json_or_note(text: str | None, where: str, notes: list[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        notes.append(f"{where}: not valid JSON ({exc}); left out of the report.")
        return None


def _git_root() -> Path:
    top = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    if top is None:
        raise UsageError("not inside a git repository (run it at the root of the churn repository)")
    return Path(top)


def _git(root: Path, *args: str) -> str | None:
    """stdout of a git command, or None when it fails."""
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=TIMEOUT)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _dvc_json(
    root: Path, args: list[str], notes: list[str], names: dict[str, str], targets: Sequence[str] = ()
) -> Any:
    """Run DVC (the same package as this Python) and parse its JSON; a failure becomes a note.

    `names` maps what DVC is given (a commit id) to what the user wrote (`main`), for the notes;
    `targets` are appended to the command but left out of the notes.
    """
    cmd = [sys.executable, "-m", "dvc", *args, *targets]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=TIMEOUT, env=env)
    shown = "dvc " + " ".join(names.get(a, a) for a in args if a != "--json")
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    for sha, name in names.items():
        errors = [line.replace(sha, name) for line in errors]
    if proc.returncode != 0:
        notes.append(f"`{shown}` failed: {errors[-1] if errors else f'exit code {proc.returncode}'}")
        return None
    notes += [
        f"`{shown}`: {line.removeprefix('WARNING: ')} (a file missing on one side shows as new or removed)"
        for line in errors
        if "fail" in line.lower()
    ]
    log.info("%s: %d bytes of JSON", shown, len(proc.stdout))
    return json.loads(proc.stdout or "{}")


def _plot_data(root: Path, sha: str | None) -> dict[str, dict[str, Any]]:
    """{model: {kind: points}} from metrics/plots in the workspace (sha None) or at a revision."""
    if sha is None:
        models = sorted(p.name for p in (root / PLOTS_DIR).glob("*") if p.is_dir())
    else:
        listing = _git(root, "ls-tree", "-d", "--name-only", f"{sha}:{PLOTS_DIR}")
        models = sorted(listing.split()) if listing else []
    data: dict[str, dict[str, Any]] = {}
    for model in models:
        for kind in (*report_figures.CURVES, "importance"):
            rel = f"{PLOTS_DIR}/{model}/{kind}.json"
            if sha is None:
                text = (root / rel).read_text() if (root / rel).exists() else None
            else:
                text = _git(root, "show", f"{sha}:{rel}")
            try:
                points = json.loads(text) if text else None
            except json.JSONDecodeError:
                points = None
            if points:
                data.setdefault(model, {})[kind] = points
    return data


def render_plots(
    root: Path, base: str, sha: str | None, plots_dir: Path, link_from: Path
) -> tuple[list[report.Plot], str | None]:
    """Draw ROC, PR, calibration and importance (workspace vs base) as PNGs; links relative to the report."""
    revisions = {"workspace": _plot_data(root, None)}
    if sha is not None:
        revisions[base] = _plot_data(root, sha)
    figures: dict[str, tuple[str, Any]] = {}
    for kind, (title, *_rest) in report_figures.CURVES.items():
        curves = {
            (model, revision): kinds[kind]
            for revision, data in revisions.items()
            for model, kinds in data.items()
            if kind in kinds
        }
        if curves:
            figures[kind] = (title, report_figures.curve_figure(kind, curves))
    models = sorted({m for data in revisions.values() for m, kinds in data.items() if "importance" in kinds})
    for model in models:
        by_revision = {
            r: d[model]["importance"] for r, d in revisions.items() if "importance" in d.get(model, {})
        }
        figures[f"importance-{model}"] = (
            f"Feature importance: {model}",
            report_figures.importance_figure(model, by_revision),
        )
    if not figures:
        return [], f"No plot data (`{PLOTS_DIR}/`) on either revision."
    paths = {name: plots_dir / f"{name}.png" for name in figures}
    try:
        _write_pngs({paths[name]: fig for name, (_title, fig) in figures.items()})
    except Exception as exc:  # a missing browser must not sink the whole report
        log.warning("plots not rendered: %s: %s", type(exc).__name__, exc)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return [], f"Plots could not be rendered ({reason}); install Chromium (`make browser`)."
    plots = [
        report.Plot(title, Path(os.path.relpath(paths[name], link_from)).as_posix())
        for name, (title, _fig) in figures.items()
    ]
    log.info("rendered %d plots into %s", len(plots), plots_dir)
    return plots, None


def _write_pngs(figures: dict[Path, Any]) -> None:
    """Render every figure in one headless-Chromium session (kaleido; `BROWSER_PATH` picks the browser)."""
    import kaleido

    next(iter(figures)).parent.mkdir(parents=True, exist_ok=True)
    jobs = [
        {"fig": fig, "path": path, "opts": {"format": "png", **PNG_SIZE}} for path, fig in figures.items()
    ]
    kaleido.write_fig_from_object_sync(jobs, cancel_on_error=True)
