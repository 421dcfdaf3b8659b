"""Retention actions: re-scored what-ifs a retention team can offer, and their settings."""

from __future__ import annotations

import pandas as pd
import pytest

from churn import retention, schema
from churn.params import ParamsError
from churn.settings import DEMOGRAPHICS, HISTORY, EconomicsSettings


@pytest.fixture(scope="module")
def risky(synthetic_raw) -> dict:
    """A month-to-month fiber customer paying by electronic check, without security or support."""
    row = synthetic_raw.iloc[0].to_dict()
    row.update(
        {
            "Contract": "Month-to-month",
            "InternetService": "Fiber optic",
            "PaymentMethod": "Electronic check",
            "OnlineSecurity": "No",
            "TechSupport": "No",
            "OnlineBackup": "No",
            "DeviceProtection": "No",
            "PaperlessBilling": "Yes",
            "tenure": "3",
            "MonthlyCharges": "95.10",
            "TotalCharges": "285.30",
        }
    )
    return row


def test_actions_lower_the_risk_they_claim(serving_models, risky):
    pipe = serving_models["champion"]
    settings = retention.RetentionSettings(max_actions=20, min_reduction_points=0.0)
    found = retention.actions(pipe, risky, settings)
    assert found, "a risky month-to-month customer must have at least one helpful offer"
    base = pipe.predict_proba(pd.DataFrame([{f: risky[f] for f in schema.FEATURES}]))[0, 1]
    for action in found:
        changed = {f: risky[f] for f in schema.FEATURES} | {action.feature: action.proposed}
        rescored = pipe.predict_proba(pd.DataFrame([changed]))[0, 1]
        assert action.probability_before == pytest.approx(base, abs=1e-12)
        assert action.probability_after == pytest.approx(rescored, abs=1e-12)
        assert action.reduction_points > 0
    reductions = [a.reduction_points for a in found]
    assert reductions == sorted(reductions, reverse=True)


def test_actions_only_offer_what_a_retention_team_can(serving_models, risky):
    settings = retention.RetentionSettings.model_construct(max_actions=50, min_reduction_points=-100.0)
    changes = retention.candidate_changes(risky, settings)
    features = {c[0] for c in changes}
    assert not features & set(DEMOGRAPHICS + HISTORY)
    contract = sorted(c[1] for c in changes if c[0] == "Contract")
    assert contract == ["One year", "Two year"]
    assert {c[1] for c in changes if c[0] == "PaymentMethod"} == {
        "Bank transfer (automatic)",
        "Credit card (automatic)",
    }
    discount = next(c for c in changes if c[0] == "MonthlyCharges")
    assert discount[1] == pytest.approx(85.59)
    no_internet = risky | {
        "InternetService": "No",
        **dict.fromkeys(schema.INTERNET_ADDONS, schema.NO_INTERNET),
    }
    assert not {c[0] for c in retention.candidate_changes(no_internet, settings)} & set(
        schema.INTERNET_ADDONS
    )
    two_year = risky | {"Contract": "Two year", "PaymentMethod": "Credit card (automatic)"}
    assert not {c[0] for c in retention.candidate_changes(two_year, settings)} & {"Contract", "PaymentMethod"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"actionable": ["Contract", "gender"]},
            "retention.actionable: must not list gender (demographics or history)",
        ),
        ({"actionable": ["tenure"]}, "must not list tenure (demographics or history)"),
        ({"actionable": ["StreamingTVs"]}, "retention.actionable: lists StreamingTVs; allowed: Contract, "),
        ({"max_retries": 3}, "retention.max_retries: must be at least 0 and at most 1 (got 3)"),
        ({"email_budget_seconds": "6"}, "retention.email_budget_seconds: must be a number at least 0.5"),
        (
            {"email_budget_seconds": 0},
            "retention.email_budget_seconds: must be at least 0.5 and at most 60 (got 0)",
        ),
        ({"timeout_seconds": 8}, "retention.timeout_seconds: unknown key (renamed: email_budget_seconds)"),
        ({"modle": "x"}, "retention.modle: unknown key (allowed: model, fallback_models,"),
        (
            {"fallback_models": "openai/gpt-oss-20b"},
            "retention.fallback_models: must be a non-empty list of names",
        ),
    ],
)
def test_bad_settings_name_key_and_rule(section, message):
    with pytest.raises(ParamsError) as info:
        retention.RetentionSettings.from_params(section)
    assert message in str(info.value)


def test_params_yaml_section_loads(root):
    from churn.params import load_params

    settings = retention.RetentionSettings.from_params(load_params(root / "params.yaml")["retention"])
    assert settings.model == "llama-3.1-8b-instant"
    assert "openai/gpt-oss-20b" in settings.fallback_models
    assert settings.max_retries <= 1 and settings.email_budget_seconds <= 10


#: CLV = 12 × MonthlyCharges, d = 40, f = 5, γ̄ = 0.3 (params.yaml's values).
ECONOMICS = EconomicsSettings(clv_months=12, offer_cost=40, contact_cost=5, alpha=6, beta=14)


@pytest.fixture()
def customer(synthetic_raw) -> dict:
    return synthetic_raw.iloc[0].to_dict() | {"Contract": "Month-to-month", "MonthlyCharges": "100.00"}


def _action(feature, proposed, before, after):
    return retention.Action(feature, "x", proposed, f"change {feature}", f"new {feature}", before, after)


def test_the_best_action_earns_most_not_the_biggest_reduction(customer):
    # A 10% discount cuts the risk most (0.6 → 0.30) but also the customer's value (CLV 1200 → 1080):
    # 0.3 · 0.30 · 1080 − (0.3 · 0.6 + 0.4) · 40 − 5 = 69.0, the two-year contract (0.6 → 0.32, CLV
    # unchanged) 0.3 · 0.28 · 1200 − 28.2 = 72.6, online security (0.6 → 0.5) 36 − 28.2 = 7.8.
    found = [
        _action("MonthlyCharges", 90.0, 0.6, 0.30),
        _action("Contract", "Two year", 0.6, 0.32),
        _action("OnlineSecurity", "Yes", 0.6, 0.5),
    ]
    decision = retention.decide(customer, 0.6, found, ECONOMICS)
    assert decision.contact and decision.action is found[1]
    assert decision.action_profit == pytest.approx(72.6)
    assert decision.clv == pytest.approx(1200.0)
    # the decision rule's figure, the one `churn predict` writes: 0.6 · 0.3 · (1200 − 40) − 0.4 · 40 − 5
    assert decision.expected_profit == pytest.approx(187.8)
    assert decision.to_dict()["best_action"]["feature"] == "Contract"


def test_a_customer_not_worth_contacting_gets_no_action(customer):
    # 0.1 · 0.3 · (1200 − 40) − 0.9 · 40 − 5 = −6.2: a loss even with an offer that keeps every taker
    decision = retention.decide(customer, 0.1, [_action("Contract", "Two year", 0.1, 0.05)], ECONOMICS)
    assert not decision.contact and decision.action is None and decision.action_profit is None
    assert decision.expected_profit == pytest.approx(34.8 - 36 - 5)


def test_the_contact_rule_is_the_expected_profit_even_when_the_actions_are_weak(customer):
    # p = 0.25: the rule's 87 − 30 − 5 = 52 > 0 decides the contact (as in `churn predict`); the weak
    # two-year what-if (0.25 → 0.2) is still the best action, at its own 18 − 33 − 5 = −20
    decision = retention.decide(customer, 0.25, [_action("Contract", "Two year", 0.25, 0.2)], ECONOMICS)
    assert decision.contact and decision.action.feature == "Contract"
    assert decision.expected_profit == pytest.approx(52.0)
    assert decision.action_profit == pytest.approx(-20.0)


def test_without_actions_a_worthwhile_customer_gets_the_standard_offer(customer):
    decision = retention.decide(customer, 0.6, [], ECONOMICS)
    assert decision.contact and decision.action is None and decision.action_profit is None
    assert decision.expected_profit == pytest.approx(187.8)


def test_decide_frame_is_actions_and_decide_for_every_customer(serving_models, real_raw):
    """The batch path (every customer's what-ifs scored in one call) decides as the one-customer path
    (`actions` + `decide`, the Predict tab's and `churn explain`'s) on 150 real customers."""
    pipe = serving_models["challenger"]
    settings = retention.RetentionSettings()
    customers = real_raw.sample(n=150, random_state=3)[list(schema.FEATURES)].astype(str)
    proba = pipe.predict_proba(customers)[:, 1]
    calls = []

    def score(X: pd.DataFrame):
        calls.append(len(X))
        return pipe.predict_proba(X)[:, 1]

    frame = retention.decide_frame(customers, proba, score, settings, ECONOMICS)
    assert len(calls) == 1 and 0 < frame["contact"].sum() < len(customers)  # one call, some contacted
    assert (frame["best_action"] != "").sum() > 0.5 * frame["contact"].sum()
    for (_, row), (_, got) in zip(customers.iterrows(), frame.iterrows(), strict=True):
        record = row.to_dict()
        p = float(pipe.predict_proba(pd.DataFrame([record]))[0, 1])
        decision = retention.decide(record, p, retention.actions(pipe, record, settings), ECONOMICS)
        assert bool(got["contact"]) == decision.contact
        assert got["expected_profit"] == pytest.approx(decision.expected_profit, abs=1e-9)
        if decision.action is None:
            assert got["best_action"] == "" and pd.isna(got["action_profit"])
        else:
            assert got["best_action"] == decision.action.description
            assert got["action_profit"] == pytest.approx(decision.action_profit, abs=1e-9)


def test_decide_frame_without_actions_or_contacts(serving_models, synthetic_raw):
    customers = synthetic_raw.head(50)[list(schema.FEATURES)]
    proba = serving_models["champion"].predict_proba(customers)[:, 1]
    frame = retention.decide_frame(customers, proba, None, retention.RetentionSettings(), ECONOMICS)
    assert frame["contact"].any() and (frame["best_action"] == "").all()
    high = retention.decide_frame(customers, proba, None, retention.RetentionSettings(), ECONOMICS, floor=1e9)
    assert not high["contact"].any()
    assert list(high["expected_profit"]) == list(frame["expected_profit"])
