"""No secret and no server path reaches users: the redaction helpers, then the real app (every UI/API
response and every log line), the CLI, and the DEBUG log with a real Groq client against the stub."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pandas as pd
import pytest
from gradio_client import Client, handle_file

from app import serve
from app.predict import HIGH_RISK
from churn import cli
from churn.redact import RedactingFilter, display_path, display_uri, redact_url, scrub
from tests.fixtures import ROOT

SECRET = "PASSWORD"
EXPERIMENT, MODEL = "churn-redact", "churn-redact-model"


# -- the helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("postgresql://user:PASSWORD@127.0.0.1:1/db", "postgresql://user:***@127.0.0.1:1/db"),
        (
            "API request to http://u:PASSWORD@h:5000/api/2.0/x failed (http://u:PASSWORD@h:5000)",
            "API request to http://u:***@h:5000/api/2.0/x failed (http://u:***@h:5000)",
        ),
        ("postgresql+psycopg://app:p@ss@db/churn", "postgresql+psycopg://app:***@db/churn"),
        ("'mysql://root:PASSWORD@h/db'", "'mysql://root:***@h/db'"),
        ("https://h/hook?token=PASSWORD&x=1", "https://h/hook?token=***&x=1"),
        ("postgresql://h/db?password=PASSWORD", "postgresql://h/db?password=***"),
        ("http://127.0.0.1:5000/a@b", "http://127.0.0.1:5000/a@b"),  # a port, not a password
        ("mysql://root@h/db", "mysql://root@h/db"),  # no password to hide
        ("no url here: a:b@c", "no url here: a:b@c"),
    ],
)
def test_redact_url_hides_passwords_in_any_url_of_a_text(text, shown):
    assert redact_url(text) == shown


def test_paths_are_shown_relative_to_the_project_or_by_file_name(tmp_path):
    root = tmp_path / "proj"
    assert display_path(root / "models" / "champion.joblib", root) == "models/champion.joblib"
    assert display_path(root, root) == "."
    assert display_path("/srv/data/predictions.db", root) == "predictions.db"
    assert display_uri(f"sqlite:///{root}/mlflow.db", root) == "sqlite:///mlflow.db (project folder)"
    assert display_uri("sqlite:////srv/x/p.db", root) == "sqlite:///p.db (outside the project folder)"
    assert display_uri("http://u:pw@h:1", root) == "http://u:***@h:1"
    text = (
        f"{root}/models/x.joblib: not found; store sqlite:///{root}/mlflow.db; in {root}; "
        f"{tmp_path}/gradio/0123abcd/customers.csv: the file is empty; {root}2/keep.csv; "
        "postgresql://u:PASSWORD@h/db"
    )
    clean = scrub(text, root)
    assert clean == (
        "models/x.joblib: not found; store sqlite:///mlflow.db; in the project folder; "
        "customers.csv: the file is empty; keep.csv; postgresql://u:***@h/db"
    )


def test_the_log_filter_redacts_messages_arguments_and_tracebacks(tmp_path):
    out = tmp_path / "log.txt"
    handler = logging.FileHandler(out)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test_redact.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("store %s unreachable", "postgresql://u:PASSWORD@h/db")
        try:
            raise RuntimeError("API request to http://u:PASSWORD@h:1/api failed")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = out.read_text()
    assert SECRET not in text and "postgresql://u:***@h/db" in text and "http://u:***@h:1/api" in text


# -- the app ---------------------------------------------------------------------------------------


def _with_password(url: str) -> str:
    return url.replace("http://", f"http://user:{SECRET}@", 1)


@pytest.fixture(scope="module")
def project(private_project, mlflow_server):
    """A private project with its own experiment and registered model names, tracked into the real
    tracking server through a URL that carries credentials (the server ignores them)."""
    with private_project("app_redact") as root:
        text = (root / "params.yaml").read_text()
        text = text.replace("experiment: churn\n", f"experiment: {EXPERIMENT}\n").replace(
            "churn-model", MODEL
        )
        (root / "params.yaml").write_text(text)
        assert f"experiment: {EXPERIMENT}" in text
        yield root


@pytest.fixture(scope="module")
def app_url(project):
    demo, url = serve(project, admin=("admin", "admin-pw"))
    yield url
    demo.close()


def _texts(value) -> list[str]:
    """Every string of a response, file handles (Gradio's own download paths) left out."""
    if isinstance(value, dict):
        if "path" in value and ("url" in value or "orig_name" in value):
            return []
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return [str(value)] if value is not None else []


def _responses(client: Client, csv_path, versions: tuple[str, str]) -> dict[str, list[str]]:
    """Each endpoint's answer (or error) as text."""
    calls = {
        "/status": (),
        "/runs": (),
        "/compare_runs": ("test.roc_auc",),
        "/param_impact": ("n_estimators", "test.roc_auc"),
        "/export_runs": (),
        "/set_challenger": (versions[0], "", False),
        "/set_archived": (versions[1], "", False),
        "/set_champion": (versions[1], "redaction test", True),
        "/monitoring": ("Everything logged", "day"),
        "/check_alerts": ("Everything logged", "day"),
        "/ab_models": (),
        "/ab_test": ("champion", "challenger"),
        "/validation": (),
        "/batch": (handle_file(str(csv_path)), False),
    }
    out = {}
    for endpoint, args in calls.items():
        try:
            out[endpoint] = _texts(client.predict(*args, api_name=endpoint))
        except Exception as exc:  # errors are responses too
            out[endpoint] = [f"{type(exc).__name__}: {exc}"]
    try:
        out["/predict"] = _texts(client.predict(**HIGH_RISK, api_name="/predict"))
    except Exception as exc:
        out["/predict"] = [f"{type(exc).__name__}: {exc}"]
    return out


def _leaks(responses: dict[str, list[str]], project) -> list[str]:
    bad = (SECRET, str(project), "/tmp/", "/home/", "sqlite:////")
    return [f"{ep}: {t[:300]}" for ep, texts in responses.items() for t in texts if any(b in t for b in bad)]


def test_no_password_or_server_path_in_any_response_or_log_line(
    app_url, project, mlflow_server, monkeypatch, caplog, capfd, tmp_path
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the refused connection answers at once
    csv_path = tmp_path / "customers.csv"
    pd.read_csv(project / "data/raw/synthetic.csv", dtype=str).head(5).to_csv(csv_path, index=False)
    client = Client(
        app_url, auth=("admin", "admin-pw"), verbose=False, download_files=False, analytics_enabled=False
    )

    # 1. Stores that fail, with passwords in their URLs (the prediction log first: it is opened once)
    monkeypatch.setenv("CHURN_DB_URL", f"postgresql://user:{SECRET}@127.0.0.1:1/predictions")
    for store in (f"postgresql://user:{SECRET}@127.0.0.1:1/mlflow", f"http://user:{SECRET}@127.0.0.1:1"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
        failing = _responses(client, csv_path, ("1", "2"))
        assert _leaks(failing, project) == []
        assert "user:***@127.0.0.1:1" in failing["/runs"][0], failing["/runs"]
        assert "AppError" in failing["/monitoring"][0]

    # 2. A working tracking server reached through a URL with credentials; the project's own log
    monkeypatch.setenv("CHURN_DB_URL", f"sqlite:///{project / 'predictions.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", _with_password(mlflow_server))
    monkeypatch.chdir(project)
    assert cli.main(["track"]) == 0
    working = _responses(client, csv_path, _registered())
    assert _leaks(working, project) == []
    port = mlflow_server.rsplit(":", 1)[1]
    assert working["/runs"][0] == f"2 run(s) in MLflow at `http://user:***@127.0.0.1:{port}`."
    assert "is now the **champion**" in working["/set_champion"][0]
    assert "from the project folder `project`" in working["/status"][0]

    logged = caplog.text + "\n".join(capfd.readouterr())
    assert SECRET not in logged
    assert f"user:***@127.0.0.1:{port}" in logged  # `churn track` said where, redacted
    app_lines = [r.getMessage() for r in caplog.records if r.name.startswith("app")]
    assert app_lines and not [line for line in app_lines if str(project) in line or SECRET in line]


def _registered() -> tuple[str, str]:
    from churn import registry

    found = registry.aliases(registry.client("."), MODEL)
    return found.get("champion", "1"), found.get("challenger", "2")


# -- the command line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "store", [f"postgresql://user:{SECRET}@127.0.0.1:1/db", f"http://user:{SECRET}@127.0.0.1:1"]
)
def test_cli_errors_name_the_store_without_its_password(private_project, monkeypatch, capsys, store):
    with private_project("cli_redact") as root:
        monkeypatch.chdir(root)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        shown = store.replace(SECRET, "***")
        for argv in (["track"], ["registry"], ["promote", "--version", "1", "--force", "--reason", "test"]):
            assert cli.main(argv) == 1, argv
            out, err = capsys.readouterr()
            assert SECRET not in out + err and f"cannot use the MLflow registry at {shown}" in err, (
                argv,
                err,
            )


def test_cli_headers_show_the_store_without_its_password(private_project, mlflow_server, monkeypatch, capsys):
    with private_project("cli_redact_ok") as root:
        monkeypatch.chdir(root)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", _with_password(mlflow_server))
        (root / "params.yaml").write_text(
            (root / "params.yaml").read_text().replace("churn-model", "churn-cli-redact")
        )
        assert cli.main(["registry"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(
            f"churn-cli-redact: no versions registered yet at {_with_password(mlflow_server).replace(SECRET, '***')}"
        )
        assert SECRET not in out


# -- the DEBUG log ---------------------------------------------------------------------------------


def test_the_debug_log_shows_no_prompt_unless_groq_log_asks(private_project, groq_stub):
    """With --log-level DEBUG the Groq client would print each request, prompt and customer included."""
    groq_stub.default = ("ok", groq_stub.REPLY)
    with private_project("debug_log") as root:
        (root / "customer.json").write_text(json.dumps(HIGH_RISK))
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "GROQ_API_KEY": "gsk_test",
            "GROQ_BASE_URL": groq_stub.url,
        }
        cmd = [sys.executable, "-m", "churn", "--log-level", "DEBUG", "explain", "customer.json", "--email"]
        quiet = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert quiet.returncode == 0, quiet.stderr[-3000:]
        assert groq_stub.requests, "the email was not asked of the (stub) LLM"
        prompt = groq_stub.requests[-1]["messages"][-1]["content"]
        assert "Request options" not in quiet.stderr and prompt[:60] not in quiet.stderr
        assert "Electronic check" not in quiet.stderr  # the customer's profile
        asked = subprocess.run(
            cmd, cwd=root, env={**env, "GROQ_LOG": "debug"}, capture_output=True, text=True, timeout=300
        )
        assert asked.returncode == 0 and "Request options" in asked.stderr  # the switch works,
        assert "Electronic check" in asked.stderr  # and shows what the default DEBUG log keeps out


@pytest.mark.parametrize("password", ["PW/slashML", "pw with space", "it's\"quoted`", "p@ss/w:rd"])
def test_configured_store_passwords_are_hidden_whatever_they_hold(monkeypatch, password):
    url = f"postgresql://mluser:{password}@127.0.0.1:1/mlflow"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    shown = redact_url(f"Cannot read MLflow runs at {url}: No module named 'psycopg'")
    assert password not in shown and "mluser:***@127.0.0.1:1/mlflow" in shown
