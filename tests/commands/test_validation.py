"""`churn gate` and `churn promote`'s checks before the registry (churn/commands/validation.py).

The registry-backed paths (`promote`, `registry`, `track` against MLflow) are tested with their
MLflow fixtures in tests/test_registry.py, test_tracking.py and test_promotion_race.py.
"""

from __future__ import annotations

import copy
import json

import pytest

from churn.cli import main
from churn.io import load_json
from tests.fixtures import ROOT

VERDICT = load_json(ROOT / "metrics" / "validation.json")


def _write(path, obj) -> str:
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def test_gate_approves_the_committed_verdict(tmp_path, capsys):
    assert main(["gate", "--validation", _write(tmp_path / "v.json", VERDICT)]) == 0
    passed = sum(g["status"] == "pass" for g in VERDICT["gates"].values())
    assert capsys.readouterr().out.startswith(f"approved: {passed} of {len(VERDICT['gates'])} gates passed")


def test_gate_names_each_failed_gate_and_exits_1(tmp_path, capsys):
    verdict = copy.deepcopy(VERDICT)
    name = sorted(verdict["gates"])[0]
    verdict["gates"][name]["status"] = "fail"
    verdict["approved"] = False
    assert main(["gate", "--validation", _write(tmp_path / "v.json", verdict)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"not approved: 1 of {len(verdict['gates'])} gates failed"
    assert out[1].startswith(f"FAILED {name}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found (run `dvc repro` to build it)"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"gates": {}}, "must have 'approved' and 'gates'"),
    ],
)
def test_gate_on_an_unreadable_verdict_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "v.json"
    if content is not None:
        _write(path, content)
    assert main(["gate", "--validation", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]


def test_promote_refuses_before_the_registry_when_inputs_are_missing(tmp_path, capsys):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    args = ["promote", "--params", str(ROOT / "params.yaml"), "--metrics-dir", str(metrics)]
    assert main(args) == 2
    assert "validation.json: not found" in capsys.readouterr().err
    _write(metrics / "validation.json", VERDICT)
    _write(metrics / "ab_test.json", load_json(ROOT / "metrics" / "ab_test.json"))
    assert main([*args, "--model", str(tmp_path / "missing.joblib")]) == 2
    err = capsys.readouterr().err
    assert "missing.joblib: challenger model not found (run `dvc repro`)" in err
    assert not (tmp_path / "mlflow.db").exists()  # nothing was created on the way to the refusal
