"""dvc.yaml stays honest: every stage lists the code it imports and whole params sections."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _module_file(module: str) -> Path | None:
    path = ROOT / (module.replace(".", "/") + ".py")
    if path.exists():
        return path
    init = ROOT / module.replace(".", "/") / "__init__.py"
    return init if init.exists() else None


def _imports(path: Path) -> set[str]:
    """Top-level and function-level imports of project modules (churn.*, stages.*) in a file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in ("churn", "stages") and _module_file(m)}


def code_closure(module: str) -> set[str]:
    """Repository-relative paths of every project module a module imports, transitively."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        path = _module_file(todo.pop())
        rel = path.relative_to(ROOT).as_posix()
        if rel in seen:
            continue
        seen.add(rel)
        todo += sorted(_imports(path))
    # package __init__ files without code are not meaningful deps
    return {p for p in seen if not (p.endswith("__init__.py") and not _has_code(ROOT / p))}


def _has_code(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(not isinstance(n, ast.Expr | ast.Import | ast.ImportFrom | ast.Assign) for n in tree.body)


def _stages() -> dict[str, dict]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: stage.get("do", stage) for name, stage in spec.items()}


STAGES = _stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_all_code_it_imports(name):
    stage = STAGES[name]
    match = re.search(r"python -m (stages\.\w+)", stage["cmd"])
    assert match, f"stage {name}: cmd must be `python -m stages.<name>`"
    needed = code_closure(match.group(1))
    deps = set(stage.get("deps", []))
    missing = sorted(needed - deps)
    assert not missing, f"stage {name}: dvc.yaml deps miss {missing}"
    listed_code = {d for d in deps if d.endswith(".py")}
    stale = sorted(listed_code - needed)
    assert not stale, f"stage {name}: dvc.yaml lists code it does not import: {stale}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_declares_whole_params_sections(name):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for entry in STAGES[name].get("params", []):
        assert isinstance(entry, str), f"stage {name}: params entries must be section names"
        top = entry.split(".")[0]
        assert top in params, f"stage {name}: params section '{entry}' not in params.yaml"
        if "." in entry:
            assert entry == "models.${key}", f"stage {name}: declare whole sections, not '{entry}'"


def test_stage_names_match_scripts():
    for name, stage in STAGES.items():
        script = re.search(r"python -m stages\.(\w+)", stage["cmd"]).group(1)
        assert script == name.replace("-", "_"), f"stage {name} runs stages.{script}"
