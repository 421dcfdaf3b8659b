"""The model card: a Markdown account of the challenger, with the champion alongside."""

from __future__ import annotations

from typing import Any

from churn.economics import money
from churn.markdown import interval, number, table
from churn.metrics import HEADLINE
from churn.validation import (
    CANDIDATE,
    FAIL,
    INSUFFICIENT,
    PASS,
    PRODUCTION,
    ab_phrase,
    decision_phrase,
    gates_phrase,
)


def _block(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A table and the blank line after it."""
    return [*table(header, rows), ""]


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
    counts = v["counts"]
    data_ = ctx["data"]
    synthetic = "synthetic" in data_["input"]["path"]
    out = [
        f"# Model card: {ctx['registered_model']} — challenger",
        "",
        f"**Verdict: {decision_phrase(v['approved'], ab['recommendation'])}** — "
        f"{gates_phrase(v['approved'], counts[FAIL])}: {counts[PASS]} gates passed, {counts[FAIL]} failed, "
        f"{counts[INSUFFICIENT]} with insufficient data. "
        f"**{ab_phrase(ab['recommendation'])}** (`{ab['recommendation']}`) — {'; '.join(ab['reasons'])}.",
        "",
        "## Intended use",
        "",
        "Scores subscription (telecom) customers by their probability of churning, so a retention team "
        "can decide whom to contact first and with what offer. Input: the 19 customer columns of the "
        "IBM Telco schema; output: a churn probability, and a churner flag at threshold "
        f"{number(ab['threshold'], 2)}. Not intended for pricing, credit or any decision that denies a customer "
        "a service, nor for customers outside the population it was trained on.",
        "",
        "## Models",
        "",
        *_block(
            ["", "champion (production)", "challenger (candidate)"],
            [["spec", *[_spec_text(specs[n]) for n in names]]],
        ),
        "## Data",
        "",
        f"- Input: `{data_['input']['path']}` (md5 `{data_['input']['md5']}`)"
        + (" — synthetic customers generated from a seed, not real people." if synthetic else "."),
        f"- Rows: {data_['rows']['total']} ({data_['rows']['train']} train, {data_['rows']['test']} test, "
        f"stratified); churn rate {number(data_['churn_rate']['total'], 3)}; "
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
                number(boot[PRODUCTION][m]["estimate"]),
                interval(boot[PRODUCTION][m]),
                number(boot[CANDIDATE][m]["estimate"]),
                interval(boot[CANDIDATE][m]),
                number(ctx["cv"][CANDIDATE].get(m, {}).get("mean"))
                + " ± "
                + number(ctx["cv"][CANDIDATE].get(m, {}).get("std")),
                number(mins[m]["threshold"], 2),
                mins[m]["status"],
            ]
        )
    out += _block(
        ["metric", "champion", "CI", "challenger", "CI", "challenger CV (mean ± std)", "minimum", "gate"],
        rows,
    )
    out += _money_section({n: ctx["evaluate"][n].get("economics") for n in names}, ab)
    out += _fairness_section(ctx["fairness"][CANDIDATE], v)
    out += _robustness_section(ctx["robustness"], v)
    out += _ab_section(ab)
    out += ["## Every gate (challenger)", ""]
    out += _block(
        ["gate", "value", "rule", "threshold", "status"],
        [
            [k, number(g["value"]), g["rule"], number(g["threshold"], 4), g["status"]]
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
        f"- A fixed decision threshold ({number(ab['threshold'], 2)}); the retention budget may call for another.",
        "",
        "## Lineage",
        "",
        "Hashes of the inputs, as `dvc.lock` records them (md5 of the file):",
        "",
        *_block(["input", "md5"], [[f"`{p}`", f"`{h}`"] for p, h in sorted(ctx["lineage"].items())]),
        "The git commit is not written here, so that `dvc repro` rebuilds this file byte for byte; the "
        "copy of this card logged with each model's MLflow run ends with the commit it was built from "
        "(also the run's `git_commit` tag).",
        "",
    ]
    return "\n".join(out)


#: The campaigns of `churn.economics.campaigns`, in words.
_CAMPAIGN_TEXT = {
    "decision_rule": "contact when the expected profit is positive",
    "contact_all": "contact everyone",
    "threshold": "contact at the churn threshold ({threshold})",
}


def _money_section(figures: dict[str, dict[str, Any] | None], ab: dict[str, Any]) -> list[str]:
    """EMPC, MPC, maximum profit and the realised profit of three campaigns (metrics/evaluate's `economics`)."""
    if not all(figures.values()):
        return []
    champion, challenger = figures[PRODUCTION], figures[CANDIDATE]
    boot = ab["bootstrap"]

    def row(label: str, key: str, digits: int, cis: tuple[str, str] = ("", "")) -> list[str]:
        return [label, number(champion[key], digits), cis[0], number(challenger[key], digits), cis[1]]

    rows = [
        row(
            "EMPC",
            "empc",
            2,
            (interval(boot[PRODUCTION].get("empc"), 2), interval(boot[CANDIDATE].get("empc"), 2)),
        ),
        row("EMPC: expected share contacted", "empc_contacted_fraction", 3),
        row("MPC (one CLV, γ at its mean)", "mpc", 2),
        row("maximum profit MP (each customer's CLV, γ at its mean)", "mp", 2),
        row("MP: share contacted", "mp_contacted_fraction", 3),
    ]
    campaigns = [
        [
            text.format(threshold=number(ab["threshold"], 2)),
            *[
                f"{money(m['campaigns'][name]['profit'])} ({m['campaigns'][name]['contacted']:,} contacted)"
                for m in (champion, challenger)
            ],
        ]
        for name, text in _CAMPAIGN_TEXT.items()
    ]
    return [
        "## Money (test set; params.yaml `economics`, assumptions the retention team sets)",
        "",
        f"Per customer, relative to contacting nobody; mean customer lifetime value "
        f"{number(challenger['clv_mean'], 2)}, acceptance rate of a contacted churner "
        f"{number(challenger['acceptance_rate'], 2)} on average (churn.economics defines each figure).",
        "",
        *_block(["figure", "champion", "CI", "challenger", "CI"], rows),
        "Realised profit of each campaign on the test customers (their true outcomes; offers accepted "
        "at the mean rate):",
        "",
        *_block(["campaign", "champion", "challenger"], campaigns),
    ]


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
                    number(g["base_rate"], 3),
                    f"{number(g['accuracy'], 3)} ({interval(g['ci']['accuracy'])})",
                    number(g["selection_rate"], 3),
                    number(g["tpr"], 3),
                    number(g["fpr"], 3),
                ]
            )
    out += _block(
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
                f"{number(rep['accuracy_gap'])} ({interval(rep['accuracy_gap_ci'])})",
                number(rep["demographic_parity_difference"]),
                number(rep["demographic_parity_ratio"]),
                number(rep["equalized_odds_difference"]),
                statuses or "—",
            ]
        )
    out += _block(
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
                    ["error", "error"]
                    if "error" in e
                    else [number(e["accuracy_drop"]), number(e["roc_auc_drop"])]
                )
            rows.append([kind, level, *cells])
    out += _block(
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
    out += _block(
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
        f"- McNemar's test: {mc['method']}; statistic {number(mc['statistic'])}, p = {mc['p_value']:.4g} "
        f"(alpha {ab['alpha']:g}).",
        f"- Accuracy difference (challenger − champion): {number(d['accuracy']['estimate'])} "
        f"(CI {interval(d['accuracy'])}); ROC-AUC difference: {number(d['roc_auc']['estimate'])} (CI {interval(d['roc_auc'])}).",
        *(
            [
                f"- EMPC difference: {number(d['empc']['estimate'], 2)} per customer (CI {interval(d['empc'], 2)})."
            ]
            if "empc" in d
            else []
        ),
        f"- Recommendation: **{ab_phrase(ab['recommendation'])}** (`{ab['recommendation']}`) — "
        + "; ".join(ab["reasons"])
        + ".",
        "",
    ]
    return out


def card_with_commit(card: str, commit: str) -> str:
    """The card as logged to MLflow: the DVC copy plus the git commit it was built from."""
    return card.rstrip("\n") + f"\n\nGit commit of this build: `{commit}`\n"
