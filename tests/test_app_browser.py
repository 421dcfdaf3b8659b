"""The app in a real browser: headless Debian Chromium fills the form, predicts, and visits every tab."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from app import serve

ROOT = Path(__file__).resolve().parents[1]
MIN_PNG_BYTES = 20_000


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
    open_predict = page.get_by_role("tab", name="Predict", exact=True)
    open_predict.click()
    probability = float(page.locator("#probability input").input_value())
    assert 0.5 < probability <= 1  # the high-risk example
    assert page.locator("#risk-level textarea, #risk-level input").first.input_value() == "High"
    assert "template" in page.locator("#email-source").inner_text()


def test_bad_input_shows_a_message_next_to_the_field_and_changes_nothing(page, app_url):
    page.goto(app_url, wait_until="domcontentloaded")
    page.locator("#predict-btn").wait_for(timeout=shots.TIMEOUT_MS)
    tenure = page.locator("#field-tenure input")
    before = page.locator("#probability input").input_value()
    tenure.fill("-3")
    page.click("#predict-btn")
    message = page.locator("#field-tenure div.validation-error")
    message.wait_for(timeout=shots.TIMEOUT_MS)
    assert message.inner_text() == "tenure must be between 0 and 1200"
    assert page.locator("#probability input").input_value() == before
    assert page.locator("#shap-chart .js-plotly-plot").count() == 0
    assert page.locator("#email textarea").input_value() == ""
    tenure.fill("30")
    page.click("#predict-btn")
    page.locator("#shap-chart .js-plotly-plot").first.wait_for(timeout=shots.TIMEOUT_MS)
    assert 0 <= float(page.locator("#probability input").input_value()) <= 1
    assert page.locator("#field-tenure div.validation-error").count() == 0
