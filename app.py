"""Entry point for the container and Hugging Face Spaces: build the models if missing, then `python -m app`."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("app.entry")

ROOT = Path(__file__).resolve().parent


def pipeline_command(root: Path = ROOT) -> list[list[str]]:
    """The commands that build the models: `dvc repro`, told to work without git in a bare checkout."""
    dvc = [sys.executable, "-m", "dvc"]
    commands = [] if (root / ".git").exists() else [[*dvc, "config", "--local", "core.no_scm", "true"]]
    return [*commands, [*dvc, "repro"]]


def ensure_models(root: Path = ROOT) -> None:
    """Run the pipeline once when the champion model is missing (a Space built from a fresh clone)."""
    if (root / "models" / "champion.joblib").exists():
        return
    log.info("no model in %s/models: running the pipeline first", root)
    for cmd in pipeline_command(root):
        subprocess.run(cmd, cwd=root, check=True)


def main(argv: list[str] | None = None) -> int:
    """Start the Gradio app exactly as `python -m app` does; binding comes from GRADIO_SERVER_NAME."""
    import app  # the package app/ (a package wins over this module of the same name)

    if not hasattr(app, "__path__"):
        raise SystemExit(f"the Gradio app package is missing: expected {ROOT / 'app' / '__init__.py'}")
    from churn.io import configure_logging

    app.quiet()  # telemetry off, for the pipeline run too
    configure_logging()
    ensure_models()
    args = sys.argv[1:] if argv is None else argv
    return int(app.main(["--root", str(ROOT), *args]) or 0)  # the project beside this file; --root overrides


if __name__ == "__main__":
    sys.exit(main())
