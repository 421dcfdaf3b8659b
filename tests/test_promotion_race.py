"""Two promotions at once (the app's champion button in two threads, and the CLI in another process)
leave params.yaml and the registry's champion alias agreeing: promotion runs under a file lock."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
import yaml

from app.registry import set_alias
from app.state import AppState
from churn import registry

pytestmark = pytest.mark.slow

TRIALS = 12


def _agree(root) -> tuple[str, dict, dict]:
    """(champion version, its spec, params.yaml's models.champion)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    name = params["mlflow"]["registered_model"]
    mlflow_client = registry.client(root)
    champion = registry.aliases(mlflow_client, name)["champion"]
    spec = json.loads(mlflow_client.get_model_version(name, champion).tags["model_spec"])
    return champion, spec, params["models"]["champion"]


def test_concurrent_app_promotions_leave_params_and_aliases_agreeing(private_project):
    with private_project("race") as root:
        state = AppState(root, "champion", None)
        versions = [r["version"] for r in registry.list_versions("churn-model", root)]
        assert sorted(versions) == ["1", "2"]
        outcomes = []
        for trial in range(TRIALS):
            barrier = threading.Barrier(2)
            results: dict[str, str] = {}

            def promote(version: str, results=results, barrier=barrier, trial=trial) -> None:
                barrier.wait()
                try:
                    results[version] = set_alias(state, version, "champion", f"race {trial}", True)
                except registry.RegistryError as exc:  # pragma: no cover - reported below
                    results[version] = f"refused: {exc}"

            threads = [threading.Thread(target=promote, args=(v,)) for v in ("1", "2")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=120)
            assert all("is now the **champion**" in m for m in results.values()), results
            champion, spec, written = _agree(root)
            outcomes.append(champion)
            assert written == spec, (
                f"trial {trial}: params.yaml holds {written}, champion v{champion} is {spec}"
            )
        # both orders happened or not, every trial ended consistent; the history kept every event
        rows = {r["version"]: r for r in registry.list_versions("churn-model", root)}
        champions = sum(e["status"] == "champion" for r in rows.values() for e in r["history"])
        assert champions == 1 + 2 * TRIALS  # the first champion, then two promotions per trial
        assert all(
            e["forced"] and e["by"] == "app"
            for r in rows.values()
            for e in r["history"][1:]
            if e["status"] == "champion"
        )


def test_cli_and_app_promotions_at_once_agree(private_project, env_for):
    """A `churn promote --version` process racing the app's thread: the lock holds across processes."""
    with private_project("race-cli") as root:
        state = AppState(root, "champion", None)
        env = env_for(MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}")
        for trial in range(4):
            cli = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "churn",
                    "promote",
                    "--version",
                    "2",
                    "--force",
                    "--reason",
                    f"cli {trial}",
                ],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            message = set_alias(state, "1", "champion", f"app {trial}", True)
            out, err = cli.communicate(timeout=180)
            assert cli.returncode == 0, err
            assert "is now the champion" in out and "is now the **champion**" in message
            champion, spec, written = _agree(root)
            assert written == spec, f"trial {trial}: params.yaml {written} vs champion v{champion} {spec}"
