"""The real pipeline with the real `dvc` in temporary git repositories."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

pytestmark = pytest.mark.slow


def _leaves(node):
    """Every value in nested dicts."""
    if isinstance(node, dict):
        return [v for child in node.values() for v in _leaves(child)]
    return [node]


def _small(repo):
    """Shrink the pipeline for speed: fewer synthetic rows, fewer folds and trees."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["synthesize"]["rows"] = 1500
    params["train"]["cv_folds"] = 2
    for spec in params["models"].values():  # fewer trees for the forests among the specs
        if "n_estimators" in spec.get("params", {}):
            spec["params"]["n_estimators"] = 25
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_fresh_clone_reproduces_dvc_lock_byte_for_byte(reproduced_repo, sh, env_for):
    """`dvc repro` in a clean copy rebuilds every output with exactly the hashes in dvc.lock."""
    env = env_for()
    status = sh(["git", "status", "--porcelain", "--", "dvc.lock", "metrics"], reproduced_repo, env).stdout
    assert status == "", f"dvc repro changed committed files:\n{status}"
    assert sh(["git", "diff", "--exit-code", "HEAD", "--", "dvc.lock"], reproduced_repo, env).stdout == ""
    assert json.loads(sh(["dvc", "status", "--json"], reproduced_repo, env).stdout) == {}


def test_experiment_run_show_and_diffs(repo_copy, sh, env_for, tmp_path):
    db = tmp_path / "mlflow.db"
    env = env_for(MLFLOW_TRACKING_URI=f"sqlite:///{db}")
    _small(repo_copy)
    sh(["dvc", "repro"], repo_copy, env, timeout=900)
    sh(["git", "add", "-A"], repo_copy, env)
    sh(["git", "commit", "-qm", "baseline"], repo_copy, env)
    base = json.loads((repo_copy / "metrics/evaluate/challenger.json").read_text())
    card = "metrics/scorecard/evaluate/challenger.json"  # what DVC declares as metrics
    assert json.loads((repo_copy / card).read_text()) == {"challenger": {"roc_auc": base["roc_auc"]}}

    # a no-op repro is a no-op
    out = sh(["dvc", "repro"], repo_copy, env).stdout
    assert "didn't change" in out and "Running stage" not in out

    sh(
        ["dvc", "exp", "run", "-n", "leafy", "-S", "models.challenger.params.min_samples_leaf=5"],
        repo_copy,
        env,
        timeout=900,
    )
    show = json.loads(sh(["dvc", "exp", "show", "--json"], repo_copy, env).stdout)
    exps = [e for rev in show for e in (rev.get("experiments") or [])]
    names = [r.get("name") for e in exps for r in e.get("revs", [])]
    assert "leafy" in names, names
    run = next(r for e in exps for r in e["revs"] if r.get("name") == "leafy")
    data = run["data"]
    assert data["params"]["params.yaml"]["data"]["models"]["challenger"]["params"]["min_samples_leaf"] == 5
    new = data["metrics"][card]["data"]["challenger"]
    assert new["roc_auc"] != base["roc_auc"]
    assert new == json.loads((repo_copy / card).read_text())["challenger"]  # applied to the workspace

    params_diff = json.loads(sh(["dvc", "params", "diff", "--json"], repo_copy, env).stdout)
    changed = params_diff["params.yaml"]["models.challenger.params.min_samples_leaf"]
    assert (changed["old"], changed["new"]) == (20, 5)
    metrics_diff = json.loads(sh(["dvc", "metrics", "diff", "--json"], repo_copy, env).stdout)
    auc = metrics_diff[card]["challenger.roc_auc"]
    assert auc["old"] == base["roc_auc"] and auc["new"] == new["roc_auc"]
    assert auc["diff"] == pytest.approx(new["roc_auc"] - base["roc_auc"], abs=1e-9)
    assert "metrics/scorecard/evaluate/champion.json" not in metrics_diff  # the champion did not change
    md = sh(["dvc", "metrics", "diff", "--md"], repo_copy, env).stdout
    assert f"| {card}" in md and "challenger.roc_auc" in md
    # the detailed files are plain outputs, still diffable by name
    detail = json.loads(
        sh(
            ["dvc", "metrics", "diff", "--json", "--targets", "metrics/evaluate/challenger.json"],
            repo_copy,
            env,
        ).stdout
    )
    assert detail["metrics/evaluate/challenger.json"]["roc_auc"]["new"] == new["roc_auc"]

    # DVC's own tables are readable: a handful of declared figures, and the one-parameter experiment
    # fits a 160-column terminal with the varied parameter and the challenger's test ROC-AUC in view
    # (DVC hides parameter columns first when the metrics take the width).
    shown = json.loads(sh(["dvc", "metrics", "show", "--json"], repo_copy, env).stdout)
    declared = [v for rev in shown.values() for f in rev["data"].values() for v in _leaves(f["data"])]
    assert 0 < len(declared) <= 40, declared
    columns = sh(["dvc", "exp", "show", "--csv"], repo_copy, env).stdout.splitlines()[0].split(",")
    assert len(columns) < 200, len(columns)  # every fairness group and bootstrap bound made it 1,005
    table = sh(
        ["dvc", "exp", "show", "--only-changed", "--no-pager"], repo_copy, {**env, "COLUMNS": "160"}
    ).stdout
    assert max(len(line) for line in table.splitlines()) <= 160, table
    header = next(line for line in table.splitlines() if "Experiment" in line).split()
    assert {"models.challenger.params.min_samples_leaf", "challenger.roc_auc"} <= set(header), table

    plots = json.loads(sh(["dvc", "plots", "diff", "--json"], repo_copy, env).stdout)["data"]
    assert {"ROC", "Precision-Recall", "Calibration", "Feature importance"} <= set(plots), list(plots)
    assert set(plots["ROC"][0]["revisions"]) == {"HEAD", "workspace"}

    # every model a pipeline run built has one MLflow run, tagged with the experiment name
    with sqlite3.connect(db) as con:
        tags = con.execute(
            "select t.value, count(*) from tags t where t.key = 'dvc_exp_name' group by t.value"
        ).fetchall()
    assert dict(tags).get("leafy", 0) >= 1, tags
