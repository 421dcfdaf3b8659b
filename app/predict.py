"""Predict tab: one customer's churn probability, SHAP chart and words, retention actions and email."""

from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr
import pandas as pd

from app import files, metrics
from app.formats import percent, percent_columns
from app.state import AppState
from churn import schema

log = logging.getLogger(__name__)

#: A typical customer the form starts with.
DEFAULT: dict[str, Any] = {
    "gender": "Male",
    "SeniorCitizen": 0,
    "Partner": "Yes",
    "Dependents": "No",
    "tenure": 24,
    "PhoneService": "Yes",
    "MultipleLines": "No",
    "InternetService": "DSL",
    "OnlineSecurity": "No",
    "OnlineBackup": "Yes",
    "DeviceProtection": "No",
    "TechSupport": "No",
    "StreamingTV": "No",
    "StreamingMovies": "No",
    "Contract": "One year",
    "PaperlessBilling": "Yes",
    "PaymentMethod": "Bank transfer (automatic)",
    "MonthlyCharges": 60.0,
    "TotalCharges": 1440.0,
}
#: New, month-to-month, fiber, no support, electronic check: the classic churner.
HIGH_RISK: dict[str, Any] = {
    **DEFAULT,
    "gender": "Female",
    "SeniorCitizen": 1,
    "Partner": "No",
    "tenure": 2,
    "InternetService": "Fiber optic",
    "OnlineBackup": "No",
    "StreamingTV": "Yes",
    "StreamingMovies": "Yes",
    "Contract": "Month-to-month",
    "PaymentMethod": "Electronic check",
    "MonthlyCharges": 95.7,
    "TotalCharges": 191.4,
}
#: Long tenure, two-year contract, every support add-on, automatic payment.
LOW_RISK: dict[str, Any] = {
    **DEFAULT,
    "Dependents": "Yes",
    "tenure": 68,
    "MultipleLines": "Yes",
    "OnlineSecurity": "Yes",
    "DeviceProtection": "Yes",
    "TechSupport": "Yes",
    "Contract": "Two year",
    "PaperlessBilling": "No",
    "PaymentMethod": "Credit card (automatic)",
    "MonthlyCharges": 79.3,
    "TotalCharges": 5392.4,
}
LABELS = {
    "gender": "Gender",
    "SeniorCitizen": "Senior citizen",
    "Partner": "Partner",
    "Dependents": "Dependents",
    "tenure": "Tenure (months)",
    "PhoneService": "Phone service",
    "MultipleLines": "Multiple lines",
    "InternetService": "Internet service",
    "OnlineSecurity": "Online security",
    "OnlineBackup": "Online backup",
    "DeviceProtection": "Device protection",
    "TechSupport": "Tech support",
    "StreamingTV": "Streaming TV",
    "StreamingMovies": "Streaming movies",
    "Contract": "Contract",
    "PaperlessBilling": "Paperless billing",
    "PaymentMethod": "Payment method",
    "MonthlyCharges": "Monthly charges ($)",
    "TotalCharges": "Total charges ($)",
}
GROUPS = {
    "Customer": ("gender", "SeniorCitizen", "Partner", "Dependents", "tenure"),
    "Services": ("PhoneService", "MultipleLines", "InternetService", *schema.INTERNET_ADDONS),
    "Contract and billing": (
        "Contract",
        "PaperlessBilling",
        "PaymentMethod",
        "MonthlyCharges",
        "TotalCharges",
    ),
}
ACTION_COLUMNS = ["Action", "Churn probability after", "Risk reduction (points)"]
#: Form fields that need another: {service: {field: its "No … service" level}} (`schema.DEPENDENT_SERVICES`).
DEPENDENT: dict[str, dict[str, str]] = {
    service: {col: none for col, needed, none in schema.DEPENDENT_SERVICES if needed == service}
    for service in dict.fromkeys(needed for _, needed, _ in schema.DEPENDENT_SERVICES)
}
#: What the email box says while the LLM writes (the prediction is already on screen).
WRITING = "writing…"


def _field(name: str) -> gr.components.Component:
    """The input for one Telco column: its allowed levels from the schema, or a number box."""
    common = {"value": DEFAULT[name], "label": LABELS[name], "elem_id": f"field-{name}"}
    if name == "SeniorCitizen":
        return gr.Radio([("No", 0), ("Yes", 1)], **common)
    if name in schema.CATEGORICAL:
        levels = list(schema.CATEGORICAL[name])
        if len(levels) == 2:
            return gr.Radio(levels, **common)
        wide = ["churn-choice-wide"] if max(map(len, levels)) > 20 else []  # the classes of app.CSS
        return gr.Dropdown(levels, elem_classes=["churn-choice", *wide], **common)
    lo, hi, whole = schema.NUMERIC[name]
    info = f"{lo:,.0f} to {hi:,.0f}" + (", whole months" if whole else "")
    if name == "TotalCharges":
        info += "; may be empty when tenure is 0"
    return gr.Number(info=info, **common)


def check(**customer: Any) -> list[dict[str, Any]]:
    """Validator: one `gr.validate` per field, with the schema's rule next to each broken field."""
    messages = field_problems(customer)
    return [gr.validate(name not in messages, messages.get(name, "")) for name in schema.FEATURES]


def field_problems(customer: dict[str, Any]) -> dict[str, str]:
    """{field: 'rule'} for every field of one customer that breaks the Telco schema (the Predictor's check)."""
    try:
        schema.customers(customer, "customer")
    except schema.SchemaError as exc:
        out: dict[str, str] = {}
        for problem in exc.problems:
            out.setdefault(problem.column, f"{problem.column} {problem.rule}")
        return out
    return {}


def actions_table(actions):
    """The actions, best first; the probability after each shown as a percentage (a number to API clients)."""
    rows = [(a.description, round(a.probability_after, 4), round(a.reduction_points, 1)) for a in actions]
    return percent_columns(pd.DataFrame(rows, columns=ACTION_COLUMNS), [ACTION_COLUMNS[1]])


def email_note(email) -> str:
    """Who wrote the email: the LLM model id, or the template and why (reason and reason code)."""
    if email.is_note:
        return f"✉ No email: this customer is {email.reason}; an internal note instead."
    if email.source == "groq":
        return f"✉ Written by the LLM **{email.model}** (Groq). Review before sending."
    return f"✉ Written from the **template**, not an LLM: {email.reason} (`{email.reason_code}`)."


def writing_note(budget_seconds: float) -> str:
    return f"✉ Writing the retention email (at most {budget_seconds:g} s; the template if the LLM fails)…"


def decision_markdown(assessment) -> str:
    """The decision line (`Assessment.decision_line`), bold."""
    return f"**{assessment.decision_line()}**"


def eml_file(email, component: Any, prediction_id: int | None) -> str | None:
    """The email as an .eml draft in the component's cache (its path), or None for an internal note."""
    if email.is_note:
        return None
    with files.request_folder(files.EMAIL_PREFIX) as folder:
        path = folder / f"retention-email{'' if prediction_id is None else f'-{prediction_id}'}.eml"
        path.write_bytes(email.eml())
        return files.publish(component, path)


def explanation_markdown(assessment) -> str:
    head = f"### {percent(assessment.probability)} churn probability — {assessment.risk_level} risk"
    bullets = "\n".join(f"- {s}" for s in assessment.explanation.sentences[1:])
    return f"{head}\n\n{assessment.explanation.sentences[0]}\n\n{bullets}".rstrip()


def build_tab(state: AppState) -> None:
    """The form, the example buttons and the outputs; events /predict, /example_high_risk, /example_low_risk."""
    fields: dict[str, gr.components.Component] = {}
    with gr.Row():
        with gr.Column(scale=5):
            for title, names in GROUPS.items():
                with gr.Accordion(title, open=True), gr.Row():
                    for name in names:
                        fields[name] = _field(name)
            with gr.Row():
                predict_btn = gr.Button("Predict churn", variant="primary", elem_id="predict-btn")
                high_btn = gr.Button("Example: high-risk customer", elem_id="example-high")
                low_btn = gr.Button("Example: low-risk customer", elem_id="example-low")
        with gr.Column(scale=6):
            with gr.Row():
                probability = gr.Textbox(label="Churn probability", elem_id="probability")
                risk = gr.Textbox(label="Risk level", elem_id="risk-level")
            decision = gr.Markdown(elem_id="decision")
            explanation = gr.Markdown(elem_id="explanation")
            chart = gr.Plot(
                label="What drives this prediction (SHAP, percentage points)", elem_id="shap-chart"
            )
            actions = gr.Dataframe(
                headers=ACTION_COLUMNS,
                label="Retention actions, best first",
                interactive=False,
                wrap=True,
                column_widths=["60%", "20%", "20%"],
                elem_id="actions",
            )
            email = gr.Textbox(label="Retention email", lines=14, buttons=["copy"], elem_id="email")
            note = gr.Markdown(elem_id="email-source")
            eml = gr.DownloadButton("Download email (.eml)", value=None, elem_id="email-eml")
            # the probability as a number, for API clients (the screen shows it rounded, as text)
            exact = gr.Number(visible=False, elem_id="probability-exact")

    ordered = [fields[name] for name in schema.FEATURES]

    def predict(**customer: Any):
        """Churn probability as shown (first: "78.1%"), risk level, SHAP chart, explanation, actions,
        email and who wrote it, the decision line, the email as an .eml file (None for an internal
        note), and the exact churn probability (last, a number).

        Streams: the prediction is shown (and logged) at once with the email box saying "writing…",
        then the email follows; an API client gets the final values.
        """
        predictor = state.predictor
        try:
            prepared = predictor.prepare(customer)
        except schema.SchemaError as exc:
            raise gr.Error(str(exc)) from exc
        ops = metrics.of(state)
        ops.predicted([prepared.risk_level])
        shown = (
            percent(prepared.probability),
            prepared.risk_level,
            explanation_markdown(prepared),
            prepared.explanation.figure(),
            actions_table(prepared.actions),
        )
        decided = decision_markdown(prepared)
        writing = writing_note(predictor.retention.email_budget_seconds)
        yield (*shown, WRITING, writing, decided, None, prepared.probability)
        email = predictor.complete(prepared).email
        ops.emailed(email)
        draft = eml_file(email, eml, prepared.prediction_id)
        yield (*shown, email.full_text, email_note(email), decided, draft, prepared.probability)

    outputs = [probability, risk, explanation, chart, actions, email, note, decision, eml, exact]
    predicting = predict_btn.click(
        predict,
        inputs_kwargs=fields,
        outputs=outputs,
        validator=check,
        preprocess=False,
        api_name="predict",
    )

    def example(values: dict[str, Any]):
        def fill():
            return tuple(values[name] for name in schema.FEATURES)

        fill.__doc__ = "Fill the form with an example customer (the 19 fields, in CSV column order)."
        return fill

    high_btn.click(example(HIGH_RISK), outputs=ordered, api_name="example_high_risk")
    low_btn.click(example(LOW_RISK), outputs=ordered, api_name="example_low_risk")
    _keep_consistent(fields, outputs, predicting)


def _keep_consistent(fields: dict[str, gr.components.Component], outputs: list, predicting) -> None:
    """In the browser only (no server round trip, no API endpoint): a changed field clears the
    result shown (and stops a prediction still streaming), and a service switched to "No" sets the
    fields that need it to "No … service" (switched back on: to "No"), so the form offers no
    combination the schema refuses."""
    blank_table = json.dumps({"headers": ACTION_COLUMNS, "data": [], "metadata": None})
    empty = [
        "null"
        if isinstance(o, gr.Plot | gr.DownloadButton | gr.Number)
        else blank_table
        if isinstance(o, gr.Dataframe)
        else "''"
        for o in outputs
    ]
    clear = f"() => [{', '.join(empty)}]"
    for field in fields.values():
        field.change(None, js=clear, outputs=outputs, cancels=[predicting], api_visibility="private")
    for service, needing in DEPENDENT.items():
        js = (
            f"(service, ...values) => {{ const nones = {list(needing.values())!r}; return values.map((v, i) => "
            "service === 'No' ? nones[i] : v === nones[i] ? 'No' : v); }"
        )
        fields[service].change(
            None,
            js=js,
            inputs=[fields[service], *(fields[c] for c in needing)],
            outputs=[fields[c] for c in needing],
            api_visibility="private",
        )
