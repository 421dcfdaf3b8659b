"""`churn predict --engine spark`: real pyspark in local mode against the local engine, same model and rows."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest

from churn import cli
from churn.economics import money

MODEL = "models:/churn-model@champion"  # the built project's registered champion, for both engines


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read(path) -> pd.DataFrame:
    if str(path).endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def project(project_root, real_csv, tmp_path_factory):
    """(built project, 10,000 real customers with 4 broken rows): rows drawn with replacement
    (seed 13), each given its own customerID; then a bad level, a non-number, a repeated id, a
    formula-like id, a line with one field too many and one with two too few, so both readers and the value rules reject something."""
    rows = pd.read_csv(real_csv, dtype=str, keep_default_na=False)
    sample = rows.sample(n=10_000, replace=True, random_state=13).reset_index(drop=True)
    sample["customerID"] = [f"{i:04d}-{'ABCDEFGHIJ'[i % 10] * 5}" for i in range(len(sample))]
    sample.loc[3, "tenure"] = "abc"
    sample.loc[7, "gender"] = "X"
    sample.loc[8, "customerID"] = sample.loc[2, "customerID"]
    sample.loc[11, "customerID"] = "=1+2"  # a formula cell: both engines neutralise it in the CSV
    folder = tmp_path_factory.mktemp("spark")
    path = folder / "customers.csv"
    text = sample.to_csv(index=False).splitlines()
    text[20] += ",extra"  # line 21: 22 fields
    text[30] = text[30].rsplit(",", 2)[0]  # line 31: 19 fields
    path.write_text("\n".join(text) + "\n")
    return project_root, path


@pytest.fixture()
def in_project(project_root, monkeypatch):
    root = project_root
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    return root


@pytest.fixture(scope="module")
def local_result(project, tmp_path_factory):
    """The local engine's output and rejects for the 10,000 customers (the reference)."""
    root, path = project
    out = tmp_path_factory.mktemp("local") / "scored.csv"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        assert (
            cli.main(["predict", str(path), "-o", str(out), "--model", MODEL, "--no-log", "--no-progress"])
            == 0
        )
    return _read(out), _read(out.with_suffix(".rejects.csv"))


#: Numbers both engines write (Spark's and Arrow's text of a double may differ in digits).
NUMBERS = ("churn_probability", "expected_profit", "action_profit")


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column].replace("", np.nan)).to_numpy(dtype=float)


@pytest.fixture(scope="module")
def local_budget(project, tmp_path_factory):
    """The local engine's output with --budget N (chunks of 700 rows: the best are found across chunks)."""
    root, path = project

    def run(n: int) -> pd.DataFrame:
        out = tmp_path_factory.mktemp("budget") / "scored.csv"
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(root)
            mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
            argv = ["predict", str(path), "-o", str(out), "--model", MODEL, "--no-log", "--no-progress"]
            assert cli.main([*argv, "--budget", str(n), "--chunk-size", "700"]) == 0
        return _read(out)

    return run


def _same(spark_out: pd.DataFrame, local_out: pd.DataFrame) -> None:
    """Same columns, rows and values; the decisions too (contact, best_action, their profits)."""
    assert list(spark_out.columns) == list(local_out.columns)
    assert {"expected_profit", "contact", "best_action", "action_profit"} <= set(local_out.columns)
    assert len(spark_out) == len(local_out) == 9_995
    for column in NUMBERS:
        np.testing.assert_allclose(
            _numbers(spark_out, column), _numbers(local_out, column), rtol=0, atol=1e-6
        )
    rest = [c for c in local_out.columns if c not in NUMBERS]
    pd.testing.assert_frame_equal(spark_out[rest].astype(str), local_out[rest].astype(str))
    contacted = local_out["contact"].astype(str).str.lower() == "true"
    assert 0 < contacted.sum() < len(local_out) and (local_out.loc[contacted, "best_action"] != "").any()
    assert (local_out.loc[~contacted, "best_action"] == "").all()


@pytest.mark.slow
def test_spark_matches_the_local_engine_on_10000_real_customers(
    in_project, project, local_result, tmp_path, capsys
):
    _, path = project
    out = tmp_path / "scored.csv"
    assert cli.main(["predict", str(path), "-o", str(out), "--engine", "spark", "--model-uri", MODEL]) == 0
    local_out, local_rejects = local_result
    _same(_read(out), local_out)
    rejects = _read(tmp_path / "scored.rejects.csv")
    pd.testing.assert_frame_equal(rejects, local_rejects)  # line numbers, reasons and fields alike
    assert set(rejects["line"].astype(int)) == {5, 9, 10, 21, 31}
    assert (local_out["customerID"] == "'=1+2").sum() == 1
    err = capsys.readouterr().err
    assert "scored 9,995 of 10,000 rows" in err and "does not write the prediction log" in err
    contacted = local_out[local_out["contact"] == "true"]
    gain = money(contacted["expected_profit"].astype(float).sum())
    assert f"contacted {len(contacted):,}, total expected gain {gain}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.csv", "scored.rejects.csv"]  # no temp left


@pytest.mark.slow
def test_parquet_in_and_out_on_one_core(in_project, project, local_result, local_budget, tmp_path):
    _, path = project
    source = tmp_path / "customers.parquet"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, on_bad_lines="skip")
    frame = frame[frame["customerID"] != "0029-JJJJJ"]  # line 31, the short one (its fields read as "")
    frame.to_parquet(source, index=False)
    out = tmp_path / "scored.parquet"
    budget = ["--budget", "1000"]
    code = cli.main(
        ["predict", str(source), "-o", str(out), "--engine", "spark", "--master", "local[1]", *budget]
    )
    assert code == 0
    scored, rejects = _read(out), _read(tmp_path / "scored.rejects.parquet")
    assert scored["churn_probability"].dtype == "float64" and pd.api.types.is_string_dtype(scored["tenure"])
    assert scored["contact"].dtype == bool and scored["contact"].sum() == 1000
    local_rejects = local_result[1]
    kept = local_budget(1000)
    expected = kept.replace({"customerID": {"'=1+2": "=1+2"}})  # Parquet: no spreadsheet, no quote
    assert (kept["contact"] == "true").sum() == 1000
    _same(scored.assign(contact=scored["contact"].map({True: "true", False: "false"})), expected)
    # Parquet has no header line: `line` is the row number (the CSV's line - 1), in reasons too
    assert list(rejects["line"]) == [4, 8, 9]
    assert list(rejects["reason"][:2]) == list(local_rejects["reason"][:2])
    assert rejects["reason"][2] == "customerID: repeats line 3 (each customer is scored once)"


def test_unreachable_master_is_one_line_and_writes_nothing(in_project, tmp_path, capsys, monkeypatch):
    path = in_project / "data" / "raw" / "synthetic.csv"
    master = f"spark://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("SPARK_MASTER", master)
    out = tmp_path / "scored.csv"
    assert cli.main(["predict", str(path), "-o", str(out), "--engine", "spark"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"churn predict: cannot reach the Spark master {master}")
    assert list(tmp_path.iterdir()) == []


def test_no_java_tells_to_run_make_system(in_project, tmp_path, capsys, monkeypatch):
    path = in_project / "data" / "raw" / "synthetic.csv"
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["predict", str(path), "-o", str(tmp_path / "o.csv"), "--engine", "spark"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Java runtime" in err and "make system" in err


def test_bad_model_uri_is_one_line_with_the_store_redacted(in_project, tmp_path, capsys, monkeypatch):
    path = in_project / "data" / "raw" / "synthetic.csv"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://alice:s3cret@127.0.0.1:9/")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    out = tmp_path / "o.csv"
    code = cli.main(
        ["predict", str(path), "-o", str(out), "--engine", "spark", "--model-uri", "models:/nope@x"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0, err
    assert "models:/nope@x: cannot load this model from MLflow" in err and "s3cret" not in err
    assert not out.exists()


def test_local_engine_refuses_parquet_and_spark_options(in_project, tmp_path, capsys):
    path = in_project / "data" / "raw" / "synthetic.csv"
    assert cli.main(["predict", str(path), "-o", str(tmp_path / "o.parquet")]) == 2
    assert "need --engine spark" in capsys.readouterr().err
    assert cli.main(["predict", str(path), "-o", str(tmp_path / "o.csv"), "--master", "local[1]"]) == 2
    assert "are for --engine spark" in capsys.readouterr().err
