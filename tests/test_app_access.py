"""Readers read, only the admin changes: every changing endpoint of the real app (gradio_client and
plain HTTP) without an admin configured, as a reader, with a wrong admin password and as the admin;
and the app refuses to start off loopback without a login."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

import app
from app.access import ADMIN_ENV, ANONYMOUS_ENV, AUTH_ENV, Access, Login, is_loopback, start_problem
from churn import registry
from tests.fixtures import ROOT

READER = ("analyst", "reader-pw")
ADMIN = ("admin", "admin-pw")
REGISTRY_ENDPOINTS = ("/set_champion", "/set_challenger", "/set_archived")
WINDOW = "Everything logged"
NO_ADMIN = (
    "needs the admin login (CHURN_APP_ADMIN): none is configured, so this app is read-only. Nothing changed."
)


class Webhook:
    """A local alert receiver: counts the POSTs the app sends to CHURN_ALERT_WEBHOOK."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                size = int(self.headers.get("content-length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(size) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook():
    """CHURN_ALERT_WEBHOOK pointing at a local receiver."""
    hook = Webhook()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHURN_ALERT_WEBHOOK", hook.url)
        yield hook
    hook.close()


@pytest.fixture(scope="module")
def project(private_project, webhook):
    """A private built project whose prediction log holds drifted traffic (so a check fires alerts)."""
    from churn import serving
    from churn.monitoring import simulate

    with private_project("app_access") as root:
        customers = simulate.traffic(500, simulate.Scenario.get("contract_mix"), days=6, seed=5)
        simulate.replay(serving.Predictor.load(root=root), customers)
        yield root


def snapshot(root, webhook) -> tuple:
    """Everything a changing endpoint could change: params.yaml bytes, the registry (aliases, every
    version's status and history), the stored alerts, the webhook's deliveries."""
    from churn.monitoring.store import PredictionStore

    mlflow_client = registry.client(root)
    return (
        (root / "params.yaml").read_bytes(),
        registry.aliases(mlflow_client, "churn-model"),
        registry.list_versions("churn-model", root=root),
        len(PredictionStore().read_alerts(limit=None)),
        len(webhook.bodies),
    )


def _versions(root) -> tuple[str, str]:
    found = registry.aliases(registry.client(root), "churn-model")
    return found["champion"], found["challenger"]


def _calls(root) -> list[tuple[str, tuple]]:
    """One call per changing endpoint, each one that would change something if allowed (the champion
    call is the issue's forced promotion)."""
    champion, challenger = _versions(root)
    return [
        ("/set_champion", (challenger, "anonymous", True)),
        ("/set_challenger", (champion, "", False)),
        ("/set_archived", (challenger, "", False)),
        ("/check_alerts", (WINDOW, "day")),
    ]


def _http_call(url: str, endpoint: str, data: list, cookies: httpx.Cookies | None = None) -> tuple[int, str]:
    """Gradio's HTTP API: POST the inputs, then read the server-sent events; (status of the POST, events)."""
    with httpx.Client(base_url=url, cookies=cookies, timeout=60) as http:
        posted = http.post(f"/gradio_api/call{endpoint}", json={"data": data})
        if posted.status_code != 200:
            return posted.status_code, posted.text
        return 200, http.get(f"/gradio_api/call{endpoint}/{posted.json()['event_id']}").text


@pytest.fixture(scope="module")
def open_app(project):
    """The app as `python -m app` starts it with no CHURN_APP_AUTH and no CHURN_APP_ADMIN."""
    demo, url = app.serve(project)
    yield demo, url
    demo.close()


@pytest.fixture(scope="module")
def guarded_url(project):
    """The app with a reader login and an admin login."""
    demo, url = app.serve(project, auth=READER, admin=ADMIN)
    yield url
    demo.close()


def _client(url, auth=None) -> Client:
    return Client(url, auth=auth, verbose=False, download_files=False, analytics_enabled=False)


def test_without_an_admin_every_changing_endpoint_is_refused_and_changes_nothing(open_app, project, webhook):
    demo, url = open_app
    client = _client(url)
    before = snapshot(project, webhook)
    for endpoint, args in _calls(project):
        if endpoint == "/check_alerts":
            with pytest.raises(
                AppError, match=re.escape("Storing alerts and posting them to the webhook " + NO_ADMIN)
            ):
                client.predict(*args, api_name=endpoint)
        else:
            message, table = client.predict(*args, api_name=endpoint)
            assert message == f"✗ Changing the registry {NO_ADMIN}"
            assert {row[1] for row in table["data"]} >= {"champion", "challenger"}  # still shown
        assert snapshot(project, webhook) == before, endpoint
    challenger = _versions(project)[1]
    status, events = _http_call(url, "/set_champion", [challenger, "over plain HTTP", True])
    assert status == 200 and "Changing the registry needs the admin login" in events
    status, events = _http_call(url, "/check_alerts", [WINDOW, "day"])
    assert status == 200 and "event: error" in events and "needs the admin login" in events
    assert snapshot(project, webhook) == before
    # reading needs no login and works
    assert client.predict(api_name="/runs")[0].startswith("2 run(s) in MLflow")
    assert "predictions" in client.predict(WINDOW, "day", api_name="/monitoring")[0]
    # the UI says so and its changing buttons are off
    buttons = [c["props"] for c in demo.config["components"] if c["type"] == "button"]
    components = {props["value"]: props for props in buttons}
    for label in ("Set champion", "Set challenger", "Set archived", "Run checks and store alerts"):
        assert components[label]["interactive"] is False, label
    notes = [c["props"].get("value") or "" for c in demo.config["components"] if c["type"] == "markdown"]
    assert any(n.startswith("Changing the registry needs the admin login") for n in notes)


def test_a_reader_is_refused_and_a_wrong_admin_password_cannot_sign_in(guarded_url, project, webhook):
    before = snapshot(project, webhook)
    reader = _client(guarded_url, READER)
    for endpoint, args in _calls(project):
        why = "needs the admin login (CHURN_APP_ADMIN): you are signed in as 'analyst', a reader. Nothing changed."
        if endpoint == "/check_alerts":
            with pytest.raises(AppError, match=re.escape(why)):
                reader.predict(*args, api_name=endpoint)
        else:
            message, _ = reader.predict(*args, api_name=endpoint)
            assert message == f"✗ Changing the registry {why}"
        assert snapshot(project, webhook) == before, endpoint
    for auth in (("admin", "wrong"), ("admin", ""), ("Admin", ADMIN[1]), None):
        with pytest.raises(Exception):  # noqa: B017 - the login (or the app without one) refuses
            _client(guarded_url, auth)
    with httpx.Client(base_url=guarded_url) as http:
        assert http.post("/login", data={"username": "admin", "password": "wrong"}).status_code == 400
        assert http.post("/gradio_api/call/set_champion", json={"data": ["1", "x", True]}).status_code == 401
    assert snapshot(project, webhook) == before


def _button_states(url: str, auth: tuple[str, str]) -> list[bool]:
    """`interactive` of the three registry buttons as `/registry_controls` sets them for this login."""
    import json

    with httpx.Client(base_url=url) as http:
        assert http.post("/login", data={"username": auth[0], "password": auth[1]}).status_code == 200
        status, events = _http_call(url, "/registry_controls", [], http.cookies)
    assert status == 200, events
    data = next(line[len("data: ") :] for line in events.splitlines() if line.startswith("data: ["))
    return [update["interactive"] for update in json.loads(data)]


def test_registry_buttons_are_usable_only_by_the_admin(guarded_url):
    assert _button_states(guarded_url, READER) == [False, False, False]
    assert _button_states(guarded_url, ADMIN) == [True, True, True]


def test_the_admin_changes_the_registry_and_stores_alerts(guarded_url, project, webhook):
    admin = _client(guarded_url, ADMIN)
    champion, challenger = _versions(project)
    params_before = (project / "params.yaml").read_bytes()

    message, table = admin.predict(challenger, "", False, api_name="/set_archived")
    assert (
        message.endswith("is now `archived`.")
        and {r[0]: r[1] for r in table["data"]}[challenger] == "archived"
    )
    message, _ = admin.predict(challenger, "", False, api_name="/set_challenger")
    assert message.endswith("is now `challenger`.") and _versions(project) == (champion, challenger)

    alerts_before, posts_before = snapshot(project, webhook)[3:]
    admin.predict(WINDOW, "day", api_name="/check_alerts")
    alerts_after, posts_after = snapshot(project, webhook)[3:]
    assert alerts_after > alerts_before and posts_after == posts_before + 1
    assert webhook.bodies[-1]["source"] == "churn-monitor"

    message, table = admin.predict(challenger, "rollout by the admin", True, api_name="/set_champion")
    assert "is now the **champion**" in message
    assert registry.aliases(registry.client(project), "churn-model") == {"champion": challenger}
    assert (project / "params.yaml").read_bytes() != params_before
    history = {row[0]: row[7] for row in table["data"]}[challenger]
    assert f"champion by app:{ADMIN[0]}" in history

    with httpx.Client(base_url=guarded_url) as http:  # plain HTTP: log in, then call with the cookie
        assert http.post("/login", data={"username": ADMIN[0], "password": ADMIN[1]}).status_code == 200
        cookies = http.cookies
    status, events = _http_call(guarded_url, "/set_challenger", [champion, "", False], cookies)
    assert status == 200 and "event: complete" in events and "is now `challenger`" in events


def test_logins_keep_only_password_digests_and_compare_in_constant_time():
    access = Access.from_env({AUTH_ENV: "analyst:r:pw", ADMIN_ENV: "admin:s3cret"})
    assert access.check("analyst", "r:pw") and access.check("admin", "s3cret")
    assert not access.check("admin", "r:pw") and not access.check("analyst", "s3cret")
    assert not access.check("", "") and not access.check("admin", "")
    assert "s3cret" not in repr(access) and "s3cret" not in access.describe()
    assert access.admin == Login("admin", __import__("hashlib").sha256(b"s3cret").digest())
    with pytest.raises(ValueError, match="must name different users"):
        Access.from_env({AUTH_ENV: "admin:a", ADMIN_ENV: "admin:b"})
    only_admin = Access.from_env({ADMIN_ENV: "admin:s3cret"})
    assert only_admin.login_required and only_admin.check("admin", "s3cret") and only_admin.reader is None
    assert Access().refusal(None, "X") == f"X {NO_ADMIN}"

    class Request:
        username = "admin"

    assert access.refusal(Request(), "X") is None
    Request.username = "analyst"
    assert "you are signed in as 'analyst', a reader" in access.refusal(Request(), "X")
    assert "you are not signed in" in access.refusal(None, "X")


@pytest.mark.parametrize(
    ("host", "env", "refused"),
    [
        ("127.0.0.1", {}, False),
        ("localhost", {}, False),
        ("::1", {}, False),
        ("127.0.0.2", {}, False),
        ("0.0.0.0", {}, True),
        ("::", {}, True),
        ("", {}, True),
        ("192.168.1.5", {}, True),
        ("churn.example.com", {}, True),
        ("0.0.0.0", {AUTH_ENV: "analyst:pw"}, False),
        ("0.0.0.0", {ADMIN_ENV: "admin:pw"}, False),
        ("0.0.0.0", {ANONYMOUS_ENV: "1"}, False),
        ("0.0.0.0", {ANONYMOUS_ENV: "yes"}, False),
        ("0.0.0.0", {ANONYMOUS_ENV: "0"}, True),
        ("0.0.0.0", {ANONYMOUS_ENV: ""}, True),
    ],
)
def test_off_loopback_the_app_needs_a_login_or_an_explicit_opt_out(host, env, refused):
    problem = start_problem(host, Access.from_env(env), env)
    assert (problem is not None) == refused
    assert is_loopback(host) == (host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    if refused:
        assert problem == (
            f"refusing to serve on {host} without a login: set CHURN_APP_AUTH=user:password (readers) "
            "and/or CHURN_APP_ADMIN=user:password (admin), or CHURN_APP_ALLOW_ANONYMOUS=1 to serve "
            "without a login on purpose"
        )


def test_main_refuses_to_start_on_every_interface_without_a_login(tmp_path, monkeypatch, caplog):
    for key in (AUTH_ENV, ADMIN_ENV, ANONYMOUS_ENV):
        monkeypatch.delenv(key, raising=False)

    def build(*args, **kwargs):
        raise AssertionError("the app was built: it should have refused before loading anything")

    monkeypatch.setattr(app, "build", build)
    assert app.main(["--root", str(tmp_path), "--host", "0.0.0.0", "--port", "1"]) == 2
    assert "refusing to serve on 0.0.0.0 without a login" in caplog.text
    monkeypatch.setenv(ADMIN_ENV, "admin")  # malformed: refused before anything starts too
    assert app.main(["--root", str(tmp_path), "--host", "127.0.0.1", "--port", "1"]) == 2
    assert "CHURN_APP_ADMIN must look like user:password" in caplog.text


def test_the_container_entry_point_exits_with_one_clear_line(tmp_path):
    """`python -m app` as the Dockerfile runs it (GRADIO_SERVER_NAME=0.0.0.0), with no login set."""
    env = {
        k: v
        for k, v in __import__("os").environ.items()
        if k not in (AUTH_ENV, ADMIN_ENV, ANONYMOUS_ENV, "GRADIO_SERVER_PORT")
    }
    env["GRADIO_SERVER_NAME"] = "0.0.0.0"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "--root", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].endswith(
        "ERROR app: refusing to serve on 0.0.0.0 without a login: set CHURN_APP_AUTH=user:password "
        "(readers) and/or CHURN_APP_ADMIN=user:password (admin), or CHURN_APP_ALLOW_ANONYMOUS=1 to serve "
        "without a login on purpose"
    )
