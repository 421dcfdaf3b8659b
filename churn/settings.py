"""The sections of params.yaml, one checked model each: every key, its type, its rule and its default.

Each model is built the one way (`X.from_params(section, source)`, or `churn.params.read`); domain
modules import their settings from here. Scikit-learn checks the hyperparameters of
`models.<name>.params` itself (`churn.model.check_spec`), rendered as the same one-line error.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import ConfigDict, Field, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from churn.params import (
    Flag,
    OpenProbability,
    Positive,
    Probability,
    Section,
    Text,
    choice,
    fail,
    fail_on,
    names,
    number,
    shares,
)
from churn.paths import LAYOUT
from churn.schema import INTERNET_ADDONS


class BaseSettings(Section):
    """`base`: the seed every random choice in the pipeline derives from."""

    KEY: ClassVar[str] = "base"
    seed: Annotated[int, number(ge=0, lt=2**32, whole=True)]


class SynthesizeSettings(Section):
    """`synthesize`: how many synthetic customers (at most `churn.synth.MAX_ROWS`)."""

    KEY: ClassVar[str] = "synthesize"
    rows: Annotated[int, number(ge=1, le=10_000_000, whole=True)]


class DataSettings(Section):
    """`data`: the raw input CSV."""

    KEY: ClassVar[str] = "data"
    raw: Text


class PrepareSettings(Section):
    """`prepare`: the held-out share of the stratified split."""

    KEY: ClassVar[str] = "prepare"
    test_size: OpenProbability


#: Estimator families of `models.<name>.estimator` (churn.model.FAMILIES builds them).
ESTIMATORS = ("extra_trees", "hist_gradient_boosting", "logistic_regression", "random_forest")


def _hyperparameters(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise fail("must be a mapping of hyperparameter: value")
    return dict(v)


class ModelSpec(Section):
    """`models.<name>`: an estimator family and its scikit-learn hyperparameters (checked by
    scikit-learn in `churn.model.check_spec`)."""

    KEY: ClassVar[str] = "models"
    estimator: Annotated[str, choice(*ESTIMATORS)]
    params: Annotated[dict[str, Any], PlainValidator(_hyperparameters)] = Field(default_factory=dict)


class ModelsSettings(Section):
    """`models`: the champion (production) and challenger (candidate) specs; more names may follow."""

    model_config = ConfigDict(extra="allow", frozen=True)
    KEY: ClassVar[str] = "models"
    __pydantic_extra__: dict[str, ModelSpec] = Field(init=False)
    champion: ModelSpec
    challenger: ModelSpec

    def spec(self, name: str) -> ModelSpec:
        return getattr(self, name) if name in type(self).model_fields else self.__pydantic_extra__[name]


def _folds(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v == 1 or v < 0:
        raise fail("must be 0 (no cross-validation) or a whole number of at least 2")
    return v


class TrainSettings(Section):
    """`train`: folds of the stratified cross-validation report (0: none)."""

    KEY: ClassVar[str] = "train"
    cv_folds: Annotated[int, PlainValidator(_folds)]


class EvaluateSettings(Section):
    """`evaluate`: the decision threshold and the reliability diagram's bins."""

    KEY: ClassVar[str] = "evaluate"
    threshold: Probability
    calibration_bins: Annotated[int, number(ge=2, le=100, whole=True)]


class EconomicsSettings(Section):
    """`economics`: what a retention campaign earns and costs (the EMPC model of Verbraken, Verbeke &
    Baesens, IEEE TKDE 2013). Every number is an assumption the retention team must set.

    A customer's lifetime value is `clv_months` × their `MonthlyCharges`, or a fixed `clv` for
    everyone (exactly one of the two is set, the other null). Contacting costs `contact_cost` (f);
    a contacted customer who accepts the offer costs `offer_cost` (d); a contacted would-be churner
    accepts with probability γ ~ Beta(`alpha`, `beta`), mean α / (α + β).
    """

    KEY: ClassVar[str] = "economics"
    clv_months: Annotated[float | None, number(gt=0, le=1200, nullable=True)] = None
    clv: Annotated[float | None, number(gt=0, le=1e9, nullable=True)] = None
    offer_cost: Annotated[float, number(ge=0, le=1e9)]
    contact_cost: Annotated[float, number(ge=0, le=1e9)]
    alpha: Annotated[float, number(gt=0, le=1e6)]
    beta: Annotated[float, number(gt=0, le=1e6)]

    @model_validator(mode="after")
    def _one_value_rule(self) -> Self:
        if self.clv_months is None and self.clv is None:
            raise fail_on("must be set unless economics.clv is", "clv_months", None)
        if self.clv_months is not None and self.clv is not None:
            raise fail_on("must be null when economics.clv_months is set", "clv", self.clv)
        return self

    @property
    def acceptance_rate(self) -> float:
        """γ̄ = α / (α + β), the mean acceptance rate of a contacted would-be churner."""
        return self.alpha / (self.alpha + self.beta)


class MlflowSettings(Section):
    """`mlflow`: experiment and registered-model names."""

    KEY: ClassVar[str] = "mlflow"
    experiment: Text
    registered_model: Text


class FairnessSettings(Section):
    """`validate_fairness`: attributes compared, group size, bootstrap and gate thresholds (null: not gated)."""

    KEY: ClassVar[str] = "validate_fairness"
    attributes: Annotated[tuple[str, ...], names()]
    min_group_size: Positive
    bootstrap: Annotated[int, number(ge=10, whole=True)]
    confidence: Annotated[float, number(ge=0.5, le=0.999)]
    max_accuracy_gap: Annotated[float | None, number(ge=0, le=1, nullable=True)]
    max_equalized_odds_difference: Annotated[float | None, number(ge=0, le=1, nullable=True)]
    min_demographic_parity_ratio: Annotated[float | None, number(ge=0, le=1, nullable=True)]


#: Perturbations of `robustness` (churn.robustness applies them).
PERTURBATIONS = ("noise", "flip", "missing")


class RobustnessLevels(Section):
    """`robustness.levels`: perturbation strengths of each kind."""

    noise: Annotated[list[float], shares()]
    flip: Annotated[list[float], shares()]
    missing: Annotated[list[float], shares()]


class RobustnessGate(Section):
    """`robustness.gates.<kind>`: the gated level and the largest drops allowed there."""

    level: Annotated[float, number(gt=0, le=1)]
    max_accuracy_drop: Probability
    max_roc_auc_drop: Probability


class RobustnessGates(Section):
    """`robustness.gates`: one gated level per perturbation (a kind left out is not gated)."""

    noise: RobustnessGate | None = None
    flip: RobustnessGate | None = None
    missing: RobustnessGate | None = None


class RobustnessSettings(Section):
    """`robustness`: levels per perturbation and one gated level of each."""

    KEY: ClassVar[str] = "robustness"
    levels: RobustnessLevels
    gates: RobustnessGates

    @model_validator(mode="after")
    def _gated_level_is_run(self) -> Self:
        for kind in PERTURBATIONS:
            gate = getattr(self.gates, kind)
            if gate is not None and gate.level not in getattr(self.levels, kind):
                raise fail_on(f"must be one of robustness.levels.{kind}", f"gates.{kind}.level", gate.level)
        return self

    def level_list(self, kind: str) -> list[float]:
        return getattr(self.levels, kind)

    def gated(self) -> dict[str, RobustnessGate]:
        """The gated kinds, in params order."""
        return {k: g for k in PERTURBATIONS if (g := getattr(self.gates, k)) is not None}


class AbTestSettings(Section):
    """`ab_test`: significance level, minimum gains worth a change, bootstrap resamples."""

    KEY: ClassVar[str] = "ab_test"
    alpha: Annotated[float, number(ge=0.0001, le=0.5)]
    min_accuracy_gain: Probability
    min_roc_auc_gain: Probability
    bootstrap: Annotated[int, number(ge=100, whole=True)]


class Minimums(Section):
    """`report.minimums`: the five headline test metrics' minimums (churn.metrics.HEADLINE)."""

    accuracy: Probability
    precision: Probability
    recall: Probability
    f1: Probability
    roc_auc: Probability


class ReportSettings(Section):
    """`report`: performance gates on the test set."""

    KEY: ClassVar[str] = "report"
    minimums: Minimums


class RiskBands(Section):
    """`serving.risk_bands`: Low below medium, High at or above high."""

    medium: OpenProbability = 0.3
    high: OpenProbability = 0.6

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.medium >= self.high:
            raise fail_on("must be below serving.risk_bands.high", "medium", self.medium)
        return self


class ServingSettings(Section):
    """`serving`: risk bands, batch chunking, explanation background (every key has a default)."""

    KEY: ClassVar[str] = "serving"
    risk_bands: RiskBands = RiskBands()
    chunk_size: Positive = 50_000
    explain_chunk_size: Positive = 1_000
    max_line_bytes: Positive = 1_000_000
    background_rows: Positive = 200
    top_reasons: Positive = 3


#: Who the customer is and what happened before: never changed by a retention offer.
DEMOGRAPHICS = ("gender", "SeniorCitizen", "Partner", "Dependents")
HISTORY = ("tenure", "TotalCharges")
#: Features a retention offer exists for (churn.retention.candidate_changes).
OFFERS = ("Contract", "PaymentMethod", *INTERNET_ADDONS, "PaperlessBilling", "MonthlyCharges")


class RetentionSettings(Section):
    """`retention`: the LLM, its fallbacks and limits, and the actions offered (every key has a default)."""

    KEY: ClassVar[str] = "retention"
    model: Text = "llama-3.1-8b-instant"
    fallback_models: Annotated[tuple[str, ...], names()] = ("openai/gpt-oss-20b", "llama-3.3-70b-versatile")
    email_budget_seconds: Annotated[float, number(ge=0.5, le=60)] = 6.0
    max_retries: Annotated[int, number(ge=0, le=1, whole=True)] = 1
    temperature: Annotated[float, number(ge=0, le=2)] = 0.4
    max_tokens: Annotated[int, number(ge=50, le=4000, whole=True)] = 450
    actionable: Annotated[tuple[str, ...], names(allowed=OFFERS, banned=DEMOGRAPHICS + HISTORY)] = (
        "Contract",
        "PaymentMethod",
        "OnlineSecurity",
        "TechSupport",
        "OnlineBackup",
        "DeviceProtection",
        "PaperlessBilling",
        "MonthlyCharges",
    )
    discount: Annotated[float, number(ge=0.01, le=0.5)] = 0.10
    max_actions: Annotated[int, number(ge=1, le=20, whole=True)] = 3
    min_reduction_points: Annotated[float, number(ge=0, le=100)] = 0.5

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "timeout_seconds" in data:
            raise PydanticCustomError(
                "params_unknown", "unknown key (renamed: email_budget_seconds)", {"key": "timeout_seconds"}
            )
        return data


class DriftConfig(Section):
    """`monitoring.drift`: thresholds of the drift engine (churn.monitoring.drift explains each)."""

    min_rows: Annotated[int, number(ge=2, whole=True)] = 100
    stat_test_max_rows: Annotated[int, number(ge=0, whole=True)] = 1000
    alpha: OpenProbability = 0.025
    bonferroni: Flag = True
    wasserstein_threshold: Annotated[float, number(gt=0)] = 0.1
    jensen_shannon_threshold: Annotated[float, number(gt=0)] = 0.1
    psi_bins: Annotated[int, number(ge=2, whole=True)] = 10
    psi_moderate: Annotated[float, number(gt=0)] = 0.1
    psi_major: Annotated[float, number(gt=0)] = 0.25
    dataset_drift_share: Annotated[float, number(gt=0, le=1)] = 0.05

    @model_validator(mode="after")
    def _psi_reading(self) -> Self:
        if self.psi_moderate > self.psi_major:
            raise fail_on("must be at most monitoring.drift.psi_major", "psi_moderate", self.psi_moderate)
        return self


class PerformanceSettings(Section):
    """`monitoring.performance`: the monitored threshold, the alert's drop, live-metric and estimate
    minimums, time unit."""

    threshold: OpenProbability = 0.5
    max_drop: Annotated[float, number(ge=0, lt=1)] = 0.05
    min_labelled: Positive = 100
    min_estimated: Positive = 100
    unit: Annotated[str, choice("hour", "day", "week", "month")] = "week"


class AlertSettings(Section):
    """`monitoring.alerts`: how long an alert (kind + feature) posted to the webhook is not posted again."""

    cooldown_minutes: Annotated[int, number(ge=0, le=7 * 24 * 60, whole=True)] = 60


class SimulateSettings(Section):
    """`monitoring.simulate`: `churn monitor simulate`'s period, shift onset and outcome delay."""

    days: Annotated[float, number(gt=0, le=366)] = 7.0
    onset: Annotated[float, number(ge=0, lt=1)] = 0.5
    outcome_delay_days: Annotated[float, number(ge=0, le=3650)] = 30.0


Share = Annotated[float, number(gt=0, lt=1)]


class NoKnobs(Section):
    """A scenario without knobs."""


class PriceIncrease(Section):
    factor: Annotated[float, number(gt=0)] = 1.15


class ContractMix(Section):
    month_to_month_share: Share = 0.8


class NewFiberCustomers(Section):
    share: Share = 0.4
    max_tenure: Annotated[float, number(gt=0)] = 12


class SeniorSurge(Section):
    senior_share: Share = 0.45


class ScenarioSettings(Section):
    """`monitoring.scenarios`: knobs of the named drift scenarios (churn.monitoring.simulate)."""

    none: NoKnobs = NoKnobs()
    price_increase: PriceIncrease = PriceIncrease()
    contract_mix: ContractMix = ContractMix()
    new_fiber_customers: NewFiberCustomers = NewFiberCustomers()
    senior_surge: SeniorSurge = SeniorSurge()
    tenure_in_years: NoKnobs = NoKnobs()

    def knobs(self, name: str) -> dict[str, float]:
        return getattr(self, name).model_dump()


class MonitoringSettings(Section):
    """`monitoring`: the reference, the monitored model, and every threshold (every key has a default)."""

    KEY: ClassVar[str] = "monitoring"
    reference: Text = str(LAYOUT.train)
    holdout: Text = str(LAYOUT.test)
    model: Text = "champion"
    window: Positive = 1000
    drift: DriftConfig = DriftConfig()
    performance: PerformanceSettings = PerformanceSettings()
    alerts: AlertSettings = AlertSettings()
    simulate: SimulateSettings = SimulateSettings()
    scenarios: ScenarioSettings = ScenarioSettings()


#: Every top-level section of params.yaml and its settings (models.<name> go through ModelsSettings).
SECTIONS: dict[str, type[Section]] = {
    cls.KEY: cls
    for cls in (
        BaseSettings,
        SynthesizeSettings,
        DataSettings,
        PrepareSettings,
        ModelsSettings,
        TrainSettings,
        EvaluateSettings,
        EconomicsSettings,
        MlflowSettings,
        FairnessSettings,
        RobustnessSettings,
        AbTestSettings,
        ReportSettings,
        ServingSettings,
        RetentionSettings,
        MonitoringSettings,
    )
}
