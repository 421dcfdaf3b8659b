"""Challenger vs champion on the same customers: McNemar (statsmodels), paired bootstrap, recommendation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.stats.contingency_tables import mcnemar

from churn import economics
from churn.metrics import HEADLINE
from churn.params import read
from churn.settings import AbTestSettings, BaseSettings, EconomicsSettings, EvaluateSettings
from churn.validation import FAIL, INCONCLUSIVE, KEEP, PROMOTE, gate, probabilities

log = logging.getLogger(__name__)

#: McNemar uses the exact binomial test below this many discordant pairs, chi-square from it on.
EXACT_BELOW = 25
__all__ = ["INCONCLUSIVE", "KEEP", "PROMOTE"]  # the recommendations, named in churn.validation


def contingency(y: np.ndarray, pred_champion: np.ndarray, pred_challenger: np.ndarray) -> np.ndarray:
    """2×2 counts: rows champion correct / wrong, columns challenger correct / wrong."""
    y = np.asarray(y)
    a = np.asarray(pred_champion) == y
    b = np.asarray(pred_challenger) == y
    return np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]], dtype=int)


def mcnemar_test(table: np.ndarray, exact_below: int = EXACT_BELOW) -> dict[str, Any]:
    """McNemar's test of a paired 2×2 table: exact binomial when discordant pairs < `exact_below`,
    else chi-square with 1 df and Edwards' continuity correction."""
    table = np.asarray(table)
    discordant = int(table[0, 1] + table[1, 0])
    exact = discordant < exact_below
    result = mcnemar(table, exact=exact, correction=True)
    method = (
        f"exact binomial (discordant pairs {discordant} < {exact_below})"
        if exact
        else f"chi-square, 1 df, continuity-corrected (discordant pairs {discordant} >= {exact_below})"
    )
    return {
        "statistic": float(result.statistic),
        "p_value": float(result.pvalue),
        "exact": exact,
        "discordant": discordant,
        "method": method,
    }


def resample_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) counts: how often each row appears in each bootstrap resample of n rows."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    flat = (idx + (np.arange(n_boot) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n).astype(float)


def weighted_auc(weights: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC of each row of `weights` (row counts), ties counted half — one pass, no loop."""
    order = np.argsort(score, kind="stable")
    s, yy, w = score[order], np.asarray(y)[order], weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    pos = np.add.reduceat(w * yy, starts, axis=1)
    neg = np.add.reduceat(w * (1 - yy), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (below + 0.5 * neg)).sum(1) / (pos.sum(1) * neg.sum(1))


def weighted_scores(
    weights: np.ndarray, y: np.ndarray, proba: np.ndarray, threshold: float
) -> dict[str, np.ndarray]:
    """The five headline metrics of every resample (rows of `weights`), vectorised."""
    y = np.asarray(y, dtype=bool)
    pred = np.asarray(proba) >= threshold
    tp, fp = weights @ (y & pred), weights @ (~y & pred)
    fn, tn = weights @ (y & ~pred), weights @ (~y & ~pred)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "accuracy": (tp + tn) / weights.sum(1),
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
        }
    out["roc_auc"] = weighted_auc(weights, y.astype(float), np.asarray(proba, dtype=float))
    return out


def _interval(samples: np.ndarray, estimate: float, confidence: float) -> dict[str, float]:
    tail = (1 - confidence) / 2
    finite = samples[np.isfinite(samples)]
    low, high = np.quantile(finite, [tail, 1 - tail]) if finite.size else (np.nan, np.nan)
    return {"estimate": float(estimate), "low": float(low), "high": float(high)}


def resampled_empc(
    weights: np.ndarray, y: np.ndarray, proba: np.ndarray, clv: np.ndarray, money: EconomicsSettings
) -> np.ndarray:
    """EMPC (churn.economics.empc) of each resample: row b of `weights` repeats customer i weights[b, i] times."""
    rows = np.arange(len(y))
    out = np.empty(len(weights))
    for b, counts in enumerate(weights.astype(int)):
        idx = np.repeat(rows, counts)
        out[b] = economics.empc(y[idx], proba[idx], clv[idx], money)
    return out


def paired_bootstrap(
    y: np.ndarray,
    probas: dict[str, np.ndarray],
    *,
    threshold: float,
    n_boot: int,
    seed: int,
    confidence: float,
    money: EconomicsSettings | None = None,
    clv: np.ndarray | None = None,
) -> dict[str, Any]:
    """Percentile CIs of each model's metrics and of challenger − champion, on the same resamples.

    With `money` and the customers' `clv`, EMPC is one more metric, on those same resamples.
    """
    y = np.asarray(y)
    weights = resample_counts(len(y), n_boot, seed)
    ones = np.ones((1, len(y)))
    samples = {name: weighted_scores(weights, y, p, threshold) for name, p in probas.items()}
    point = {name: weighted_scores(ones, y, p, threshold) for name, p in probas.items()}
    figures = HEADLINE
    if money is not None and clv is not None:
        figures = (*HEADLINE, "empc")
        for name, p in probas.items():
            samples[name]["empc"] = resampled_empc(weights, y, np.asarray(p, dtype=float), clv, money)
            point[name]["empc"] = np.array([economics.empc(y, p, clv, money)])
    out: dict[str, Any] = {"resamples": n_boot, "confidence": confidence}
    for name in probas:
        out[name] = {m: _interval(samples[name][m], point[name][m][0], confidence) for m in figures}
    out["difference"] = {
        m: _interval(
            samples["challenger"][m] - samples["champion"][m],
            point["challenger"][m][0] - point["champion"][m][0],
            confidence,
        )
        for m in figures
    }
    return out


def recommend(
    result: dict[str, Any], failed_gates: list[str] | None, pol: AbTestSettings
) -> tuple[str, list[str]]:
    """`promote`, `keep_champion` or `inconclusive`, with the reasons in words.

    `failed_gates` is None when the challenger's validation gates are unknown (a model the pipeline
    did not validate): then a `promote` says so instead of claiming the gates passed.

    Keep the champion when the challenger fails a gate, or is significantly worse on any of
    accuracy (McNemar at `alpha`), ROC-AUC or EMPC (the CI of challenger − champion entirely below
    0). Otherwise promote when it is significantly better on one of them: accuracy or ROC-AUC by at
    least their minimum gain, or EMPC (CI entirely above 0: more profit per customer under
    `params.yaml: economics`). Otherwise inconclusive. Results without an EMPC difference (no
    economics) are judged on accuracy and ROC-AUC alone.
    """
    p = result["mcnemar"]["p_value"]
    acc = result["bootstrap"]["difference"]["accuracy"]
    auc = result["bootstrap"]["difference"]["roc_auc"]
    money = result["bootstrap"]["difference"].get("empc")
    level = f"{result['bootstrap']['confidence']:.0%}"
    acc_text = f"accuracy {acc['estimate']:+.4f} (McNemar p = {p:.4g})"
    auc_text = f"ROC-AUC {auc['estimate']:+.4f} ({level} CI {auc['low']:+.4f} to {auc['high']:+.4f})"
    money_text = (
        f"EMPC {money['estimate']:+.2f} per customer ({level} CI {money['low']:+.2f} to {money['high']:+.2f})"
        if money
        else ""
    )
    keep = []
    if failed_gates:
        keep.append(f"the challenger fails {len(failed_gates)} gate(s): {', '.join(failed_gates)}")
    if p < pol.alpha and acc["estimate"] < 0:
        keep.append(f"the champion is significantly more accurate: {acc_text}")
    if auc["high"] < 0:
        keep.append(f"the champion ranks churners significantly better: {auc_text}")
    if money and money["high"] < 0:
        keep.append(f"the champion earns significantly more: {money_text}")
    if keep:
        return KEEP, keep
    wins = []
    if p < pol.alpha and acc["estimate"] >= max(pol.min_accuracy_gain, 1e-12):
        wins.append(f"the challenger is significantly more accurate: {acc_text}")
    if auc["low"] > 0 and auc["estimate"] >= pol.min_roc_auc_gain:
        wins.append(f"the challenger ranks churners significantly better: {auc_text}")
    if money and money["low"] > 0:
        wins.append(f"the challenger earns significantly more: {money_text}")
    if wins:
        gates = (
            "the challenger passes every gate"
            if failed_gates is not None
            else "the challenger's validation gates were not checked: check them before promoting it"
        )
        return PROMOTE, [*wins, gates]
    why = []
    if p >= pol.alpha:
        why.append(f"no significant accuracy difference at alpha {pol.alpha:g}: {acc_text}")
    else:
        why.append(f"accuracy gain below the minimum {pol.min_accuracy_gain:g}: {acc_text}")
    if auc["low"] <= 0:
        why.append(f"the ROC-AUC difference is not significant: {auc_text}")
    else:
        why.append(f"ROC-AUC gain below the minimum {pol.min_roc_auc_gain:g}: {auc_text}")
    if money:
        why.append(f"the profit difference is not significant: {money_text}")
    return INCONCLUSIVE, [*why, "keep the champion and collect more evidence"]


def compare(
    y: np.ndarray,
    proba_champion: np.ndarray,
    proba_challenger: np.ndarray,
    *,
    threshold: float,
    pol: AbTestSettings,
    seed: int,
    failed_gates: list[str] | None,
    money: EconomicsSettings | None = None,
    clv: np.ndarray | None = None,
) -> dict[str, Any]:
    """The whole A/B result: table, McNemar, bootstrap CIs (EMPC too, given `money` and `clv`), A/B
    gates and the recommendation. `failed_gates=None`: the challenger's other gates are unknown
    (`challenger_failed_gates` is then None too)."""
    y = np.asarray(y, dtype=int)
    preds = {
        n: (np.asarray(p) >= threshold).astype(int)
        for n, p in (("champion", proba_champion), ("challenger", proba_challenger))
    }
    table = contingency(y, preds["champion"], preds["challenger"])
    result: dict[str, Any] = {
        "n": len(y),
        "threshold": threshold,
        "contingency": {
            "champion_correct": {"challenger_correct": table[0, 0], "challenger_wrong": table[0, 1]},
            "champion_wrong": {"challenger_correct": table[1, 0], "challenger_wrong": table[1, 1]},
        },
        "mcnemar": mcnemar_test(table),
        "bootstrap": paired_bootstrap(
            y,
            {"champion": np.asarray(proba_champion), "challenger": np.asarray(proba_challenger)},
            threshold=threshold,
            n_boot=pol.bootstrap,
            seed=seed,
            confidence=1 - pol.alpha,
            money=money,
            clv=clv,
        ),
        "alpha": pol.alpha,
    }
    diff = result["bootstrap"]["difference"]
    result["gates"] = {
        f"{m}_not_worse": gate(
            diff[m]["high"],
            0.0,
            ">=",
            note=f"upper end of the {1 - pol.alpha:.0%} CI of challenger − champion",
        )
        for m in ("accuracy", "roc_auc")
    }
    result["challenger_failed_gates"] = None if failed_gates is None else list(failed_gates)
    result["recommendation"], result["reasons"] = recommend(result, failed_gates, pol)
    return result


def gates_verdict(result: dict[str, Any]) -> tuple[bool | None, list[str]]:
    """(approved, failed gates) of the challenger as far as this comparison knows, named as in
    metrics/validation.json: its other gates plus this comparison's A/B gates; (None, []) when its
    other gates are unknown."""
    known = result.get("challenger_failed_gates")
    if known is None:
        return None, []
    failed = sorted([*known, *(f"ab_test.{k}" for k, g in result["gates"].items() if g["status"] == FAIL)])
    return not failed, failed


@dataclass(frozen=True)
class Setup:
    """What a comparison reads from params: the churner threshold, the A/B policy, the seed and the economics."""

    threshold: float
    policy: AbTestSettings
    seed: int
    money: EconomicsSettings


def setup(params: dict[str, Any], source: str = "params.yaml") -> Setup:
    """`evaluate.threshold`, the `ab_test` and `economics` sections and `base.seed`, checked
    (ParamsError otherwise)."""
    return Setup(
        threshold=read(params, EvaluateSettings, source).threshold,
        policy=read(params, AbTestSettings, source),
        seed=read(params, BaseSettings, source).seed,
        money=read(params, EconomicsSettings, source),
    )


def compare_models(
    setup: Setup,
    champion: Any,
    challenger: Any,
    X: Any,
    y: np.ndarray,
    *,
    failed_gates: list[str] | None,
) -> dict[str, Any]:
    """The `ab-test` stage's comparison of two fitted pipelines on the same customers.

    The stage and the app's A/B tab both call this, with `setup(params)` read before any work.
    """
    proba = probabilities({"champion": champion, "challenger": challenger}, X)
    return compare(
        y,
        proba["champion"],
        proba["challenger"],
        threshold=setup.threshold,
        pol=setup.policy,
        seed=setup.seed,
        failed_gates=failed_gates,
        money=setup.money,
        clv=economics.customer_value(setup.money, X),
    )
