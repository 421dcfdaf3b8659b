"""The dashboards in a real browser (headless Debian Chromium): one verdict vocabulary across the A/B and
Validation tabs, zoomed comparisons and a varying hyperparameter, DVC without the venv on PATH, and a
Monitoring tab whose pickers apply at once, on a log of 3 predictions (few points, no estimate)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app import serve
from churn import abtest, validation
from tests.fixtures.projects import git_env
from tests.test_app_browser import browser, shots  # noqa: F401 (browser: the module's Chromium fixture)

N_PREDICTIONS = 3
#: A rendered plotly figure: its layout, and each trace's type, width and x / y as plain arrays.
PLOT = """(el) => {
  const gd = el.querySelector('.js-plotly-plot');
  const data = gd._fullData.map((t) => ({type: t.type, width: t.width, x: Array.from(t.x || []), y: Array.from(t.y || [])}));
  return {layout: gd._fullLayout ? {xaxis: gd._fullLayout.xaxis, yaxis: gd._fullLayout.yaxis, title: gd._fullLayout.title} : {}, data};
}"""


@pytest.fixture(scope="module")
def project(private_project):
    """A built project that is a git + DVC repository, with 3 logged predictions, served with a PATH
    that lacks the venv (so a bare `dvc` would not be found)."""
    with private_project("app_dashboards") as root, pytest.MonkeyPatch.context() as mp:
        env = git_env()
        for cmd in (
            ["git", "init", "-q", "-b", "main"],
            [sys.executable, "-m", "dvc", "init", "-q"],
            [sys.executable, "-m", "dvc", "config", "core.analytics", "false"],
            ["git", "add", "params.yaml", ".dvc"],
            ["git", "commit", "-q", "-m", "project"],
        ):
            subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
        shots.seed_traffic(root, n=N_PREDICTIONS)
        mp.setenv("PATH", "/usr/bin:/bin")
        demo, url = serve(root)
        yield root, url
        demo.close()


@pytest.fixture()
def page(browser, project):  # noqa: F811 (the imported fixture)
    page = browser.new_page(viewport=shots.VIEWPORT)
    page.goto(project[1], wait_until="domcontentloaded")
    page.locator("#predict-btn").wait_for(timeout=shots.TIMEOUT_MS)
    yield page
    page.close()


def _text(page, selector: str, contains: str) -> str:
    shots._wait_text(page, selector, contains)
    return page.locator(selector).inner_text()


def test_ab_and_validation_tabs_speak_one_vocabulary(page, project):
    report = json.loads((project[0] / "metrics/validation.json").read_text())
    stage = json.loads((project[0] / "metrics/ab_test.json").read_text())
    shots.open_tab(page, "abtest")
    page.click("#ab-btn")
    ab = _text(page, "#ab-recommendation", "test customers")
    shots.open_tab(page, "validation")
    verdict = _text(page, "#validation-verdict", "gates passed")

    line = validation.verdict_line(report["approved"], report["recommendation"], len(report["failed"]))
    assert line in verdict
    # the A/B tab (champion vs challenger) reaches the same verdict on the same gates, in the same words
    assert abtest.gates_verdict(stage) == (report["approved"], report["failed"])
    assert validation.gates_phrase(report["approved"], len(report["failed"])) in ab
    assert validation.ab_phrase(report["recommendation"], "model B", "model A") in ab
    ready = validation.ready_to_promote(report["approved"], report["recommendation"])
    assert ("✓ Promote model B" in ab) == ready == ("✓ Promote the challenger" in verdict)
    assert "APPROVED" not in verdict and "Inconclusive" not in ab  # the old words are gone
    assert "Gates not checked" not in ab  # model B is the pipeline's challenger: its gates are known


def test_experiments_zoom_to_the_data_vary_the_parameter_and_run_dvc_without_path(page):
    shots.open_tab(page, "experiments")
    shots._wait_text(page, "#runs", "champion")
    shots._wait_plot(page, "#compare-plot")
    bars = page.locator("#compare-plot").evaluate(PLOT)
    values = [y for trace in bars["data"] for y in trace["y"]]
    low, high = bars["layout"]["yaxis"]["range"]
    assert 0 < low < min(values) <= max(values) < high <= 1  # zoomed, with a margin, not from 0
    assert high - low < 0.5 and f"{low:.4g} – {high:.4g}" in bars["layout"]["title"]["text"]

    shots._wait_plot(page, "#impact-plot")
    scatter = page.locator("#impact-plot").evaluate(PLOT)
    xs = {str(x) for trace in scatter["data"] for x in trace["x"]}
    assert len(xs) >= 2  # the default hyperparameter varies across the runs shown
    assert "same value in every run" not in scatter["layout"]["title"]["text"]

    page.get_by_text("DVC experiments (dvc exp show)").click()
    note = _text(page, "#dvc-note", "dvc exp show")
    assert "workspace/commit/experiment rows" in note, note  # not "could not run": dvc via sys.executable


def test_monitoring_pickers_apply_at_once_and_few_points_read_cleanly(page):
    shots.open_tab(page, "monitoring")
    summary = _text(page, "#monitor-summary", f"{N_PREDICTIONS} predictions")
    assert "Estimated without outcomes" not in summary  # hidden below monitoring.performance.min_estimated
    assert f"monitoring.performance.min_estimated; {N_PREDICTIONS} so far" in summary
    shots._wait_plot(page, "#volume-day")
    day = page.locator("#volume-day").evaluate(PLOT)
    start, end = (shots_time(t) for t in day["layout"]["xaxis"]["range"])
    assert 2 * 86_400 <= end - start <= 10 * 86_400  # 1-3 days padded by a day each side, not milliseconds
    assert day["layout"]["xaxis"]["dtick"] == 86_400_000

    assert "per day" in page.locator("#risk-breakdown").evaluate(PLOT)["layout"]["title"]["text"]
    page.locator("#monitor-unit").get_by_text("hour", exact=True).click()  # no Refresh
    page.wait_for_function(
        "() => (document.querySelector('#risk-breakdown .js-plotly-plot')?.layout?.title?.text || '')"
        ".includes('per hour')",
        timeout=shots.TIMEOUT_MS,
    )
    risk = page.locator("#risk-breakdown").evaluate(PLOT)
    assert all(trace["type"] == "bar" and trace["width"] == 0.8 * 3_600_000 for trace in risk["data"])


def shots_time(stamp: str) -> float:
    """Seconds since the epoch of a plotly date string ('2026-11-30 12:00:00.0000')."""
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace(" ", "T")[:19]).timestamp()
