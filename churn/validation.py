"""Validation gates and the approval verdict for the challenger (the model card is in `model_card`)."""

from __future__ import annotations

import math
from typing import Any

from threadpoolctl import threadpool_limits

from churn.metrics import HEADLINE

PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient_data"
RULES = {"<=": "at most", ">=": "at least"}
CANDIDATE, PRODUCTION = "challenger", "champion"
MODELS = (PRODUCTION, CANDIDATE)
#: The A/B test's recommendations (churn.abtest.recommend), as stored in metrics/ab_test.json.
PROMOTE, KEEP, INCONCLUSIVE = "promote", "keep_champion", "inconclusive"


def probabilities(models: dict[str, Any], X: Any) -> dict[str, Any]:
    """Churn probability of every row under each model (one thread: faster on small batches)."""
    with threadpool_limits(1):
        return {name: model.predict_proba(X)[:, 1] for name, model in models.items()}


def require(obj: Any, keys: list[str] | tuple[str, ...], source: Any) -> dict[str, Any]:
    """`obj` if it is a mapping holding every dotted key; else DataError naming the file and key."""
    from churn.data import DataError

    for key in keys:
        node = obj
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise DataError(f"{source}: key '{key}' is missing (rebuild it with `dvc repro`)")
            node = node[part]
    return obj


def require_results(obj: Any, source: Any) -> dict[str, Any]:
    """A per-model results file (fairness.json, robustness.json): each model with its gates."""
    return require(obj, [f"{m}.gates" for m in MODELS], source)


# -- gates ----------------------------------------------------------------------------------------


def gate(
    value: float | None, threshold: float, rule: str, *, status: str | None = None, note: str = ""
) -> dict[str, Any]:
    """One gate: `value <= threshold` (rule '<=') or `>=`; no value (the check crashed) fails.

    `status` overrides the comparison, e.g. INSUFFICIENT when a group is too small to judge.
    `passed` is True/False, or None for insufficient data (neither a pass nor a failure).
    """
    if rule not in RULES:
        raise ValueError(f"gate rule must be one of {sorted(RULES)}, got {rule!r}")
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if status is None:
        if missing:
            status, note = FAIL, note or "no value: the check could not run"
        else:
            status = PASS if (value <= threshold if rule == "<=" else value >= threshold) else FAIL
    out = {
        "value": None if missing else float(value),
        "threshold": float(threshold),
        "rule": rule,
        "status": status,
        "passed": {PASS: True, FAIL: False}.get(status),
    }
    if note:
        out["note"] = note
    return out


def all_passed(gates: dict[str, dict[str, Any]]) -> bool:
    """True when no gate failed (insufficient data is not a failure)."""
    return not any(g["status"] == FAIL for g in gates.values())


def performance_gates(scores: dict[str, Any], minimums: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The five headline test metrics against their minimums."""
    return {f"performance.{m}": gate(scores.get(m), minimums[m], ">=") for m in HEADLINE}


def model_gates(
    name: str,
    scores: dict[str, Any],
    fairness: dict[str, Any],
    robustness: dict[str, Any],
    minimums: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """Every non-A/B gate of one model: performance, fairness and robustness, by dotted name."""
    gates = performance_gates(scores, minimums)
    for area, results in (("fairness", fairness), ("robustness", robustness)):
        gates.update({f"{area}.{k}": g for k, g in results[name]["gates"].items()})
    return gates


def failed(gates: dict[str, dict[str, Any]]) -> list[str]:
    """Names of the failed gates, sorted."""
    return sorted(k for k, g in gates.items() if g["status"] == FAIL)


def verdict(
    evaluate: dict[str, dict[str, Any]],
    fairness: dict[str, Any],
    robustness: dict[str, Any],
    ab_test: dict[str, Any],
    minimums: dict[str, float],
) -> dict[str, Any]:
    """`metrics/validation.json`: every gate of the challenger (and the champion, for reference).

    The challenger is approved when none of its gates fails, the A/B gates included.
    """
    gates = model_gates(CANDIDATE, evaluate[CANDIDATE], fairness, robustness, minimums)
    gates.update({f"ab_test.{k}": g for k, g in ab_test["gates"].items()})
    champion = model_gates(PRODUCTION, evaluate[PRODUCTION], fairness, robustness, minimums)
    return {
        "model": CANDIDATE,
        "approved": all_passed(gates),
        "failed": failed(gates),
        "insufficient_data": sorted(k for k, g in gates.items() if g["status"] == INSUFFICIENT),
        "gates": gates,
        "counts": _counts(gates),
        "recommendation": ab_test["recommendation"],
        PRODUCTION: {"passed": all_passed(champion), "failed": failed(champion), "gates": champion},
    }


def _counts(gates: dict[str, dict[str, Any]]) -> dict[str, int]:
    return {s: sum(g["status"] == s for g in gates.values()) for s in (PASS, FAIL, INSUFFICIENT)}


def describe(name: str, g: dict[str, Any]) -> str:
    """One line for a gate: 'fairness.gender.accuracy_gap: 0.1234, must be at most 0.1 (fail)'."""
    value = "no value" if g["value"] is None else f"{g['value']:.4g}"
    text = f"{name}: {value}, must be {RULES[g['rule']]} {g['threshold']:g} ({g['status']})"
    return f"{text} — {g['note']}" if g.get("note") else text


def failure_lines(validation: dict[str, Any]) -> list[str]:
    """One line per failed gate of a validation report (what `churn gate` prints)."""
    gates = validation.get("gates")
    if not isinstance(gates, dict) or "approved" not in validation:
        raise ValueError("validation report must have 'approved' and 'gates' (rebuild it with `dvc repro`)")
    return [describe(k, gates[k]) for k in sorted(gates) if gates[k].get("status") == FAIL]


# -- one vocabulary for verdicts: the app's A/B and Validation tabs, the model card, the PR report ----


def gates_phrase(approved: bool | None, n_failed: int = 0) -> str:
    """The gates' verdict in words; `approved=None` when a model's gates are unknown (never "passed")."""
    if approved is None:
        return "Gates not checked"
    if approved:
        return "Approved by the gates"
    return f"Not approved: fails {n_failed} gate{'s' if n_failed != 1 else ''}"


def ab_phrase(recommendation: str | None, new: str = "the challenger", old: str = "the champion") -> str:
    """The A/B recommendation in words, e.g. "A/B: no significant difference — keep the champion"."""
    words = {
        PROMOTE: f"significantly better — promote {new}",
        KEEP: f"keep {old} ({new} is worse or fails a gate)",
        INCONCLUSIVE: f"no significant difference — keep {old}",
    }
    return f"A/B: {words.get(recommendation or '', f'no recommendation — keep {old}')}"


def ready_to_promote(approved: bool | None, recommendation: str | None) -> bool:
    """Promote only when every gate passed and the A/B test recommends it (what `churn promote` demands)."""
    return approved is True and recommendation == PROMOTE


def decision_phrase(
    approved: bool | None, recommendation: str | None, new: str = "the challenger", old: str = "the champion"
) -> str:
    """What to do, from both verdicts: "✓ Promote the challenger", "✗ Keep the champion", or, when the
    A/B test favours a model whose gates are unknown, "? Check the gates of … before promoting it"."""
    if ready_to_promote(approved, recommendation):
        return f"✓ Promote {new}"
    if approved is None and recommendation == PROMOTE:
        return f"? Check the gates of {new} before promoting it"
    return f"✗ Keep {old}"


def verdict_line(
    approved: bool | None,
    recommendation: str | None,
    n_failed: int = 0,
    new: str = "the challenger",
    old: str = "the champion",
) -> str:
    """Both verdicts on one line, e.g. "Approved by the gates · A/B: no significant difference — keep
    the champion"."""
    return f"{gates_phrase(approved, n_failed)} · {ab_phrase(recommendation, new, old)}"
