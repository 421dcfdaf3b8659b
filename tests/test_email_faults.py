"""LLM faults never cost a prediction: the Predictor, the app (gradio_client) and `churn explain
--email` against the local Groq stub, for every fault mode of the email writer."""

from __future__ import annotations

import json
import logging
import time

import pytest
import yaml
from gradio_client import Client

from app import serve
from app.predict import HIGH_RISK, WRITING
from churn import cli, serving
from churn.monitoring.store import PredictionStore
from churn.serving import Predictor

KEY = "gsk_test_SECRET_key_123"
#: The app's email budget in these tests (params.yaml says 6 s; the rule is the same, the wait shorter).
BUDGET = 2.0

FAULTS = [
    (("status", 401, "invalid_api_key"), "auth_error"),
    (("status", 429, "rate_limit_exceeded"), "rate_limited"),
    (("status", 500, None), "server_error"),
    (("sleep", 30.0), "timeout"),
    (("malformed",), "malformed_json"),
    (("status", 400, "model_decommissioned"), "models_unavailable"),
    (("no_choices",), "no_choices"),
]
FAULT_IDS = ["401", "429", "500", "hang", "malformed_json", "all_decommissioned", "empty_choices"]


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


# -- the Predictor -------------------------------------------------------------------------------


@pytest.fixture()
def predictor(serving_root, store) -> Predictor:
    p = Predictor.load("challenger", root=serving_root, store=store)
    p.retention = p.retention.model_copy(update={"email_budget_seconds": 1.0})
    return p


@pytest.mark.parametrize(("step", "reason_code"), FAULTS, ids=FAULT_IDS)
def test_every_fault_gives_the_template_and_keeps_the_prediction(
    predictor, store, groq_stub, caplog, step, reason_code
):
    caplog.set_level(logging.DEBUG)
    groq_stub.default = step
    customer = HIGH_RISK | {"customerID": "1234-ABCDE"}
    start = time.perf_counter()
    result = predictor.assess(customer)
    assert time.perf_counter() - start < 1.0 + 1
    expected = predictor.predict(customer, log=False)[serving.PROBABILITY].iloc[0]
    assert result.probability == pytest.approx(expected, abs=1e-12) and result.actions
    assert (result.email.source, result.email.reason_code) == ("template", reason_code)
    assert result.email.text.startswith("Dear customer") and groq_stub.requests
    logged = store.read()
    assert len(logged) == 1 and logged["id"].iloc[0] == result.prediction_id
    assert logged["email_source"].iloc[0] == f"template:{reason_code}"
    _no_secret(caplog.text, repr(result), json.dumps(result.to_dict(), default=str))


def test_decommissioned_model_falls_to_the_next_in_the_list(predictor, store, groq_stub):
    groq_stub.plan["llama-3.1-8b-instant"] = ("status", 400, "model_decommissioned")
    result = predictor.assess(HIGH_RISK)
    assert (result.email.source, result.email.model) == ("groq", "openai/gpt-oss-20b")
    assert store.read()["email_source"].tolist() == ["groq:openai/gpt-oss-20b"]


def test_prepare_logs_at_once_and_complete_adds_the_email_source(predictor, store, groq_stub):
    groq_stub.default = ("sleep", 30.0)
    prepared = predictor.prepare(HIGH_RISK)
    assert prepared.email is None and prepared.to_dict()["email"] is None
    row = store.read().iloc[0]
    assert row["id"] == prepared.prediction_id and row["email_source"] is None
    done = predictor.complete(prepared)
    assert (done.prediction_id, done.probability) == (prepared.prediction_id, prepared.probability)
    assert done.email.reason_code == "timeout" and 900 < done.email_ms < 2000
    assert predictor.complete(done) is done  # the email is written once
    assert store.count() == 1 and store.read()["email_source"].tolist() == ["template:timeout"]


# -- the app, through gradio_client --------------------------------------------------------------


@pytest.fixture(scope="module")
def project(private_project):
    """A private copy of the built project whose email budget is BUDGET seconds."""
    with private_project("email_faults") as root:
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["retention"]["email_budget_seconds"] = BUDGET
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        yield root


@pytest.fixture(scope="module")
def client(project):
    demo, url = serve(project)
    yield Client(url, verbose=False, download_files=str(project / "downloads"), analytics_enabled=False)
    demo.close()


@pytest.fixture(scope="module")
def app_log(project):
    return PredictionStore()


@pytest.fixture(scope="module")
def expected(project) -> float:
    reference = Predictor.load(root=project, log=False)
    return float(reference.predict(HIGH_RISK)[serving.PROBABILITY].iloc[0])


def test_app_malformed_json_still_predicts_and_logs_once(client, app_log, expected, groq_stub, caplog):
    caplog.set_level(logging.DEBUG)
    groq_stub.default = ("malformed",)
    before = app_log.count()
    shown, risk, explanation, _chart, actions, email, note, _decision, _eml, probability = client.predict(
        **HIGH_RISK, api_name="/predict"
    )
    assert probability == pytest.approx(expected, abs=1e-12) and risk == "High"
    assert shown == f"{100 * expected:.1f}%"
    assert f"{100 * expected:.1f}% churn probability" in explanation and actions["data"]
    assert email.startswith("Subject: ") and "Customer Care" in email
    assert "template" in note and "malformed JSON" in note and "malformed_json" in note
    assert len(groq_stub.requests) == 1
    assert app_log.count() == before + 1
    assert app_log.read().iloc[-1]["email_source"] == "template:malformed_json"
    _no_secret(email, note, explanation, caplog.text)


def test_app_shows_the_prediction_before_a_hanging_llm_and_ends_within_budget(
    client, app_log, expected, groq_stub, caplog
):
    caplog.set_level(logging.DEBUG)
    groq_stub.default = ("sleep", 30.0)
    before = app_log.count()
    start = time.perf_counter()
    job = client.submit(**HIGH_RISK, api_name="/predict")
    first = next(job)
    shown = time.perf_counter() - start
    assert first[-1] == pytest.approx(expected, abs=1e-12) and first[1] == "High"
    assert first[5] == WRITING and "Writing the retention email" in first[6]
    assert app_log.count() == before + 1  # logged when shown, not when the email is done
    final = job.result(timeout=BUDGET + 5)
    total = time.perf_counter() - start
    assert final[0] == first[0] and final[5].startswith("Subject: ")
    assert "template" in final[6] and f"within the {BUDGET:g} s budget" in final[6]
    assert shown < BUDGET / 2 < total < BUDGET + 1, (shown, total)
    assert app_log.count() == before + 1
    assert app_log.read().iloc[-1]["email_source"] == "template:timeout"
    _no_secret(final[5], final[6], caplog.text)


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_explain_email_survives_malformed_json(
    serving_root, isolated_env, groq_stub, capsys, monkeypatch
):
    monkeypatch.chdir(serving_root)
    groq_stub.default = ("malformed",)
    path = isolated_env / "customer.json"
    path.write_text(json.dumps(HIGH_RISK))
    assert cli.main(["explain", str(path), "--json", "--email", "--model", "challenger"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert 0 <= out["probability"] <= 1 and out["actions"]
    assert (out["email"]["source"], out["email"]["reason_code"]) == ("template", "malformed_json")
    assert len(groq_stub.requests) == 1
    _no_secret(captured.out, captured.err)
    assert cli.main(["explain", str(path), "--email", "--model", "challenger"]) == 0
    text = capsys.readouterr().out
    assert "the template (the Groq API answered with malformed JSON)" in text
