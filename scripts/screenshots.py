"""Regenerate docs/screenshots/<tab>.png: the app on a built project, driven by headless Chromium.

    python scripts/screenshots.py                 # the project in the current folder (after `dvc repro`)
    python scripts/screenshots.py --root DIR --out docs/screenshots

The prediction log is a temporary SQLite file filled with a week of simulated traffic (with a
contract-mix shift and recorded outcomes), so the Monitoring tab has something to show; the
project's own log and MLflow store are only read. The app runs with a reader and an admin login
(throwaway passwords) and the tour signs in as the admin, so the pictures show what the admin sees:
the registry buttons and "Run checks and store alerts" active. Needs Debian's `chromium` (`make browser`).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

log = logging.getLogger("screenshots")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
TABS = {
    "predict": "Predict",
    "batch": "Batch",
    "experiments": "Experiments & registry",
    "monitoring": "Monitoring",
    "abtest": "A/B test",
    "validation": "Validation",
}
TIMEOUT_MS = 60_000
#: Screenshots stop here (the Validation tab's model card runs much longer).
MAX_HEIGHT = 2200


def launch_browser(playwright):
    """Debian's Chromium through Playwright (never `playwright install`)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def seed_traffic(root: Path, n: int = 800, seed: int = 7) -> int:
    """Log a simulated week of customers (a shift to month-to-month contracts halfway) and their outcomes.

    Uses the prediction log of `CHURN_DB_URL`. Returns how many predictions were logged.
    """
    from churn.monitoring import simulate
    from churn.monitoring.store import Outcome
    from churn.serving import Predictor

    predictor = Predictor.load(root=root)
    customers = simulate.traffic(n, simulate.Scenario.get("contract_mix"), days=7, seed=seed)
    logged = simulate.replay(predictor, customers)
    outcomes = simulate.outcomes_frame(customers)
    predictor.store.add_outcomes(
        [Outcome(r.customerID, r.churned == "Yes", date.fromisoformat(r.date)) for r in outcomes.itertuples()]
    )
    return logged


#: The line of `batch_csv` that lacks a field (tenure), and its reason.
SHORT_LINE, SHORT_REASON = 13, "20 fields, expected 21"


def batch_csv(path: Path, rows: int = 120, seed: int = 11) -> Path:
    """Synthetic customers to upload, with three rows that break a rule and one line a field short
    (each rejected with its reason)."""
    from churn import synth

    df = synth.generate(rows=rows, seed=seed)
    df.loc[3, "tenure"] = "-5"
    df.loc[7, "Contract"] = "Weekly"
    with_internet = df.index[df["InternetService"] != "No"][5]
    df.loc[with_internet, "InternetService"] = "No"  # its add-ons say Yes / No
    df.to_csv(path, index=False)
    lines = path.read_text().splitlines()
    fields = lines[SHORT_LINE - 1].split(",")
    lines[SHORT_LINE - 1] = ",".join(fields[:5] + fields[6:])
    path.write_text("\n".join(lines) + "\n")
    return path


def _wait_text(page, selector: str, text: str) -> None:
    page.locator(selector).filter(has_text=text).first.wait_for(timeout=TIMEOUT_MS)


def _wait_plot(page, selector: str) -> None:
    page.locator(f"{selector} .js-plotly-plot").first.wait_for(timeout=TIMEOUT_MS)


def sign_in(page, user: str, password: str) -> None:
    """Gradio's login page: fill both fields and submit."""
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=TABS[name], exact=True).click()


def tour(
    page, url: str, out_dir: Path, upload: Path, login: tuple[str, str] | None = None
) -> dict[str, Path]:
    """Use every tab as a person would and screenshot each; returns {tab: png}.

    `login` is the (user, password) to sign in with when the app asks for one.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shots: dict[str, Path] = {}

    def shoot(name: str) -> None:
        page.wait_for_timeout(400)  # let plotly finish its transitions
        shots[name] = out_dir / f"{name}.png"
        height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_HEIGHT)
        clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height}
        page.screenshot(path=str(shots[name]), full_page=True, clip=clip)

    page.goto(url, wait_until="domcontentloaded")
    if login:
        sign_in(page, *login)
    page.locator("#predict-btn").wait_for(timeout=TIMEOUT_MS)
    page.click("#example-high")
    page.wait_for_function(
        "() => document.querySelector('#field-tenure input').value === '2'", timeout=TIMEOUT_MS
    )
    page.click("#predict-btn")
    _wait_plot(page, "#shap-chart")
    page.wait_for_function(
        "() => (document.querySelector('#email textarea') || {value: ''}).value.includes('Customer Care')",
        timeout=TIMEOUT_MS,
    )
    _wait_text(page, "#email-source", "Written")
    shoot("predict")

    open_tab(page, "batch")
    page.locator("#batch-upload input[type=file]").set_input_files(str(upload))
    page.locator("#batch-download").wait_for(timeout=TIMEOUT_MS)
    page.click("#batch-btn")
    _wait_text(page, "#batch-summary", "customers scored")
    _wait_plot(page, "#batch-hist")
    shoot("batch")

    open_tab(page, "experiments")
    _wait_text(page, "#runs", "champion")
    _wait_plot(page, "#compare-plot")
    shoot("experiments")

    open_tab(page, "monitoring")
    _wait_text(page, "#monitor-summary", "predictions")
    _wait_plot(page, "#volume-day")
    shoot("monitoring")

    open_tab(page, "abtest")
    page.click("#ab-btn")
    _wait_text(page, "#ab-recommendation", "test customers")
    _wait_plot(page, "#ab-chart")
    shoot("abtest")

    open_tab(page, "validation")
    _wait_text(page, "#validation-verdict", "gates passed")
    shoot("validation")
    return shots


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=".", help="a built project (default: the current folder)")
    p.add_argument("--out", default="docs/screenshots", help="where the PNGs go (default docs/screenshots)")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    from playwright.sync_api import sync_playwright

    import app

    root = Path(args.root).resolve()
    with tempfile.TemporaryDirectory(prefix="churn-shots-") as tmp:
        os.environ["CHURN_DB_URL"] = f"sqlite:///{Path(tmp) / 'predictions.db'}"
        os.environ.pop("GROQ_API_KEY", None)  # the template email: no call to the LLM for a screenshot
        log.info("logged %d simulated predictions", seed_traffic(root))
        admin = ("admin", secrets.token_urlsafe(16))
        demo, url = app.serve(root, auth=("analyst", secrets.token_urlsafe(16)), admin=admin)
        try:
            with sync_playwright() as pw:
                browser = launch_browser(pw)
                page = browser.new_page(viewport=VIEWPORT)
                shots = tour(page, url, Path(args.out), batch_csv(Path(tmp) / "customers.csv"), login=admin)
                browser.close()
        finally:
            demo.close()
    for name, path in shots.items():
        log.info("%s: %s (%d KB)", name, path, path.stat().st_size // 1024)
    return 0


if __name__ == "__main__":
    sys.exit(main())
