"""The app in a real browser: headless Debian Chromium fills the form, predicts, and visits every tab."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from app import serve
from churn import schema

ROOT = Path(__file__).resolve().parents[1]
MIN_PNG_BYTES = 20_000
#: A probability as the app shows it: a percentage with one decimal.
PERCENT = re.compile(r"^\d{1,3}\.\d%$")
#: Money as the app shows it ($1,234; whole units).
MONEY = re.compile(r"^-?\$\d{1,3}(,\d{3})*$")
#: JS: [field, scrollWidth, clientWidth] of each dropdown's input showing its longest choice.
DROPDOWN_WIDTHS = """(longest) => Object.entries(longest).map(([name, text]) => {
    const input = document.querySelector(`#field-${name} input`);
    const shown = input.value;
    input.value = text;
    const out = [name, input.scrollWidth, input.clientWidth];
    input.value = shown;
    return out;
})"""
#: JS: a gr.Dataframe as shown: its header, then each row's cells (display values), as text.
TABLE = """(id) => {
    const table = document.getElementById(id);
    const header = [...table.querySelectorAll('th[role=columnheader]')].map(th => th.title);
    const rows = [];
    for (const cell of table.querySelectorAll('[role=gridcell]')) {
        (rows[+cell.dataset.row] ??= [])[+cell.dataset.col] = cell.innerText.trim();
    }
    return [header, ...rows.filter(Boolean)];
}"""


def _screenshots_module():
    spec = importlib.util.spec_from_file_location("screenshots", ROOT / "scripts" / "screenshots.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shots = _screenshots_module()


@pytest.fixture(scope="module")
def browser():
    if not Path(shots.CHROMIUM).exists():
        pytest.fail(f"{shots.CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = shots.launch_browser(pw)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def app_url(private_project):
    with private_project("app_browser") as root:
        shots.seed_traffic(root, n=300)
        demo, url = serve(root)
        yield url
        demo.close()


@pytest.fixture()
def page(browser):
    page = browser.new_page(viewport=shots.VIEWPORT)
    yield page
    page.close()


def test_every_tab_works_in_the_browser(page, app_url, tmp_path):
    taken = shots.tour(page, app_url, tmp_path / "shots", shots.batch_csv(tmp_path / "customers.csv"))
    assert set(taken) == set(shots.TABS)
    for path in taken.values():
        assert path.exists() and path.stat().st_size > MIN_PNG_BYTES, path
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    shots.open_tab(page, "batch")  # rejects: who, where, why; a short line has one reason
    header, *rows = page.evaluate(TABLE, "batch-rejects")
    assert header[:3] == ["customerID", "line", "reason"], header
    reasons = {int(row[1]): row[2] for row in rows}
    assert len(reasons) == 4 and {5, 9, shots.SHORT_LINE} < set(reasons)
    assert reasons[shots.SHORT_LINE] == shots.SHORT_REASON
    addons = (
        f"{', '.join(schema.INTERNET_ADDONS)}: must be 'No internet service' when InternetService is 'No'"
    )
    assert addons in reasons.values()  # one reason for the six add-ons
    assert all(row[0] for row in rows)  # every rejected row names its customer
    ticks = page.evaluate(
        "() => [...document.querySelectorAll('#batch-hist .xtick text')].map(t => t.textContent)"
    )
    assert ticks and all(t.endswith("%") for t in ticks), ticks
    _campaign_view(page)
    page.get_by_role("tab", name="Predict", exact=True).click()
    assert PERCENT.match(_value(page, "probability"))
    assert float(_value(page, "probability")[:-1]) > 50  # the high-risk example
    assert _value(page, "risk-level") == "High"
    assert "template" in page.locator("#email-source").inner_text()


def test_bad_input_shows_a_message_next_to_the_field_and_changes_nothing(page, app_url):
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#predict-btn").wait_for(timeout=shots.TIMEOUT_MS)
    tenure = page.locator("#field-tenure input")
    assert _value(page, "probability") == _value(page, "risk-level") == ""  # no placeholder value
    tenure.fill("-3")
    page.click("#predict-btn")
    message = page.locator("#field-tenure div.validation-error")
    message.wait_for(timeout=shots.TIMEOUT_MS)
    assert message.inner_text() == "tenure must be between 0 and 1200"
    assert _value(page, "probability") == ""
    assert page.locator("#shap-chart .js-plotly-plot").count() == 0
    assert page.locator("#email textarea").input_value() == ""
    tenure.fill("30")
    page.click("#predict-btn")
    page.locator("#shap-chart .js-plotly-plot").first.wait_for(timeout=shots.TIMEOUT_MS)
    assert PERCENT.match(_value(page, "probability"))
    assert page.locator("#field-tenure div.validation-error").count() == 0


def _campaign_view(page) -> None:
    """The Batch tab's campaign: ranked by expected profit, percentages and money shown, a budget
    input that cuts the list, a download."""
    shots._wait_text(page, "#campaign-summary", "Total expected gain")
    header, *rows = page.evaluate(TABLE, "campaign-table")
    assert header == ["rank", "customerID", "churn_probability", "best_action", "expected_profit"], header
    assert len(rows) > 3 and all(PERCENT.match(row[2]) for row in rows), rows[:3]
    assert all(MONEY.match(row[4]) for row in rows), rows[:3]
    profits = [float(row[4].replace("$", "").replace(",", "")) for row in rows]
    assert profits == sorted(profits, reverse=True) and all(row[1] for row in rows)
    assert any(row[3] for row in rows)  # best actions named
    assert page.locator("#campaign-download a").count() >= 1
    page.locator("#campaign-budget input").fill("3")
    page.locator("#campaign-budget input").press("Enter")
    shots._wait_text(page, "#campaign-summary", "the budget of 3")
    header, *rows = page.evaluate(TABLE, "campaign-table")
    assert [float(row[4].replace("$", "").replace(",", "")) for row in rows] == profits[:3]


def _value(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def _pick(page, name: str, choice: str) -> None:
    page.locator(f"#field-{name} input").click()
    page.get_by_role("option", name=choice, exact=True).click()


def _predicted(page) -> None:
    page.click("#predict-btn")
    page.locator("#shap-chart .js-plotly-plot").first.wait_for(timeout=shots.TIMEOUT_MS)
    page.wait_for_function(
        "() => { const v = document.querySelector('#email textarea').value;"
        " return v.includes('Customer Care') || v.startsWith('Internal note'); }",  # an email or a note
        timeout=shots.TIMEOUT_MS,
    )


def _cleared(page) -> bool:
    empty = _value(page, "probability") == _value(page, "risk-level") == _value(page, "email") == ""
    return empty and page.locator("#shap-chart .js-plotly-plot").count() == 0


def test_the_form_reads_cleanly_offers_only_possible_customers_and_clears_stale_results(page, app_url):
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#predict-btn").wait_for(timeout=shots.TIMEOUT_MS)
    longest = {c: max(levels, key=len) for c, levels in schema.CATEGORICAL.items() if len(levels) > 2}
    widths = page.evaluate(DROPDOWN_WIDTHS, longest)
    assert len(widths) == len(longest) == 10
    assert [w for w in widths if w[1] > w[2]] == []  # "Month-to-montl", "Bank transfer (a" no more
    _predicted(page)
    assert PERCENT.match(_value(page, "probability"))
    header, *actions = page.evaluate(TABLE, "actions")
    assert header[1] == "Churn probability after" and actions
    assert all(PERCENT.match(row[1]) for row in actions), actions
    _pick(page, "InternetService", "No")  # the add-ons follow, the old result goes
    for addon in schema.INTERNET_ADDONS:
        page.wait_for_function(
            "([sel, v]) => document.querySelector(sel).value === v",
            arg=[f"#field-{addon} input", schema.NO_INTERNET],
            timeout=shots.TIMEOUT_MS,
        )
    assert _cleared(page)
    _predicted(page)
    _pick(page, "OnlineBackup", "Yes")  # the one rule, next to the field; nothing else shown
    assert _cleared(page)
    page.click("#predict-btn")
    message = page.locator("#field-OnlineBackup div.validation-error")
    message.wait_for(timeout=shots.TIMEOUT_MS)
    assert message.inner_text() == "OnlineBackup must be 'No internet service' when InternetService is 'No'"
    assert _cleared(page)
    _pick(page, "InternetService", "DSL")
    page.locator("#field-PhoneService").get_by_text("No", exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('#field-MultipleLines input').value === 'No phone service'",
        timeout=shots.TIMEOUT_MS,
    )
    assert [page.locator(f"#field-{a} input").input_value() for a in schema.INTERNET_ADDONS] == [
        "No",
        "Yes",
        "No",
        "No",
        "No",
        "No",
    ]
