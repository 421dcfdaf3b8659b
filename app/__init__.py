"""The Gradio app: `build()` makes the Blocks (one tab per concern), `main()` launches it (`python -m app`)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from app.access import ADMIN_ENV, ANONYMOUS_ENV, AUTH_ENV, Access, start_problem
from churn.redact import scrub

__all__ = ["ADMIN_ENV", "ANONYMOUS_ENV", "AUTH_ENV", "Access", "build", "main", "serve", "start_problem"]

log = logging.getLogger(__name__)

#: Telemetry and version checks off before gradio (or huggingface_hub) is imported.
QUIET_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
}
HOST, PORT = "127.0.0.1", 7860
#: Prometheus metrics: their own port (no Gradio login in the way), loopback unless set otherwise.
METRICS_PORT, METRICS_PORT_ENV, METRICS_HOST_ENV = 9464, "CHURN_METRICS_PORT", "CHURN_METRICS_HOST"
#: Requests served at once per event (the default queue serves one at a time).
CONCURRENCY = 16
#: Uploads above this are refused by Gradio itself; the Batch tab refuses smaller ones by its own limit.
HARD_UPLOAD_LIMIT = "200mb"
TITLE = "Churn MLOps"
#: Gradio's `delete_cache` (every, older than; seconds): uploaded customer files and the scored CSVs
#: and exports handed out are deleted an hour after they were made (and all of them at shutdown).
CACHE_LIFETIME = (300, 3600)
#: Page styles: a dropdown (class `churn-choice`; `churn-choice-wide` for choices over 20 characters)
#: is wide enough for its longest choice, so no value is clipped ("Month-to-montl").
CSS = """
.churn-choice { min-width: min(100%, 13.5em) !important; }
.churn-choice.churn-choice-wide { min-width: min(100%, 17.5em) !important; }
"""


def quiet() -> None:
    """Switch Gradio, Hugging Face and MLflow telemetry off for this process (unless set explicitly)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def build(
    root: str | Path = ".",
    model: str = "champion",
    *,
    state: Any = None,
    trust_model: bool = False,
    access: Access | None = None,
) -> Any:
    """The app's `gr.Blocks` for the project at `root`, serving `model` (loaded once, here).

    When no model can be loaded, the app is one page saying what to do instead of a traceback.
    `access` says who may change things (default: nobody, the app is read-only).
    `trust_model` (`--trust-model`) serves a .joblib file that is not one of the pipeline's models.
    """
    quiet()
    import gradio as gr

    from app import abtest, batch, experiments, metrics, monitoring, predict, validation
    from app.state import AppState

    state = state or AppState.load(root, model, trust_model=trust_model)
    access = access or Access()
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=CACHE_LIFETIME) as demo:
        gr.Markdown(f"# {TITLE} — customer churn")
        status = gr.Markdown(elem_id="status")
        demo.load(lambda: status_text(state), outputs=status, api_name="status")
        demo.ops_metrics = metrics.of(state)  # counted by app.metrics, served by `serve_metrics`
        if state.predictor is None:
            gr.Markdown(problem_text(state), elem_id="problem")
            demo.ops_metrics.instrument(demo)
            return demo
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                predict.build_tab(state)
            with gr.Tab("Batch", id="batch"):
                batch.build_tab(state)
            with gr.Tab("Experiments & registry", id="experiments") as tab:
                experiments.build_tab(state, tab, access)
            with gr.Tab("Monitoring", id="monitoring") as tab:
                monitoring.build_tab(state, tab, access)
            with gr.Tab("A/B test", id="abtest") as tab:
                abtest.build_tab(state, tab)
            with gr.Tab("Validation", id="validation") as tab:
                validation.build_tab(state, tab)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    demo.ops_metrics.instrument(demo)
    return demo


def status_text(state: Any) -> str:
    """One line on what the app serves (or why it cannot); no server path or credential in it."""
    if state.predictor is None:
        return f"**Not serving:** {scrub(state.problem, state.root)}"
    p = state.predictor
    return (
        f"Serving **{p.model_name}** (`{scrub(p.model_version, state.root)}`) from the project folder "
        f"`{state.root.name}` · loaded in {state.load_seconds:.1f} s · "
        "predictions are logged to the monitoring store"
    )


def problem_text(state: Any) -> str:
    return (
        f"## {scrub(state.problem, state.root)}\n\n"
        "The app serves the model the pipeline builds. From the project folder run:\n\n"
        "```bash\ndvc repro        # or: make repro\npython -m app\n```\n\n"
        f"Project folder: `{state.root.name}` · model asked for: `{scrub(state.model, state.root)}` "
        "(`--model` picks another: champion, challenger, a .joblib file or an MLflow URI such as "
        "`models:/churn-model@champion`)."
    )


def launch_kwargs(host: str = HOST, port: int | None = PORT, access: Access | None = None) -> dict[str, Any]:
    """How the app is launched: local bind, a login when `access` has one (reader or admin), no
    extra file access, errors shown."""
    login = access is not None and access.login_required
    return {
        "server_name": host,
        "server_port": port,
        "auth": access.check if login else None,
        "auth_message": (
            f"Churn MLOps: sign in as a reader ({AUTH_ENV}) or as the admin ({ADMIN_ENV})." if login else None
        ),
        "allowed_paths": [],
        "max_file_size": HARD_UPLOAD_LIMIT,
        "show_error": True,
        "share": False,
        "ssr_mode": False,
        "mcp_server": False,
        "enable_monitoring": False,
        "run_history": False,
        "footer_links": ["api"],
        "theme": "soft",
        "css": CSS,
    }


def serve(
    root: str | Path = ".",
    model: str = "champion",
    *,
    host: str = HOST,
    port: int | None = None,
    auth: tuple[str, str] | None = None,
    admin: tuple[str, str] | None = None,
    metrics_port: int | None = None,
) -> tuple[Any, str]:
    """Build and start the app in a background thread (tests, benchmarks, screenshots).

    `auth` is the reader's (user, password), `admin` the admin's; without `admin` the app is
    read-only. Returns (blocks, local URL); `blocks.close()` stops it. `port=None` picks a free port.
    `metrics_port` also serves the Prometheus metrics on `host` (0: a free port) at
    `blocks.ops_metrics.url`; `blocks.ops_metrics.close()` stops that.
    """
    access = Access.of(auth, admin)
    demo = build(root, model, access=access)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(host, port or free_port(host), access))
    if metrics_port is not None:
        demo.ops_metrics.serve(host, metrics_port)
    return demo, demo.local_url


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m app", description="The churn web app (Gradio).")
    p.add_argument("--root", default=".", help="project folder with params.yaml, models/, data/, metrics/")
    p.add_argument(
        "--model",
        default="champion",
        help="champion (default) | challenger | a .joblib path | an MLflow URI (models:/churn-model@champion)",
    )
    p.add_argument(
        "--trust-model",
        action="store_true",
        help="serve a .joblib file that is not one of the pipeline's models (checked against dvc.lock); "
        "joblib runs any code a file holds, so only for files you trust",
    )
    p.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME") or HOST,
        help=f"address to bind (default $GRADIO_SERVER_NAME or {HOST}; 0.0.0.0 for every interface)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT") or PORT),
        help=f"port (default $GRADIO_SERVER_PORT or {PORT})",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get(METRICS_PORT_ENV) or METRICS_PORT),
        help=f"port of the Prometheus metrics, http://HOST:PORT/metrics (default ${METRICS_PORT_ENV} or "
        f"{METRICS_PORT}; 0: none)",
    )
    p.add_argument(
        "--metrics-host",
        default=os.environ.get(METRICS_HOST_ENV) or HOST,
        help=f"address the metrics bind to (default ${METRICS_HOST_ENV} or {HOST}: only this machine; "
        "they need no login, so open them wider only on a network you trust)",
    )
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, check the logins, load the model once, launch; blocks until the server stops.

    Returns 2 without starting when a login setting is malformed, or when the address is reachable
    from other machines and no login is set (unless CHURN_APP_ALLOW_ANONYMOUS=1).
    """
    from churn.io import configure_logging, load_env_file

    args = parse_args(argv)
    configure_logging(args.log_level.upper())
    load_env_file(Path(args.root) / ".env")
    try:
        access = Access.from_env()
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    problem = start_problem(args.host, access)
    if problem:
        log.error("%s", problem)
        return 2
    log.info("access: %s", access.describe())
    demo = build(args.root, args.model, trust_model=args.trust_model, access=access)
    if args.metrics_port:
        try:
            demo.ops_metrics.serve(args.metrics_host, args.metrics_port)
        except OSError as exc:
            log.error(
                "cannot serve the metrics on %s:%s (%s): pick another --metrics-port, or 0 for none",
                args.metrics_host,
                args.metrics_port,
                exc.strerror or exc,
            )
            return 2
    try:
        demo.launch(**launch_kwargs(args.host, args.port, access))
    finally:
        demo.ops_metrics.close()
    return 0
