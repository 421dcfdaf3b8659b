"""The retention email: facts, prompt, Groq with fallback models and the template, against a local stub."""

from __future__ import annotations

import json
import logging
import time

import pytest

from churn import emails
from churn.retention import Action, Decision
from churn.settings import RetentionSettings

KEY = "gsk_test_SECRET_key_123"
FAST = RetentionSettings(email_budget_seconds=1.0, max_retries=1)


@pytest.fixture()
def facts(synthetic_raw) -> emails.EmailFacts:
    """A new month-to-month fibre customer (with an id and demographics the prompt must leave out)."""
    customer = synthetic_raw.iloc[0].to_dict() | {
        "customerID": "7590-VHVEG",
        "Contract": "Month-to-month",
        "InternetService": "Fiber optic",
        "tenure": "3",
    }
    action = Action(
        "Contract",
        "Month-to-month",
        "Two year",
        "Offer a two-year contract",
        "a two-year contract",
        0.62,
        0.31,
    )
    drivers = [
        ("Contract", "A month-to-month contract raises churn risk by 12 points."),
        ("SeniorCitizen", "Being a senior citizen raises churn risk by 3.0 points."),
    ]
    return emails.email_facts(customer, 0.62, "High", drivers, [action])


def test_success_uses_the_configured_model_and_a_clean_prompt(groq_stub, facts, caplog):
    caplog.set_level(logging.DEBUG)
    email = emails.write_email(facts, FAST)
    assert (email.source, email.model, email.reason) == ("groq", "llama-3.1-8b-instant", None)
    assert email.subject == "Stay with us" and email.text.startswith("Dear customer")
    assert email.label == "groq:llama-3.1-8b-instant"
    assert len(groq_stub.requests) == 1
    sent = groq_stub.requests[0]
    assert sent["model"] == "llama-3.1-8b-instant"
    prompt = json.dumps(sent["messages"])
    for fact in (
        "Month-to-month",
        "Fiber optic",
        "62%",
        "High risk",
        "raises churn risk by 12 points",
        "two-year",
    ):
        assert fact in prompt, fact
    for private in ("7590-VHVEG", "customerID", "gender", "SeniorCitizen", "senior citizen", "Partner"):
        assert private not in prompt, private
    assert groq_stub.headers[0]["Authorization"] == f"Bearer {KEY}"
    shown = caplog.text + repr(email) + json.dumps(email.to_dict()) + repr(facts)
    assert KEY not in shown


@pytest.mark.parametrize(
    ("code", "reason_code", "attempts"),
    [(401, "auth_error", 1), (429, "rate_limited", 2), (500, "server_error", 2)],
)
def test_api_errors_fall_back_to_the_template(groq_stub, facts, caplog, code, reason_code, attempts):
    caplog.set_level(logging.DEBUG)
    groq_stub.default = ("status", code, None)
    email = emails.write_email(facts, FAST)
    assert email.source == "template" and email.reason_code == reason_code
    assert f"HTTP {code}" in email.reason
    assert len(groq_stub.requests) == attempts  # max_retries=1: retried once, never more
    assert email.text == emails.template_email(facts, "x", "y").text
    assert KEY not in caplog.text + repr(email)


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY not in text


@pytest.mark.parametrize("step", [("sleep", 5.0), ("drip", 0.05)], ids=["hang", "slow_drip"])
def test_a_hanging_endpoint_costs_at_most_the_budget(groq_stub, facts, caplog, step):
    caplog.set_level(logging.DEBUG)
    groq_stub.default = step  # hang: no answer for 5 s; slow drip: one byte every 50 ms (~20 s in all)
    start = time.perf_counter()
    email = emails.write_email(facts, FAST)
    elapsed = time.perf_counter() - start
    assert email.source == "template" and email.reason_code == "timeout"
    assert email.reason == "Groq API did not answer within the 1 s budget"
    assert elapsed < FAST.email_budget_seconds + 1  # budget + slack, never the endpoint's pace
    assert len(groq_stub.requests) == 1  # a timed-out attempt used up the budget: no retry
    _no_secret(caplog.text, repr(email))


def test_the_budget_spans_fallback_models(groq_stub, facts):
    groq_stub.plan["llama-3.1-8b-instant"] = ("status", 400, "model_decommissioned")
    groq_stub.plan["openai/gpt-oss-20b"] = ("sleep", 5.0)
    start = time.perf_counter()
    email = emails.write_email(facts, FAST)
    assert time.perf_counter() - start < FAST.email_budget_seconds + 1
    assert email.reason_code == "timeout"
    assert email.tried == ("llama-3.1-8b-instant", "openai/gpt-oss-20b")


@pytest.mark.parametrize(
    ("step", "reason_code", "reason"),
    [
        (("malformed",), "malformed_json", "the Groq API answered with malformed JSON"),
        (("body", {"detail": "Not Found"}), "bad_schema", "the Groq API's answer is not a chat completion"),
        (("body", ["not", "a", "completion"]), "bad_schema", "not a chat completion"),
        (("body", {"choices": [{"message": 5}]}), "bad_schema", "not a chat completion"),
        (("no_choices",), "no_choices", "Groq model llama-3.1-8b-instant returned no answer (no choices)"),
        (("ok", ""), "empty_answer", "Groq model llama-3.1-8b-instant returned an empty answer"),
        (("ok", " \n "), "empty_answer", "returned an empty answer"),
    ],
    ids=["malformed_json", "wrong_schema", "json_list", "bad_choice", "empty_choices", "empty", "blank"],
)
def test_bad_answers_fall_back_to_the_template(groq_stub, facts, caplog, step, reason_code, reason):
    caplog.set_level(logging.DEBUG)
    groq_stub.default = step
    email = emails.write_email(facts, FAST)
    assert (email.source, email.reason_code) == ("template", reason_code)
    assert reason in email.reason
    assert email.label == f"template:{reason_code}"
    assert email.text == emails.template_email(facts, "x", "y").text
    assert len(groq_stub.requests) == 1  # a garbled answer is not retried
    _no_secret(caplog.text, repr(email), json.dumps(email.to_dict()))


def test_any_exception_in_the_writer_falls_back_without_the_secret(groq_stub, facts, caplog, monkeypatch):
    import groq

    caplog.set_level(logging.DEBUG)

    def broken(**kwargs):
        raise RuntimeError(f"Illegal header value b'Bearer {kwargs['api_key']}'")

    monkeypatch.setattr(groq, "Groq", broken)
    email = emails.write_email(facts, FAST)
    assert (email.source, email.reason_code) == ("template", "internal_error")
    assert email.reason == "the LLM email writer failed unexpectedly"
    assert "RuntimeError" in caplog.text and "Traceback" not in caplog.text
    _no_secret(caplog.text, repr(email))
    monkeypatch.undo()
    monkeypatch.setattr(emails, "prompt_messages", lambda facts: 1 / 0)  # our own bug
    assert emails.write_email(facts, FAST, api_key=KEY).reason_code == "internal_error"


def test_decommissioned_model_falls_back_to_the_next(groq_stub, facts):
    groq_stub.plan["llama-3.1-8b-instant"] = ("status", 400, "model_decommissioned")
    groq_stub.plan["openai/gpt-oss-20b"] = ("status", 404, "model_not_found")
    email = emails.write_email(facts, FAST)
    assert (email.source, email.model) == ("groq", "llama-3.3-70b-versatile")
    assert email.tried == ("llama-3.1-8b-instant", "openai/gpt-oss-20b", "llama-3.3-70b-versatile")
    assert [r["model"] for r in groq_stub.requests] == list(email.tried)


def test_all_models_decommissioned_gives_the_template(groq_stub, facts):
    groq_stub.default = ("status", 400, "model_decommissioned")
    email = emails.write_email(facts, FAST)
    assert email.source == "template" and email.reason_code == "models_unavailable"
    assert "llama-3.1-8b-instant" in email.reason and "llama-3.3-70b-versatile" in email.reason
    assert len(groq_stub.requests) == 3


def test_other_bad_request_is_not_retried_on_fallbacks(groq_stub, facts):
    groq_stub.default = ("status", 400, "context_length_exceeded")
    email = emails.write_email(facts, FAST)
    assert email.reason_code == "api_error" and "context_length_exceeded" in email.reason
    assert len(groq_stub.requests) == 1


def test_no_key_means_template_without_a_request(groq_stub, facts, monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY")
    email = emails.write_email(facts, FAST)
    assert (email.source, email.reason_code) == ("template", "no_api_key")
    assert email.reason == "no GROQ_API_KEY is set"
    assert groq_stub.requests == []


def test_template_is_deterministic_and_uses_the_facts(facts):
    one = emails.template_email(facts, "r", "c")
    two = emails.template_email(facts, "r", "c")
    assert one == two
    assert "for 3 months" in one.text and "- A two-year contract" in one.text
    assert "churn" not in one.text.lower() and "62" not in one.text
    empty = emails.email_facts({"tenure": 0}, 0.1, "Low")
    assert "Here is what we can do" not in emails.template_email(empty, "r", "c").text


# -- one offer, subjects, tenure, the internal note and the .eml -----------------------------------

CONTRACT = Action(
    "Contract", "Month-to-month", "Two year", "Offer a two-year contract", "a two-year contract", 0.7, 0.3
)
DISCOUNT = Action(
    "MonthlyCharges", 100.0, 90.0, "Offer a 10% discount", "a 10% discount on your monthly charge", 0.7, 0.25
)


def _facts(tenure="5", level="High", action=CONTRACT, contact=True, profit=72.6):
    decision = Decision(contact, profit, action if contact else None, 150.0, 1200.0)
    return emails.email_facts({"tenure": tenure}, 0.7, level, (), [DISCOUNT, CONTRACT], decision)


@pytest.mark.parametrize(
    ("tenure", "wording", "wrong"),
    [
        ("1", "Thank you for being with us for 1 month.", "1 months"),
        ("2", "Thank you for being with us for 2 months.", "2 month."),
        ("72", "Thank you for being with us for 72 months.", "72 month."),
        ("0", "Welcome aboard, and thank you for choosing us as a new customer.", "0 month"),
    ],
)
def test_template_tenure_wording(tenure, wording, wrong):
    text = emails.template_email(_facts(tenure=tenure), "r", "c").text
    assert wording in text and wrong not in text


def test_template_makes_the_one_best_offer_not_a_list_of_alternatives():
    email = emails.template_email(_facts(), "r", "c")
    assert "- A two-year contract" in email.text
    assert "discount" not in email.text and email.text.count("\n- ") == 1
    assert email.subject == "An offer set aside for you: a two-year contract"


@pytest.mark.parametrize(
    ("level", "subject", "lead"),
    [
        ("High", "An offer set aside for you: a two-year contract", "set aside an offer just for you"),
        ("Medium", "A better fit for your plan: a two-year contract", "make it fit you better"),
        ("Low", "A thank-you from us: a two-year contract", "thank-you for your loyalty"),
    ],
)
def test_subject_and_lead_fit_the_risk_level_and_the_offer(level, subject, lead):
    email = emails.template_email(_facts(level=level), "r", "c")
    assert email.subject == subject and lead in email.text


def test_without_an_offer_the_subject_promises_none():
    subjects = {
        level: emails.template_email(emails.email_facts({"tenure": "5"}, 0.4, level), "r", "c").subject
        for level in ("High", "Medium", "Low")
    }
    assert len(set(subjects.values())) == 3 and not any("offer" in s.lower() for s in subjects.values())


def test_a_customer_not_worth_contacting_gets_an_internal_note_and_no_request(groq_stub):
    facts = _facts(contact=False, profit=-24.2)
    assert facts.action is None and facts.expected_loss == pytest.approx(24.2)
    note = emails.write_email(facts, FAST)
    assert groq_stub.requests == []  # no LLM call for a customer we will not contact
    assert (note.source, note.reason_code, note.label) == (
        "note",
        "not_worth_contacting",
        "note:not_worth_contacting",
    )
    assert note.reason == "not worth contacting: expected loss $24"
    assert note.full_text.startswith("Internal note — not for sending.")
    assert "expected to lose at least $24" in note.text and "Dear customer" not in note.text
    with pytest.raises(ValueError, match="no email to export: not worth contacting"):
        note.eml()


def test_eml_round_trip():
    from email import message_from_bytes
    from email.policy import default

    email = emails.template_email(_facts(tenure="1"), "no GROQ_API_KEY is set", "no_api_key")
    message = message_from_bytes(email.eml(), policy=default)
    assert message["Subject"] == email.subject
    assert message.get_content_type() == "text/plain" and message.get_content_charset() == "utf-8"
    assert message.get_content().rstrip("\n") == email.text  # the em dash survives
    assert message["X-Unsent"] == "1" and message["X-Churn-Email-Source"] == "template:no_api_key"
    for invented in ("To", "From", "Cc", "Date"):
        assert message[invented] is None, invented
    assert not message.defects


def test_the_prompt_carries_the_one_best_action_and_the_subject_rule(groq_stub):
    email = emails.write_email(_facts(tenure="1", level="Medium"), FAST)
    assert email.source == "groq"
    prompt = json.dumps(groq_stub.requests[0]["messages"], ensure_ascii=False)
    assert "The one offer to make:\\n- a two-year contract (internal: Offer a two-year contract" in prompt
    assert "discount" not in prompt  # the other what-if is not offered as an alternative
    assert "Make exactly the one offer given" in prompt
    assert "Subject rule: the subject must name the offer (a two-year contract)" in prompt
    assert "A better fit for your plan: a two-year contract" in prompt
    assert "has been with us for 1 month (write the tenure exactly so)" in prompt


def test_an_llm_answer_without_a_subject_gets_the_one_that_fits(groq_stub):
    groq_stub.default = ("ok", "Dear customer,\n\nA two-year contract is yours.\n\nCustomer Care")
    email = emails.write_email(_facts(level="Low"), FAST)
    assert email.source == "groq" and email.subject == "A thank-you from us: a two-year contract"
