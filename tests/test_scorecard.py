"""The scorecard: the few figures DVC declares as metrics, rebuilt from the detailed outputs."""

from __future__ import annotations

from pathlib import Path

from churn import scorecard
from churn.io import load_json

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "metrics"


def test_committed_scorecards_are_the_scorecard_of_the_committed_details():
    for name in ("champion", "challenger"):
        train = load_json(METRICS / f"train/{name}.json")
        assert load_json(METRICS / f"scorecard/train/{name}.json") == scorecard.train(name, train)
        scores = load_json(METRICS / f"evaluate/{name}.json")
        assert load_json(METRICS / f"scorecard/evaluate/{name}.json") == scorecard.evaluate(name, scores)
    ab = load_json(METRICS / "ab_test.json")
    assert load_json(METRICS / "scorecard/ab_test.json") == scorecard.ab_test(ab)
    assert load_json(METRICS / "scorecard/validation.json") == scorecard.validation(
        load_json(METRICS / "validation.json")
    )


def test_keys_are_unique_across_scorecard_files():
    leaves: list[str] = []

    def walk(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                leaves.append(prefix + key)

    for path in sorted((METRICS / "scorecard").rglob("*.json")):
        walk(load_json(path))
    assert len(leaves) == len(set(leaves)), leaves
    assert len(leaves) <= 8  # `dvc exp show` stays readable (see the module docstring)


def test_train_without_cross_validation_reports_none():
    assert scorecard.train("challenger", {"n_rows": 10}) == {"challenger": {"cv": {"roc_auc": None}}}
    assert scorecard.evaluate("champion", {"roc_auc": 0.8, "accuracy": 0.7}) == {"champion": {"roc_auc": 0.8}}
