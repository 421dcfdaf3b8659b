"""Every params.yaml key has a rule: a wrong type or an out-of-range value gets one line naming the
file, the dotted key and the rule, from the reader of its section and from the stage that reads it."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from churn import metrics, model, schema
from churn.monitoring import performance, scenarios, simulate
from churn.params import ParamsError, load_params, read, section
from churn.settings import ESTIMATORS, OFFERS, SECTIONS, Minimums
from stages import ab_test, evaluate, prepare, report, robustness, synthesize, train, validate_fairness

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "params.yaml"
PARAMS = load_params(ROOT / "params.yaml")
#: Mappings whose keys are names the user chooses, not a fixed set (model names, hyperparameters).
OPEN_MAPPINGS = {"models"} | {f"models.{name}.params" for name in PARAMS["models"]}


def _walk(node: Any, prefix: str = "") -> tuple[list[str], list[str]]:
    """(leaf keys, mapping keys) of params.yaml, dotted; lists and scalars are leaves."""
    leaves, mappings = [], []
    if isinstance(node, dict):
        if prefix:
            mappings.append(prefix)
        for key, value in node.items():
            sub_leaves, sub_maps = _walk(value, f"{prefix}.{key}" if prefix else str(key))
            leaves += sub_leaves
            mappings += sub_maps
    else:
        leaves.append(prefix)
    return leaves, mappings


LEAVES, MAPPINGS = _walk(PARAMS)


def _with(key: str, value: Any) -> dict[str, Any]:
    params = copy.deepcopy(PARAMS)
    *parents, last = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    node[last] = value
    return params


def _check(params: dict[str, Any], key: str) -> None:
    """Read the section holding `key` as the first stage that reads it does."""
    top = key.split(".")[0]
    if top == "models":
        name = key.split(".")[1]
        model.check_spec(name, section(params, f"models.{name}", SOURCE), SOURCE)
    else:
        read(params, SECTIONS[top], SOURCE)


def _error(params: dict[str, Any], key: str) -> str:
    with pytest.raises(ParamsError) as info:
        _check(params, key)
    return str(info.value)


def _assert_line(message: str, key: str, source: str = SOURCE) -> None:
    assert "\n" not in message, message
    assert message.startswith(f"{source}: {key}: "), message
    rule = message[len(f"{source}: {key}: ") :]
    assert rule.startswith(("must ", "unknown ", "lists ")), message


def _wrong_types(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return ["yes", 1]
    if isinstance(value, int | float):
        return [str(value), True]
    if isinstance(value, str):
        return [42, [value]]
    if value is None:  # a nullable number
        return ["x", True]
    if isinstance(value, list):
        item = value[0]
        return ["x", [42] if isinstance(item, str) else ["x"]]
    raise AssertionError(f"no wrong type known for {value!r}")


def _out_of_range(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return []  # true or false: no range
    if isinstance(value, int):
        return [-1, 10**12]
    if isinstance(value, float) or value is None:
        return [-1.0, 1e12]
    if isinstance(value, str):
        return ["", "no-such-value"]
    if isinstance(value, list):
        return [[]]
    raise AssertionError(f"no out-of-range value known for {value!r}")


def test_params_yaml_reads_cleanly_and_every_section_has_a_reader():
    assert set(PARAMS) == set(SECTIONS), "a params.yaml section without a reader in churn.settings.SECTIONS"
    for cls in SECTIONS.values():
        read(PARAMS, cls, SOURCE)
    for name in PARAMS["models"]:
        model.check_spec(name, PARAMS["models"][name], SOURCE)
    assert len(LEAVES) > 80  # the walk found the file's keys


@pytest.mark.parametrize("key", LEAVES)
def test_every_key_refuses_a_wrong_type(key):
    value = section(PARAMS, key, SOURCE)
    for wrong in _wrong_types(value):
        _assert_line(_error(_with(key, wrong), key), key)


@pytest.mark.parametrize("key", LEAVES)
def test_every_key_refuses_an_out_of_range_value(key):
    value = section(PARAMS, key, SOURCE)
    candidates = _out_of_range(value)
    refused = []
    for bad in candidates:
        try:
            _check(_with(key, bad), key)
        except ParamsError as exc:
            _assert_line(str(exc), key)
            assert f"(got {bad!r})" in str(exc)
            refused.append(bad)
    assert refused or not candidates, f"{key}: accepts every one of {candidates}: no rule?"


def test_free_text_keys_are_the_known_ones():
    """Keys whose only rule is 'non-empty text' (any other value is valid): a new one is a decision."""
    free = [k for k in LEAVES if isinstance(section(PARAMS, k), str)]
    accepted = []
    for key in free:
        try:
            _check(_with(key, "no-such-value"), key)
            accepted.append(key)
        except ParamsError:
            pass
    assert sorted(accepted) == sorted(
        [
            "data.raw",
            "mlflow.experiment",
            "mlflow.registered_model",
            "retention.model",
            "monitoring.reference",
            "monitoring.holdout",
            "monitoring.model",
        ]
    )


@pytest.mark.parametrize("key", [m for m in MAPPINGS if m not in OPEN_MAPPINGS])
def test_every_mapping_refuses_an_unknown_key(key):
    bad = f"{key}.no_such_key"
    message = _error(_with(bad, 1), bad)
    _assert_line(message, bad)
    assert "unknown key (allowed: " in message


def test_open_mappings_check_what_they_hold():
    _assert_line(_error(_with("models.extra", 1), "models.extra"), "models.extra")
    key = "models.challenger.params.no_such_key"
    message = _error(_with(key, 1), key)
    _assert_line(message, key)
    assert "unknown hyperparameter of random_forest" in message


def test_a_missing_key_is_named():
    params = copy.deepcopy(PARAMS)
    del params["evaluate"]["calibration_bins"]
    assert _error(params, "evaluate") == "params.yaml: evaluate.calibration_bins: is missing"
    with pytest.raises(ParamsError, match=r"^params.yaml: prepare: is missing$"):
        section({}, "prepare")


def test_rules_between_keys():
    message = _error(_with("serving.risk_bands.medium", 0.7), "serving")
    assert message == (
        "params.yaml: serving.risk_bands.medium: must be below serving.risk_bands.high (got 0.7)"
    )
    message = _error(_with("monitoring.drift.psi_moderate", 0.3), "monitoring")
    assert (
        message
        == "params.yaml: monitoring.drift.psi_moderate: must be at most monitoring.drift.psi_major (got 0.3)"
    )
    message = _error(_with("robustness.gates.flip.level", 0.3), "robustness")
    assert (
        message == "params.yaml: robustness.gates.flip.level: must be one of robustness.levels.flip (got 0.3)"
    )


def test_one_line_counts_further_problems():
    params = _with("prepare", {"test_size": 2, "x": 1})
    assert _error(params, "prepare") == "params.yaml: prepare.x: unknown key (allowed: test_size)"
    params = _with("ab_test", {**PARAMS["ab_test"], "alpha": "x", "bootstrap": 1})
    assert _error(params, "ab_test").endswith("(got 'x') (and 1 more problem)")


def test_the_params_vocabularies_match_the_code():
    assert set(ESTIMATORS) == set(model.FAMILIES)
    assert set(schema.ADDON_LABELS) <= set(OFFERS)
    assert list(Minimums.model_fields) == list(metrics.HEADLINE)
    assert set(scenarios.DESCRIPTIONS) == set(simulate.DEFAULT_KNOBS)
    unit = read(_with("monitoring.performance.unit", "hour"), SECTIONS["monitoring"]).performance.unit
    assert unit in performance.FREQUENCIES
    for name in performance.FREQUENCIES:
        read(_with("monitoring.performance.unit", name), SECTIONS["monitoring"])


# -- through the entry points ---------------------------------------------------------------------

STAGE_CASES = [
    (prepare, [], "prepare.test_size", 1.5, "must be greater than 0 and less than 1 (got 1.5)"),
    (prepare, [], "prepare.tset_size", 0.2, "unknown key (allowed: test_size)"),
    (synthesize, [], "synthesize.rows", 0, "must be at least 1 and at most 1e+07 (got 0)"),
    (synthesize, [], "base.seed", -1, "must be at least 0 and less than 4.29497e+09 (got -1)"),
    (train, ["--name", "challenger"], "train.cv_folds", 1, "must be 0 (no cross-validation) or a whole"),
    (
        train,
        ["--name", "challenger"],
        "models.challenger.params.n_estimators",
        0,
        "must be an int in the range",
    ),
    (train, ["--name", "champion"], "models.champion.estimator", "svm", "must be one of extra_trees, "),
    (
        evaluate,
        ["--name", "challenger"],
        "evaluate.threshold",
        1.5,
        "must be at least 0 and at most 1 (got 1.5)",
    ),
    (
        evaluate,
        ["--name", "challenger"],
        "evaluate.calibration_bins",
        1,
        "must be at least 2 and at most 100",
    ),
    (
        evaluate,
        ["--name", "champion"],
        "economics.alpha",
        0,
        "must be greater than 0 and at most 1e+06 (got 0)",
    ),
    (ab_test, [], "economics.clv", 100, "must be null when economics.clv_months is set (got 100.0)"),
    (validate_fairness, [], "validate_fairness.bootstrap", "1000", "must be a whole number at least 10"),
    (validate_fairness, [], "evaluate.threshold", -0.1, "must be at least 0 and at most 1 (got -0.1)"),
    (robustness, [], "robustness.gates.noise.level", 0.3, "must be one of robustness.levels.noise (got 0.3)"),
    (ab_test, [], "ab_test.alpha", 0.9, "must be at least 0.0001 and at most 0.5 (got 0.9)"),
    (ab_test, [], "report.minimums.f1", 2, "must be at least 0 and at most 1 (got 2)"),
    (report, ["--no-mlflow"], "mlflow.experiment", "", "must be non-empty text (got '')"),
    (report, ["--no-mlflow"], "models.challenger.estimator", 5, "must be one of extra_trees"),
]


@pytest.mark.parametrize(
    ("stage", "argv", "key", "value", "rule"),
    STAGE_CASES,
    ids=[f"{c[0].__name__}-{c[2]}" for c in STAGE_CASES],
)
def test_stage_refuses_a_bad_key_before_touching_a_file(stage, argv, key, value, rule, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with(key, value)))
    with pytest.raises(ParamsError) as info:
        stage.main(["--params", str(path), *argv])
    assert str(info.value).startswith(f"{path}: {key}: {rule}")
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]  # nothing written


def test_cli_refuses_a_bad_key_with_one_line(tmp_path, capsys):
    from churn.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_with("monitoring.window", 0)))
    code = main(["monitor", "check", "--params", str(path), "--db", f"sqlite:///{tmp_path / 'p.db'}"])
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"churn monitor: {path}: monitoring.window: must be at least 1 (got 0)\n"


@pytest.mark.parametrize(
    ("module", "argv", "key", "value", "line"),
    [
        (
            "prepare",
            [],
            "prepare.test_size",
            1.5,
            "prepare.test_size: must be greater than 0 and less than 1 (got 1.5)",
        ),
        (
            "evaluate",
            ["--name", "challenger"],
            "evaluate.threshold",
            1.5,
            "evaluate.threshold: must be at least 0 and at most 1 (got 1.5)",
        ),
        (
            "train",
            ["--name", "challenger"],
            "train.cv_folds",
            1,
            "train.cv_folds: must be 0 (no cross-validation) or a whole number of at least 2 (got 1)",
        ),
    ],
)
def test_stage_command_prints_one_line_and_exits_1(module, argv, key, value, line, tmp_path):
    """The issue's three cases, as DVC runs them: no traceback, exit code 1, nothing written."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with(key, value)))
    proc = subprocess.run(
        [sys.executable, "-m", f"stages.{module}", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].endswith(f"ERROR stages: params.yaml: {line}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]
