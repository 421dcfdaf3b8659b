"""Models load only from trusted places: pipeline models checked against dvc.lock before joblib runs
them; any other file only with `--trust-model` (joblib executes whatever a file holds)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest
import yaml

from churn import cli
from churn.io import UntrustedModelError, file_md5, load_model, read_model
from churn.serving import Predictor


class Payload:
    """A 'model' whose unpickling writes a marker file: what a malicious .joblib does."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def evil_joblib(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(Payload(marker), path)
    return path


def write_lock(root: Path, md5s: dict[str, str]) -> None:
    """A dvc.lock recording `md5s` as the `train@<name>` outputs models/<name>.joblib."""
    stages = {
        f"train@{name}": {"cmd": f"python -m stages.train --name {name}", "outs": [
            {"path": f"models/{name}.joblib", "hash": "md5", "md5": md5, "size": 1}
        ]}
        for name, md5 in md5s.items()
    }  # fmt: skip
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


@pytest.fixture()
def project(serving_root, tmp_path, isolated_env, monkeypatch) -> Path:
    """A private copy of the serving project (params, models, train split), as the working directory."""
    root = tmp_path / "project"
    shutil.copytree(serving_root, root)
    monkeypatch.chdir(root)
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    return root


@pytest.fixture()
def customers(project, synthetic_raw) -> Path:
    path = project / "customers.csv"
    synthetic_raw.head(5).to_csv(path, index=False)
    return path


def test_a_malicious_joblib_never_runs_without_the_trust_flag(project, customers, tmp_path, sh, env_for):
    marker = tmp_path / "marker"
    evil = evil_joblib(project / "downloads" / "evil.joblib", marker)
    out = project / "scored.csv"
    customer = project / "customer.json"
    customer.write_text(pd.read_csv(customers, dtype=str).drop(columns=["Churn"]).iloc[0].to_json())
    env = env_for(CHURN_DB_URL=f"sqlite:///{tmp_path / 'log.db'}")
    for cmd in (
        ["churn", "predict", str(customers), "-o", str(out), "--model", str(evil)],
        ["churn", "explain", str(customer), "--model", str(evil)],
        ["churn", "predict", str(customers), "-o", str(out), "--model", "downloads/evil.joblib"],
    ):
        proc = sh(cmd, cwd=project, env=env, check=False)
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"churn {cmd[1]}: "), proc.stderr
        assert "evil.joblib" in lines[0] and "--trust-model" in lines[0]
        assert "runs any code" in lines[0]
        assert not marker.exists(), "the payload ran before the refusal"
    assert not out.exists()

    # The app refuses it too (python -m app --model …): a problem page, nothing executed
    from app import parse_args
    from app.state import AppState

    assert parse_args(["--model", str(evil), "--trust-model"]).trust_model is True
    state = AppState.load(project, str(evil))
    assert state.predictor is None and "--trust-model" in state.problem
    assert not marker.exists()

    # The flag is what stood between: with it the payload does run (so the test's payload is real)
    assert cli.main(["predict", str(customers), "-o", str(out), "--model", str(evil), "--trust-model"]) == 1
    assert marker.read_text() == "pwned"


def test_a_tampered_pipeline_model_is_refused_against_dvc_lock(project, customers, tmp_path, sh, env_for):
    models = project / "models"
    md5 = {name: file_md5(models / f"{name}.joblib") for name in ("champion", "challenger")}
    write_lock(project, md5)
    assert (
        Predictor.load("challenger", root=project, log=False).model_version == f"md5:{md5['challenger'][:12]}"
    )

    marker = tmp_path / "marker"
    evil_joblib(models / "challenger.joblib", marker)  # swapped in after `dvc repro` recorded the hash
    tampered = file_md5(models / "challenger.joblib")
    for model in ("challenger", "models/challenger.joblib", str(models / "challenger.joblib")):
        with pytest.raises(UntrustedModelError) as err:
            Predictor.load(model, root=project, log=False)
        message = str(err.value)
        assert "models/challenger.joblib" in message and tampered in message and md5["challenger"] in message
        assert "run `dvc repro`" in message and "train@challenger" in message
    assert not marker.exists()

    proc = sh(
        ["churn", "predict", str(customers), "-o", "scored.csv", "--model", "challenger", "--no-log"],
        cwd=project,
        env=env_for(),
        check=False,
    )
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"MD5 {tampered} differs from {md5['challenger']}" in proc.stderr and not marker.exists()

    # A genuine model under the wrong name is refused as well: the hash, not the content, decides
    shutil.copy2(models / "champion.joblib", models / "challenger.joblib")
    with pytest.raises(UntrustedModelError, match=md5["champion"]):
        Predictor.load("challenger", root=project, log=False)
    assert Predictor.load("champion", root=project, log=False).model_name == "champion"


def test_without_dvc_lock_only_the_models_folder_is_trusted(project, tmp_path, caplog):
    assert not (project / "dvc.lock").exists()  # built by calling the stage mains, like the fixtures
    with caplog.at_level("INFO", logger="churn.io"):
        assert Predictor.load("champion", root=project, log=False).model_name == "champion"
    assert "no dvc.lock" in caplog.text and "trusting the project's models/ folder" in caplog.text
    outside = tmp_path / "elsewhere" / "champion.joblib"
    outside.parent.mkdir()
    shutil.copy2(project / "models" / "champion.joblib", outside)
    for where in (outside, project / "champion.joblib", project / "models" / "sub" / "champion.joblib"):
        if where != outside:
            where.parent.mkdir(exist_ok=True)
            shutil.copy2(outside, where)
        with pytest.raises(UntrustedModelError, match="--trust-model"):
            load_model(where, root=project)
    assert Predictor.load(str(outside), root=project, log=False, trust_model=True).model_name == "champion"


def test_a_file_in_models_that_dvc_lock_does_not_record_is_refused(project):
    write_lock(project, {"champion": file_md5(project / "models" / "champion.joblib")})
    shutil.copy2(project / "models" / "champion.joblib", project / "models" / "old.joblib")
    with pytest.raises(UntrustedModelError, match=r"models/old.joblib: dvc.lock records no hash"):
        Predictor.load("old", root=project, log=False)
    assert read_model(project / "models" / "old.joblib", root=project, trust=True)[1] == file_md5(
        project / "models" / "old.joblib"
    )


def test_every_joblib_load_in_the_code_goes_through_the_check(root):
    """Only churn/io.py calls joblib.load; stage scripts pass trust=True for their own outputs."""
    offenders = []
    for folder in ("churn", "app", "stages", "bench", ".ci", "scripts"):
        for path in sorted((root / folder).rglob("*.py")):
            text = path.read_text()
            rel = path.relative_to(root).as_posix()
            if "joblib.load(" in text and rel != "churn/io.py":
                offenders.append(rel)
            if re.search(r"(load_model|read_model)\(.*trust=True", text) and not rel.startswith("stages/"):
                offenders.append(f"{rel} (trust=True outside stages/)")
    assert offenders == [], offenders
    assert sys.modules["churn.io"].TRUST_FLAG == "--trust-model"


def test_a_device_or_an_untrusted_path_is_refused_before_it_is_read(tmp_path):
    """`--model /dev/zero` once read until memory ran out: the place is checked before any byte."""
    from churn.io import UntrustedModelError, read_model

    with pytest.raises(UntrustedModelError, match="not a regular file"):
        read_model("/dev/zero", root=tmp_path)
    outside = tmp_path / "elsewhere.joblib"
    outside.write_bytes(b"x" * 10)
    outside.chmod(0o000)  # unreadable: the refusal must not need to read it
    try:
        with pytest.raises(UntrustedModelError, match="--trust-model"):
            read_model(outside, root=tmp_path / "project")
    finally:
        outside.chmod(0o600)
