"""Retention actions: re-scored what-ifs a retention team can offer, and their settings."""

from __future__ import annotations

import pandas as pd
import pytest

from churn import retention, schema
from churn.params import ParamsError
from churn.settings import DEMOGRAPHICS, HISTORY


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
