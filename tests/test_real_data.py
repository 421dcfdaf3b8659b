"""The real-data setting: without the file its tests are deselected (one line says why), CI fails.

Each test runs pytest (or `.ci/run`) in a subprocess on a small selection of the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from churn.io import REAL_DATA_ENV, real_data_path

ROOT = Path(__file__).resolve().parents[1]
REAL_SCHEMA_TESTS = {
    "test_contract_has_the_21_real_columns_in_order",
    "test_real_file_passes_including_blank_total_charges",
    "test_every_real_level_is_allowed",
}


def _env(real_data: Path, ci: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER")}
    env[REAL_DATA_ENV] = str(real_data)
    if ci is not None:
        env["CI"] = ci
    env.update(extra)
    return env


def _pytest(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_the_setting_picks_the_file_and_defaults_beside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv(REAL_DATA_ENV, raising=False)
    assert real_data_path() == ROOT.parent / "shared" / "data" / "telco-customer-churn.csv"
    monkeypatch.setenv(REAL_DATA_ENV, str(tmp_path / "telco.csv"))
    assert real_data_path() == tmp_path / "telco.csv"


def test_real_data_marker_is_set_by_fixture_even_through_other_fixtures(tmp_path):
    present = tmp_path / "telco.csv"
    present.write_text("")  # only collected, never read
    proc = _pytest(
        "-q",
        "--collect-only",
        "-m",
        "real_data",
        "tests/test_schema.py",
        "tests/test_model.py",
        env=_env(present),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    collected = {line.split("::")[1].split("[")[0] for line in proc.stdout.splitlines() if "::" in line}
    # test_model's real_model fixture reaches real_csv only through real_split.
    assert collected == REAL_SCHEMA_TESTS | {
        "test_real_holdout_quality",
        "test_month_to_month_at_least_as_risky_as_two_year",
        "test_customer_id_never_changes_a_prediction",
    }


def test_missing_real_data_deselects_its_tests_with_one_line(tmp_path):
    missing = tmp_path / "absent" / "telco.csv"
    proc = _pytest("-v", "tests/test_schema.py", env=_env(missing))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    lines = [line for line in out.splitlines() if REAL_DATA_ENV in line]
    assert len(lines) == 1, out
    assert str(missing) in lines[0] and "3 test(s) deselected" in lines[0]
    assert "WA_Fn-UseC_-Telco-Customer-Churn.csv" in lines[0]
    assert "3 deselected" in out.splitlines()[-1] and "skipped" not in out
    assert not any(name in out for name in REAL_SCHEMA_TESTS)
    assert "test_empty_frames PASSED" in out


def test_missing_real_data_under_ci_is_a_usage_error(tmp_path):
    missing = tmp_path / "absent" / "telco.csv"
    proc = _pytest("-q", "tests/test_schema.py", env=_env(missing, ci="true"))
    assert proc.returncode == 4, proc.stdout + proc.stderr  # pytest.ExitCode.USAGE_ERROR
    assert f"{REAL_DATA_ENV}={missing} does not exist and CI is set" in proc.stderr
    # Explicitly leaving the real-data tests out is still allowed under CI.
    proc = _pytest("-q", "-m", "not real_data", "tests/test_schema.py", env=_env(missing, ci="true"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ci_entry_point_fails_when_no_test_ran(tmp_path):
    """`.ci/run` (= `make test`) must not pass when every selected test was deselected (pytest exit 5).

    A stand-in venv (its python execs this one; `make -t setup` marks it installed, whatever the
    Makefile's stamp is called) and a stand-in `chromium` keep `make test` from installing anything.
    """
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    chromium = venv / "bin" / "chromium"
    chromium.write_text("#!/bin/sh\nexit 0\n")
    for exe in (python, chromium):
        exe.chmod(0o755)
    env = _env(
        tmp_path / "absent.csv",
        VENV=str(venv),
        PYTEST_ARGS="-p no:cacheprovider -q -m real_data tests/test_schema.py",
        MAKEFLAGS="",
    )
    touched = subprocess.run(["make", "-s", "-t", "setup"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert touched.returncode == 0 and python.read_text().startswith("#!/bin/sh"), touched.stderr
    proc = subprocess.run(
        [str(ROOT / ".ci" / "run")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    out = proc.stdout + proc.stderr
    assert "pip install" not in out and "apt-get" not in out, out
    # the real-data tests of test_schema.py are deselected for the missing file, all others by -m
    assert "real_data: 3 test(s) deselected" in out and re.search(r"\b\d+ deselected in", out), out
    assert "passed" not in out, out
    assert proc.returncode != 0 and "Error 5" in out, out
