"""Collection rules (real-data deselection, CI) and the fixture modules of tests/fixtures/, one per area."""

from __future__ import annotations

import os

import pytest

from churn.io import REAL_DATA_ENV, REAL_DATA_HINT
from tests.fixtures import REAL_CSV

pytest_plugins = [
    "tests.fixtures.data",
    "tests.fixtures.projects",
    "tests.fixtures.servers",
    "tests.fixtures.postgres",
    "tests.fixtures.serving",
    "tests.fixtures.monitoring",
]

REAL_DATA_FIXTURES = frozenset({"real_csv", "real_raw"})
_DESELECTED = pytest.StashKey[int]()

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Every test that uses the real data (directly or through another fixture) gets the `real_data`
    marker before `-m` filters run, so nobody has to remember it. After every filter, without the
    real file the remaining `real_data` tests are deselected; under CI that is a usage error instead."""
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
    result = yield
    _deselect_without_real_data(config, items)
    return result


def _deselect_without_real_data(config, items) -> None:
    needing = [item for item in items if item.get_closest_marker("real_data")]
    if not needing or REAL_CSV.is_file():
        return
    if _in_ci():
        raise pytest.UsageError(
            f"{REAL_DATA_ENV}={REAL_CSV} does not exist and CI is set: {len(needing)} real_data "
            f"test(s) need it; {REAL_DATA_HINT}"
        )
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if not item.get_closest_marker("real_data")]
    config.stash[_DESELECTED] = len(needing)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    deselected = config.stash.get(_DESELECTED, 0)
    if deselected:
        terminalreporter.write_line(
            f"real_data: {deselected} test(s) deselected, {REAL_DATA_ENV}={REAL_CSV} not found; "
            f"{REAL_DATA_HINT}",
            yellow=True,
        )
