"""params.yaml: its reader, a checked model of every section, and the one-line error for a bad key.

One convention: a stage (or the app, or the CLI) reads the file with `load_params`, takes a section
with `section(params, key, source)` and builds its settings with `X.from_params(that_section, source)`.
Every model forbids unknown keys and checks types strictly (a quoted "0.2" is not a number, `true`
is not 1), so any bad key stops the first stage that reads its section with one line such as

    params.yaml: prepare.test_size: must be greater than 0 and less than 1 (got 1.5)

The classes below document params.yaml section by section; domain modules import their settings
from here. Scikit-learn checks the hyperparameters of `models.<name>.params` itself
(`churn.model.check_spec`), rendered as the same line.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from churn.paths import LAYOUT
from churn.schema import INTERNET_ADDONS

log = logging.getLogger(__name__)


class ParamsError(ValueError):
    """A params.yaml key is missing or breaks a rule; the message names the file, key and rule."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml into a dict; a missing or malformed file raises ParamsError naming it."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        with path.open() as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {type(params).__name__}")
    return params


def section(params: dict[str, Any], key: str, source: str = "params.yaml") -> Any:
    """params[key] for a dotted key, or ParamsError naming the file and the missing key."""
    node: Any = params
    walked = []
    for part in key.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(line(source, ".".join(walked), "is missing"))
        node = node[part]
    return node


def line(source: str, key: str, rule: str, *got: Any) -> str:
    """The one-line error: `<file>: <dotted key>: <rule> (got <value>)`."""
    text = f"{source}: {key}: {rule}"
    return text + (f" (got {_shown(got[0])})" if got else "")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- typed readers: each a type whose error states the whole rule ---------------------------------


def _fail(rule: str) -> PydanticCustomError:
    return PydanticCustomError("params_rule", "{rule}", {"rule": rule})


def _range_text(ge: float | None, gt: float | None, le: float | None, lt: float | None) -> str:
    parts = []
    if ge is not None:
        parts.append(f"at least {ge:g}")
    if gt is not None:
        parts.append(f"greater than {gt:g}")
    if le is not None:
        parts.append(f"at most {le:g}")
    if lt is not None:
        parts.append(f"less than {lt:g}")
    return " and ".join(parts)


def _is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def number(
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    whole: bool = False,
    nullable: bool = False,
) -> Any:
    """A number (`whole`: an int) within the bounds; `nullable` also takes null (a disabled gate)."""
    bounds = _range_text(ge, gt, le, lt)
    kind = "a whole number" if whole else "a number"
    null = "null or " if nullable else ""

    def check(v: Any) -> Any:
        if v is None and nullable:
            return None
        if not _is_number(v) or (whole and not isinstance(v, int)):
            raise _fail(f"must be {null}{kind}" + (f" {bounds}" if bounds else ""))
        if (
            (ge is not None and v < ge)
            or (gt is not None and v <= gt)
            or (le is not None and v > le)
            or (lt is not None and v >= lt)
        ):
            raise _fail(f"must be {bounds}")
        return v if whole else float(v)

    return PlainValidator(check)


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _fail("must be non-empty text")
    return v


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _fail("must be true or false")
    return v


def choice(*options: str) -> Any:
    """One of `options`."""

    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in options:
            raise _fail(f"must be one of {', '.join(options)}")
        return v

    return PlainValidator(check)


def names(*, allowed: tuple[str, ...] | None = None, banned: tuple[str, ...] = ()) -> Any:
    """A non-empty list of names (each one of `allowed` if given, none of `banned`)."""

    def check(v: Any) -> tuple[str, ...]:
        if not isinstance(v, list | tuple) or not v or not all(isinstance(x, str) and x.strip() for x in v):
            raise _fail("must be a non-empty list of names")
        bad = [x for x in v if x in banned]
        if bad:
            raise _fail(f"must not list {', '.join(bad)} (demographics or history)")
        unknown = [x for x in v if allowed is not None and x not in allowed]
        if unknown:
            raise _fail(f"lists {', '.join(unknown)}; allowed: {', '.join(allowed or ())}")
        return tuple(v)

    return PlainValidator(check)


def shares() -> Any:
    """A non-empty list of numbers greater than 0 and at most 1 (perturbation levels)."""
    rule = "must be a non-empty list of numbers greater than 0 and at most 1"

    def check(v: Any) -> list[float]:
        if not isinstance(v, list) or not v or not all(_is_number(x) and 0 < x <= 1 for x in v):
            raise _fail(rule)
        return [float(x) for x in v]

    return PlainValidator(check)


Text = Annotated[str, PlainValidator(_text)]
Flag = Annotated[bool, PlainValidator(_flag)]
Probability = Annotated[float, number(ge=0, le=1)]
OpenProbability = Annotated[float, number(gt=0, lt=1)]
Positive = Annotated[int, number(ge=1, whole=True)]


# -- sections -------------------------------------------------------------------------------------


class Section(BaseModel):
    """A params.yaml section (or sub-section): checked keys, nothing unknown, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=False)
    #: Its dotted place in params.yaml, the prefix of every error about it.
    KEY: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise _fail("must be a mapping of keys")
        if cls.model_config.get("extra") == "forbid":
            for key in data:
                if key not in cls.model_fields:
                    raise PydanticCustomError(
                        "params_unknown",
                        "unknown key (allowed: {allowed})",
                        {"key": str(key), "allowed": ", ".join(cls.model_fields)},
                    )
        return data

    @classmethod
    def from_params(cls, section: Any, source: str = "params.yaml", key: str | None = None) -> Self:
        """The checked settings of `section` (a dict from params.yaml; None keeps every default where
        all keys have one); ParamsError with one line naming `source`, the dotted key and the rule."""
        if section is None and all(not f.is_required() for f in cls.model_fields.values()):
            section = {}
        try:
            return cls.model_validate(section)
        except ValidationError as exc:
            raise ParamsError(render(exc, source, cls.KEY if key is None else key)) from None


def render(exc: ValidationError, source: str, prefix: str) -> str:
    """A pydantic ValidationError as the one-line params error (its first problem, and a count)."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    ctx = first.get("ctx") or {}
    parts = [prefix] if prefix else []
    for part in first["loc"]:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(str(part))
    kind = first["type"]
    if kind == "params_unknown":
        parts.append(ctx["key"])
        text = line(source, ".".join(parts), first["msg"])
    elif kind == "missing":
        text = line(source, ".".join(parts), "is missing")
    elif kind == "params_rule":
        if ctx.get("key"):
            parts.append(ctx["key"])
        got = (ctx["got"],) if "got" in ctx else (first["input"],)
        text = line(source, ".".join(parts), first["msg"], *got)
    else:  # a rule pydantic states itself (kept so no error is ever lost)
        text = line(source, ".".join(parts), first["msg"], first["input"])
    more = len(errors) - 1
    return text + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _rule(rule: str, key: str, got: Any) -> PydanticCustomError:
    """A rule between keys (checked after each key's own), reported on `key`."""
    return PydanticCustomError("params_rule", "{rule}", {"rule": rule, "key": key, "got": got})


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
        raise _fail("must be a mapping of hyperparameter: value")
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
        raise _fail("must be 0 (no cross-validation) or a whole number of at least 2")
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
                raise _rule(f"must be one of robustness.levels.{kind}", f"gates.{kind}.level", gate.level)
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
            raise _rule("must be below serving.risk_bands.high", "medium", self.medium)
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
            raise _rule("must be at most monitoring.drift.psi_major", "psi_moderate", self.psi_moderate)
        return self


class PerformanceSettings(Section):
    """`monitoring.performance`: the monitored threshold, the alert's drop, live-metric minimum, time unit."""

    threshold: OpenProbability = 0.5
    max_drop: Annotated[float, number(ge=0, lt=1)] = 0.05
    min_labelled: Positive = 100
    unit: Annotated[str, choice("hour", "day", "week", "month")] = "week"


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


def read(params: dict[str, Any], cls: type[Section], source: str = "params.yaml") -> Any:
    """`cls.from_params(section(params, cls.KEY, source), source)`: a whole section, checked."""
    return cls.from_params(section(params, cls.KEY, source), source)
