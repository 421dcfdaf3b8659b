"""Validation gates, the approval verdict for the challenger, and the model card."""

from __future__ import annotations

import math
from typing import Any

from threadpoolctl import threadpool_limits

from churn.data import DataError
from churn.metrics import HEADLINE

PASS, FAIL, INSUFFICIENT = "pass", "fail", "insufficient_data"
RULES = {"<=": "at most", ">=": "at least"}
CANDIDATE, PRODUCTION = "challenger", "champion"
MODELS = (PRODUCTION, CANDIDATE)


def probabilities(models: dict[str, Any], X: Any) -> dict[str, Any]:
    """Churn probability of every row under each model (one thread: faster on small batches)."""
    with threadpool_limits(1):
        return {name: model.predict_proba(X)[:, 1] for name, model in models.items()}


def require(obj: Any, keys: list[str] | tuple[str, ...], source: Any) -> dict[str, Any]:
    """`obj` if it is a mapping holding every dotted key; else DataError naming the file and key."""
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


# -- model card -----------------------------------------------------------------------------------


def _f(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _ci(interval: dict[str, float] | None) -> str:
    if not interval:
        return "—"
    return f"{_f(interval.get('low'))} – {_f(interval.get('high'))}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _spec_text(spec: dict[str, Any]) -> str:
    hp = ", ".join(f"{k}={v}" for k, v in sorted((spec.get("params") or {}).items())) or "defaults"
    return f"`{spec.get('estimator')}` ({hp})"


def model_card(ctx: dict[str, Any]) -> str:
    """Markdown model card of the challenger, with the champion alongside.

    `ctx` holds: registered_model, specs, data (metrics/data.json), evaluate, cv (per model),
    fairness, robustness, ab_test, validation (the verdict) and lineage ({path: md5}).
    Deterministic: no dates, run ids or commits (those go into the MLflow copy).
    """
    v, ab, specs = ctx["validation"], ctx["ab_test"], ctx["specs"]
    names = (PRODUCTION, CANDIDATE)
    boot = ab["bootstrap"]
    verdict_text = "APPROVED" if v["approved"] else "NOT APPROVED"
    counts = v["counts"]
    data_ = ctx["data"]
    synthetic = "synthetic" in data_["input"]["path"]
    out = [
        f"# Model card: {ctx['registered_model']} — challenger",
        "",
        f"**Verdict: {verdict_text}** — {counts[PASS]} gates passed, {counts[FAIL]} failed, "
        f"{counts[INSUFFICIENT]} with insufficient data. "
        f"**A/B recommendation: `{ab['recommendation']}`** — {'; '.join(ab['reasons'])}.",
        "",
        "## Intended use",
        "",
        "Scores subscription (telecom) customers by their probability of churning, so a retention team "
        "can decide whom to contact first and with what offer. Input: the 19 customer columns of the "
        "IBM Telco schema; output: a churn probability, and a churner flag at threshold "
        f"{_f(ab['threshold'], 2)}. Not intended for pricing, credit or any decision that denies a customer "
        "a service, nor for customers outside the population it was trained on.",
        "",
        "## Models",
        "",
        *_table(
            ["", "champion (production)", "challenger (candidate)"],
            [["spec", *[_spec_text(specs[n]) for n in names]]],
        ),
        "## Data",
        "",
        f"- Input: `{data_['input']['path']}` (md5 `{data_['input']['md5']}`)"
        + (" — synthetic customers generated from a seed, not real people." if synthetic else "."),
        f"- Rows: {data_['rows']['total']} ({data_['rows']['train']} train, {data_['rows']['test']} test, "
        f"stratified); churn rate {_f(data_['churn_rate']['total'], 3)}; "
        f"{data_['rows']['fixed']} blank TotalCharges set to 0 (tenure 0).",
        "",
        f"## Performance (test set, n = {ab['n']}, {boot['confidence']:.0%} bootstrap CIs, "
        f"{boot['resamples']} resamples)",
        "",
    ]
    mins = {k.split(".", 1)[1]: g for k, g in v["gates"].items() if k.startswith("performance.")}
    rows = []
    for m in HEADLINE:
        rows.append(
            [
                m,
                _f(boot[PRODUCTION][m]["estimate"]),
                _ci(boot[PRODUCTION][m]),
                _f(boot[CANDIDATE][m]["estimate"]),
                _ci(boot[CANDIDATE][m]),
                _f(ctx["cv"][CANDIDATE].get(m, {}).get("mean"))
                + " ± "
                + _f(ctx["cv"][CANDIDATE].get(m, {}).get("std")),
                _f(mins[m]["threshold"], 2),
                mins[m]["status"],
            ]
        )
    out += _table(
        ["metric", "champion", "CI", "challenger", "CI", "challenger CV (mean ± std)", "minimum", "gate"],
        rows,
    )
    out += _fairness_section(ctx["fairness"][CANDIDATE], v)
    out += _robustness_section(ctx["robustness"], v)
    out += _ab_section(ab)
    out += ["## Every gate (challenger)", ""]
    out += _table(
        ["gate", "value", "rule", "threshold", "status"],
        [
            [k, _f(g["value"]), g["rule"], _f(g["threshold"], 4), g["status"]]
            for k, g in sorted(v["gates"].items())
        ],
    )
    out += [
        "## Limitations",
        "",
        *(
            [
                "- Trained and tested on synthetic customers: the figures show the pipeline works, not how the "
                "model does on real customers. Point `data.raw` at real data before trusting them."
            ]
            if synthetic
            else []
        ),
        f"- One held-out split of {ab['n']} customers: small groups (see the fairness CIs) are measured loosely.",
        "- Fairness covers only the attributes in the data (gender, senior citizen, partner, dependents); "
        "selection-rate gaps partly reflect real differences in churn rates between groups.",
        "- Robustness perturbations are synthetic (noise, flipped categories, blanks); they do not cover "
        "changes in customer behaviour over time — the app's drift monitoring watches for that.",
        f"- A fixed decision threshold ({_f(ab['threshold'], 2)}); the retention budget may call for another.",
        "",
        "## Lineage",
        "",
        "Hashes of the inputs, as `dvc.lock` records them (md5 of the file):",
        "",
        *_table(["input", "md5"], [[f"`{p}`", f"`{h}`"] for p, h in sorted(ctx["lineage"].items())]),
        "The git commit is not written here, so that `dvc repro` rebuilds this file byte for byte; the "
        "copy of this card logged with each model's MLflow run ends with the commit it was built from "
        "(also the run's `git_commit` tag).",
        "",
    ]
    return "\n".join(out)


def _fairness_section(fair: dict[str, Any], v: dict[str, Any]) -> list[str]:
    out = ["## Fairness (challenger)", ""]
    rows = []
    for attr, rep in fair["attributes"].items():
        for level, g in rep["groups"].items():
            rows.append(
                [
                    attr,
                    level,
                    g["count"],
                    _f(g["base_rate"], 3),
                    f"{_f(g['accuracy'], 3)} ({_ci(g['ci']['accuracy'])})",
                    _f(g["selection_rate"], 3),
                    _f(g["tpr"], 3),
                    _f(g["fpr"], 3),
                ]
            )
    out += _table(
        ["attribute", "group", "n", "churn rate", "accuracy (CI)", "selection rate", "TPR", "FPR"], rows
    )
    rows = []
    for attr, rep in fair["attributes"].items():
        statuses = ", ".join(
            f"{k.split('.', 2)[2]}: {g['status']}"
            for k, g in sorted(v["gates"].items())
            if k.startswith(f"fairness.{attr}.")
        )
        rows.append(
            [
                attr,
                f"{_f(rep['accuracy_gap'])} ({_ci(rep['accuracy_gap_ci'])})",
                _f(rep["demographic_parity_difference"]),
                _f(rep["demographic_parity_ratio"]),
                _f(rep["equalized_odds_difference"]),
                statuses or "—",
            ]
        )
    out += _table(
        ["attribute", "accuracy gap (CI)", "DP difference", "DP ratio", "EO difference", "gates"], rows
    )
    return out


def _robustness_section(rob: dict[str, Any], v: dict[str, Any]) -> list[str]:
    out = ["## Robustness (drop from the clean test set; positive = worse)", ""]
    rows = []
    for kind, by_level in rob[CANDIDATE]["perturbations"].items():
        for level in by_level:
            cells = []
            for name in (PRODUCTION, CANDIDATE):
                e = rob[name]["perturbations"][kind][level]
                cells += (
                    ["error", "error"] if "error" in e else [_f(e["accuracy_drop"]), _f(e["roc_auc_drop"])]
                )
            rows.append([kind, level, *cells])
    out += _table(
        [
            "perturbation",
            "level",
            "champion Δaccuracy",
            "champion ΔROC-AUC",
            "challenger Δaccuracy",
            "challenger ΔROC-AUC",
        ],
        rows,
    )
    return out


def _ab_section(ab: dict[str, Any]) -> list[str]:
    c, mc, d = ab["contingency"], ab["mcnemar"], ab["bootstrap"]["difference"]
    out = ["## A/B test: challenger vs champion on the same customers", ""]
    out += _table(
        ["", "challenger correct", "challenger wrong"],
        [
            [
                "champion correct",
                c["champion_correct"]["challenger_correct"],
                c["champion_correct"]["challenger_wrong"],
            ],
            [
                "champion wrong",
                c["champion_wrong"]["challenger_correct"],
                c["champion_wrong"]["challenger_wrong"],
            ],
        ],
    )
    out += [
        f"- McNemar's test: {mc['method']}; statistic {_f(mc['statistic'])}, p = {mc['p_value']:.4g} "
        f"(alpha {ab['alpha']:g}).",
        f"- Accuracy difference (challenger − champion): {_f(d['accuracy']['estimate'])} "
        f"(CI {_ci(d['accuracy'])}); ROC-AUC difference: {_f(d['roc_auc']['estimate'])} (CI {_ci(d['roc_auc'])}).",
        f"- Recommendation: **{ab['recommendation']}** — " + "; ".join(ab["reasons"]) + ".",
        "",
    ]
    return out


def card_with_commit(card: str, commit: str) -> str:
    """The card as logged to MLflow: the DVC copy plus the git commit it was built from."""
    return card.rstrip("\n") + f"\n\nGit commit of this build: `{commit}`\n"
