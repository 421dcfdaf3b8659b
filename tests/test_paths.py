"""The project layout object names every pipeline path, agrees with dvc.yaml, and nothing else spells one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from churn.paths import LAYOUT, Layout, Metrics, model_file

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
MODELS = list(PARAMS["models"])
PLOT_FILES = (
    "roc.json",
    "precision_recall.json",
    "calibration.json",
    "confusion.json",
    "importance.json",
    "profit.json",
)


def _posix(path: Path) -> str:
    return path.as_posix()


def _entries(items: list) -> list[str]:
    return [next(iter(i)) if isinstance(i, dict) else i for i in items or []]


def _dvc_stages() -> dict[str, dict[str, set[str]]]:
    """Each stage instance (foreach expanded with params.yaml's model names): its deps and outs."""
    out = {}
    for name, stage in DVC["stages"].items():
        instances = {f"{name}@{m}": m for m in MODELS} if "foreach" in stage else {name: None}
        body = stage.get("do", stage)
        for label, key in instances.items():

            def expand(text: str, key=key) -> str:
                text = text.replace("${data.raw}", PARAMS["data"]["raw"])
                return text.replace("${key}", key) if key else text

            out[label] = {
                "deps": {expand(d) for d in _entries(body.get("deps"))},
                "outs": {expand(o) for o in _entries(body.get("outs")) + _entries(body.get("metrics"))},
            }
    return out


def _expected_outs() -> dict[str, set[str]]:
    m = LAYOUT.metrics
    outs = {
        "synthesize": {LAYOUT.synthetic},
        "prepare": {LAYOUT.train, LAYOUT.test, m.data},
        "validate-fairness": {m.fairness},
        "robustness": {m.robustness},
        "ab-test": {m.ab_test, m.scorecard_ab_test},
        "report": {m.validation, m.model_card, m.scorecard_validation},
    }
    for name in MODELS:
        outs[f"train@{name}"] = {LAYOUT.model(name), m.train(name), m.scorecard_train(name)}
        outs[f"evaluate@{name}"] = {m.evaluate(name), m.plots(name), m.scorecard_evaluate(name)}
    return {k: {_posix(p) for p in v} for k, v in outs.items()}


def test_every_dvc_output_is_a_layout_path():
    stages = _dvc_stages()
    expected = _expected_outs()
    assert set(stages) == set(expected)
    for label, paths in stages.items():
        assert paths["outs"] == expected[label], label


def test_every_data_dependency_is_a_layout_path():
    known = {p for outs in _expected_outs().values() for p in outs}
    for label, paths in _dvc_stages().items():
        data_deps = {d for d in paths["deps"] if not d.endswith(".py") and not d.startswith("churn/")}
        assert data_deps <= known, f"{label}: {sorted(data_deps - known)} is not a Layout path"


def test_dvc_plots_name_the_layout_plot_files():
    files = {Path(f) for plot in DVC["plots"] for spec in plot.values() for f in spec["y"]}
    assert files <= {LAYOUT.metrics.plots(m) / f for m in MODELS for f in PLOT_FILES}


def test_the_default_input_is_the_synthesize_output():
    assert PARAMS["data"]["raw"] == _posix(LAYOUT.synthetic)
    assert PARAMS["monitoring"]["reference"] == _posix(LAYOUT.train)
    assert PARAMS["monitoring"]["holdout"] == _posix(LAYOUT.test)


def test_layout_under_a_root():
    layout = Layout("/srv/project")
    assert layout.model("champion") == Path("/srv/project/models/champion.joblib")
    assert layout.metrics == Metrics(Path("/srv/project/metrics"))
    assert layout.metrics.scorecard_train("x") == Path("/srv/project/metrics/scorecard/train/x.json")
    assert layout.mlflow_db == Path("/srv/project/mlflow.db")
    assert model_file("elsewhere", "m") == Path("elsewhere/m.joblib")
    assert Metrics("out").plots("champion") == Path("out/plots/champion")


#: A string constant that is a project path (not a sentence mentioning one).
_PATH = re.compile(r"(data/(raw|prepared)|models|metrics)/[\w.<>{}*/-]*|[\w-]+\.(joblib|parquet)|mlflow\.db")
_SCANNED = ("churn", "stages", "app", "bench")


def _path_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    return [
        f"{path.relative_to(ROOT)}:{n.lineno}: {n.value!r}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, str)
        and id(n) not in docstrings
        and _PATH.fullmatch(n.value.strip("`"))
    ]


@pytest.mark.parametrize("folder", _SCANNED)
def test_nothing_but_the_layout_spells_a_project_path(folder):
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if path.relative_to(ROOT).as_posix() != "churn/paths.py":
            found += _path_literals(path)
    assert not found, "spell these with churn.paths.Layout:\n" + "\n".join(found)
