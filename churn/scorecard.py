"""The scorecard: the few figures DVC declares as metrics, one small file per stage that owns them.

`dvc metrics show`, `dvc metrics diff` and `dvc exp show` read only `metrics/scorecard/`. Each stage
also writes its detailed results (all test metrics, per-group fairness, robustness levels, bootstrap
intervals, every gate) as plain git-tracked outputs that the report, the app and the PR comment read.

Keys are unique across files (`challenger.roc_auc`, not `roc_auc` in two files), so DVC names each
column by its key alone rather than `<path>:<key>`. The set is small on purpose: `dvc exp show`
places the parameter columns right of the metrics and hides them first when the table is too wide
for the terminal. With a 41-character parameter name such as
`models.challenger.params.min_samples_leaf`, about 70 characters are left in a 160-column terminal:
the model's two ROC-AUCs (43), plus `recommendation` and `approved` when the experiment changes
them. Each extra figure an experiment changes would cost about 20 characters. The A/B difference is
`challenger.roc_auc - champion.roc_auc` (same customers); its confidence interval, the McNemar test
and the gate counts are in `metrics/ab_test.json` and `metrics/validation.json`.
"""

from __future__ import annotations

from typing import Any

#: Test-set metrics of each model in the scorecard. ROC-AUC ranks customers regardless of the
#: threshold and selects models (CV). All eight test metrics are in `metrics/evaluate/<model>.json`.
TEST_METRICS = ("roc_auc",)


def train(name: str, report: dict[str, Any]) -> dict[str, Any]:
    """`{name: {"cv": {"roc_auc": mean}}}` from a `metrics/train/<name>.json` report (None without CV)."""
    return {name: {"cv": {"roc_auc": report.get("cv", {}).get("roc_auc", {}).get("mean")}}}


def evaluate(name: str, scores: dict[str, Any]) -> dict[str, Any]:
    """`{name: {metric: value}}` for the scorecard's test metrics, from `metrics/evaluate/<name>.json`."""
    return {name: {m: scores[m] for m in TEST_METRICS}}


def ab_test(result: dict[str, Any]) -> dict[str, Any]:
    """The A/B recommendation (`promote`, `keep_champion`, `inconclusive`) from `metrics/ab_test.json`."""
    return {"recommendation": result["recommendation"]}


def validation(verdict: dict[str, Any]) -> dict[str, Any]:
    """Whether the challenger is approved (every gate passed), from `metrics/validation.json`."""
    return {"approved": verdict["approved"]}
