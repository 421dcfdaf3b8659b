"""`churn predict` (streamed batch scoring with rejects) and `churn explain` (one customer)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churn import cli, schema
from churn.economics import money
from churn.monitoring.store import PredictionStore
from churn.serving import Predictor

HEADER = ",".join(schema.COLUMNS)


def _lines(df: pd.DataFrame) -> list[str]:
    return [",".join(row) for row in df.astype(str).to_numpy().tolist()]


@pytest.fixture()
def batch(synthetic_raw, tmp_path):
    """A CSV of 30 customers with bad lines at known line numbers; returns (path, good rows, bad lines)."""
    good = synthetic_raw.head(30).reset_index(drop=True)
    lines = [HEADER, *_lines(good)]
    bad_rows = {
        "Contract": ("Weekly", "Contract: must be one of"),
        "tenure": ("-1", "tenure: must be between 0 and 1200"),
        "MonthlyCharges": ("abc", "MonthlyCharges: must be a number"),
    }
    for k, (col, (value, _)) in enumerate(bad_rows.items()):
        row = synthetic_raw.iloc[100 + k].copy()
        row[col] = value
        lines.insert(4 + 9 * k, ",".join(row.astype(str)))
    lines.insert(20, lines[20] + ",extra")  # one field too many
    lines.insert(12, "")  # a blank line is skipped, not rejected
    expected = _relabel(lines, bad_rows)
    path = tmp_path / "customers.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, good, expected


def _relabel(lines: list[str], bad_rows: dict) -> dict[int, str]:
    """Expected {line number: reason} found by reading the lines back (1-based, header is line 1)."""
    found = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split(",")
        if number == 1 or not line:
            continue
        if len(fields) != len(schema.COLUMNS):
            found[number] = f"{len(fields)} fields, expected {len(schema.COLUMNS)}"
            continue
        row = dict(zip(schema.COLUMNS, fields, strict=True))
        for col, (value, reason) in bad_rows.items():
            if row[col] == value:
                found[number] = reason
    return found


def test_predict_scores_good_rows_and_rejects_bad_ones_with_line_numbers(served, batch, capsys):
    path, good, expected = batch
    out, rejects = served / "scored.csv", served / "rejects.csv"
    code = cli.main(["predict", str(path), "-o", str(out), "--rejects", str(rejects), "--chunk-size", "7"])
    err = capsys.readouterr().err
    assert code == 0, err
    scored = pd.read_csv(out, dtype={"customerID": str})
    decisions = ["expected_profit", "contact", "best_action", "action_profit"]
    assert list(scored.columns) == [*schema.COLUMNS, "churn_probability", "risk_level", *decisions]
    rej = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert list(rej.columns[:2]) == ["line", "reason"]
    got = dict(zip(rej["line"].astype(int), rej["reason"], strict=True))
    assert set(got) == set(expected)
    for line, reason in expected.items():
        assert reason in got[line], (line, got[line])
    assert len(scored) == len(good) and len(expected) == 4
    direct = Predictor.load("champion", log=False).predict(good.drop(columns=["Churn"]))
    merged = scored.merge(direct, on="customerID", suffixes=("", "_direct"))
    assert len(merged) == len(good)
    np.testing.assert_allclose(merged["churn_probability"], merged["churn_probability_direct"], atol=1e-9)
    assert (merged["risk_level"] == merged["risk_level_direct"]).all()
    store = PredictionStore()
    assert store.count() == len(scored)
    assert set(store.read()["customer_id"]) == set(scored["customerID"])
    store.dispose()
    assert f"scored {len(scored)} of" in err and "rejected 4" in err
    contacted = scored[scored["contact"]]
    gain = f"total expected gain {money(contacted['expected_profit'].sum())}"
    assert f"contacted {len(contacted)}, {gain}" in err


def _decisions(path, good, out, *extra) -> pd.DataFrame:
    assert cli.main(["predict", str(path), "-o", str(out), "--chunk-size", "7", "--no-log", *extra]) == 0
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(scored["customerID"]) == list(good["customerID"])
    return scored


def test_predict_decides_as_the_predict_tab_and_a_budget_keeps_the_best(served, batch, capsys):
    path, good, _ = batch
    scored = _decisions(path, good, served / "scored.csv")
    predictor = Predictor.load("champion", log=False, explainer=False)
    contacted = scored["contact"] == "true"
    assert 3 <= contacted.sum() < len(scored)  # the test needs both kinds
    for row, customer in zip(scored.to_dict("records"), good.to_dict("records"), strict=True):
        decision = predictor.prepare(customer).decision  # the Predict tab's and `churn explain`'s
        assert (row["contact"] == "true") == decision.contact
        assert float(row["expected_profit"]) == pytest.approx(decision.expected_profit, abs=1e-6)
        assert row["best_action"] == (decision.action.description if decision.action else "")
    budget = int(contacted.sum()) - 2
    capsys.readouterr()
    kept = _decisions(path, good, served / "kept.csv", "--max-contacts", str(budget))
    best = (
        scored[contacted].astype({"expected_profit": float}).nlargest(budget, "expected_profit", keep="first")
    )
    assert set(kept.index[kept["contact"] == "true"]) == set(best.index)
    assert (kept.loc[kept["contact"] == "false", "best_action"] == "").all()
    same = kept["contact"] == "true"
    assert (kept.loc[same, "best_action"] == scored.loc[same, "best_action"]).all()
    assert (kept.drop(columns=[*_DECIDED]) == scored.drop(columns=[*_DECIDED])).all().all()
    err = capsys.readouterr().err
    assert f"contacted {budget}, total expected gain {money(best['expected_profit'].sum())}" in err
    assert sorted(p.name for p in served.glob("*kept*")) == ["kept.csv", "kept.rejects.csv"]  # no temp
    bare = _decisions(path, good, served / "bare.csv", "--no-actions")
    assert (bare["best_action"] == "").all() and (bare["contact"] == scored["contact"]).all()


_DECIDED = ("contact", "best_action", "action_profit")


def test_without_economics_no_decision_columns_and_budget_refused(
    served, batch, capsys, tmp_path, monkeypatch
):
    import shutil

    import yaml

    path, good, _ = batch
    served = tmp_path / "old-project"  # a project from before the economics section
    shutil.copytree(Path.cwd(), served)
    monkeypatch.chdir(served)
    params = yaml.safe_load((served / "params.yaml").read_text())
    del params["economics"]
    (served / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    scored = _decisions(path, good, served / "plain.csv")
    assert list(scored.columns) == [*schema.COLUMNS, "churn_probability", "risk_level"]
    assert "no decision columns: params.yaml has no economics section" in capsys.readouterr().err
    out = served / "b.csv"
    assert cli.main(["predict", str(path), "-o", str(out), "--budget", "5"]) == 2
    assert "--budget needs params.yaml's economics section" in capsys.readouterr().err
    assert not out.exists()


def test_explain_columns_add_up_to_the_probability(served, batch):
    path, _, _ = batch
    out = served / "explained.csv"
    assert (
        cli.main(["predict", str(path), "-o", str(out), "--model", "challenger", "--explain", "--no-log"])
        == 0
    )
    scored = pd.read_csv(out)
    shap_cols = [f"shap_{f}" for f in schema.FEATURES]
    assert {"top_reasons", "shap_base", *shap_cols} <= set(scored.columns)
    total = scored["shap_base"] + scored[shap_cols].sum(axis=1)
    np.testing.assert_allclose(total, scored["churn_probability"], atol=1e-6)
    assert scored["top_reasons"].str.contains(r"\(\+|\(-", regex=True).all()
    assert not (served / "predictions.db").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop(columns=["tenure"]), "column 'tenure': is missing (required column)"),
        (lambda df: df.assign(region="north"), "column 'region': is not a Telco column (unexpected)"),
    ],
)
def test_column_problems_are_one_clear_error_and_change_nothing(
    served, synthetic_raw, capsys, change, message
):
    path, out = served / "in.csv", served / "out.csv"
    change(synthetic_raw.head(20)).to_csv(path, index=False)
    out.write_text("previous output\n")
    assert cli.main(["predict", str(path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("churn predict: ")
    assert out.read_text() == "previous output\n"
    assert PredictionStore().count() == 0


def test_empty_and_header_only_files_are_errors(served, capsys):
    empty, header = served / "empty.csv", served / "header.csv"
    empty.write_text("")
    header.write_text(HEADER + "\n")
    assert cli.main(["predict", str(empty), "-o", str(served / "o.csv")]) == 1
    assert "the file is empty" in capsys.readouterr().err
    assert cli.main(["predict", str(header), "-o", str(served / "o.csv")]) == 1
    assert "has no rows (empty file)" in capsys.readouterr().err
    assert not (served / "o.csv").exists()


def test_a_one_gigabyte_line_is_refused_before_parsing(served, capsys):
    path = served / "huge.csv"
    with path.open("wb") as fh:
        fh.write((HEADER + "\n").encode())
        fh.truncate(len(HEADER) + 1 + (1 << 30))  # a sparse 1 GiB second line
    assert path.stat().st_size > 1 << 30
    assert cli.main(["predict", str(path), "-o", str(served / "o.csv"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "line 2 is longer than 1,000,000 bytes" in err
    assert not (served / "o.csv").exists() and PredictionStore().count() == 0
    path.unlink()


def test_unbalanced_quotes_and_binary_garbage_are_clear_errors(served, capsys):
    quoted = served / "quoted.csv"
    quoted.write_text(HEADER + '\n"unterminated,a,b\n')
    assert cli.main(["predict", str(quoted), "-o", str(served / "o.csv")]) == 1
    assert "unbalanced double quotes" in capsys.readouterr().err
    garbage = served / "garbage.csv"
    garbage.write_bytes(os.urandom(2000).replace(b'"', b"x"))
    assert cli.main(["predict", str(garbage), "-o", str(served / "o.csv")]) == 1
    assert "churn predict: " in capsys.readouterr().err
    assert PredictionStore().count() == 0


def test_progress_bar_goes_to_stderr(served, batch, capsys):
    path, _, _ = batch
    assert cli.main(["predict", str(path), "-o", str(served / "o.csv"), "--no-log"]) == 0
    captured = capsys.readouterr()
    assert "rows" in captured.err and "100%" in captured.err and captured.out == ""


def test_explain_one_customer_as_text_and_json(served, synthetic_raw, capsys, monkeypatch):
    customer = synthetic_raw.iloc[3].drop(labels=["Churn"]).to_dict()
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(customer)))
    assert cli.main(["explain", "-", "--model", "challenger"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Churn probability ") and "Why:" in text and " churn risk by " in text
    path = served / "customer.json"
    path.write_text(json.dumps([customer]))
    assert cli.main(["explain", str(path), "--json", "--email", "--model", "challenger"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = Predictor.load("challenger", log=False).predict(customer)["churn_probability"].iloc[0]
    assert out["probability"] == pytest.approx(expected)
    # the library's JSON form of the assessment (`Assessment.to_dict`), nothing re-assembled
    assert set(out) == {
        "probability", "risk_level", "model_name", "model_version", "prediction_id",
        "latency_ms", "email_ms", "explanation", "actions", "email", "decision",
    }  # fmt: skip
    assert out["model_name"] == "challenger" and out["prediction_id"] is None
    expected_source = (
        ("template", "no_api_key") if out["decision"]["contact"] else ("note", "not_worth_contacting")
    )
    assert (out["email"]["source"], out["email"]["reason_code"]) == expected_source
    assert len(out["explanation"]["points"]) == 19
    assert not (served / "predictions.db").exists()


def test_explain_email_saves_an_eml_draft_or_nothing_for_a_note(served, capsys, monkeypatch):
    from email import message_from_bytes
    from email.policy import default

    from app.predict import HIGH_RISK, LOW_RISK

    high, low, eml = served / "high.json", served / "low.json", served / "out" / "email.eml"
    high.write_text(json.dumps(HIGH_RISK))
    low.write_text(json.dumps(LOW_RISK))
    assert cli.main(["explain", str(high), "--email", "--eml", str(eml), "--model", "challenger"]) == 0
    text = capsys.readouterr().out
    assert "Contact: yes — expected gain $" in text
    message = message_from_bytes(eml.read_bytes(), policy=default)
    assert message["Subject"] in text and message["To"] is None and message["X-Unsent"] == "1"
    assert message.get_content().strip() in text
    eml.unlink()
    assert cli.main(["explain", str(low), "--email", "--eml", str(eml), "--model", "challenger"]) == 0
    captured = capsys.readouterr()
    assert "No offer: expected loss $" in captured.out and "Internal note" in captured.out
    assert "no email, nothing written to" in captured.err and not eml.exists()
    assert cli.main(["explain", str(low), "--eml", str(eml)]) == 2
    assert "--eml needs --email" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{not json", "stdin: not valid JSON"),
        ("[1, 2]", "stdin: must be one JSON object"),
        (None, "column 'Contract': must be one of"),
    ],
)
def test_explain_bad_input_is_one_clear_line(served, synthetic_raw, capsys, monkeypatch, payload, message):
    if payload is None:
        payload = json.dumps(synthetic_raw.iloc[0].to_dict() | {"Contract": "Forever"})
    monkeypatch.setattr("sys.stdin", io.StringIO(payload))
    assert cli.main(["explain"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("churn explain: ") and message in err


def test_console_script_runs(served, batch, sh, env_for):
    path, _, _ = batch
    env = env_for(CHURN_DB_URL=os.environ["CHURN_DB_URL"])
    proc = sh(
        ["churn", "predict", str(path), "-o", str(served / "o.csv"), "--no-progress"],
        cwd=os.getcwd(),
        env=env,
    )
    assert "scored 30 of 34 rows with champion" in proc.stderr


def test_excel_style_bom_and_crlf_are_read(served, synthetic_raw):
    path, out = served / "excel.csv", served / "excel_out.csv"
    text = "\r\n".join([HEADER, *_lines(synthetic_raw.head(5))]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert cli.main(["predict", str(path), "-o", str(out), "--no-log"]) == 0
    scored = pd.read_csv(out, dtype=str)
    assert list(scored.columns[:2]) == ["customerID", "gender"]
    assert list(scored["customerID"]) == list(synthetic_raw["customerID"].head(5))
