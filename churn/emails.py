"""The retention email: the facts it may use, the prompt, Groq (with fallback models), the template,
the internal note for customers not worth contacting, and the `.eml` export."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as _EMAIL_POLICY
from typing import Any

from churn import schema
from churn.economics import money
from churn.retention import Action, Decision
from churn.settings import DEMOGRAPHICS, RetentionSettings

log = logging.getLogger(__name__)

_UNAVAILABLE_MODEL_CODES = ("model_decommissioned", "model_not_found")
#: HTTP statuses worth one more try (the groq client's own rule).
_RETRYABLE = (408, 409, 429)
#: No request is started with less budget left than this (it could not finish anyway).
_MIN_ATTEMPT_SECONDS = 0.2
#: The wait before a retry when the server does not say (`retry-after`), and the most we ever wait.
_RETRY_WAIT, _MAX_RETRY_WAIT = 0.5, 2.0
#: How long past its budget an email may take before the caller stops waiting for the LLM.
BUDGET_SLACK_SECONDS = 0.5
NOTE_SUBJECT = "Internal note: no retention offer"
#: Subjects by risk level: with the one offer (`{offer}`), and without one. Unknown levels read as Medium.
SUBJECTS = {
    "High": ("An offer set aside for you: {offer}", "Can we make your service better?"),
    "Medium": ("A better fit for your plan: {offer}", "How is your plan working for you?"),
    "Low": ("A thank-you from us: {offer}", "Thank you for being with us"),
}
#: What the subject and the opening must convey at each risk level (the template's and the LLM's rule).
TONES = {
    "High": "a personal offer set aside for this customer, warm and direct",
    "Medium": "a suggestion that makes the plan fit the customer better",
    "Low": "a thank-you for the customer's loyalty",
}
_LEADS = {
    "High": "We want to make sure your plan works for you, so we have set aside an offer just for you:",
    "Medium": "We looked at your plan and think this would make it fit you better:",
    "Low": "As a thank-you for your loyalty, we would like to offer you:",
}
_NO_OFFER = {
    "High": "If anything about your service is not working for you, reply to this email and we will make it right.",
    "Medium": "If anything about your plan could be better, reply to this email and we will help.",
    "Low": "If there is ever anything we can do for you, just reply to this email.",
}


@dataclass(frozen=True)
class Email:
    """A retention email and who wrote it: `source` 'groq' (with `model`) or 'template' (with `reason`),
    or 'note': an internal note instead of an email (the customer is not worth contacting; `reason`)."""

    subject: str
    text: str
    source: str
    model: str | None = None
    reason: str | None = None
    reason_code: str | None = None
    tried: tuple[str, ...] = field(default=())

    @property
    def is_note(self) -> bool:
        return self.source == "note"

    @property
    def full_text(self) -> str:
        """What a face shows and copies: the subject line and the body (a note: its text alone)."""
        return self.text if self.is_note else f"Subject: {self.subject}\n\n{self.text}"

    @property
    def label(self) -> str:
        """What the prediction log records: 'groq:<model>', 'template:<reason code>' or 'note:<reason code>'."""
        return f"groq:{self.model}" if self.source == "groq" else f"{self.source}:{self.reason_code}"

    def eml(self) -> bytes:
        """The email as an RFC 5322 message (`.eml`, standard library `email`, UTF-8 plain text).

        A draft to open in a mail client, review and send: Subject and body, `X-Unsent: 1` (opened
        as unsent by Outlook and Thunderbird) and `X-Churn-Email-Source` (`label`). No To, From or
        Date: no address is invented; the client adds them when the message is sent. A note is not
        an email: ValueError.
        """
        if self.is_note:
            raise ValueError(f"no email to export: {self.reason}")
        message = EmailMessage(policy=_EMAIL_POLICY)
        message["Subject"] = self.subject
        message["X-Unsent"] = "1"
        message["X-Churn-Email-Source"] = self.label
        message.set_content(self.text)
        return message.as_bytes()

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "text": self.text,
            "source": self.source,
            "model": self.model,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "tried": list(self.tried),
        }


@dataclass(frozen=True)
class EmailFacts:
    """Everything the email may use — a service profile without identifiers or demographics — and
    the one offer (`action`), or the expected loss that makes it a note instead (`expected_loss`)."""

    profile: dict[str, Any]
    probability: float
    risk_level: str
    drivers: tuple[str, ...]
    action: Action | None = None
    expected_loss: float | None = None

    @property
    def tenure(self) -> str | None:
        """'1 month', '5 months'; None for a new customer (tenure 0, or not given)."""
        try:
            months = int(float(self.profile.get("tenure")))
        except (TypeError, ValueError):
            return None
        return f"{months:,} month{'s' if months != 1 else ''}" if months > 0 else None

    @property
    def subject(self) -> str:
        """The subject that fits the risk level and the offer (`SUBJECTS`)."""
        with_offer, without = SUBJECTS.get(self.risk_level, SUBJECTS["Medium"])
        return with_offer.format(offer=self.action.offer) if self.action else without


def email_facts(
    customer: dict[str, Any],
    probability: float,
    risk_level: str,
    drivers: Sequence[tuple[str, str]] = (),
    actions: Sequence[Action] = (),
    decision: Decision | None = None,
) -> EmailFacts:
    """Facts for the email: the 19 features minus demographics (no id ever), driver sentences, and
    the one offer: the decision's best action, or without a decision (no `economics` in params) the
    first of `actions` (the biggest risk reduction). A decision not to contact makes it a note.

    `drivers` are (feature, sentence) pairs; those about demographics are left out too.
    """
    profile = {f: customer[f] for f in schema.FEATURES if f not in DEMOGRAPHICS and f in customer}
    kept = tuple(text for feature, text in drivers if feature not in DEMOGRAPHICS)
    if decision is None:
        action, loss = (actions[0] if actions else None), None
    else:
        action, loss = decision.action, (None if decision.contact else -decision.expected_profit)
    return EmailFacts(profile, float(probability), str(risk_level), kept, action, loss)


def prompt_messages(facts: EmailFacts) -> list[dict[str, str]]:
    """The chat messages sent to the LLM (the only customer data that leaves the process)."""
    profile = "\n".join(f"- {k}: {v}" for k, v in facts.profile.items())
    drivers = "\n".join(f"- {d}" for d in facts.drivers) or "- (none stand out)"
    a = facts.action
    if a is None:
        offer = "no specific offer; thank the customer and invite them to get in touch"
        subject_rule = "the subject must not promise an offer"
    else:
        offer = f"{a.offer} (internal: {a.description}; lowers churn risk by {a.reduction_points:.1f} points)"
        subject_rule = f"the subject must name the offer ({a.offer})"
    tone = TONES.get(facts.risk_level, TONES["Medium"])
    since = f"has been with us for {facts.tenure}" if facts.tenure else "is new: welcome them"
    system = (
        "You write short, warm retention emails for a telecom company's customer care team. "
        "Address the reader as 'Dear customer'. Make exactly the one offer given, in plain words, "
        "and no other. Never mention churn, risk, probabilities, scores or models. No placeholders "
        "such as [Name]. At most 180 words. Start with one line 'Subject: ...', then a blank line, "
        "then the email body, signed 'Customer Care'."
    )
    user = (
        f"Customer profile (services and billing):\n{profile}\n\n"
        f"The customer {since} (write the tenure exactly so).\n"
        f"Our model puts this customer's churn probability at {100 * facts.probability:.0f}% "
        f"({facts.risk_level} risk). What drives it:\n{drivers}\n\n"
        f"The one offer to make:\n- {offer}\n\n"
        f"Subject rule: {subject_rule}, and read as {tone}; for example: '{facts.subject}'.\n\n"
        "Write the email."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def template_email(facts: EmailFacts, reason: str, reason_code: str, tried: Sequence[str] = ()) -> Email:
    """The deterministic email built from the same facts, used when the LLM cannot write one: the
    subject and lead sentence of the risk level, the one offer, the tenure in words."""
    level = facts.risk_level if facts.risk_level in _LEADS else "Medium"
    if facts.tenure:
        opening = f"Thank you for being with us for {facts.tenure}."
    else:
        opening = "Welcome aboard, and thank you for choosing us as a new customer."
    lines = ["Dear customer,", "", opening]
    if facts.action:
        offer = facts.action.offer
        lines += ["", _LEADS[level], "", f"- {offer[0].upper()}{offer[1:]}"]
        lines += ["", "Reply to this email or call us and we will set it up for you — no paperwork needed."]
    else:
        lines += ["", _NO_OFFER[level]]
    lines += ["", "Kind regards,", "Customer Care"]
    return Email(facts.subject, "\n".join(lines), "template", None, reason, reason_code, tuple(tried))


def internal_note(facts: EmailFacts) -> Email:
    """Not an email: why this customer gets no offer (contacting them is expected to lose money)."""
    loss = money(facts.expected_loss or 0.0)
    reason = f"not worth contacting: expected loss {loss}"
    text = (
        "Internal note — not for sending.\n\n"
        f"No retention offer for this customer: contacting them with any retention action is expected "
        f"to lose at least {loss} (churn probability {100 * facts.probability:.1f}%, {facts.risk_level} "
        "risk; params.yaml economics). No email was written."
    )
    return Email(NOTE_SUBJECT, text, "note", None, reason, "not_worth_contacting")


def _error_code(exc: Any) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("code"):
            return str(err["code"])
    return None


def _split_subject(text: str, default: str) -> tuple[str, str]:
    lines = text.strip().splitlines()
    if lines and lines[0].lower().lstrip("*# ").startswith("subject:"):
        subject = lines[0].split(":", 1)[1].strip(" *") or default
        return subject, "\n".join(lines[1:]).strip()
    return default, text.strip()


def write_email(
    facts: EmailFacts,
    settings: RetentionSettings,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
) -> Email:
    """Ask Groq (the configured model, then the fallbacks if a model is gone), else use the template.

    A customer not worth contacting (`facts.expected_loss`) gets the internal note, no LLM call.
    `api_key` / `base_url` default to `GROQ_API_KEY` / `GROQ_BASE_URL`. Never raises and never
    takes longer than `settings.email_budget_seconds` (+ `BUDGET_SLACK_SECONDS`), retries and
    fallback models included: on any fault (HTTP error, timeout, malformed or empty answer, an
    exception in the client or here) the template is returned with a short `reason` and a
    `reason_code`, which never carry the key or a stack trace.
    """
    if facts.expected_loss is not None:
        return internal_note(facts)
    deadline = time.monotonic() + settings.email_budget_seconds
    api_key = api_key if api_key is not None else os.environ.get("GROQ_API_KEY", "")
    base_url = base_url or os.environ.get("GROQ_BASE_URL") or None
    if not api_key.strip():
        return template_email(facts, "no GROQ_API_KEY is set", "no_api_key")
    tried: list[str] = []
    clients: list[Any] = []
    done: dict[str, Email] = {}

    def ask() -> None:
        try:
            done["email"] = _ask_groq(facts, settings, api_key, base_url, deadline, tried, clients)
        except Exception as exc:  # any fault of the writer costs the email, never the caller
            log.warning("retention email: the LLM writer failed (%s)", type(exc).__name__)
            log.debug("retention email writer error: %s", str(exc).replace(api_key, "***"))
            done["email"] = _fallback(
                facts, "the LLM email writer failed unexpectedly", "internal_error", tried
            )

    # A watchdog: the client's timeout bounds each wait for a byte, not a whole slow answer.
    worker = threading.Thread(target=ask, name="retention-email", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()) + BUDGET_SLACK_SECONDS)
    if "email" in done:
        return done["email"]
    for client in list(clients):  # abandon the request; closing is best effort
        with contextlib.suppress(Exception):
            client.close()
    return _out_of_time(facts, settings, tried)


def _ask_groq(
    facts: EmailFacts,
    settings: RetentionSettings,
    api_key: str,
    base_url: str | None,
    deadline: float,
    tried: list[str],
    clients: list[Any],
) -> Email:
    """The LLM conversation of `write_email`: each attempt gets what is left of the budget as timeout."""
    import groq

    messages = prompt_messages(facts)
    client = groq.Groq(
        api_key=api_key, base_url=base_url, timeout=settings.email_budget_seconds, max_retries=0
    )
    clients.append(client)
    try:
        for model in (settings.model, *settings.fallback_models):
            tried.append(model)
            retries = settings.max_retries
            while True:
                remaining = deadline - time.monotonic()
                if remaining < _MIN_ATTEMPT_SECONDS:
                    return _out_of_time(facts, settings, tried)
                try:
                    reply = client.chat.completions.create(
                        model=model,
                        messages=messages,
                        temperature=settings.temperature,
                        max_tokens=settings.max_tokens,
                        timeout=remaining,
                    )
                except groq.APIStatusError as exc:
                    code = _error_code(exc)
                    status = exc.status_code
                    if status in (400, 404) and code in _UNAVAILABLE_MODEL_CODES:
                        log.warning("Groq model %s is unavailable (%s); trying the next one", model, code)
                        break
                    if retries and (status in _RETRYABLE or status >= 500) and _pause(exc, deadline):
                        retries -= 1
                        continue
                    kind = {401: "auth_error", 403: "auth_error", 429: "rate_limited"}.get(
                        status, "server_error" if status >= 500 else "api_error"
                    )
                    detail = f" ({code})" if code else ""
                    return _fallback(facts, f"Groq API answered HTTP {status}{detail}", kind, tried)
                except groq.APITimeoutError:
                    return _out_of_time(facts, settings, tried)
                except groq.APIConnectionError:
                    if retries and _pause(None, deadline):
                        retries -= 1
                        continue
                    return _fallback(facts, "could not connect to the Groq API", "connection_error", tried)
                except groq.GroqError as exc:
                    return _fallback(facts, f"Groq client error ({type(exc).__name__})", "api_error", tried)
                except json.JSONDecodeError:
                    return _fallback(
                        facts, "the Groq API answered with malformed JSON", "malformed_json", tried
                    )
                return _email_from(reply, model, facts, tried)
        reason = f"every configured Groq model is decommissioned or unknown: {', '.join(tried)}"
        return _fallback(facts, reason, "models_unavailable", tried)
    finally:
        client.close()


def _email_from(reply: Any, model: str, facts: EmailFacts, tried: list[str]) -> Email:
    """The email in a chat-completion reply, or the template when the reply is not one or is empty."""
    choices = getattr(reply, "choices", None)
    if not isinstance(choices, list):
        return _fallback(facts, "the Groq API's answer is not a chat completion", "bad_schema", tried)
    if not choices:
        return _fallback(facts, f"Groq model {model} returned no answer (no choices)", "no_choices", tried)
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if not hasattr(message, "content") or not isinstance(content, str | None):
        return _fallback(facts, "the Groq API's answer is not a chat completion", "bad_schema", tried)
    if not (content or "").strip():
        return _fallback(facts, f"Groq model {model} returned an empty answer", "empty_answer", tried)
    subject, body = _split_subject(content, facts.subject)
    log.info("retention email written by Groq model %s", model)
    return Email(subject, body, "groq", model, None, None, tuple(tried))


def _pause(exc: Any, deadline: float) -> bool:
    """Wait before a retry (the server's `retry-after`, else a short pause); False when the budget
    would not leave room for another attempt."""
    wait = _RETRY_WAIT
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            wait = float(headers["retry-after-ms"]) / 1000
        elif headers.get("retry-after"):
            wait = float(headers["retry-after"])
    except ValueError:
        pass
    wait = min(max(wait, 0.0), _MAX_RETRY_WAIT)
    if time.monotonic() + wait + _MIN_ATTEMPT_SECONDS > deadline:
        return False
    time.sleep(wait)
    return True


def _out_of_time(facts: EmailFacts, settings: RetentionSettings, tried: Sequence[str]) -> Email:
    reason = f"Groq API did not answer within the {settings.email_budget_seconds:g} s budget"
    return _fallback(facts, reason, "timeout", tried)


def _fallback(facts: EmailFacts, reason: str, code: str, tried: Sequence[str]) -> Email:
    log.warning("retention email from the template: %s", reason)
    return template_email(facts, reason, code, tuple(tried))
