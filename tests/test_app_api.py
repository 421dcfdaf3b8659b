"""The app's API through gradio_client, against the app started in-process on a built project
(with a reader and an admin login: readers read, only the admin changes the registry and stores alerts)."""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError

from app import batch, serve
from app.predict import DEFAULT, HIGH_RISK, LOW_RISK
from churn import schema, serving, validation
from churn.economics import money
from churn.metrics import HEADLINE
from churn.monitoring.store import PredictionStore

EXPECTED_ENDPOINTS = {
    "/status",
    "/predict",
    "/example_high_risk",
    "/example_low_risk",
    "/batch",
    "/campaign",
    "/campaign_budget",
    "/runs",
    "/compare_runs",
    "/param_impact",
    "/export_runs",
    "/set_champion",
    "/set_challenger",
    "/set_archived",
    "/registry_controls",
    "/monitoring",
    "/check_alerts",
    "/ab_models",
    "/ab_test",
    "/validation",
}
READER = ("analyst", "reader-pw")
ADMIN = ("admin", "admin-pw")


@pytest.fixture(scope="module")
def project(private_project):
    """A private copy of the built project (the registry tests change it) with its own stores."""
    with private_project("app_api") as root:
        yield root


@pytest.fixture(scope="module")
def served(project):
    demo, url = serve(project, auth=READER, admin=ADMIN)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def client(served, project):
    """Signed in as the reader."""
    return Client(
        served[1],
        auth=READER,
        verbose=False,
        download_files=str(project / "downloads"),
        analytics_enabled=False,
    )


@pytest.fixture(scope="module")
def admin_client(served, project):
    """Signed in as the admin (registry changes, alert checks)."""
    return Client(
        served[1],
        auth=ADMIN,
        verbose=False,
        download_files=str(project / "downloads"),
        analytics_enabled=False,
    )


@pytest.fixture(scope="module")
def store(project):
    return PredictionStore()


@pytest.fixture(scope="module")
def reference(project):
    return serving.Predictor.load(root=project, log=False)


def traces(plot: dict) -> list[dict]:
    """The traces of a gr.Plot output, with plotly's base64 typed arrays decoded to lists."""

    def decode(value):
        if isinstance(value, dict) and "bdata" in value:
            return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
        return value

    return [{k: decode(v) for k, v in trace.items()} for trace in json.loads(plot["plot"])["data"]]


def shown(percent: str) -> float:
    """The probability behind a percentage the app shows ("78.1%" -> 0.781)."""
    assert percent.endswith("%") and len(percent.rsplit(".", 1)[-1]) == 2, percent  # one decimal
    return float(percent[:-1]) / 100


def test_every_event_has_an_api_name(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == EXPECTED_ENDPOINTS
    assert api["unnamed_endpoints"] == {}
    params = [p["parameter_name"] for p in api["named_endpoints"]["/predict"]["parameters"]]
    assert params == list(schema.FEATURES)


def test_predict_matches_the_predictor_and_logs_once(client, store, reference):
    before = store.count()
    result = client.predict(**HIGH_RISK, api_name="/predict")
    shown, risk, explanation, chart, actions, email, note, _decision, _eml, probability = result
    expected = float(reference.predict(HIGH_RISK)[serving.PROBABILITY].iloc[0])
    assert shown == f"{100 * expected:.1f}%" and probability == pytest.approx(expected, abs=1e-12)
    assert risk == serving.risk_levels([expected], reference.settings)[0]
    assert f"{100 * expected:.1f}% churn probability" in explanation
    assert traces(chart)[0]["type"] == "waterfall"
    assert actions["headers"][0] == "Action" and all(0 <= row[1] <= 1 for row in actions["data"])
    shown_after = [row[1] for row in actions["metadata"]["display_value"]]  # numbers, shown as percentages
    assert shown_after == [f"{100 * row[1]:.1f}%" for row in actions["data"]]
    assert email.startswith("Subject: ") and "Customer Care" in email
    assert "template" in note and "GROQ_API_KEY" in note
    assert store.count() == before + 1
    logged = store.read().iloc[-1]
    assert logged["probability"] == pytest.approx(expected)
    assert logged["email_source"] == "template:no_api_key"
    assert logged["tenure"] == HIGH_RISK["tenure"] and logged["Contract"] == HIGH_RISK["Contract"]


def test_predict_decides_and_exports_the_email_as_eml(client, reference):
    from email import message_from_bytes
    from email.policy import default

    high = client.predict(**HIGH_RISK, api_name="/predict")
    email, decision, eml = high[5], high[7], high[8]
    expected = reference.prepare(HIGH_RISK)
    assert expected.decision.contact and decision == f"**{expected.decision_line()}**"
    assert decision.startswith("**Contact: yes — expected gain $") and "." not in decision.split("$")[1][:8]
    message = message_from_bytes(Path(eml).read_bytes(), policy=default)
    assert Path(eml).suffix == ".eml" and message["To"] is None
    assert email == f"Subject: {message['Subject']}\n\n{message.get_content().rstrip()}"
    assert expected.decision.action.offer in message["Subject"]
    low = client.predict(**LOW_RISK, api_name="/predict")
    assert low[7].startswith("**No offer: expected loss $") and low[8] is None
    assert low[5].startswith("Internal note") and "not worth contacting" in low[6]


def test_predict_uses_the_form_defaults_for_missing_fields(client, reference):
    result = client.predict(tenure=5, api_name="/predict")
    expected = reference.predict({**DEFAULT, "tenure": 5})[serving.PROBABILITY].iloc[0]
    assert result[0] == f"{100 * expected:.1f}%"  # as shown
    assert result[-1] == pytest.approx(expected, abs=1e-12)  # exact, for API clients


def test_eight_requests_at_once_are_all_served_and_logged(served, client, store):
    demo, _ = served
    assert demo._queue.default_concurrency_limit >= 8  # Gradio's default would serve one at a time
    before = store.count()
    jobs = [client.submit(**{**DEFAULT, "tenure": 10 + i}, api_name="/predict") for i in range(8)]
    probabilities = [job.result(timeout=120)[0] for job in jobs]
    assert all(0 <= shown(p) <= 1 for p in probabilities)
    assert store.count() == before + 8


def test_examples_fill_the_form_and_rank_risk(client):
    high = dict(zip(schema.FEATURES, client.predict(api_name="/example_high_risk"), strict=True))
    low = dict(zip(schema.FEATURES, client.predict(api_name="/example_low_risk"), strict=True))
    assert high == HIGH_RISK and low == LOW_RISK
    p_high = client.predict(**high, api_name="/predict")[0]
    p_low = client.predict(**low, api_name="/predict")[0]
    assert shown(p_high) > 0.5 > shown(p_low)


@pytest.mark.parametrize(
    ("bad", "messages"),
    [
        ({"tenure": -3}, ["tenure must be between 0 and 1200"]),
        ({"tenure": "abc", "Contract": "Weekly"}, ["tenure must be a number", "Contract must be one of"]),
        ({"MonthlyCharges": None}, ["MonthlyCharges must be a number"]),
        ({"tenure": 2.5}, ["tenure must be a whole number"]),
        ({"gender": ""}, ["gender must be one of"]),
        (
            {"OnlineBackup": "Yes", "InternetService": "No"},
            ["OnlineBackup must be 'No internet service' when InternetService is 'No'"],
        ),
        (
            {"MultipleLines": "No", "PhoneService": "No"},
            ["MultipleLines must be 'No phone service' when PhoneService is 'No'"],
        ),
        (
            {"StreamingTV": "No internet service"},
            ["StreamingTV can be 'No internet service' only when InternetService is 'No'"],
        ),
    ],
)
def test_bad_input_names_the_field_and_logs_nothing(client, store, bad, messages):
    before = store.count()
    with pytest.raises(ValidationError) as err:
        client.predict(**{**DEFAULT, **bad}, api_name="/predict")
    text = str(err.value)
    for field, message in zip(bad, messages, strict=False):
        assert f"- {field}: {message}" in text
    assert store.count() == before
    assert 0 <= shown(client.predict(**DEFAULT, api_name="/predict")[0]) <= 1  # still serving


def _csv(tmp_path, name, frame):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_batch_scores_valid_rows_and_lists_rejects(client, store, project, reference, tmp_path):
    raw = pd.read_csv(project / "data/raw/synthetic.csv", dtype=str, keep_default_na=False).head(40)
    raw.loc[3, "tenure"] = "-5"
    raw.loc[7, "Contract"] = "Weekly"
    with_internet = raw.index[raw["InternetService"] != "No"][-1]  # the add-ons rule, as for the form
    raw.loc[with_internet, "InternetService"] = "No"
    before = store.count()
    scored_path, summary, chart, rejects = client.predict(
        handle_file(str(_csv(tmp_path, "customers.csv", raw))), False, api_name="/batch"
    )
    scored = pd.read_csv(scored_path, dtype={"tenure": str})
    assert len(scored) == 37 and store.count() == before + 37
    good = raw.drop(index=[3, 7, with_internet])
    expected = reference.predict(good.drop(columns=["customerID", "Churn"]))
    assert scored[serving.PROBABILITY].to_numpy() == pytest.approx(expected[serving.PROBABILITY].to_numpy())
    assert "37 customers scored, 3 rejected" in summary
    counts = scored[serving.RISK].value_counts()
    for level in schema.RISK_LEVELS:
        assert f"| {level} | {int(counts.get(level, 0)):,} |" in summary
    assert traces(chart)[0]["type"] == "histogram"
    assert rejects["headers"][:3] == ["customerID", "line", "reason"]  # who, where, why
    reasons = {row[1]: row[2] for row in rejects["data"]}  # CSV line numbers: the header is line 1
    assert {row[0] for row in rejects["data"]} == set(raw.loc[[3, 7, with_internet], "customerID"])
    assert set(reasons) == {5, 9, with_internet + 2} and reasons[5] == "tenure: must be between 0 and 1200"
    assert reasons[9].startswith("Contract: must be one of")
    assert reasons[with_internet + 2] == (
        "OnlineSecurity, OnlineBackup, DeviceProtection, TechSupport, StreamingTV, StreamingMovies: "
        "must be 'No internet service' when InternetService is 'No'"
    )


def test_batch_campaign_ranks_who_to_contact_and_keeps_a_budget(client, project, reference, tmp_path):
    raw = pd.read_csv(project / "data/raw/synthetic.csv", dtype=str, keep_default_na=False).head(60)
    for feature in schema.FEATURES:  # a customer surely worth contacting, with a formula cell as ID
        raw.loc[0, feature] = str(HIGH_RISK[feature])
    raw.loc[0, "customerID"] = "=HYPERLINK(1)"
    scored_path, *_ = client.predict(handle_file(str(_csv(tmp_path, "c.csv", raw))), False, api_name="/batch")
    scored = pd.read_csv(scored_path, dtype=str, keep_default_na=False)
    contacted = scored[scored["contact"] == "true"].astype({"expected_profit": float})
    assert 2 < len(contacted) < len(scored)
    summary, table, listed = client.predict(None, api_name="/campaign")
    summary_all = summary
    best = contacted.sort_values("expected_profit", ascending=False, kind="stable")
    assert f"contact {len(best):,} of 60 customers" in summary
    assert f"Total expected gain: **{money(best['expected_profit'].sum())}**" in summary
    assert table["headers"] == ["rank", "customerID", "churn_probability", "best_action", "expected_profit"]
    on_screen = best["customerID"].str.replace("^'", "", regex=True)  # the quote is for spreadsheets
    assert [row[1] for row in table["data"]] == list(on_screen)
    campaign = pd.read_csv(listed, dtype=str, keep_default_na=False)
    assert list(campaign["customerID"]) == list(best["customerID"])
    assert list(campaign["best_action"]) == list(best["best_action"])
    decision = reference.prepare(raw.iloc[int(best.index[0])].to_dict()).decision  # the Predict tab's
    assert campaign["best_action"][0] == (decision.action.description if decision.action else "")
    assert float(campaign["expected_profit"][0]) == pytest.approx(decision.expected_profit)
    summary, table, listed = client.predict(2, api_name="/campaign_budget")
    assert "contact 2 of 60 customers (the budget of 2;" in summary and len(table["data"]) == 2
    kept = pd.read_csv(listed, dtype=str, keep_default_na=False)
    assert list(kept["customerID"]) == list(best["customerID"][:2])
    assert "'=HYPERLINK(1)" in set(campaign["customerID"])  # neutralised, as in the scored CSV
    assert client.predict(0, api_name="/campaign_budget")[0] == summary_all  # 0: no budget
    with pytest.raises(AppError, match="less than minimum value 0"):  # the field's minimum
        client.predict(-1, api_name="/campaign_budget")


def test_batch_rejects_bad_files_next_to_the_upload(client, store, project, tmp_path):
    raw = pd.read_csv(project / "data/raw/synthetic.csv", dtype=str, keep_default_na=False).head(5)
    before = store.count()
    cases = {
        "no_contract.csv": (raw.drop(columns=["Contract"]), "column 'Contract': is missing"),
        "extra.csv": (raw.assign(Coupon="x"), "column 'Coupon': is not a Telco column"),
    }
    for name, (frame, message) in cases.items():
        with pytest.raises(ValidationError, match=message):
            client.predict(handle_file(str(_csv(tmp_path, name, frame))), False, api_name="/batch")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValidationError, match="empty.csv: the file is empty"):  # as `churn predict` says
        client.predict(handle_file(str(empty)), False, api_name="/batch")
    text = tmp_path / "customers.txt"
    text.write_text("a,b\n1,2\n")
    with pytest.raises(httpx.HTTPStatusError, match="400 Bad Request"):  # Gradio refuses it on upload
        client.predict(handle_file(str(text)), False, api_name="/batch")
    huge = tmp_path / "huge.csv"
    with huge.open("w") as fh:
        fh.write(",".join(schema.COLUMNS) + "\n")
        fh.write(("x" * 999 + "\n") * (batch.MAX_MB * 1000 + 10))
    with pytest.raises(ValidationError, match=f"over the {batch.MAX_MB} MB limit"):
        client.predict(handle_file(str(huge)), False, api_name="/batch")
    assert store.count() == before


def test_monitoring_shows_volume_drift_alerts_and_live_performance(client, admin_client, store, project):
    from churn.monitoring import simulate
    from churn.monitoring.records import Outcome

    customers = simulate.traffic(500, simulate.Scenario.get("contract_mix"), days=6, seed=5)
    simulate.replay(serving.Predictor.load(root=project, store=store), customers)
    outcomes = simulate.outcomes_frame(customers)
    store.add_outcomes(
        [Outcome(r.customerID, r.churned == "Yes", date.fromisoformat(r.date)) for r in outcomes.itertuples()]
    )
    total = store.count()
    summary, by_day, by_hour, dist, risk, alerts, drift_rows, perf = client.predict(
        "Everything logged", "day", api_name="/monitoring"
    )
    assert f"{total:,} predictions" in summary and "**Live** on 500 predictions" in summary
    assert sum(traces(by_day)[0]["y"]) == total and sum(traces(by_hour)[0]["y"]) == total
    assert sum(sum(t["y"]) for t in traces(risk)) == total
    assert traces(dist)[0]["type"] == "heatmap"
    rows = {row[0]: dict(zip(drift_rows["headers"], row, strict=True)) for row in drift_rows["data"]}
    assert set(rows) == {*schema.FEATURES, "churn_probability"}
    assert rows["Contract"]["drifted"] is True and rows["gender"]["drifted"] is False
    kinds = {(row[1], row[2]) for row in alerts["data"] if row[0] == "now"}
    assert ("feature_drift", "Contract") in kinds
    assert {t["name"] for t in traces(perf)} >= {"live accuracy", "live roc_auc", "estimated accuracy"}

    stored = len(store.read_alerts(limit=None))
    admin_client.predict("Everything logged", "hour", api_name="/check_alerts")
    after = store.read_alerts(limit=None)  # newest first
    fired = after[: len(after) - stored]
    # the tab shows exactly the alerts `Monitor.check` fires and stores
    assert sorted((a.kind, a.feature or "") for a in fired) == sorted(kinds)


def test_validation_tab_shows_the_verdict_and_every_gate(client, project):
    verdict, gates, card = client.predict(api_name="/validation")
    report = json.loads((project / "metrics/validation.json").read_text())
    line = validation.verdict_line(report["approved"], report["recommendation"], len(report["failed"]))
    assert line in verdict  # the vocabulary the A/B tab and the model card use
    assert ("Promote the challenger" in verdict) == validation.ready_to_promote(
        report["approved"], report["recommendation"]
    )
    assert {row[0] for row in gates["data"]} == set(report["gates"])
    failed = [row[0] for row in gates["data"] if row[1].endswith("fail")]
    assert sorted(failed) == sorted(report["failed"])
    assert card.strip() == (project / "metrics/model_card.md").read_text().strip()


def test_ab_test_equals_the_ab_test_stage(client, project):
    recommendation, table, scores, chart = client.predict("champion", "challenger", api_name="/ab_test")
    stage = json.loads((project / "metrics/ab_test.json").read_text())
    c = stage["contingency"]
    assert table["data"] == [
        ["A correct", c["champion_correct"]["challenger_correct"], c["champion_correct"]["challenger_wrong"]],
        ["A wrong", c["champion_wrong"]["challenger_correct"], c["champion_wrong"]["challenger_wrong"]],
    ]
    assert f"p = {stage['mcnemar']['p_value']:.4g}" in recommendation
    assert validation.ab_phrase(stage["recommendation"], "model B", "model A") in recommendation
    roc = next(row for row in scores["data"] if row[0] == "roc_auc")
    assert roc[3].startswith(f"{stage['bootstrap']['difference']['roc_auc']['estimate']:.4f}")
    empc = next(row for row in scores["data"] if row[0] == "empc")  # profit per customer, same resamples
    assert empc[3].startswith(f"{stage['bootstrap']['difference']['empc']['estimate']:.4f}")
    # the chart's value axis is zoomed to the intervals (not 0 – 1) and says so in its title
    layout = json.loads(chart["plot"])["layout"]
    low, high = layout["yaxis"]["range"]
    boot = stage["bootstrap"]
    bounds = [boot[k][m][s] for k in ("champion", "challenger") for m in HEADLINE for s in ("low", "high")]
    assert 0 < low < min(bounds) and max(bounds) < high <= 1 and (low, high) != (0, 1)
    assert f"zoomed to {low:.4g} – {high:.4g}" in layout["title"]["text"]
    assert len(traces(chart)) == 2


def test_ab_test_with_a_registered_version_and_bad_choices(client):
    choices, _ = client.predict(api_name="/ab_models")
    refs = [ref for _, ref in choices["choices"]]
    assert refs[:2] == ["champion", "challenger"] and "models:/churn-model/1" in refs
    recommendation = client.predict("models:/churn-model/1", "challenger", api_name="/ab_test")[0]
    assert "A = churn-model v1" in recommendation
    unknown = client.predict("challenger", "models:/churn-model/1", api_name="/ab_test")[0]
    assert "Gates not checked · A/B:" in unknown  # never "passes every gate" for a model nobody validated
    assert "passes every gate" not in unknown and "✓" not in unknown
    with pytest.raises(ValidationError, match="model_b: Pick a model B different from model A"):
        client.predict("champion", "champion", api_name="/ab_test")
    with pytest.raises(ValidationError, match="is not a known model"):
        client.predict("champion", "models:/churn-model/99", api_name="/ab_test")


def test_runs_comparisons_and_export(client, project):
    out = client.predict(api_name="/runs")
    note, runs, metric, compare, dvc_note, registry_df = out[0], out[1], out[2], out[3], out[7], out[9]
    assert note == "2 run(s) in MLflow at `sqlite:///mlflow.db (project folder)`."  # no server path
    rows = [dict(zip(runs["headers"], row, strict=True)) for row in runs["data"]]
    assert {r["model"] for r in rows} == {"champion", "challenger"}
    assert all(0.5 < r["test.roc_auc"] <= 1 for r in rows)
    assert metric["value"] == "test.roc_auc" and "test.accuracy" in [c[1] for c in metric["choices"]]
    bars = traces(compare)
    assert sorted(y for trace in bars for y in trace["y"]) == sorted(r["test.roc_auc"] for r in rows)
    assert "not a DVC repository" in dvc_note
    assert {row[1] for row in registry_df["data"]} == {"champion", "challenger"}
    scatter = traces(client.predict("n_estimators", "test.accuracy", api_name="/param_impact"))
    specs = yaml.safe_load((project / "params.yaml").read_text())["models"].values()
    trees = sorted(float(s["params"]["n_estimators"]) for s in specs if "n_estimators" in s.get("params", {}))
    assert trees and sorted(x for trace in scatter for x in trace["x"]) == trees
    assert len(traces(client.predict("test.f1", api_name="/compare_runs"))) == 2
    exported_path = client.predict(api_name="/export_runs")
    text = Path(exported_path).read_text()
    assert str(project) not in text and str(project.resolve()) not in text  # no server paths
    exported = pd.read_csv(exported_path)
    assert len(exported) == 2
    assert {"run_id", "metrics.test.roc_auc", "params.estimator"} <= set(exported.columns)


def _aliases(registry_df) -> dict[str, str]:
    """{status: version} of the live roles (champion, challenger) in the registry table."""
    return {row[1]: row[0] for row in registry_df["data"] if row[1] in ("champion", "challenger")}


def _statuses(registry_df) -> dict[str, str]:
    return {row[0]: row[1] for row in registry_df["data"]}


def test_registry_buttons_go_through_the_promotion_checks(admin_client, project):
    client = admin_client
    params_before = (project / "params.yaml").read_text()
    aliases = _aliases(client.predict(api_name="/runs")[9])
    champion, challenger = aliases["champion"], aliases["challenger"]

    message, table = client.predict(champion, "", False, api_name="/set_archived")
    assert "is the champion" in message and _aliases(table) == aliases
    with pytest.raises(ValidationError, match="Forcing needs a reason"):
        client.predict(challenger, "", True, api_name="/set_champion")
    with pytest.raises(ValidationError, match="not registered"):
        client.predict("99", "", False, api_name="/set_challenger")

    message, table = client.predict(challenger, "", False, api_name="/set_champion")
    if "Nothing changed" in message:  # refused by `churn promote`'s checks: nothing moved
        assert "promotion refused" in message and _aliases(table) == aliases
        assert (project / "params.yaml").read_text() == params_before
        message, table = client.predict(challenger, "rollout test", True, api_name="/set_champion")
    assert "is now the **champion**" in message
    assert _statuses(table) == {challenger: "champion", champion: "archived"}
    history = {row[0]: row[7] for row in table["data"]}[challenger]
    assert f"champion by app:{ADMIN[0]}" in history  # who did it, recorded on the version
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["models"]["champion"] == params["models"]["challenger"]

    message, table = client.predict(champion, "", False, api_name="/set_challenger")
    assert _aliases(table)["challenger"] == champion


def test_status_names_the_served_model(client, reference, project):
    status = client.predict(api_name="/status")
    assert reference.model_name in status and reference.model_version in status
    assert f"from the project folder `{project.name}`" in status and str(project) not in status


def test_no_model_page_instead_of_a_traceback(tmp_path):
    (tmp_path / "params.yaml").write_text("base:\n  seed: 1\n")
    demo, url = serve(tmp_path, auth=("analyst", "s3cret"))
    try:
        with pytest.raises(Exception):  # noqa: B017 - any refusal: the login is required
            Client(url, verbose=False, analytics_enabled=False)
        client = Client(url, auth=("analyst", "s3cret"), verbose=False, analytics_enabled=False)
        assert "No model has been built yet — run `dvc repro`" in client.predict(api_name="/status")
        assert set(client.view_api(return_format="dict", print_info=False)["named_endpoints"]) == {"/status"}
        with pytest.raises((AppError, ValueError)):
            client.predict(**DEFAULT, api_name="/predict")
    finally:
        demo.close()


def test_launch_defaults_bind_locally_and_login_comes_from_env(monkeypatch):
    from app import HOST, QUIET_ENV, Access, launch_kwargs, parse_args

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    args = parse_args([])
    assert (args.host, args.port, args.model) == ("127.0.0.1", 7860, "champion") and HOST == "127.0.0.1"
    access = Access.from_env({"CHURN_APP_AUTH": "analyst:s3:cret"})
    kwargs = launch_kwargs(args.host, args.port, access)
    assert kwargs["server_name"] == "127.0.0.1" and kwargs["auth"]("analyst", "s3:cret") is True
    assert kwargs["auth"]("analyst", "s3") is False and kwargs["auth"]("admin", "s3:cret") is False
    assert kwargs["allowed_paths"] == [] and kwargs["share"] is False
    assert launch_kwargs(args.host, args.port, Access())["auth"] is None
    assert Access.from_env({}) == Access() and Access.from_env({"CHURN_APP_AUTH": ""}) == Access()
    for bad in ("analyst", "analyst:", ":s3cret"):
        with pytest.raises(ValueError, match="CHURN_APP_AUTH must look like user:password"):
            Access.from_env({"CHURN_APP_AUTH": bad})
        with pytest.raises(ValueError, match="CHURN_APP_ADMIN must look like user:password"):
            Access.from_env({"CHURN_APP_ADMIN": bad})
    assert QUIET_ENV["GRADIO_ANALYTICS_ENABLED"] == "False" and QUIET_ENV["HF_HUB_OFFLINE"] == "1"
