"""Registry and promotion against real MLflow stores: a `mlflow server` on 127.0.0.1 and the default
SQLite file; params.yaml rewrites keep comments; failed promotions change nothing."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import joblib
import pytest
import yaml

from churn import cli, data, promotion, registry, tracking
from churn.io import file_md5
from churn.params import ParamsError

pytestmark = pytest.mark.slow

#: A spec unlike either model in params.yaml, to write into it.
OTHER_SPEC = {"estimator": "logistic_regression", "params": {"C": 0.5, "max_iter": 500}}


def _params_text(root: Path, registered_model: str) -> str:
    """The repository's params.yaml (comments and all), naming a test-specific registered model."""
    text = (root / "params.yaml").read_text()
    assert "registered_model: churn-model\n" in text
    return text.replace("registered_model: churn-model\n", f"registered_model: {registered_model}\n")


def _log_pair(workdir: Path, fitted, example, store_root: Path | None = None) -> dict[str, tuple[str, str]]:
    """Log a champion and a challenger `report` run; {name: (run_id, model_md5)}."""
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    out = {}
    for name in ("champion", "challenger"):
        path = workdir / "models" / f"{name}.joblib"
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"pipeline": fitted, "name": name, "salt": uuid.uuid4().hex}, path)  # unique md5
        md5 = file_md5(path)
        spec = params["models"][name]
        with registry.quiet_mlflow_logs():
            run_id = tracking.log_model_run(
                model_name=name,
                pipeline=fitted,
                spec=spec,
                metrics={"test": {"accuracy": 0.8 if name == "challenger" else 0.77, "roc_auc": 0.83}},
                example=example,
                tags={
                    **tracking.run_tags(name, "0" * 32, workdir),
                    **registry.report_tags(md5, spec, True, "promote"),
                },
                experiment="churn",
                root=store_root or workdir,
            )
        out[name] = (run_id, md5)
    return out


@pytest.fixture(scope="module")
def example(prepared):
    return data.xy(prepared[1])[0].head(5)


@pytest.fixture(scope="module")
def default_store(tmp_path_factory, fitted, example, root):
    """A workspace whose MLflow store is the default one: sqlite:///<workspace>/mlflow.db."""
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    workdir = tmp_path_factory.mktemp("default-store")
    mp.chdir(workdir)  # MLflow's default artifact root is ./mlruns
    (workdir / "params.yaml").write_text((root / "params.yaml").read_text())
    runs = _log_pair(workdir, fitted, example)
    assert registry.tracking_uri(workdir) == f"sqlite:///{workdir / 'mlflow.db'}"
    yield workdir, runs
    mp.undo()


def _workspace(tmp_path: Path, store: Path, root: Path, name: str) -> Path:
    """A fresh project dir (params.yaml naming `name`, the store's models) sharing the store's mlflow.db."""
    shutil.copytree(store / "models", tmp_path / "models")
    (tmp_path / "params.yaml").write_text(_params_text(root, name))
    (tmp_path / "mlflow.db").symlink_to(store / "mlflow.db")
    return tmp_path


def _aliases(name: str, root: Path) -> dict[str, str]:
    return registry.aliases(registry.client(root), name)


# -- params.yaml rewrite ---------------------------------------------------------------------------


def test_replace_model_spec_changes_only_that_block(root):
    text = (root / "params.yaml").read_text()
    new = promotion.replace_model_spec(text, "champion", OTHER_SPEC)
    before, after = yaml.safe_load(text), yaml.safe_load(new)
    assert after["models"]["champion"] == OTHER_SPEC
    assert {k: v for k, v in after.items() if k != "models"} == {
        k: v for k, v in before.items() if k != "models"
    }
    assert after["models"]["challenger"] == before["models"]["challenger"]
    comments = [line for line in text.splitlines() if line.strip().startswith("#") or " # " in line]
    new_lines = new.splitlines()
    assert comments and all(c in new_lines for c in comments)
    # and back again: byte for byte the original file
    assert promotion.replace_model_spec(new, "champion", before["models"]["champion"]) == text


def test_replace_model_spec_refuses_what_it_cannot_edit_safely():
    flow = "models:\n  champion: {estimator: random_forest}\n  challenger:\n    estimator: x\n"
    with pytest.raises(ParamsError, match="'models.champion' must be a block mapping"):
        promotion.replace_model_spec(flow, "champion", OTHER_SPEC)
    with pytest.raises(ParamsError, match="no top-level 'models:' section"):
        promotion.replace_model_spec("base:\n  seed: 1\n", "champion", OTHER_SPEC)


def test_check_promotion_rules():
    good_v, good_ab = {"approved": True, "model_md5": "abc"}, {"recommendation": "promote", "reasons": []}
    assert "approved" in promotion.check_promotion(good_v, good_ab, force=False, reason="", model_md5="abc")
    bad_v = {"approved": False, "failed": ["fairness.gender.accuracy_gap"], "model_md5": "abc"}
    bad_ab = {"recommendation": "inconclusive", "reasons": ["no significant accuracy difference"]}
    with pytest.raises(registry.RegistryError, match="failed gates: fairness.gender.accuracy_gap") as info:
        promotion.check_promotion(bad_v, bad_ab, force=False, reason="", model_md5="abc")
    assert "recommends 'inconclusive' (no significant accuracy difference)" in str(info.value)
    with pytest.raises(registry.RegistryError, match="built for another challenger model"):
        promotion.check_promotion(good_v, good_ab, force=False, reason="", model_md5="def")
    with pytest.raises(registry.RegistryError, match="--force needs --reason"):
        promotion.check_promotion(bad_v, bad_ab, force=True, reason="  ", model_md5="abc")
    assert (
        promotion.check_promotion(bad_v, bad_ab, force=True, reason="hotfix", model_md5="abc")
        == "forced: hotfix"
    )
    with pytest.raises(registry.RegistryError, match="hash is unknown"):  # a version without a model_md5 tag
        promotion.check_promotion(good_v, good_ab, force=False, reason="", model_md5=None)


# -- round trips on real stores --------------------------------------------------------------------


def test_promotion_round_trip_on_mlflow_server(mlflow_server, fitted, example, tmp_path, monkeypatch, root):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    name = "churn-server-round-trip"
    (tmp_path / "params.yaml").write_text(_params_text(root, name))
    original = (tmp_path / "params.yaml").read_text()
    runs = _log_pair(tmp_path, fitted, example)
    set_ = promotion.register_candidates({n: r for n, (r, _) in runs.items()}, name, tmp_path)
    assert set_ == {"champion": "1", "challenger": "2"}
    assert _aliases(name, tmp_path) == {"champion": "1", "challenger": "2"}

    result = promotion.promote(
        registered_model=name,
        params_path=tmp_path / "params.yaml",
        model_md5=runs["challenger"][1],
        reason="approved",
        root=tmp_path,
    )
    assert (result["version"], result["previous_champion"]) == ("2", "1")
    assert _aliases(name, tmp_path) == {"champion": "2"}  # archived is a status, not an alias
    # the next report of the same (now production) model sets no challenger alias
    assert promotion.register_candidates({"challenger": runs["challenger"][0]}, name, tmp_path) == {}
    promoted = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert promoted["models"]["champion"] == yaml.safe_load(original)["models"]["challenger"]
    assert "# champion: the production model's spec." in (tmp_path / "params.yaml").read_text()
    listed = registry.list_versions(name, tmp_path)
    assert [(r["version"], r["status"], r["aliases"], r["model_name"]) for r in listed] == [
        ("2", "champion", ["champion"], "challenger"),
        ("1", "archived", [], "champion"),
    ]
    assert listed[0]["accuracy"] == 0.8
    assert [(e["status"], e["why"], e["forced"]) for e in listed[0]["history"]] == [
        ("challenger", "the pipeline's challenger at the committed dvc.lock", False),
        ("champion", "approved", False),
    ]
    assert [e["status"] for e in listed[1]["history"]] == ["champion", "archived"]
    assert listed[1]["history"][1]["why"] == "replaced as champion by version 2"

    # a rollback: promote version 1 again; version 2's history keeps its champion days
    promotion.promote(
        registered_model=name,
        params_path=tmp_path / "params.yaml",
        version="1",
        reason="rollback",
        root=tmp_path,
    )
    assert _aliases(name, tmp_path) == {"champion": "1"}
    assert (tmp_path / "params.yaml").read_text() == original
    statuses = {
        r["version"]: [e["status"] for e in r["history"]] for r in registry.list_versions(name, tmp_path)
    }
    assert statuses == {
        "1": ["champion", "archived", "champion"],
        "2": ["challenger", "champion", "archived"],
    }


def test_promote_command_on_default_sqlite_store(default_store, tmp_path, monkeypatch, capsys, root):
    store, runs = default_store
    work = _workspace(tmp_path, store, root, "churn-cli")
    monkeypatch.chdir(work)
    challenger_md5 = runs["challenger"][1]
    promotion.register_candidates({n: r for n, (r, _) in runs.items()}, "churn-cli")
    (work / "metrics").mkdir()
    verdict = {"approved": True, "failed": [], "model_md5": challenger_md5, "gates": {}}
    (work / "metrics/validation.json").write_text(json.dumps(verdict))
    (work / "metrics/ab_test.json").write_text(
        json.dumps({"recommendation": "inconclusive", "reasons": ["n/s"]})
    )
    original = (work / "params.yaml").read_bytes()

    assert cli.main(["promote"]) == 1
    assert "promotion refused: the A/B test recommends 'inconclusive' (n/s)" in capsys.readouterr().err
    assert cli.main(["promote", "--force"]) == 1
    assert "--force needs --reason" in capsys.readouterr().err
    assert (work / "params.yaml").read_bytes() == original
    assert _aliases("churn-cli", work) == {"champion": "1", "challenger": "2"}

    assert cli.main(["promote", "--force", "--reason", "retention campaign starts Monday"]) == 0
    out = capsys.readouterr().out
    assert "churn-cli version 2 is now the champion; version 1 archived." in out
    assert _aliases("churn-cli", work) == {"champion": "2"}
    assert (
        yaml.safe_load((work / "params.yaml").read_text())["models"]["champion"]["estimator"]
        == (yaml.safe_load(original)["models"]["challenger"]["estimator"])
    )
    event = registry.history(registry.client(work).get_model_version("churn-cli", "2").tags)[-1]
    assert event["why"] == "forced: retention campaign starts Monday" and event["forced"] is True
    assert event["status"] == "champion" and event["by"] == registry.current_user()

    assert cli.main(["registry"]) == 0
    table = capsys.readouterr().out
    assert "churn-cli at sqlite:///" in table and "archived" in table and "champion" in table
    assert "champion by " + registry.current_user() + " (forced): retention campaign starts Monday" in table

    # bad input: a version that does not exist, a registered model that does not exist
    assert cli.main(["promote", "--version", "7", "--force", "--reason", "x"]) == 1
    assert "churn-cli has no version '7' (versions: 1, 2)" in capsys.readouterr().err
    assert _aliases("churn-cli", work) == {"champion": "2"}
    (work / "params.yaml").write_text((work / "params.yaml").read_text().replace("churn-cli", "churn-nobody"))
    assert cli.main(["promote", "--version", "1", "--force", "--reason", "x"]) == 1
    assert "no registered model 'churn-nobody'" in capsys.readouterr().err


def test_failed_promotion_restores_aliases_tags_and_params(default_store, tmp_path, monkeypatch, root):
    from mlflow import MlflowClient

    store, runs = default_store
    work = _workspace(tmp_path, store, root, "churn-rollback")
    promotion.register_candidates({n: r for n, (r, _) in runs.items()}, "churn-rollback", work)
    before = _aliases("churn-rollback", work)
    original = (work / "params.yaml").read_bytes()

    real_tag = MlflowClient.set_model_version_tag

    def fail_on_archive(self, name, version, key, value):  # the registry breaks half-way through
        if key == registry.STATUS_TAG and value == "archived":
            raise ConnectionError("registry went away")
        return real_tag(self, name, version, key, value)

    before_tags = {
        v: dict(registry.client(work).get_model_version("churn-rollback", v).tags) for v in ("1", "2")
    }
    monkeypatch.setattr(MlflowClient, "set_model_version_tag", fail_on_archive)
    with pytest.raises(registry.RegistryError, match="registry went away.*aliases restored") as info:
        promotion.promote(
            registered_model="churn-rollback",
            params_path=work / "params.yaml",
            model_md5=runs["challenger"][1],
            reason="x",
            root=work,
        )
    assert "unchanged" in str(info.value)
    monkeypatch.undo()
    assert _aliases("churn-rollback", work) == before == {"champion": "1", "challenger": "2"}
    assert (work / "params.yaml").read_bytes() == original
    after_tags = {
        v: dict(registry.client(work).get_model_version("churn-rollback", v).tags) for v in ("1", "2")
    }
    assert after_tags == before_tags  # the history tag written before the failure is put back


def test_unreachable_registry_changes_nothing(default_store, tmp_path, monkeypatch, capsys, root):
    import socket

    store, runs = default_store
    work = _workspace(tmp_path, store, root, "churn-unreachable")
    promotion.register_candidates({n: r for n, (r, _) in runs.items()}, "churn-unreachable", work)
    before = _aliases("churn-unreachable", work)
    original = (work / "params.yaml").read_bytes()
    (work / "metrics").mkdir()
    (work / "metrics/validation.json").write_text(
        json.dumps({"approved": True, "model_md5": runs["challenger"][1]})
    )
    (work / "metrics/ab_test.json").write_text(json.dumps({"recommendation": "promote"}))

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.chdir(work)
    assert cli.main(["promote"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("churn ")]
    assert len(lines) == 1
    assert lines[0].startswith(f"churn promote: cannot use the MLflow registry at http://127.0.0.1:{port}")
    assert cli.main(["registry"]) == 1
    assert (work / "params.yaml").read_bytes() == original
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert _aliases("churn-unreachable", work) == before


def test_set_status_never_relabels_the_champion(default_store, tmp_path, root):
    store, runs = default_store
    work = _workspace(tmp_path, store, root, "churn-labels")
    promotion.register_candidates({n: r for n, (r, _) in runs.items()}, "churn-labels", work)
    with pytest.raises(registry.RegistryError, match="version 1 is the champion"):
        promotion.set_status("churn-labels", "1", "archived", root=work)
    promotion.set_status("churn-labels", "2", "archived", root=work, by="alice", reason="stale")
    assert _aliases("churn-labels", work) == {"champion": "1"}  # no longer a challenger
    row = next(r for r in registry.list_versions("churn-labels", work) if r["version"] == "2")
    assert row["status"] == "archived" and row["history"][-1]["by"] == "alice"
    assert row["history"][-1]["why"] == "stale"
    promotion.set_status("churn-labels", "2", "challenger", root=work)  # back as the candidate
    assert _aliases("churn-labels", work) == {"champion": "1", "challenger": "2"}
    with pytest.raises(registry.RegistryError, match="the champion changes only by promotion"):
        promotion.set_status("churn-labels", "2", "champion", root=work)
    with pytest.raises(registry.RegistryError, match="must be 'challenger' or 'archived'"):
        promotion.set_status("churn-labels", "2", "production", root=work)
    with pytest.raises(registry.RegistryError, match="has no version '9'"):
        promotion.set_status("churn-labels", "9", "challenger", root=work)
    with pytest.raises(registry.RegistryError, match="no registered model 'churn-missing'"):
        promotion.set_status("churn-missing", "1", "challenger", root=work)
