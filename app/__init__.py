"""The Gradio app: `build()` makes the Blocks (one tab per concern), `main()` launches it (`python -m app`)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

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
#: Requests served at once per event (the default queue serves one at a time).
CONCURRENCY = 16
#: Uploads above this are refused by Gradio itself; the Batch tab refuses smaller ones by its own limit.
HARD_UPLOAD_LIMIT = "200mb"
AUTH_ENV = "CHURN_APP_AUTH"
TITLE = "Churn MLOps"


def quiet() -> None:
    """Switch Gradio, Hugging Face and MLflow telemetry off for this process (unless set explicitly)."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


def build(root: str | Path = ".", model: str = "champion", *, state: Any = None) -> Any:
    """The app's `gr.Blocks` for the project at `root`, serving `model` (loaded once, here).

    When no model can be loaded, the app is one page saying what to do instead of a traceback.
    """
    quiet()
    import gradio as gr

    from app import abtest, batch, experiments, monitoring, predict, validation
    from app.state import AppState

    state = state or AppState.load(root, model)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE} — customer churn")
        status = gr.Markdown(elem_id="status")
        demo.load(lambda: status_text(state), outputs=status, api_name="status")
        if state.predictor is None:
            gr.Markdown(problem_text(state), elem_id="problem")
            return demo
        with gr.Tabs():
            with gr.Tab("Predict", id="predict"):
                predict.build_tab(state)
            with gr.Tab("Batch", id="batch"):
                batch.build_tab(state)
            with gr.Tab("Experiments & registry", id="experiments") as tab:
                experiments.build_tab(state, tab)
            with gr.Tab("Monitoring", id="monitoring") as tab:
                monitoring.build_tab(state, tab)
            with gr.Tab("A/B test", id="abtest") as tab:
                abtest.build_tab(state, tab)
            with gr.Tab("Validation", id="validation") as tab:
                validation.build_tab(state, tab)
    demo.queue(default_concurrency_limit=CONCURRENCY)
    return demo


def status_text(state: Any) -> str:
    """One line on what the app serves (or why it cannot)."""
    if state.predictor is None:
        return f"**Not serving:** {state.problem}"
    p = state.predictor
    return (
        f"Serving **{p.model_name}** (`{p.model_version}`) from `{state.root}` · "
        f"loaded in {state.load_seconds:.1f} s · predictions are logged to the monitoring store"
    )


def problem_text(state: Any) -> str:
    return (
        f"## {state.problem}\n\n"
        "The app serves the model the pipeline builds. From the project folder run:\n\n"
        "```bash\ndvc repro        # or: make repro\npython -m app\n```\n\n"
        f"Project folder: `{state.root}` · model asked for: `{state.model}` "
        "(`--model` picks another: champion, challenger, a .joblib file or an MLflow URI such as "
        "`models:/churn-model@champion`)."
    )


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`user:password` from CHURN_APP_AUTH, or None; a malformed value raises ValueError."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError(f"{AUTH_ENV} must look like user:password (both non-empty)")
    return user, password


def launch_kwargs(
    host: str = HOST, port: int | None = PORT, auth: tuple[str, str] | None = None
) -> dict[str, Any]:
    """How the app is launched: local bind, optional login, no extra file access, errors shown."""
    return {
        "server_name": host,
        "server_port": port,
        "auth": auth,
        "auth_message": "Churn MLOps: sign in with the credentials in CHURN_APP_AUTH." if auth else None,
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
    }


def serve(
    root: str | Path = ".",
    model: str = "champion",
    *,
    host: str = HOST,
    port: int | None = None,
    auth: tuple[str, str] | None = None,
) -> tuple[Any, str]:
    """Build and start the app in a background thread (tests, benchmarks, screenshots).

    Returns (blocks, local URL); `blocks.close()` stops it. `port=None` picks a free port.
    """
    demo = build(root, model)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(host, port or free_port(host), auth))
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
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Parse flags, load the model once, launch; blocks until the server stops."""
    from churn.io import configure_logging, load_env_file

    args = parse_args(argv)
    configure_logging(args.log_level.upper())
    load_env_file(Path(args.root) / ".env")
    try:
        auth = parse_auth(os.environ.get(AUTH_ENV))
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    demo = build(args.root, args.model)
    demo.launch(**launch_kwargs(args.host, args.port, auth))
    return 0
