"""A DVC remote (a local folder): `dvc push` from a built repository, then a fresh `git clone` gets
the workspace with `make pull`'s script and no retraining; a missing remote is one line, no change."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.fixtures import ROOT

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "scripts" / "pull_or_repro.py"


def _lock_outs(root) -> dict[str, str]:
    """{path: md5} of every output dvc.lock records."""
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    return {o["path"]: o["md5"] for stage in stages.values() for o in stage.get("outs", [])}


@pytest.fixture(scope="module")
def upstream(reproduced_repo, tmp_path_factory, sh, env_for):
    """A repository whose committed `.dvc/config` names a local remote `storage` that holds every
    output of its dvc.lock (pushed from the reproduced copy). Yields (repo, remote folder)."""
    base = tmp_path_factory.mktemp("dvc-remote")
    storage, repo = base / "storage", base / "upstream"
    env = env_for()
    sh(["dvc", "remote", "add", "--local", "-f", "storage", str(storage)], reproduced_repo, env)
    pushed = sh(["dvc", "push", "-r", "storage"], reproduced_repo, env).stdout
    assert "pushed" in pushed, pushed
    sh(["git", "clone", "-q", str(reproduced_repo), str(repo)], base, env)
    sh(["dvc", "remote", "add", "-d", "storage", str(storage)], repo, env)
    sh(["git", "commit", "-qam", "DVC remote"], repo, env)
    return repo, storage


def _pull(root, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )


def test_a_fresh_clone_pulls_the_workspace_without_retraining(upstream, tmp_path, sh, env_for):
    repo, _ = upstream
    clone = tmp_path / "clone"
    env = env_for(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    sh(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    assert not (clone / "models").exists()

    proc = _pull(clone, env, "--strict")
    assert proc.returncode == 0, proc.stderr
    assert "pulled the pipeline's outputs from DVC remote 'storage'" in proc.stdout
    assert "Running stage" not in proc.stdout and "didn't change" in proc.stdout  # no stage ran
    assert json.loads(sh(["dvc", "status", "--json"], clone, env).stdout) == {}
    for path, md5 in _lock_outs(clone).items():
        if (clone / path).is_file():
            assert sh(["md5sum", path], clone, env).stdout.split()[0] == md5, path
    assert {"models/champion.joblib", "models/challenger.joblib"} <= set(_lock_outs(clone))
    assert (clone / "models/champion.joblib").is_file() and (clone / "data/prepared/test.parquet").is_file()
    assert sh(["git", "status", "--porcelain"], clone, env).stdout == ""


@pytest.mark.parametrize("case", ["missing folder", "unknown name"])
def test_a_remote_that_does_not_exist_is_one_line_and_changes_nothing(upstream, tmp_path, sh, env_for, case):
    repo, storage = upstream
    clone = tmp_path / "clone"
    env = env_for()
    sh(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)
    if case == "missing folder":
        gone = tmp_path / "no-such-storage"
        sh(["dvc", "remote", "modify", "--local", "storage", "url", str(gone)], clone, env)
        args, expected = (), f"pull-or-repro: DVC remote 'storage' ({gone}): the folder {gone} does not exist"
    else:
        args, expected = (
            ("--remote", "backup"),
            "pull-or-repro: no DVC remote named 'backup' (configured: storage)",
        )
    before = sorted(p.relative_to(clone) for p in clone.rglob("*") if ".git" not in p.parts)

    proc = _pull(clone, env, *args)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    after = sorted(p.relative_to(clone) for p in clone.rglob("*") if ".git" not in p.parts)
    assert [p for p in after if p not in before and p.parts[0] != ".dvc"] == []  # nothing pulled or built
    assert not (clone / "models").exists() and storage.is_dir()
