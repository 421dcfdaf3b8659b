"""`churn --help` and every `churn <command> --help` import no heavy library (each command imports its own)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

#: Libraries a parser must not load: each costs a large part of a second or more to import.
HEAVY = ("numpy", "pandas", "sklearn", "scipy", "pyarrow", "joblib", "mlflow", "sqlalchemy", "shap", "gradio")
HEAVY += ("pyspark",)  # `churn predict --engine spark` imports it only when it runs

#: Builds the parser, prints every command path's help, and reports which heavy modules got loaded.
PROBE = textwrap.dedent(
    """
    import argparse, contextlib, io, json, sys
    from churn import cli

    def paths(parser, prefix):
        yield prefix
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from paths(sub, [*prefix, name])

    seen = []
    for path in paths(cli.build_parser(), []):
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            cli.main([*path, "--help"])
        assert "usage: churn" in out.getvalue(), path
        seen.append(" ".join(path))
    heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[1:]))
    print(json.dumps({"paths": seen, "heavy": heavy}))
    """
)


def _imported(importtime_stderr: str) -> set[str]:
    """Top-level package names from a `python -X importtime` report."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name.split(".")[0])
    return names


def test_every_help_path_builds_without_heavy_imports(root):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *HEAVY], cwd=root, capture_output=True, text=True, check=True
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"", "synth", "predict", "report", "monitor", "monitor simulate"} <= set(report["paths"])
    assert report["heavy"] == []


def test_the_console_entry_point_help_imports_no_heavy_library(root):
    for args in (["--help"], ["predict", "--help"], ["monitor", "simulate", "--help"]):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "churn", *args],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "usage: churn" in proc.stdout
        imported = _imported(proc.stderr)
        assert "churn" in imported  # the report is read right
        assert not imported & set(HEAVY), args


def test_a_command_that_runs_still_gets_its_libraries(tmp_path, root):
    """The probe above could pass by never importing anything: a real command loads what it needs."""
    out = tmp_path / "few.csv"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "churn", "synth", "--rows", "20", "-o", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.exists() and {"numpy", "pandas"} <= _imported(proc.stderr)
