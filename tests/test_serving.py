"""The Predictor: loading, validation, risk bands, batch rejects, the prediction log, concurrency."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from churn import data, retention, schema
from churn.params import ParamsError
from churn.serving import Predictor, risk_levels
from churn.settings import ServingSettings


@pytest.fixture()
def challenger(serving_root, store) -> Predictor:
    return Predictor.load("challenger", root=serving_root, store=store)


@pytest.fixture(scope="module")
def rows(synthetic_raw) -> pd.DataFrame:
    """Raw CSV-form customers (text values, customerID, no Churn)."""
    return synthetic_raw.drop(columns=[schema.TARGET]).iloc[:40].reset_index(drop=True)


def test_load_names_the_model_and_its_version(serving_root, store, serving_models):
    from churn.io import file_md5

    for name in ("champion", "challenger"):
        p = Predictor.load(name, root=serving_root, store=store)
        path = serving_root / "models" / f"{name}.joblib"
        assert p.model_name == name and p.model_version == f"md5:{file_md5(path)[:12]}"
        assert p.params["serving"]["risk_bands"] == {"medium": 0.3, "high": 0.6}
        assert type(p.pipeline[-1]) is type(serving_models[name][-1])
    by_path = Predictor.load(str(serving_root / "models" / "champion.joblib"), root=serving_root, store=store)
    assert by_path.model_name == "champion"
    with pytest.raises(FileNotFoundError, match=r"models/nope.joblib: model not found"):
        Predictor.load("nope", root=serving_root, store=store)


def test_predict_matches_the_pipeline_and_logs_each_row(challenger, rows, store, serving_models):
    out = challenger.predict(rows.head(5))
    expected = serving_models["challenger"].predict_proba(rows.head(5)[list(schema.FEATURES)])[:, 1]
    np.testing.assert_allclose(out["churn_probability"], expected, atol=1e-12)
    assert list(out.columns) == [*rows.columns, "churn_probability", "risk_level"]
    assert len(out.attrs["prediction_ids"]) == 5 and store.count() == 5
    logged = store.read()
    assert list(logged["customer_id"]) == list(rows["customerID"].head(5))
    np.testing.assert_allclose(logged["probability"], expected, atol=1e-12)
    assert set(logged["model_name"]) == {"challenger"} and (logged["latency_ms"] > 0).all()
    one = challenger.predict(rows.iloc[7].to_dict(), log=False)
    assert len(one) == 1 and store.count() == 5
    many = challenger.predict(rows.head(3).to_dict("records"))
    assert len(many) == 3 and store.count() == 8


def test_risk_bands_follow_params():
    settings = ServingSettings.from_params({"risk_bands": {"medium": 0.3, "high": 0.6}})
    got = risk_levels(np.array([0.0, 0.2999, 0.3, 0.5999, 0.6, 1.0]), settings)
    assert list(got) == ["Low", "Low", "Medium", "Medium", "High", "High"]
    with pytest.raises(ParamsError, match="serving.risk_bands.medium: must be below serving.risk_bands.high"):
        ServingSettings.from_params({"risk_bands": {"medium": 0.7, "high": 0.6}})
    with pytest.raises(ParamsError, match=r"serving.chunk_size: must be at least 1 \(got 0\)"):
        ServingSettings.from_params({"chunk_size": 0})


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"Contract": "Ten year"}, "Contract", "must be one of"),
        ({"tenure": -3}, "tenure", "must be between 0 and 1200"),
        ({"tenure": 2.5}, "tenure", "must be a whole number"),
        ({"MonthlyCharges": float("nan")}, "MonthlyCharges", "must be a number"),
        ({"MonthlyCharges": "abc"}, "MonthlyCharges", "must be a number"),
        ({"TotalCharges": " "}, "TotalCharges", "must be a number (blank allowed only when tenure is 0)"),
        ({"Contrat": "One year"}, "Contrat", "is not a Telco column"),
        ({"gender": None}, "gender", "must be one of"),
    ],
)
def test_bad_input_names_field_and_rule_and_logs_nothing(challenger, rows, store, change, field, rule):
    customer = rows.iloc[0].to_dict() | change
    with pytest.raises(schema.SchemaError) as info:
        challenger.predict(customer)
    assert f"column '{field}': {rule}" in str(info.value)
    with pytest.raises(schema.SchemaError):
        challenger.assess(customer)
    assert store.count() == 0


def test_missing_field_and_wrong_types_are_errors(challenger, rows, store):
    customer = rows.iloc[0].to_dict()
    del customer["Contract"]
    with pytest.raises(schema.SchemaError, match="column 'Contract': is missing"):
        challenger.predict(customer)
    with pytest.raises(schema.SchemaError, match="must be a dict, a list of dicts or a DataFrame"):
        challenger.predict("not a customer")
    for empty in ([], rows.head(0)):
        with pytest.raises(schema.SchemaError, match="no customers given"):
            challenger.predict(empty)
    with pytest.raises(ValueError, match="expected one customer, got 2"):
        challenger.explain(rows.head(2))
    assert store.count() == 0


def test_first_month_customer_with_blank_total_charges_is_served(challenger, rows, store):
    customer = rows.iloc[0].to_dict() | {"tenure": "0", "TotalCharges": " "}
    out = challenger.predict(customer)
    assert 0 <= out["churn_probability"].iloc[0] <= 1
    assert store.read()["TotalCharges"].iloc[0] == 0.0


def test_score_frame_rejects_bad_rows_and_scores_the_rest(challenger, rows, store, serving_models):
    batch = rows.copy()
    batch.loc[2, "Contract"] = "Weekly"
    batch.loc[5, "tenure"] = "-1"
    batch.loc[5, "MonthlyCharges"] = "NaN"
    batch.loc[9, "SeniorCitizen"] = "maybe"
    scored, rejects = challenger.score_frame(batch)
    assert list(rejects["row"]) == [2, 5, 9]
    assert rejects.set_index("row").loc[5, "reason"] == (
        "tenure: must be between 0 and 1200; MonthlyCharges: must be a number"
    )
    assert len(scored) == len(batch) - 3 and store.count() == len(batch) - 3
    good = batch.drop(index=[2, 5, 9])
    expected = serving_models["challenger"].predict_proba(good[list(schema.FEATURES)])[:, 1]
    np.testing.assert_allclose(scored["churn_probability"], expected, atol=1e-12)
    assert set(store.read()["customer_id"]) == set(good["customerID"])
    with pytest.raises(schema.SchemaError, match="column 'tenure': is missing"):
        challenger.score_frame(batch.drop(columns=["tenure"]))


def test_score_frame_explains_in_probability_units(challenger, rows):
    scored, _ = challenger.score_frame(rows.head(10), explain_rows=True, log=False)
    shap_cols = [f"shap_{f}" for f in schema.FEATURES]
    total = scored["shap_base"] + scored[shap_cols].sum(axis=1)
    np.testing.assert_allclose(total, scored["churn_probability"], atol=1e-6)
    assert scored["top_reasons"].str.count(" pts\\)").eq(3).all()


def test_explanation_actions_and_email_for_one_customer(challenger, rows, monkeypatch):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    risky = rows[(rows["Contract"] == "Month-to-month") & (rows["InternetService"] == "Fiber optic")]
    customer = risky.iloc[0].to_dict()
    explanation = challenger.explain(customer)
    proba = challenger.predict(customer, log=False)["churn_probability"].iloc[0]
    assert explanation.probability == pytest.approx(proba, abs=1e-12)
    space = "probability" if "Forest" in type(challenger.pipeline[-1]).__name__ else "log_odds"
    assert explanation.space == space and explanation.method == "tree_path_dependent"
    found = challenger.actions(customer)
    assert found, "a month-to-month fiber customer has offers that help"
    for action in found:
        assert action.probability_after < action.probability_before == pytest.approx(proba, abs=1e-12)
    settings = challenger.retention
    assert found == retention.actions(challenger.pipeline, customer, settings)  # fast path = pipeline
    email = challenger.email(customer)
    worth = retention.decide(customer, proba, found, challenger.economics).contact
    assert (email.source, email.reason_code) == (
        ("template", "no_api_key") if worth else ("note", "not_worth_contacting")
    )


def test_assess_logs_one_prediction_with_its_email_source(challenger, rows, store, groq_stub):
    customer = rows.iloc[4].to_dict()
    result = challenger.assess(customer)
    assert store.count() == 1
    logged = store.read().iloc[0]
    assert logged["id"] == result.prediction_id and logged["email_source"] == "groq:llama-3.1-8b-instant"
    assert logged["customer_id"] == customer["customerID"]
    assert logged["probability"] == pytest.approx(result.probability)
    assert result.email.source == "groq" and result.risk_level in ("Low", "Medium", "High")
    assert customer["customerID"] not in str(groq_stub.requests)
    assert "gsk_test_SECRET_key_123" not in repr(challenger) + repr(result)
    groq_stub.default = ("status", 500, None)
    challenger.assess(customer)
    assert store.read()["email_source"].iloc[-1] == "template:server_error"


def test_concurrent_predictions_are_all_logged_exactly_once(serving_root, rows, store):
    predictor = Predictor.load("challenger", root=serving_root, store=store)
    batches = [rows.iloc[i : i + 8] for i in range(0, 40, 8)]
    errors: list[BaseException] = []

    def work():
        try:
            for k in range(25):
                predictor.predict(batches[k % len(batches)])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    logged = store.read()
    assert len(logged) == 8 * 25 * 8 == 1600
    assert logged["id"].is_unique and logged["customer_id"].value_counts().eq(40).all()


def test_explainer_background_comes_from_the_train_split(serving_root, prepared, tmp_path, serving_models):
    predictor = Predictor.load("challenger", root=serving_root, log=False)
    bg = predictor.background()
    assert len(bg) == 200 and list(bg.columns) == list(schema.FEATURES)
    train = data.xy(prepared[0])[0]
    assert bg.merge(train.drop_duplicates(), how="inner").shape[0] >= 195
    bare = Predictor(serving_models["logistic_regression"], model_name="lr", root=tmp_path, log=False)
    synthetic = bare.background()
    assert len(synthetic) == 200 and synthetic.equals(bare.background())
    imp = bare.global_importance()
    assert set(imp) == set(schema.FEATURES) and max(imp.values()) > 0


def test_mlflow_registry_uri_loads_the_same_model(serving_models, isolated_env, rows, tmp_path):
    from churn import registry, tracking

    pipe = serving_models["challenger"]
    with registry.quiet_mlflow_logs():
        run_id = tracking.log_model_run(
            model_name="challenger",
            pipeline=pipe,
            spec={"estimator": "hist_gradient_boosting", "params": {}},
            metrics={"roc_auc": 0.8},
            example=rows[list(schema.FEATURES)].head(5),
            tags={},
            root=tmp_path,
        )
        mlflow = registry.connect(tmp_path)
        version = mlflow.register_model(f"runs:/{run_id}/model", "churn-test")
        mlflow.MlflowClient().set_registered_model_alias("churn-test", "champion", version.version)
    predictor = Predictor.load("models:/churn-test@champion", root=tmp_path, log=False)
    assert (predictor.model_name, predictor.model_version) == ("churn-test@champion", str(version.version))
    X = rows[list(schema.FEATURES)].head(5)
    np.testing.assert_allclose(
        predictor.predict(X)["churn_probability"], pipe.predict_proba(X)[:, 1], atol=1e-12
    )
    by_run = Predictor.load(f"runs:/{run_id}/model", root=tmp_path, log=False)
    assert by_run.model_version == run_id
    with pytest.raises(FileNotFoundError, match="models:/churn-test@nope: cannot load"):
        Predictor.load("models:/churn-test@nope", root=tmp_path, log=False)


def test_compiled_preprocessing_reproduces_the_pipeline_exactly(serving_models, synthetic_raw):
    """The compiled evaluation of the fitted preprocessing equals the pipeline's, bit for bit,
    for single customers (the app) and validated batches (the CLI)."""
    records = synthetic_raw[list(schema.FEATURES)].iloc[:300].to_dict("records")
    for k, rec in enumerate(records[:50]):  # numbers as the app sends them
        rec.update(
            tenure=int(rec["tenure"]), MonthlyCharges=float(rec["MonthlyCharges"]), SeniorCitizen=k % 2
        )
    for name, pipe in serving_models.items():
        predictor = Predictor(pipe, model_name=name, log=False)
        assert predictor._compiled is not None, name
        fast = predictor._compiled.transform(records)
        full = pipe[:-1].transform(pd.DataFrame(records))
        assert np.array_equal(fast, full), name
        one = predictor.predict(records[7])["churn_probability"].iloc[0]
        assert one == pipe.predict_proba(pd.DataFrame([records[7]]))[0, 1]
        batch = synthetic_raw[list(schema.FEATURES)]
        assert batch["TotalCharges"].str.strip().eq("").any()  # first-month customers included
        assert np.array_equal(predictor._compiled.transform_frame(batch), pipe[:-1].transform(batch)), name


def test_other_pipeline_layouts_run_whole(nan_breaking_model, synthetic_raw):
    predictor = Predictor(nan_breaking_model, model_name="other", log=False)
    assert predictor._compiled is None
    rows = synthetic_raw[list(schema.FEATURES)].head(5)
    np.testing.assert_allclose(
        predictor.predict(rows)["churn_probability"], nan_breaking_model.predict_proba(rows)[:, 1], atol=1e-15
    )


def test_the_decision_values_each_action_and_the_email_follows_it(
    serving_root, serving_models, rows, monkeypatch
):
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    from churn import economics
    from churn.params import load_params

    params = load_params(serving_root / "params.yaml")
    money = Predictor(serving_models["challenger"], model_name="c", params=params, log=False)
    contacted = skipped = 0
    for _, row in rows.head(15).iterrows():
        served = money.assess(row.to_dict())
        d = served.decision
        assert d is not None and d.contact == (d.expected_profit > 0)
        if d.action_profit is not None:  # no action beats the decision rule's offer
            assert d.action_profit <= d.expected_profit + 1e-9
        if d.contact and not served.actions:
            contacted += 1
            assert d.action is None and served.email.source == "template"
        elif d.contact:
            contacted += 1
            clv_after = [
                economics.customer_value(
                    money.economics, pd.DataFrame([{**served.customer, a.feature: a.proposed}])
                )[0]
                for a in served.actions
            ]
            profits = economics.action_profit(
                [served.probability] * len(served.actions),
                [a.probability_after for a in served.actions],
                clv_after,
                money.economics,
            )
            assert d.action is served.actions[int(np.argmax(profits))]
            assert served.email.source == "template" and f"- {d.action.offer[0].upper()}" in served.email.text
        else:
            skipped += 1
            assert d.action is None and served.email.source == "note"
    assert contacted and skipped  # both decisions occur among 15 synthetic customers
    # Without an economics section (a project from before it): no decision, an email for everyone
    # with the action that lowers the risk most.
    bare = Predictor(serving_models["challenger"], model_name="c", params={}, log=False)
    served = bare.assess(rows.iloc[0].to_dict())
    assert bare.economics is None and served.decision is None and served.email.source == "template"
    if served.actions:
        assert served.email.subject.endswith(served.actions[0].offer)
    bad = params | {"economics": params["economics"] | {"offer_cost": -1}}
    with pytest.raises(ParamsError, match="economics.offer_cost"):
        Predictor(serving_models["challenger"], model_name="c", params=bad, log=False)
