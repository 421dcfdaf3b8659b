"""assessment.Assessment.to_dict: the keys and plain JSON types of one served customer."""

from __future__ import annotations

import json

from churn import emails, explain, retention
from churn.assessment import PROBABILITY, RISK, Assessment

EXPLANATION = explain.Explanation(
    customer={"tenure": 3},
    probability=0.7,
    space="log-odds",
    method="exact",
    base_value=-1.0,
    contributions={"tenure": 1.2, "Contract": 0.6},
    base_probability=0.27,
    points={"tenure": 30.0, "Contract": 13.0},
    sentences=("Churn risk 70%.", "Short tenure adds 30 points."),
)
ACTION = retention.Action("Contract", "Month-to-month", "One year", "switch", "10% off", 0.7, 0.45)


def _assessment(**extra) -> Assessment:
    return Assessment(
        customer={"tenure": 3},
        probability=0.7,
        risk_level="High",
        explanation=EXPLANATION,
        actions=[ACTION],
        **extra,
    )


def test_the_output_columns_are_named_once():
    assert (PROBABILITY, RISK) == ("churn_probability", "risk_level")


def test_to_dict_keys_and_defaults_before_the_email_is_written():
    d = _assessment().to_dict()
    assert list(d) == [
        "probability", "risk_level", "model_name", "model_version", "prediction_id",
        "latency_ms", "email_ms", "explanation", "actions", "email", "decision",
    ]  # fmt: skip
    assert d["email"] is None and d["prediction_id"] is None and d["decision"] is None
    assert (d["model_name"], d["latency_ms"], d["email_ms"]) == ("", 0.0, 0.0)
    assert "customer" not in d  # the customer's own fields are the caller's, not repeated


def test_to_dict_nests_plain_dicts_and_is_json():
    email = emails.Email(subject="Hi", text="Body", source="template", reason="no key", tried=("m1",))
    d = _assessment(email=email, prediction_id=12, model_name="champion", model_version="md5:ab").to_dict()
    assert d["explanation"]["text"] == "Churn risk 70%. Short tenure adds 30 points."
    assert d["explanation"]["points"] == {"tenure": 30.0, "Contract": 13.0}
    assert d["actions"] == [ACTION.to_dict()] and abs(d["actions"][0]["reduction_points"] - 25.0) < 1e-9
    assert d["email"]["tried"] == ["m1"] and d["email"]["source"] == "template"
    assert json.loads(json.dumps(d)) == d  # only JSON types: lists, not tuples


def test_decision_line_and_dict_for_both_decisions():
    contact = retention.Decision(True, 18300.4, ACTION, 15000.0, 1200.0)
    served = _assessment(decision=contact)
    assert served.decision_line() == "Contact: yes — expected gain $18,300 with “switch”"
    d = served.to_dict()["decision"]
    assert d == {
        "contact": True,
        "expected_profit": 18300.4,
        "best_action": ACTION.to_dict(),
        "action_profit": 15000.0,
        "clv": 1200.0,
    }
    assert json.loads(json.dumps(d)) == d
    standard = _assessment(decision=retention.Decision(True, 52.0, None, None, 1200.0))
    assert standard.decision_line() == "Contact: yes — expected gain $52 with the standard retention offer"
    skip = _assessment(decision=retention.Decision(False, -1234.5, None, None, 1200.0))
    assert skip.decision_line() == "No offer: expected loss $1,234"  # no raw floats
    assert skip.to_dict()["decision"]["best_action"] is None
    assert "no economics section" in _assessment().decision_line()
