"""Shared fixtures: repository paths, the real data, small synthetic frames, a clean environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
REAL_CSV = ROOT.parent / "shared" / "data" / "telco-customer-churn.csv"
VENV_BIN = Path(os.sys.executable).parent

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_CSV.exists():
        pytest.fail(f"the real Telco data is expected at {REAL_CSV} (../shared/data beside the repo)")
    return REAL_CSV


@pytest.fixture(scope="session")
def real_raw(real_csv) -> pd.DataFrame:
    from churn import data

    return data.read_raw(real_csv)


@pytest.fixture(scope="session")
def synthetic_raw() -> pd.DataFrame:
    """2,000 synthetic customers in raw CSV form (strings, blank TotalCharges at tenure 0)."""
    from churn import synth

    return synth.generate(rows=2000, seed=7)


@pytest.fixture(scope="session")
def prepared(synthetic_raw) -> tuple[pd.DataFrame, pd.DataFrame]:
    from churn import data

    df, _ = data.clean(synthetic_raw)
    return data.split(df, test_size=0.25, seed=7)


@pytest.fixture(scope="session")
def fitted(prepared):
    """A small fitted logistic-regression pipeline on synthetic data."""
    from churn import data, model

    X, y = data.xy(prepared[0])
    return model.build("challenger", {"estimator": "logistic_regression", "params": {}}, seed=7).fit(X, y)


@pytest.fixture()
def isolated_env(tmp_path, monkeypatch) -> Path:
    """Point MLflow and the prediction log at temporary stores."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CHURN_DB_URL", f"sqlite:///{tmp_path / 'predictions.db'}")
    return tmp_path


def tracked_files(root: Path) -> list[str]:
    """Files git tracks plus untracked ones it does not ignore (the working tree a clone would get)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in out if f and (root / f).is_file()]


@pytest.fixture()
def repo_copy(tmp_path) -> Path:
    """The working tree copied into a fresh git repository with one commit (no DVC cache)."""
    dest = tmp_path / "repo"
    for rel in tracked_files(ROOT):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    env = git_env()
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True, timeout: int = 600):
    """Run a real command; on failure show its output in the assertion."""
    proc = subprocess.run(cmd, cwd=cwd, env=env or git_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def sh():
    """`sh(cmd, cwd, env=None, check=True)`: run a real command, failing with its output."""
    return run


@pytest.fixture(scope="session")
def env_for():
    """`env_for(**extra)`: an environment with the venv on PATH, git identity and extra variables."""

    def make(**extra: str) -> dict[str, str]:
        env = git_env()
        env.update(extra)
        return env

    return make
