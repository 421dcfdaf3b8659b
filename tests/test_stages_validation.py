"""The validate-fairness, robustness, ab-test and report stages on a small built project."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import yaml

from churn import cli
from churn.data import DataError
from churn.io import file_md5
from churn.params import ParamsError
from stages import ab_test, report, robustness, validate_fairness

OUTPUTS = ("fairness.json", "robustness.json", "ab_test.json", "validation.json", "model_card.md")


class Biased:
    """Wraps a model and inverts its predictions for women: deliberately unfair."""

    def __init__(self, inner):
        self.inner = inner

    def predict_proba(self, X):
        proba = self.inner.predict_proba(X)
        women = (X["gender"] == "Female").to_numpy()
        proba[women] = proba[women][:, ::-1]
        return proba


@pytest.fixture()
def workspace(project_root, tmp_path, monkeypatch) -> Path:
    """A copy of the built project (no MLflow store) as the working directory."""
    for part in ("data", "models", "metrics"):
        shutil.copytree(project_root / part, tmp_path / part)
    shutil.copy(project_root / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _set(path: Path, key: str, value) -> None:
    params = yaml.safe_load(path.read_text())
    node = params
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_outputs_hold_gates_verdict_and_card(project_root):
    metrics = project_root / "metrics"
    fair = json.loads((metrics / "fairness.json").read_text())
    assert set(fair) == {"champion", "challenger"}
    attrs = fair["challenger"]["attributes"]
    assert set(attrs) == {"gender", "SeniorCitizen", "Partner", "Dependents"}
    assert set(attrs["SeniorCitizen"]["groups"]) == {"0", "1"}
    group = attrs["gender"]["groups"]["Female"]
    assert set(group) >= {"count", "base_rate", "accuracy", "selection_rate", "tpr", "fpr", "ci"}
    rob = json.loads((metrics / "robustness.json").read_text())
    assert set(rob["challenger"]["perturbations"]) == {"noise", "flip", "missing"}
    ab = json.loads((metrics / "ab_test.json").read_text())
    assert ab["recommendation"] in {"promote", "keep_champion", "inconclusive"} and ab["reasons"]
    table = ab["contingency"]
    assert sum(v for row in table.values() for v in row.values()) == ab["n"]
    assert ab["bootstrap"]["resamples"] == 1000

    verdict = json.loads((metrics / "validation.json").read_text())
    assert isinstance(verdict["approved"], bool)
    assert verdict["approved"] == (verdict["failed"] == [])
    prefixes = {name.split(".")[0] for name in verdict["gates"]}
    assert prefixes == {"performance", "fairness", "robustness", "ab_test"}
    assert all({"value", "threshold", "passed"} <= set(g) for g in verdict["gates"].values())
    assert verdict["model_md5"] == file_md5(project_root / "models/challenger.joblib")
    # the scorecard DVC declares as metrics: the recommendation and the verdict
    assert json.loads((metrics / "scorecard/ab_test.json").read_text()) == {
        "recommendation": ab["recommendation"]
    }
    assert json.loads((metrics / "scorecard/validation.json").read_text()) == {
        "approved": verdict["approved"]
    }

    card = (metrics / "model_card.md").read_text()
    for heading in (
        "Intended use",
        "Data",
        "Performance",
        "Fairness",
        "Robustness",
        "A/B test",
        "Limitations",
    ):
        assert f"## {heading}" in card
    assert file_md5(project_root / "models/challenger.joblib") in card
    assert file_md5(project_root / "data/prepared/test.parquet") in card
    assert "## Lineage" in card and "git commit" in card.lower()


def test_stages_rebuild_byte_identical_outputs(project_root, workspace):
    for name in OUTPUTS:
        (workspace / "metrics" / name).unlink()
    validate_fairness.main([])
    robustness.main([])
    ab_test.main([])
    report.main(["--no-mlflow"])
    for name in OUTPUTS:
        assert (workspace / "metrics" / name).read_bytes() == (
            project_root / "metrics" / name
        ).read_bytes(), name


def test_biased_model_fails_fairness_and_the_gate(workspace, capsys):
    models = workspace / "models"
    joblib.dump(Biased(joblib.load(models / "challenger.joblib")), models / "challenger.joblib")
    validate_fairness.main([])
    fair = json.loads((workspace / "metrics/fairness.json").read_text())
    gate = fair["challenger"]["gates"]["gender.accuracy_gap"]
    assert gate["passed"] is False and gate["value"] > 0.3
    assert (
        fair["challenger"]["passed"] is False and fair["champion"]["gates"]["gender.accuracy_gap"]["passed"]
    )
    ab_test.main([])
    assert json.loads((workspace / "metrics/ab_test.json").read_text())["recommendation"] == "keep_champion"
    report.main(["--no-mlflow"])
    assert json.loads((workspace / "metrics/validation.json").read_text())["approved"] is False
    assert cli.main(["gate"]) == 1
    out = capsys.readouterr().out
    assert "FAILED fairness.gender.accuracy_gap: " in out and "must be at most 0.1 (fail)" in out


def test_model_that_breaks_on_nan_fails_robustness_stage(workspace, nan_breaking_model):
    joblib.dump(nan_breaking_model, workspace / "models/challenger.joblib")
    robustness.main([])
    rob = json.loads((workspace / "metrics/robustness.json").read_text())
    assert all("NaN" in e["error"] for e in rob["challenger"]["perturbations"]["missing"].values())
    assert rob["challenger"]["gates"]["missing.accuracy_drop"]["passed"] is False
    assert rob["challenger"]["passed"] is False
    assert rob["champion"]["gates"]["missing.accuracy_drop"]["passed"] is True


def test_gate_exit_codes(workspace, capsys):
    path = workspace / "metrics/validation.json"
    verdict = json.loads(path.read_text())
    for g in verdict["gates"].values():
        g.update(status="pass", passed=True)
    path.write_text(json.dumps({**verdict, "approved": True, "failed": []}))
    assert cli.main(["gate"]) == 0
    assert capsys.readouterr().out.startswith("approved: ")

    verdict["gates"]["performance.recall"].update(value=0.1, threshold=0.4, status="fail", passed=False)
    path.write_text(json.dumps({**verdict, "approved": False, "failed": ["performance.recall"]}))
    assert cli.main(["gate"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["FAILED performance.recall: 0.1, must be at least 0.4 (fail)"]

    path.write_text("{not json")
    assert cli.main(["gate"]) == 2
    assert "metrics/validation.json: not valid JSON" in capsys.readouterr().err
    path.write_text("{}")
    assert cli.main(["gate"]) == 2
    path.unlink()
    assert cli.main(["gate"]) == 2
    assert "metrics/validation.json: not found" in capsys.readouterr().err


def test_missing_inputs_name_the_file_and_write_nothing(workspace):
    (workspace / "metrics/ab_test.json").unlink()
    (workspace / "metrics/validation.json").unlink()
    (workspace / "metrics/model_card.md").unlink()
    with pytest.raises(FileNotFoundError, match=r"metrics/ab_test.json: not found"):
        report.main(["--no-mlflow"])
    assert not (workspace / "metrics/validation.json").exists()
    assert not (workspace / "metrics/model_card.md").exists()
    (workspace / "metrics/robustness.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"metrics/robustness.json: not found"):
        ab_test.main([])
    assert not (workspace / "metrics/ab_test.json").exists()
    (workspace / "metrics/fairness.json").write_text(json.dumps({"champion": {}}))
    (workspace / "metrics/robustness.json").write_text(json.dumps({"champion": {}, "challenger": {}}))
    with pytest.raises(DataError, match=r"metrics/fairness.json: key 'champion.gates' is missing"):
        ab_test.main([])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "validate_fairness.max_accuracy_gap",
            "ten",
            r"validate_fairness.max_accuracy_gap: must be null or a number",
        ),
        (
            "validate_fairness.attributes",
            ["gender", "age"],
            r"lists \['age'\], not column\(s\) of the test data",
        ),
        (
            "evaluate.threshold",
            "0.5",
            r"evaluate.threshold: must be a number at least 0 and at most 1 \(got '0.5'\)",
        ),
    ],
)
def test_bad_params_stop_the_stage_before_writing(workspace, key, value, message):
    (workspace / "metrics/fairness.json").unlink()
    _set(workspace / "params.yaml", key, value)
    with pytest.raises(ParamsError, match=message):
        validate_fairness.main([])
    assert not (workspace / "metrics/fairness.json").exists()


def test_stage_command_prints_one_clear_line_and_exits_1(workspace, root):
    _set(workspace / "params.yaml", "robustness.gates.noise.level", 0.3)
    proc = subprocess.run(
        [sys.executable, "-m", "stages.robustness"],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 1
    assert "robustness.gates.noise.level: must be one of robustness.levels.noise (got 0.3)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_report_logs_one_complete_mlflow_run_per_model(project_root, tmp_path):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project_root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("churn")
    runs = client.search_runs([exp.experiment_id], filter_string="tags.pipeline_stage = 'report'")
    by_model = {r.data.tags["model_name"]: r for r in runs}
    assert sorted(by_model) == ["challenger", "champion"] and len(runs) == 2
    verdict = json.loads((project_root / "metrics/validation.json").read_text())
    for name, run in by_model.items():
        assert run.data.tags["model_md5"] == file_md5(project_root / f"models/{name}.joblib")
        assert (
            json.loads(run.data.tags["model_spec"])
            == yaml.safe_load((project_root / "params.yaml").read_text())["models"][name]
        )
        assert {"test.accuracy", "test.roc_auc", "validation.approved"} <= set(run.data.metrics)
        assert any(k.startswith("gates.fairness.") for k in run.data.metrics)
        assert run.outputs.model_outputs  # the model itself, with signature and example
        local = client.download_artifacts(run.info.run_id, "model_card.md", str(tmp_path))
        card = Path(local).read_text()
        assert card.startswith((project_root / "metrics/model_card.md").read_text().rstrip("\n"))
        assert "Git commit of this build:" in card
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"model_card.md", "plots"} <= artifacts  # the card and the model's plots directory
    assert by_model["challenger"].data.metrics["validation.approved"] == float(verdict["approved"])
    aliases = client.get_registered_model("churn-model").aliases
    assert set(aliases) >= {"champion"}


def test_tracking_failure_is_a_warning_and_changes_no_output(project_root, workspace, monkeypatch, caplog):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    for name in ("validation.json", "model_card.md"):
        (workspace / "metrics" / name).unlink()
    with caplog.at_level(logging.WARNING, logger="stages.report"):
        report.main([])
    assert "MLflow tracking failed" in caplog.text and "DVC outputs are unaffected" in caplog.text
    for name in ("validation.json", "model_card.md"):
        assert (workspace / "metrics" / name).read_bytes() == (project_root / "metrics" / name).read_bytes()


def test_dvc_yaml_declares_the_validation_stages(root):
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    # detailed results are plain git-tracked outputs; DVC declares only the scorecard as metrics
    expected = {
        "validate-fairness": (["metrics/fairness.json"], [], ["base", "evaluate", "validate_fairness"]),
        "robustness": (["metrics/robustness.json"], [], ["base", "evaluate", "robustness"]),
        "ab-test": (
            ["metrics/ab_test.json"],
            ["metrics/scorecard/ab_test.json"],
            ["base", "evaluate", "economics", "ab_test", "report"],
        ),
        "report": (
            ["metrics/validation.json", "metrics/model_card.md"],
            ["metrics/scorecard/validation.json"],
            ["report", "models", "mlflow"],
        ),
    }
    for name, (outs, metrics, params) in expected.items():
        stage = stages[name]
        assert [next(iter(o)) for o in stage["outs"]] == outs
        assert [next(iter(m)) for m in stage.get("metrics", [])] == metrics
        declared = [*stage["outs"], *stage.get("metrics", [])]
        assert all(next(iter(o.values()))["cache"] is False for o in declared)
        assert stage["params"] == params
    assert "churn/registry.py" not in stages["evaluate"]["do"]["deps"]
    assert np.all([d in stages["report"]["deps"] for d in ("metrics/ab_test.json", "metrics/fairness.json")])
