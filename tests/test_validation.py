"""Gates, params checks and the approval verdict."""

from __future__ import annotations

import pytest

from churn import validation
from churn.data import DataError
from churn.params import ParamsError, read
from churn.settings import ReportSettings
from churn.validation import FAIL, INSUFFICIENT, PASS, gate

MINIMUMS = {"accuracy": 0.75, "precision": 0.5, "recall": 0.4, "f1": 0.45, "roc_auc": 0.8}
GOOD = {"accuracy": 0.8, "precision": 0.6, "recall": 0.5, "f1": 0.55, "roc_auc": 0.85}


def test_gate_rules():
    assert gate(0.05, 0.1, "<=")["status"] == PASS
    assert gate(0.1, 0.1, "<=")["passed"] is True  # the threshold itself passes
    assert gate(0.11, 0.1, "<=")["passed"] is False
    assert gate(0.8, 0.75, ">=")["passed"] is True and gate(0.7, 0.75, ">=")["passed"] is False
    crashed = gate(None, 0.1, "<=")
    assert crashed["status"] == FAIL and crashed["value"] is None and "could not run" in crashed["note"]
    assert gate(float("nan"), 0.1, "<=")["passed"] is False
    small = gate(0.5, 0.1, "<=", status=INSUFFICIENT, note="group 'x' below 30")
    assert small["passed"] is None and small["status"] == INSUFFICIENT
    with pytest.raises(ValueError, match="gate rule must be one of"):
        gate(1, 1, "<")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.8", r"report.minimums.accuracy: must be a number at least 0 and at most 1 \(got '0.8'\)"),
        (True, r"must be a number at least 0 and at most 1 \(got True\)"),
        (1.2, r"report.minimums.accuracy: must be at least 0 and at most 1 \(got 1.2\)"),
        (None, r"must be a number at least 0 and at most 1 \(got None\)"),
    ],
)
def test_minimums_wrong_type_names_key_and_rule(value, message):
    params = {"report": {"minimums": {**MINIMUMS, "accuracy": value}}}
    with pytest.raises(ParamsError, match=message):
        read(params, ReportSettings, "params.yaml")


def test_minimums_missing_and_unknown_metrics():
    with pytest.raises(ParamsError, match="report.minimums.recall: is missing"):
        read({"report": {"minimums": {k: v for k, v in MINIMUMS.items() if k != "recall"}}}, ReportSettings)
    with pytest.raises(ParamsError, match=r"report.minimums.auc: unknown key \(allowed: accuracy, precision"):
        read({"report": {"minimums": {**MINIMUMS, "auc": 0.8}}}, ReportSettings)


def _results(fair_status: str = PASS) -> tuple[dict, dict, dict]:
    fair_gate = gate(0.2 if fair_status == FAIL else 0.05, 0.1, "<=")
    if fair_status == INSUFFICIENT:
        fair_gate = gate(0.05, 0.1, "<=", status=INSUFFICIENT, note="small")
    fairness = {m: {"gates": {"gender.accuracy_gap": fair_gate}} for m in validation.MODELS}
    robustness = {m: {"gates": {"noise.roc_auc_drop": gate(0.01, 0.02, "<=")}} for m in validation.MODELS}
    ab = {"gates": {"roc_auc_not_worse": gate(0.02, 0.0, ">=")}, "recommendation": "promote"}
    return fairness, robustness, ab


def test_verdict_approves_only_when_no_gate_fails():
    evaluate = {m: GOOD for m in validation.MODELS}
    ok = validation.verdict(evaluate, *_results(), MINIMUMS)
    assert (
        ok["approved"] is True and ok["failed"] == [] and ok["counts"] == {PASS: 8, FAIL: 0, INSUFFICIENT: 0}
    )
    assert set(ok["gates"]) >= {
        "performance.roc_auc",
        "fairness.gender.accuracy_gap",
        "ab_test.roc_auc_not_worse",
    }
    assert "ab_test.roc_auc_not_worse" not in ok["champion"]["gates"]  # the A/B gate judges the challenger

    unfair = validation.verdict(evaluate, *_results(FAIL), MINIMUMS)
    assert unfair["approved"] is False and unfair["failed"] == ["fairness.gender.accuracy_gap"]

    small = validation.verdict(evaluate, *_results(INSUFFICIENT), MINIMUMS)
    assert small["approved"] is True and small["insufficient_data"] == ["fairness.gender.accuracy_gap"]

    weak = validation.verdict({**evaluate, "challenger": {**GOOD, "recall": 0.3}}, *_results(), MINIMUMS)
    assert weak["failed"] == ["performance.recall"] and weak["champion"]["passed"] is True


def test_failure_lines_name_gate_value_rule_and_threshold():
    evaluate = {m: {**GOOD, "recall": 0.3} for m in validation.MODELS}
    v = validation.verdict(evaluate, *_results(FAIL), MINIMUMS)
    assert validation.failure_lines(v) == [
        "fairness.gender.accuracy_gap: 0.2, must be at most 0.1 (fail)",
        "performance.recall: 0.3, must be at least 0.4 (fail)",
    ]
    with pytest.raises(ValueError, match="must have 'approved' and 'gates'"):
        validation.failure_lines({"approved": True})


def test_require_names_file_and_missing_key():
    assert validation.require({"a": {"b": 1}}, ["a.b"], "x.json") == {"a": {"b": 1}}
    with pytest.raises(DataError, match=r"metrics/fairness.json: key 'challenger.gates' is missing"):
        validation.require_results({"champion": {"gates": {}}}, "metrics/fairness.json")


@pytest.mark.parametrize(
    ("approved", "recommendation", "n_failed", "decision", "line"),
    [
        (True, "promote", 0, "✓ Promote the challenger", "Approved by the gates · A/B: significantly better"),
        (
            True,
            "inconclusive",
            0,
            "✗ Keep the champion",
            "Approved by the gates · A/B: no significant difference — keep the champion",
        ),
        (
            False,
            "promote",
            1,
            "✗ Keep the champion",
            "Not approved: fails 1 gate · A/B: significantly better",
        ),
        (
            False,
            "keep_champion",
            2,
            "✗ Keep the champion",
            "Not approved: fails 2 gates · A/B: keep the champion",
        ),
        (
            None,
            "promote",
            0,
            "? Check the gates of the challenger",
            "Gates not checked · A/B: significantly better",
        ),
    ],
)
def test_one_vocabulary_never_contradicts_itself(approved, recommendation, n_failed, decision, line):
    assert validation.decision_phrase(approved, recommendation).startswith(decision)
    assert validation.verdict_line(approved, recommendation, n_failed).startswith(line)
    assert validation.ready_to_promote(approved, recommendation) == decision.startswith("✓")
