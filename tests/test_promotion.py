"""promotion: `check_promotion`'s refusals, `replace_model_spec`'s text edits, and `promote_checked`
with `--version` held against the verdicts' model hash (a real SQLite MLflow store in tmp)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from churn import promotion, registry
from churn.params import ParamsError
from churn.registry import RegistryError

GOOD_AB = {"recommendation": "promote", "reasons": []}
SPEC = {"estimator": "logistic_regression", "params": {"C": 0.25}}
MD5_A, MD5_B = "a" * 32, "b" * 32


# -- check_promotion -------------------------------------------------------------------------------


def test_every_problem_is_named_in_one_refusal():
    validation = {"approved": False, "failed": [], "model_md5": MD5_B}
    ab = {"recommendation": "keep", "reasons": ["champion is better", "p=0.01"]}
    with pytest.raises(RegistryError) as info:
        promotion.check_promotion(validation, ab, force=False, reason="", model_md5=MD5_A)
    message = str(info.value)
    assert message.startswith("promotion refused: metrics/validation.json was built for another")
    assert f"md5 {MD5_B}, the file now has {MD5_A}" in message
    assert "failed gates: none listed" in message
    assert "recommends 'keep' (champion is better; p=0.01)" in message
    assert message.endswith('Override with --force --reason "…"')


def test_a_verdict_without_a_model_hash_is_refused_when_the_hash_is_known():
    with pytest.raises(RegistryError, match=r"another challenger model \(md5 None"):
        promotion.check_promotion({"approved": True}, GOOD_AB, force=False, reason="", model_md5=MD5_A)


def test_an_approved_promotion_keeps_the_callers_reason_stripped():
    validation = {"approved": True, "model_md5": MD5_A}
    why = promotion.check_promotion(validation, GOOD_AB, force=False, reason="  Q3 review ", model_md5=MD5_A)
    assert why == "Q3 review"


def test_a_missing_ab_test_is_a_refusal_not_a_pass():
    with pytest.raises(RegistryError, match="recommends 'None'"):
        promotion.check_promotion(
            {"approved": True, "model_md5": MD5_A}, {}, force=False, reason="", model_md5=MD5_A
        )


def test_a_model_of_unknown_hash_is_refused_unless_forced():
    # a registry version registered by hand has no model_md5 tag: no verdict can be matched to it
    approved = {"approved": True, "model_md5": MD5_A}
    with pytest.raises(RegistryError, match="hash is unknown"):
        promotion.check_promotion(approved, GOOD_AB, force=False, reason="", model_md5=None)
    assert promotion.check_promotion(approved, GOOD_AB, force=True, reason="rollback", model_md5=None) == (
        "forced: rollback"
    )


# -- replace_model_spec ----------------------------------------------------------------------------

PARAMS = """\
base:
  seed: 1   # the seed
models:  # the specs
    # the production model
    champion:   # rewritten by promote
        estimator: random_forest

        params:
            n_estimators: 10   # small
    # the candidate
    challenger:
        estimator: logistic_regression
mlflow:
  experiment: churn
"""


def test_the_block_is_replaced_in_place_and_the_comments_around_it_kept():
    new = promotion.replace_model_spec(PARAMS, "champion", SPEC)
    assert yaml.safe_load(new)["models"]["champion"] == SPEC
    assert new.startswith("base:\n  seed: 1   # the seed\nmodels:  # the specs\n    # the production model\n")
    block = "    champion:   # rewritten by promote\n      estimator: logistic_regression\n      params:\n        C: 0.25\n"
    assert block + "    # the candidate\n    challenger:\n        estimator: logistic_regression\n" in new
    assert new.endswith("mlflow:\n  experiment: churn\n")
    assert "n_estimators" not in new


def test_the_last_model_before_the_next_section_is_replaced():
    new = promotion.replace_model_spec(PARAMS, "challenger", SPEC)
    after = yaml.safe_load(new)
    assert after["models"]["challenger"] == SPEC
    assert after["mlflow"] == {"experiment": "churn"}
    assert new.split("    challenger:\n")[0] == PARAMS.split("    challenger:\n")[0]


def test_a_nested_key_with_the_models_name_is_never_rewritten():
    text = "models:\n  challenger:\n    params:\n      champion:\n        depth: 3\n  champion:\n    estimator: x\n"
    new = promotion.replace_model_spec(text, "champion", SPEC, source="p.yaml")
    params = yaml.safe_load(new)
    assert params["models"]["champion"] == SPEC  # the model's own key, at the models' indentation
    assert params["models"]["challenger"] == {"params": {"champion": {"depth": 3}}}
    assert new.startswith(
        "models:\n  challenger:\n    params:\n      champion:\n        depth: 3\n  champion:\n"
    )


def test_a_missing_model_or_an_anchor_is_refused_with_the_source_named():
    with pytest.raises(ParamsError, match=r"^p.yaml: 'models.champion' must be a block mapping"):
        promotion.replace_model_spec("models:\n  challenger:\n    estimator: x\n", "champion", SPEC, "p.yaml")
    anchored = "models:\n  champion: &c\n    estimator: x\n  challenger: *c\n"
    with pytest.raises(ParamsError, match="must be a block mapping"):
        promotion.replace_model_spec(anchored, "champion", SPEC)


# -- promote_checked with --version -----------------------------------------------------------------


@pytest.fixture()
def project(tmp_path, monkeypatch, root) -> tuple[Path, object]:
    """A project folder (the repo's params.yaml) and its own SQLite registry holding `churn-model`
    version 1 (model hash MD5_A, the champion) and version 2 (MD5_B, the challenger)."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "params.yaml").write_text((root / "params.yaml").read_text())
    name = yaml.safe_load((root / "params.yaml").read_text())["mlflow"]["registered_model"]
    client = registry.client(tmp_path)
    client.create_registered_model(name)
    for md5, spec in ((MD5_A, {"estimator": "random_forest", "params": {}}), (MD5_B, SPEC)):
        source = tmp_path / "artifacts" / md5[:4]
        source.mkdir(parents=True)
        client.create_model_version(
            name, source=str(source), tags={"model_md5": md5, "model_spec": json.dumps(spec)}
        )
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    return tmp_path, client


def _promote(root: Path, validation: dict, ab_test: dict, **kwargs):
    """`promote_checked` of version 2 in the project `root`."""
    kwargs = {"force": False, "reason": "", "version": "2", "by": "t", **kwargs}
    return promotion.promote_checked(
        validation, ab_test, params_path=root / "params.yaml", root=root, **kwargs
    )


def test_a_version_is_refused_against_verdicts_of_another_model(project):
    root, client = project
    before = (root / "params.yaml").read_bytes()
    validation = {"approved": True, "failed": [], "model_md5": MD5_A}  # the champion's file, not v2's
    with pytest.raises(RegistryError, match=f"md5 {MD5_A}, the file now has {MD5_B}"):
        _promote(root, validation, GOOD_AB)
    assert (root / "params.yaml").read_bytes() == before
    assert registry.aliases(client, "churn-model") == {"champion": "1", "challenger": "2"}


def test_a_version_matching_the_verdicts_is_promoted_and_params_rewritten(project):
    root, client = project
    validation = {"approved": True, "failed": [], "model_md5": MD5_B}
    result = _promote(root, validation, GOOD_AB)
    assert (result["version"], result["previous_champion"], result["params_changed"]) == ("2", "1", True)
    assert yaml.safe_load((root / "params.yaml").read_text())["models"]["champion"] == SPEC
    assert registry.aliases(client, "churn-model") == {"champion": "2"}


def test_forcing_a_version_skips_the_verdicts_but_records_the_reason(project):
    root, client = project
    result = _promote(root, {}, {}, force=True, reason="rollback")
    assert result["reason"] == "forced: rollback" and result["forced"] is True
    event = registry.history(client.get_model_version("churn-model", "2").tags)[-1]
    assert event["why"] == "forced: rollback" and event["forced"] is True


def test_promote_checked_needs_a_version_or_a_model_file(project):
    root, _ = project
    with pytest.raises(RegistryError, match="promote needs a version or the challenger model file"):
        _promote(root, {}, {}, force=True, reason="x", version=None)
