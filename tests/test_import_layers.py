"""Imports run downhill: the import-linter contract in pyproject.toml holds, covers every module, and bites."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("churn", "app", "stages")
#: Packages whose `__init__` only holds a docstring (and a version): containers, not layer members.
CONTAINERS = {"churn", "churn.monitoring"}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def layers() -> list[list[str]]:
    """The contract's layers, top first, each as its module names (optional ones unwrapped)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "layers"]
    out = []
    for layer in contract["layers"]:
        sep = "|" if "|" in layer else ":"
        out.append([name.strip().strip("()") for name in layer.split(sep)])
    return out


def modules(root: Path) -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_contract_is_kept():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 1 kept, 0 broken." in proc.stdout


def test_layers_run_faces_then_orchestration_then_domain_then_ground():
    level = {name: i for i, layer in enumerate(layers()) for name in layer}
    faces = ("churn.cli", "churn.commands", "app", "stages")
    orchestration = ("churn.serving", "churn.tracking", "churn.promotion", "churn.monitoring.monitor")
    domain = ("churn.registry", "churn.abtest", "churn.validation", "churn.monitoring.store", "churn.data")
    ground = ("churn.schema", "churn.io", "churn.redact", "churn.params", "churn.paths")
    for upper, lower in ((faces, orchestration), (orchestration, domain), (domain, ground)):
        assert max(level[m] for m in upper) < min(level[m] for m in lower), (upper, lower)
    # the two arrows issue 12 removed: subcommands under the CLI, the monitor beside serving
    assert level["churn.cli"] < level["churn.commands"]
    assert level["churn.monitoring.monitor"] == level["churn.serving"]


def test_every_module_belongs_to_a_layer():
    listed = [name for layer in layers() for name in layer]
    missing = [
        m
        for m in modules(ROOT)
        if m not in CONTAINERS and not any(m == n or m.startswith(n + ".") for n in listed)
    ]
    assert not missing, f"add these modules to a layer in pyproject.toml [tool.importlinter]: {missing}"
    for container in CONTAINERS:
        init = ROOT / Path(*container.split(".")) / "__init__.py"
        assert "import " not in init.read_text(), f"{init} imports: list it as a layer instead"


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # ground importing a face
        (
            "churn/schema.py",
            "from churn.cli import main\n",
            "churn.schema is not allowed to import churn.cli",
        ),
        # a lazy import back up counts as much as one at the top
        (
            "churn/monitoring/monitor.py",
            "\n\ndef _predictor():\n    from churn.serving import Predictor\n\n    return Predictor\n",
            "churn.monitoring.monitor is not allowed to import churn.serving",
        ),
        (
            "churn/commands/validation.py",
            "\n\ndef _usage():\n    from churn.cli import main\n\n    return main\n",
            "churn.commands is not allowed to import churn.cli",
        ),
    ],
)
def test_an_arrow_back_up_breaks_the_contract(tmp_path, module, line, broken):
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / module).open("a") as f:
        f.write(line)
    proc = lint_imports(tmp_path)
    assert proc.returncode != 0
    assert "BROKEN" in proc.stdout and broken in proc.stdout, proc.stdout
