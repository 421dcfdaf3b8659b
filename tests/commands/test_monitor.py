"""`churn monitor …` end to end on a real prediction log, model and webhook server (127.0.0.1)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from churn import synth
from churn.cli import main
from churn.commands.monitor import ALERT_EXIT
from churn.monitoring.store import PredictionStore


def run(capsys, root, *args: str) -> tuple[int, str, str]:
    params = [] if args[0] in ("alerts", "traffic") else ["--params", str(root / "params.yaml")]
    code = main(["monitor", *args, *params])
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_drift_check_alerts_webhook_feedback_performance(
    monitor_root, capsys, webhook, tmp_path, monkeypatch
):
    url, received, _ = webhook
    monkeypatch.setenv("CHURN_ALERT_WEBHOOK", url)
    outcomes = tmp_path / "outcomes.csv"
    code, out, _ = run(
        capsys,
        monitor_root,
        "simulate",
        "--n",
        "900",
        "--scenario",
        "contract_mix",
        "--seed",
        "3",
        "--days",
        "3",
        "--onset",
        "0.4",
        "--outcomes",
        str(outcomes),
    )
    assert code == 0 and "replayed 900 customers through champion over 3 days" in out
    store = PredictionStore()
    assert store.count() == 900
    first, last = store.time_bounds()
    assert (last - first).total_seconds() > 2 * 86400

    code, out, _ = run(capsys, monitor_root, "drift", "--last", "500", "--json")
    report = json.loads(out)
    assert code == 0 and report["status"] == "ok" and report["n_current"] == 500
    assert report["dataset"]["drifted"] and "Contract" in report["dataset"]["drifted_features"]
    assert report["features"]["Contract"]["test"] == "chi_square"
    assert report["prediction"]["test"] == "ks"

    code, out, _ = run(capsys, monitor_root, "check", "--last", "500")
    lines = out.strip().splitlines()
    assert code == ALERT_EXIT
    assert lines[0].startswith("ALERT dataset_drift:")
    assert any(line.startswith("ALERT feature_drift [Contract]") for line in lines)
    stored = store.read_alerts()
    assert len(stored) == len(lines) and {a.kind for a in stored} >= {"dataset_drift", "feature_drift"}
    assert len(received) == 1 and received[0]["source"] == "churn-monitor"
    assert received[0]["type"] == "application/json"
    assert [a["kind"] for a in received[0]["alerts"]] == [a.kind for a in reversed(stored)]
    assert received[0]["alerts"][0]["window"] == "last 500"

    code, out, _ = run(capsys, monitor_root, "alerts", "--limit", "3")
    assert code == 0 and len(out.strip().splitlines()) == 3

    code, out, _ = run(capsys, monitor_root, "feedback", str(outcomes))
    assert code == 0 and out.startswith("recorded 900 outcomes")
    code, out, _ = run(capsys, monitor_root, "performance", "--last", "900", "--json")
    perf = json.loads(out)
    assert perf["n_labelled"] == 900 and perf["live"]["n"] == 900
    assert 0.5 < perf["live"]["accuracy"] <= 1 and 0.5 < perf["estimated"]["accuracy"] <= 1
    assert abs(perf["estimated_vs_live"]["accuracy"]["difference"]) < 0.1
    assert perf["over_time"]["live"] and perf["over_time"]["estimated"]

    code, out, _ = run(capsys, monitor_root, "traffic", "--unit", "day")
    table = out.strip().splitlines()
    assert code == 0 and table[0].split() == ["bucket", "n", "Low", "Medium", "High"]
    assert sum(int(row.split()[1]) for row in table[1:]) == 900
    store.dispose()


def test_the_monitor_scores_with_the_model_it_is_handed(monitor_root):
    from churn import schema
    from churn.io import read_table
    from churn.monitoring.monitor import Monitor
    from churn.params import load_params
    from churn.serving import Predictor
    from churn.settings import MonitoringSettings

    settings = MonitoringSettings.from_params(load_params(monitor_root / "params.yaml").get("monitoring"))
    store = PredictionStore()
    with pytest.raises(ValueError, match="handed no model"):
        Monitor(settings, store, root=monitor_root).holdout()
    predictor = Predictor.load("champion", root=monitor_root, log=False)
    monitor = Monitor(settings, store, root=monitor_root, predictor=predictor)
    proba, y = monitor.holdout()
    test = read_table(monitor_root / "data" / "prepared" / "test.parquet")
    expected = predictor.predict(test[list(schema.FEATURES)], log=False)["churn_probability"]
    assert monitor.predictor is predictor and len(y) == len(test)
    assert proba == pytest.approx(expected.to_numpy())
    store.dispose()


def test_check_is_quiet_without_drift(monitor_root, capsys):
    # seeded traffic from the reference's own generator; the check allows a 2.5% false-alarm rate
    # per window (monitoring.drift.alpha), so one seed in ~40 alarms: seed 11 does (MultipleLines,
    # chi-square p 0.00016 < 0.025 / 20), seed 2 does not
    assert run(capsys, monitor_root, "simulate", "--n", "400", "--seed", "2")[0] == 0
    code, out, _ = run(capsys, monitor_root, "check")
    assert code == 0, out
    assert out.startswith("OK: no alert (last 1000, 400 predictions)")
    assert PredictionStore().read_alerts() == []


def test_a_tiny_window_says_not_enough_data_and_an_empty_one_is_an_error(monitor_root, capsys):
    code, _, err = run(capsys, monitor_root, "drift")
    assert code == 1 and "the window is empty (last 1000)" in err
    assert run(capsys, monitor_root, "simulate", "--n", "3")[0] == 0
    code, out, _ = run(capsys, monitor_root, "check")
    assert code == 0 and out.startswith(
        "not enough data: 3 prediction(s) in the window, drift needs at least 100"
    )
    code, out, _ = run(capsys, monitor_root, "drift")
    assert code == 0 and "not enough data" in out


def test_drift_of_a_csv_batch_before_scoring(monitor_root, capsys, tmp_path):
    batch = tmp_path / "batch.csv"
    synth.write_csv(synth.generate(rows=300, seed=21), batch)
    code, out, _ = run(capsys, monitor_root, "drift", "--current", str(batch))
    assert code == 0
    assert "window: " + str(batch) in out and "churn_probability" in out and "no dataset drift" in out
    assert PredictionStore().count() == 0  # checking a batch logs nothing
    tiny = tmp_path / "tiny.csv"
    synth.write_csv(synth.generate(rows=3, seed=22), tiny)
    code, out, _ = run(capsys, monitor_root, "drift", "--current", str(tiny), "--no-prediction")
    assert code == 0 and "not enough data: 3 prediction(s)" in out
    broken = tmp_path / "broken.csv"
    synth.generate(rows=50, seed=23).drop(columns=["tenure"]).to_csv(broken, index=False)
    code, _, err = run(capsys, monitor_root, "drift", "--current", str(broken))
    assert code == 1 and "'tenure'" in err and "missing" in err


def test_a_reference_that_does_not_match_the_schema_is_named(monitor_root, capsys):
    path = monitor_root / "data" / "prepared" / "train.parquet"
    pd.read_parquet(path).assign(InternetService="Carrier pigeon").to_parquet(path, index=False)
    run(capsys, monitor_root, "simulate", "--n", "150")
    code, _, err = run(capsys, monitor_root, "drift", "--no-prediction")
    assert code == 1 and "data/prepared/train.parquet" in err and "InternetService" in err


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("customerID,churned,date\nA,maybe,2026-01-01\n", "column 'churned': must be yes/no"),
        (
            "customerID,churned,date\nA,yes,01/02/2026\n",
            "column 'date': must be a date YYYY-MM-DD — 1 row(s), e.g. line 2",
        ),
        ("customerID,churned,date\nA,yes,2026-01-01\nA,no,2026-01-02\n", "appears more than once"),
        ("customer,when\nA,2026-01-01\n", "missing column(s): churned"),
        (
            "customerID,churned,date\nNOPE-1,yes,2026-01-01\n",
            "1 customer id(s) have no logged prediction (NOPE-1)",
        ),
    ],
)
def test_bad_outcome_files_are_refused_whole(monitor_root, capsys, tmp_path, rows, message):
    run(capsys, monitor_root, "simulate", "--n", "5", "--seed", "4")
    known = PredictionStore().read(columns=["customer_id"])["customer_id"].iloc[0]
    path = tmp_path / "outcomes.csv"
    path.write_text(rows.replace("A,", f"{known},"))
    code, _, err = run(capsys, monitor_root, "feedback", str(path))
    assert code == 1 and message in err, err
    assert PredictionStore().read_outcomes().empty


def test_usage_errors_are_one_line(monitor_root, capsys):
    code, _, err = run(capsys, monitor_root, "drift", "--since", "yesterday")
    assert code == 2 and "--since must be an ISO 8601 time" in err
    code, _, err = run(capsys, monitor_root, "simulate", "--n", "0")
    assert code == 2 and "--n must be at least 1" in err
