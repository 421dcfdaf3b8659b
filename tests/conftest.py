"""Shared fixtures: repository paths, the real data, small synthetic frames, a clean environment."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from churn.io import REAL_DATA_ENV, REAL_DATA_HINT, real_data_path

ROOT = Path(__file__).resolve().parents[1]
REAL_CSV = real_data_path()  # CHURN_REAL_DATA, default ../shared/data/telco-customer-churn.csv
REAL_DATA_FIXTURES = frozenset({"real_csv", "real_raw"})
_DESELECTED = pytest.StashKey[int]()
VENV_BIN = Path(os.sys.executable).parent

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):
    """Every test that uses the real data (directly or through another fixture) gets the `real_data`
    marker before `-m` filters run, so nobody has to remember it. After every filter, without the
    real file the remaining `real_data` tests are deselected; under CI that is a usage error instead."""
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
    result = yield
    _deselect_without_real_data(config, items)
    return result


def _deselect_without_real_data(config, items) -> None:
    needing = [item for item in items if item.get_closest_marker("real_data")]
    if not needing or REAL_CSV.is_file():
        return
    if _in_ci():
        raise pytest.UsageError(
            f"{REAL_DATA_ENV}={REAL_CSV} does not exist and CI is set: {len(needing)} real_data "
            f"test(s) need it; {REAL_DATA_HINT}"
        )
    config.hook.pytest_deselected(items=needing)
    items[:] = [item for item in items if not item.get_closest_marker("real_data")]
    config.stash[_DESELECTED] = len(needing)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    deselected = config.stash.get(_DESELECTED, 0)
    if deselected:
        terminalreporter.write_line(
            f"real_data: {deselected} test(s) deselected, {REAL_DATA_ENV}={REAL_CSV} not found; "
            f"{REAL_DATA_HINT}",
            yellow=True,
        )


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def real_csv() -> Path:
    if not REAL_CSV.is_file():  # only reachable when the collection hook was bypassed
        pytest.fail(f"{REAL_DATA_ENV}={REAL_CSV} does not exist; {REAL_DATA_HINT}")
    return REAL_CSV


@pytest.fixture(scope="session")
def real_raw(real_csv) -> pd.DataFrame:
    from churn import data

    return data.read_raw(real_csv)


@pytest.fixture(scope="session")
def synthetic_raw() -> pd.DataFrame:
    """2,000 synthetic customers in raw CSV form (strings, blank TotalCharges at tenure 0)."""
    from churn import synth

    return synth.generate(rows=2000, seed=7)


@pytest.fixture(scope="session")
def prepared(synthetic_raw) -> tuple[pd.DataFrame, pd.DataFrame]:
    from churn import data

    df, _ = data.clean(synthetic_raw)
    return data.split(df, test_size=0.25, seed=7)


@pytest.fixture(scope="session")
def fitted(prepared):
    """A small fitted logistic-regression pipeline on synthetic data."""
    from churn import data, model

    X, y = data.xy(prepared[0])
    return model.build("challenger", {"estimator": "logistic_regression", "params": {}}, seed=7).fit(X, y)


@pytest.fixture()
def store(tmp_path):
    """A fresh SQLite prediction log in the test's temp folder (modules may define their own `store`)."""
    from churn.monitoring.store import PredictionStore

    s = PredictionStore(f"sqlite:///{tmp_path / 'predictions.db'}")
    yield s
    s.dispose()


@pytest.fixture()
def isolated_env(tmp_path, monkeypatch) -> Path:
    """Point MLflow and the prediction log at temporary stores."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CHURN_DB_URL", f"sqlite:///{tmp_path / 'predictions.db'}")
    return tmp_path


def tracked_files(root: Path) -> list[str]:
    """Files git tracks plus untracked ones it does not ignore (the working tree a clone would get)."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [f for f in out if f and (root / f).is_file()]


@pytest.fixture()
def repo_copy(tmp_path) -> Path:
    """The working tree copied into a fresh git repository with one commit (no DVC cache)."""
    dest = tmp_path / "repo"
    for rel in tracked_files(ROOT):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    env = git_env()
    for cmd in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "add", "-A"],
        ["git", "commit", "-q", "-m", "copy"],
    ):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GIT_AUTHOR_NAME="test",
        GIT_AUTHOR_EMAIL="test@example.invalid",
        GIT_COMMITTER_NAME="test",
        GIT_COMMITTER_EMAIL="test@example.invalid",
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, check: bool = True, timeout: int = 600):
    """Run a real command; on failure show its output in the assertion."""
    proc = subprocess.run(cmd, cwd=cwd, env=env or git_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture(scope="session")
def sh():
    """`sh(cmd, cwd, env=None, check=True)`: run a real command, failing with its output."""
    return run


@pytest.fixture(scope="session")
def env_for():
    """`env_for(**extra)`: an environment with the venv on PATH, git identity and extra variables."""

    def make(**extra: str) -> dict[str, str]:
        env = git_env()
        env.update(extra)
        return env

    return make


@pytest.fixture(scope="session")
def project_root(tmp_path_factory) -> Path:
    """A small built project in a temporary directory, laid out as after `dvc repro`.

    1,200 synthetic customers through the real stage mains: params.yaml, data/raw/synthetic.csv,
    data/prepared/{train,test}.parquet, models/{champion,challenger}.joblib, every metrics file
    (evaluate, fairness, robustness, ab_test, validation, model card), and the MLflow store
    `<root>/mlflow.db` with one report run per model and the registry aliases. The environment
    is left untouched: point `MLFLOW_TRACKING_URI` at `sqlite:///<root>/mlflow.db` to read it.
    """
    import yaml
    from threadpoolctl import threadpool_limits

    from stages import ab_test, evaluate, prepare, report, robustness, synthesize, train, validate_fairness

    dest = tmp_path_factory.mktemp("project")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["synthesize"]["rows"] = 1200
    params["train"]["cv_folds"] = 0  # no cross-validation report: the fixture needs fitted models only
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp, threadpool_limits(1):
        mp.chdir(dest)
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{dest / 'mlflow.db'}")
        synthesize.main(["--out", "data/raw/synthetic.csv"])
        prepare.main([])
        for name in ("champion", "challenger"):
            train.main(["--name", name])
            evaluate.main(["--name", name, "--no-mlflow"])
        validate_fairness.main([])
        robustness.main([])
        ab_test.main([])
        report.main([])
    return dest


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def started_server(
    cmd: list[str], ready_url: str, *, cwd: Path, env: dict[str, str], log_path: Path, timeout: float = 90
):
    """Run a real server process (own process group, output to `log_path`) until `ready_url` answers
    200; yield the process, then stop the whole group (SIGTERM, then SIGKILL). Fails with the log's
    tail if the process exits or is not ready within `timeout` seconds."""
    import signal
    import time
    import urllib.request

    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"{' '.join(cmd[:3])} exited {proc.returncode}:\n{log_path.read_text()[-4000:]}"
                    )
                with contextlib.suppress(OSError), urllib.request.urlopen(ready_url, timeout=2) as resp:
                    if resp.status == 200:
                        break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"{' '.join(cmd[:3])} not ready after {timeout:g} s:\n{log_path.read_text()[-4000:]}"
                    )
                time.sleep(0.5)
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> str:
    """A real `mlflow server` on 127.0.0.1 (SQLite backend, proxied artifacts under tmp); its URL.

    Started once per test session (readiness: GET /health, up to 90 s) and terminated after it.
    """
    base = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    cmd = [
        str(VENV_BIN / "mlflow"),
        "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{base / 'mlflow.db'}",
        "--artifacts-destination", str(base / "artifacts"),
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    env.pop("MLFLOW_TRACKING_URI", None)
    url = f"http://127.0.0.1:{port}"
    with started_server(cmd, f"{url}/health", cwd=base, env=env, log_path=base / "server.log"):
        yield url


@pytest.fixture(scope="session")
def nan_breaking_model(prepared):
    """A fitted pipeline with no imputer: raw Telco columns in, but a NaN makes predict_proba raise."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from churn import data, features, schema

    X, y = data.xy(prepared[0])
    columns = ColumnTransformer(
        [
            ("num", StandardScaler(), list(schema.NUMERIC_FEATURES)),  # keeps NaN as NaN
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(schema.CATEGORICAL_FEATURES)),
        ]
    )
    model = LogisticRegression(max_iter=1000)
    return Pipeline([("coerce", features.coercer()), ("columns", columns), ("model", model)]).fit(X, y)


@pytest.fixture(scope="session")
def serving_models(prepared, root) -> dict:
    """Fitted pipelines on the small synthetic split: the params.yaml champion and challenger specs,
    and a logistic regression."""
    from churn import data, model
    from churn.params import load_params

    specs = load_params(root / "params.yaml")["models"]
    specs = {
        "champion": specs["champion"],
        "challenger": specs["challenger"],
        "logistic_regression": {"estimator": "logistic_regression", "params": {}},
    }
    X, y = data.xy(prepared[0])
    return {name: model.build(name, spec, seed=7).fit(X, y) for name, spec in specs.items()}


@pytest.fixture(scope="session")
def serving_root(tmp_path_factory, serving_models, prepared, root) -> Path:
    """A project root for serving: params.yaml, models/{champion,challenger}.joblib, the train split."""
    from churn.io import save_model, write_table

    dest = tmp_path_factory.mktemp("serving_root")
    shutil.copy2(root / "params.yaml", dest / "params.yaml")
    for name in ("champion", "challenger"):
        save_model(serving_models[name], dest / "models" / f"{name}.joblib")
    write_table(prepared[0], dest / "data" / "prepared" / "train.parquet")
    return dest


class GroqStub:
    """A local stand-in for the Groq API: `POST /openai/v1/chat/completions` on 127.0.0.1.

    `plan[model]` says how to answer a model: ("ok", text) (text may be empty), ("status", code,
    error code or None), ("sleep", seconds) before answering, ("drip", seconds) between the bytes
    of the answer, ("malformed",) a body cut off mid-JSON, ("body", any JSON) instead of a chat
    completion, or ("no_choices",) a completion with an empty `choices` list. Unplanned models get
    `default`. `requests` keeps every received body.
    """

    REPLY = "Subject: Stay with us\n\nDear customer,\n\nWe have an offer for you.\n\nCustomer Care"

    def __init__(self) -> None:
        self.plan: dict[str, tuple] = {}
        self.default: tuple = ("ok", self.REPLY)
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.url = ""

    def answer(self, handler) -> None:
        import json as _json

        size = int(handler.headers.get("content-length") or 0)
        body = _json.loads(handler.rfile.read(size) or b"{}")
        self.requests.append(body)
        self.headers.append(dict(handler.headers))
        if handler.path != "/openai/v1/chat/completions":
            return self._send(handler, 404, {"error": {"message": "unknown path", "code": "unknown_url"}})
        step = self.plan.get(body.get("model"), self.default)
        if step[0] == "sleep":
            import time as _time

            _time.sleep(step[1])
            step = ("ok", self.REPLY)
        if step[0] == "status":
            code, err = step[1], step[2]
            error = {"message": f"stub error {code}", "type": "invalid_request_error", "code": err}
            payload = {"error": error}
            return self._send(handler, code, payload)
        if step[0] == "malformed":
            return self._send(handler, 200, b'{"id": "chatcmpl-stub", "choices": [{"index": 0, "mess')
        if step[0] == "body":
            return self._send(handler, 200, step[1])
        text = step[1] if step[0] == "ok" else self.REPLY
        reply = {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        if step[0] == "no_choices":
            reply["choices"] = []
        return self._send(handler, 200, reply, drip=step[1] if step[0] == "drip" else 0.0)

    @staticmethod
    def _send(handler, code: int, payload, drip: float = 0.0) -> None:
        import json as _json
        import time as _time

        data = payload if isinstance(payload, bytes) else _json.dumps(payload).encode()
        try:
            handler.send_response(code)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.send_header("retry-after-ms", "10")
            handler.end_headers()
            if not drip:
                handler.wfile.write(data)
            for i in range(len(data) if drip else 0):  # one byte at a time: every read is quick
                handler.wfile.write(data[i : i + 1])
                handler.wfile.flush()
                _time.sleep(drip)
        except OSError:
            pass  # the client gave up (timeout test)


@pytest.fixture()
def groq_stub(monkeypatch):
    """A running GroqStub; GROQ_BASE_URL points at it and GROQ_API_KEY is a test key."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stub = GroqStub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            stub.answer(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("GROQ_BASE_URL", stub.url)
    monkeypatch.setenv("GROQ_API_KEY", "gsk_test_SECRET_key_123")
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def monitor_root(tmp_path, prepared, fitted, monkeypatch) -> Path:
    """A project directory for `churn monitor`: the repo's params.yaml, prepared splits, a champion
    model (the small fitted pipeline), and CHURN_DB_URL pointing at a fresh prediction log."""
    import joblib

    root = tmp_path / "project"
    (root / "data" / "prepared").mkdir(parents=True)
    (root / "models").mkdir()
    shutil.copy2(ROOT / "params.yaml", root / "params.yaml")
    prepared[0].to_parquet(root / "data" / "prepared" / "train.parquet", index=False)
    prepared[1].to_parquet(root / "data" / "prepared" / "test.parquet", index=False)
    joblib.dump(fitted, root / "models" / "champion.joblib")
    monkeypatch.setenv("CHURN_DB_URL", f"sqlite:///{tmp_path / 'predictions.db'}")
    monkeypatch.delenv("CHURN_ALERT_WEBHOOK", raising=False)
    return root


@pytest.fixture(scope="session")
def private_project(project_root, tmp_path_factory):
    """`with private_project(name) as root:` a copy of the built project with its own MLflow
    store and prediction log, and no Groq key (tests that change the project use a copy)."""
    import contextlib

    @contextlib.contextmanager
    def make(name: str):
        root = tmp_path_factory.mktemp(name) / "project"
        shutil.copytree(project_root, root)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
            mp.setenv("CHURN_DB_URL", f"sqlite:///{root / 'predictions.db'}")
            mp.delenv("GROQ_API_KEY", raising=False)
            yield root

    return make
