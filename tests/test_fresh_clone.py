"""The journey of a new user: `git clone` into an empty folder (no ../shared, no mlflow.db), the
README's first command (`make run`), and the whole lifecycle is there: one MLflow run per model of
the committed dvc.lock, the registry aliases on them, a standard MLflow model that returns the churn
probability, and the app's Experiments tab showing the runs. The installed environment is reused
(VENV=…) instead of reinstalling it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

from churn import data, registry
from tests.fixtures import ROOT, VENV_BIN
from tests.fixtures.projects import git_env
from tests.fixtures.servers import free_port, started_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """A `git clone` of this repository in an empty folder, after `make run` (its app stopped again)."""
    base = tmp_path_factory.mktemp("stranger")
    clone = base / "churn-mlops"
    env = git_env()
    for key in ("MLFLOW_TRACKING_URI", "CHURN_DB_URL", "CHURN_REAL_DATA", "GROQ_API_KEY", "DVC_EXP_NAME"):
        env.pop(key, None)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # a new shell: no venv activated
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, env=env, timeout=120)
    assert not (base / "shared").exists() and not (clone / "mlflow.db").exists()
    # `make` reuses VENV only when its install stamp names the clone's requirements; otherwise it
    # would reinstall, and point the shared environment's `churn` at this temporary clone
    content = b"".join((clone / name).read_bytes() for name in ("requirements.txt", "pyproject.toml"))
    stamp = VENV_BIN.parent / f".installed-{hashlib.sha1(content).hexdigest()[:12]}"
    if not stamp.exists():
        pytest.fail(
            f"{VENV_BIN.parent} was installed from other requirements: run `make setup` (commit first)"
        )
    port = free_port()
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1")
    log_path = base / "make-run.log"
    cmd = ["make", "run", f"VENV={VENV_BIN.parent}"]
    with started_server(cmd, f"http://127.0.0.1:{port}/", cwd=clone, env=env, log_path=log_path, timeout=900):
        from gradio_client import Client

        client = Client(f"http://127.0.0.1:{port}/", analytics_enabled=False, verbose=False)
        runs_view = client.predict(api_name="/runs")
    return {"root": clone, "env": env, "log": log_path.read_text(), "runs_view": runs_view}


def _lock_md5s(root) -> dict[str, str]:
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {
        n: next(o["md5"] for o in stages[f"train@{n}"]["outs"] if o["path"] == f"models/{n}.joblib")
        for n in ("champion", "challenger")
    }


def test_make_run_tracks_registers_and_shows_the_runs(fresh_clone, monkeypatch):
    root = fresh_clone["root"]
    assert "churn track" in fresh_clone["log"] or "logged" in fresh_clone["log"]
    assert (root / "mlflow.db").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mlflow_client = registry.client(root)
    exp = mlflow_client.get_experiment_by_name("churn")
    runs = mlflow_client.search_runs([exp.experiment_id])
    md5 = _lock_md5s(root)
    assert sorted((r.data.tags["model_name"], r.data.tags["model_md5"]) for r in runs) == sorted(md5.items())
    assert all(r.data.tags["build_key"] and r.info.status == "FINISHED" for r in runs)
    versions = {r["version"]: r for r in registry.list_versions("churn-model", root)}
    aliases = registry.aliases(mlflow_client, "churn-model")
    assert set(aliases) == {"champion", "challenger"}
    for alias, version in aliases.items():
        mv = mlflow_client.get_model_version("churn-model", version)
        assert mv.tags["model_md5"] == md5[alias]
        assert versions[version]["history"][0]["status"] == alias
    # the app's Experiments tab, right after `make run`, with no extra step
    note, table = fresh_clone["runs_view"][0], fresh_clone["runs_view"][1]
    assert note.startswith("2 run(s) in MLflow"), note
    assert {row[table["headers"].index("model")] for row in table["data"]} == {"champion", "challenger"}


def test_the_registered_champion_is_a_standard_mlflow_model(fresh_clone, monkeypatch):
    import mlflow

    root = fresh_clone["root"]
    monkeypatch.chdir(root)  # MLflow's default artifact root for the evaluation run is ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    test = pd.read_parquet(root / "data/prepared/test.parquet")
    csv = root / "customers.csv"
    data.xy(test)[0].head(200).to_csv(csv, index=False)
    customers = pd.read_csv(csv, dtype=str, keep_default_na=False)
    customers.loc[0, ["tenure", "TotalCharges"]] = ["0", " "]  # a first-month customer, as in the real file
    model = mlflow.pyfunc.load_model("models:/churn-model@champion")
    out = model.predict(customers)
    expected = joblib.load(root / "models/champion.joblib").predict_proba(customers)[:, 1]
    probabilities = out["churn_probability"] if isinstance(out, pd.DataFrame) else pd.Series(out)
    np.testing.assert_allclose(probabilities.to_numpy(dtype=float), expected, rtol=0, atol=1e-9)

    # mlflow.models.evaluate on the test split: the evaluate stage's ROC-AUC (stored to 4 decimals)
    from churn.mlflow_model import csv_form, evaluation_metrics

    X, y = data.xy(test)
    stage = json.loads((root / "metrics/evaluate/champion.json").read_text())
    with mlflow.start_run():
        result = mlflow.models.evaluate(
            "models:/churn-model@champion",
            data=csv_form(X).assign(Churn=y),
            targets="Churn",
            model_type=None,
            extra_metrics=evaluation_metrics(threshold=stage["threshold"]),
        )
    assert result.metrics["roc_auc"] == pytest.approx(stage["roc_auc"], abs=5e-5)
    assert result.metrics["accuracy"] == pytest.approx(stage["accuracy"], abs=5e-5)


def test_tracking_again_logs_nothing(fresh_clone):
    root, env = fresh_clone["root"], fresh_clone["env"]
    proc = subprocess.run(
        ["make", "track", f"VENV={VENV_BIN.parent}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("already tracked, nothing logged") == 2, proc.stdout
    assert "aliases unchanged" in proc.stdout
    assert "pip install" not in proc.stdout  # the installed environment was reused


def test_a_queued_experiment_logs_to_the_project_store_and_moves_no_alias(fresh_clone):
    """`dvc exp run --queue` runs in a temporary copy under .dvc/tmp/exps; its runs land in the
    clone's own mlflow.db (no MLFLOW_TRACKING_URI) tagged with the experiment, aliases stay."""
    import sqlite3

    root = fresh_clone["root"]
    env = dict(fresh_clone["env"], PATH=f"{VENV_BIN}{os.pathsep}{fresh_clone['env']['PATH']}")
    db = root / "mlflow.db"

    def aliases() -> list:
        with sqlite3.connect(db) as con:
            return sorted(con.execute("select alias, version from registered_model_aliases").fetchall())

    before = aliases()
    run = lambda *cmd, timeout=120: subprocess.run(  # noqa: E731
        list(cmd), cwd=root, env=env, capture_output=True, text=True, timeout=timeout
    )
    queued = run(
        "dvc",
        "exp",
        "run",
        "--queue",
        "-n",
        "leafy-queued",
        "-S",
        "models.challenger.params.min_samples_leaf=40",
    )
    assert queued.returncode == 0, queued.stdout + queued.stderr
    started = run("dvc", "queue", "start", "-j", "1")
    assert started.returncode == 0, started.stdout + started.stderr
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run("dvc", "queue", "status").stdout
        if "leafy-queued" in status and not any(s in status for s in ("Queued", "Running")):
            break
        time.sleep(3)
    assert "Success" in status, status + run("dvc", "queue", "logs", "leafy-queued").stdout
    with sqlite3.connect(db) as con:
        tagged = con.execute(
            "select count(*) from tags where key = 'dvc_exp_name' and value = 'leafy-queued'"
        ).fetchone()
    assert tagged == (1,)  # the challenger's new build; the champion's was tracked already
    assert aliases() == before
