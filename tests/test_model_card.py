"""The model card is a pure function of the pipeline's metrics files."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from churn import model_card, validation
from churn.io import load_json
from churn.validation import MODELS

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "metrics"


@pytest.fixture(scope="module")
def ctx() -> dict:
    """The card's inputs as the report stage reads them, from the committed metrics files."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    validation = load_json(METRICS / "validation.json")
    return {
        "registered_model": params["mlflow"]["registered_model"],
        "specs": {n: params["models"][n] for n in MODELS},
        "data": load_json(METRICS / "data.json"),
        "evaluate": {n: load_json(METRICS / f"evaluate/{n}.json") for n in MODELS},
        "cv": {n: load_json(METRICS / f"train/{n}.json").get("cv", {}) for n in MODELS},
        "fairness": load_json(METRICS / "fairness.json"),
        "robustness": load_json(METRICS / "robustness.json"),
        "ab_test": load_json(METRICS / "ab_test.json"),
        "validation": validation,
        "lineage": validation["lineage"],
    }


def test_card_rebuilds_the_committed_card_byte_for_byte(ctx):
    assert model_card.model_card(ctx) == (METRICS / "model_card.md").read_text()


def test_verdict_counts_and_every_gate_are_on_the_card(ctx):
    card = model_card.model_card(ctx)
    counts = ctx["validation"]["counts"]
    gates = validation.gates_phrase(ctx["validation"]["approved"], counts["fail"])
    assert f"{gates}: {counts['pass']} gates passed, {counts['fail']} failed" in card
    assert f"**{validation.ab_phrase(ctx['ab_test']['recommendation'])}**" in card
    for gate in ctx["validation"]["gates"]:
        assert f"| {gate} |" in card


def test_a_failed_verdict_and_real_data_change_the_wording(ctx):
    failed = copy.deepcopy(ctx)
    failed["validation"]["approved"] = False
    failed["data"]["input"]["path"] = "data/raw/telco-customer-churn.csv"
    card = model_card.model_card(failed)
    assert "**Verdict: ✗ Keep the champion** — Not approved: fails 0 gates" in card  # same words as the app
    assert "Trained and tested on synthetic customers" not in card
    assert "synthetic customers generated from a seed" not in card
    synthetic = model_card.model_card(ctx)
    assert "Trained and tested on synthetic customers" in synthetic


def test_a_perturbation_that_broke_a_model_reads_error(ctx):
    broken = copy.deepcopy(ctx)
    kind = next(iter(broken["robustness"]["champion"]["perturbations"]))
    level = next(iter(broken["robustness"]["champion"]["perturbations"][kind]))
    broken["robustness"]["champion"]["perturbations"][kind][level] = {"error": "ValueError: boom"}
    row = next(
        line
        for line in model_card.model_card(broken).splitlines()
        if line.startswith(f"| {kind} | {level} |")
    )
    assert row.split(" | ")[2:4] == ["error", "error"]


def test_card_with_commit_appends_the_commit_once():
    card = model_card.card_with_commit("# Card\n\n", "abc123")
    assert card == "# Card\n\nGit commit of this build: `abc123`\n"


def test_money_table_shows_each_model_and_campaign(ctx):
    money = copy.deepcopy(ctx)
    for i, name in enumerate(MODELS):
        money["evaluate"][name]["economics"] = {
            "acceptance_rate": 0.3,
            "clv_mean": 786.77,
            "empc": 39.1 + i,
            "empc_contacted_fraction": 0.51,
            "mpc": 38.8 + i,
            "mp": 48.9 + i,
            "mp_contacted_fraction": 0.52,
            "campaigns": {
                "contact_all": {"contacted": 1409, "profit": 49223.35},
                "decision_rule": {"contacted": 707 + i, "profit": 70051.03 + i},
                "threshold": {"contacted": 298, "profit": 45520.99},
            },
        }
    money["ab_test"]["bootstrap"]["difference"]["empc"] = {"estimate": 1.0, "low": -0.25, "high": 2.5}
    card = model_card.model_card(money)
    assert "## Money (test set; params.yaml `economics`" in card
    assert (
        "| EMPC | 39.10 |" in card
        and "| maximum profit MP (each customer's CLV, γ at its mean) | 48.90 |" in card
    )
    assert (
        "| contact when the expected profit is positive | $70,051 (707 contacted) | $70,052 (708 contacted) |"
        in card
    )
    assert "- EMPC difference: 1.00 per customer (CI -0.25 – 2.50)." in card
    assert "## Money" not in model_card.model_card({**ctx, "evaluate": {n: {} for n in MODELS}})
