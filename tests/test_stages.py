"""Each stage's main(argv) on a small synthetic input in a temporary directory."""

from __future__ import annotations

import json

import joblib
import pandas as pd
import pytest
import yaml

from churn import schema
from churn.data import DataError
from churn.params import ParamsError
from stages import evaluate, prepare, synthesize, train


@pytest.fixture()
def workdir(tmp_path, monkeypatch, root):
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["synthesize"]["rows"] = 1200
    params["train"]["cv_folds"] = 2
    for spec in params["models"].values():  # fewer trees for the forests among the specs
        if "n_estimators" in spec.get("params", {}):
            spec["params"]["n_estimators"] = 20
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _set(path, key, value):
    params = yaml.safe_load(path.read_text())
    node = params
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    path.write_text(yaml.safe_dump(params))


def test_stages_chain(workdir):
    synthesize.main(["--out", "data/raw/synthetic.csv"])
    raw = pd.read_csv("data/raw/synthetic.csv", dtype=str, keep_default_na=False)
    assert list(raw.columns) == list(schema.COLUMNS) and len(raw) == 1200

    prepare.main([])
    summary = json.loads((workdir / "metrics/data.json").read_text())
    assert summary["rows"]["total"] == 1200 and summary["rows"]["test"] == 240
    assert summary["input"]["path"] == "data/raw/synthetic.csv" and len(summary["input"]["md5"]) == 32

    for name in ("champion", "challenger"):
        train.main(["--name", name])
        report = json.loads((workdir / f"metrics/train/{name}.json").read_text())
        assert report["cv_folds"] == 2 and 0.5 < report["cv"]["roc_auc"]["mean"] <= 1
        assert hasattr(joblib.load(f"models/{name}.joblib"), "predict_proba")
        evaluate.main(["--name", name, "--no-mlflow"])
        scores = json.loads((workdir / f"metrics/evaluate/{name}.json").read_text())
        assert set(scores) >= {
            "accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "pr_auc",
            "log_loss",
            "brier",
        }
        assert scores["n"] == 240
        money = scores["economics"]
        assert money["campaigns"]["contact_all"]["contacted"] == 240
        profit = json.loads((workdir / f"metrics/plots/{name}/profit.json").read_text())
        assert max(p["profit"] for p in profit) == pytest.approx(money["mp"] * 240, abs=0.05)
        card = {
            rel: json.loads((workdir / f"metrics/scorecard/{rel}/{name}.json").read_text())
            for rel in ("train", "evaluate")
        }
        assert card["train"] == {name: {"cv": {"roc_auc": report["cv"]["roc_auc"]["mean"]}}}
        assert card["evaluate"] == {name: {"roc_auc": scores["roc_auc"]}}
        c = scores["confusion"]
        assert c["tn"] + c["fp"] + c["fn"] + c["tp"] == 240
        plots = workdir / "metrics/plots" / name
        assert sorted(p.name for p in plots.iterdir()) == [
            "calibration.json",
            "confusion.json",
            "importance.json",
            "precision_recall.json",
            "profit.json",
            "roc.json",
        ]
        assert len(json.loads((plots / "confusion.json").read_text())) == 240


def test_prepare_bad_raw_path_names_key(workdir):
    _set(workdir / "params.yaml", "data.raw", "data/raw/missing.csv")
    with pytest.raises(
        DataError, match=r"data/raw/missing.csv: input file not found \(check params.yaml: data.raw\)"
    ):
        prepare.main([])
    assert not (workdir / "metrics").exists() and not (workdir / "data/prepared").exists()


def test_prepare_broken_csv_writes_nothing(workdir):
    bad = workdir / "bad.csv"
    bad.write_text("customerID,gender\n0001-ABCDE,Robot\n")
    _set(workdir / "params.yaml", "data.raw", str(bad))
    with pytest.raises(Exception, match="bad.csv: .* schema problem") as info:
        prepare.main([])
    assert "column 'tenure': is missing" in str(info.value)
    assert not (workdir / "data/prepared").exists()


def test_train_unknown_estimator_and_hyperparameter(workdir):
    synthesize.main([])
    prepare.main([])
    _set(workdir / "params.yaml", "models.challenger", {"estimator": "svm", "params": {}})
    with pytest.raises(ParamsError, match=r"models.challenger.estimator: must be one of .* \(got 'svm'\)"):
        train.main(["--name", "challenger"])
    _set(workdir / "params.yaml", "models.challenger", {"estimator": "random_forest", "params": {"depth": 3}})
    with pytest.raises(
        ParamsError, match=r"models.challenger.params.depth: unknown hyperparameter of random_forest"
    ):
        train.main(["--name", "challenger"])
    with pytest.raises(ParamsError, match="params.yaml: models.nobody: is missing"):
        train.main(["--name", "nobody"])
    assert not (workdir / "models").exists()
