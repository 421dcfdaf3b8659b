"""Small disk helpers: params, JSON metrics, tables and atomic writes (the only I/O the library does)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

DECIMALS = 4

REAL_DATA_ENV = "CHURN_REAL_DATA"
REAL_DATA_HINT = (
    f"set {REAL_DATA_ENV} to the IBM Telco Customer Churn CSV (the public sample "
    "WA_Fn-UseC_-Telco-Customer-Churn.csv: https://www.kaggle.com/datasets/blastchar/telco-customer-churn)"
)


def real_data_path() -> Path:
    """The real IBM Telco CSV that tests and benchmarks read: `CHURN_REAL_DATA` if set, else
    `../shared/data/telco-customer-churn.csv` beside the repository. It may not exist."""
    value = os.environ.get(REAL_DATA_ENV, "").strip()
    if value:
        return Path(value).expanduser().absolute()
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "telco-customer-churn.csv"


class ParamsError(ValueError):
    """A params.yaml key is missing or breaks a rule; the message names the file, key and rule."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read params.yaml into a dict; a missing or malformed file raises ParamsError naming it."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found")
    try:
        with path.open() as fh:
            params = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(params, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {type(params).__name__}")
    return params


def section(params: dict[str, Any], key: str, source: str = "params.yaml") -> Any:
    """Return params[key] for a dotted key, or raise ParamsError naming the key."""
    node: Any = params
    walked = []
    for part in key.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            raise ParamsError(f"{source}: key '{'.'.join(walked)}' is missing")
        node = node[part]
    return node


def rounded(obj: Any, decimals: int = DECIMALS) -> Any:
    """Round floats recursively (and turn numpy scalars into Python ones) for stable JSON."""
    if isinstance(obj, dict):
        return {str(k): rounded(v, decimals) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [rounded(v, decimals) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str | bytes):
        obj = obj.item()
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return None
        return round(obj, decimals)
    return obj


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def save_json(obj: Any, path: str | Path) -> None:
    """Write rounded JSON with sorted keys, atomically (no half-written metrics)."""
    text = json.dumps(rounded(obj), indent=2, sort_keys=True) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def load_json(path: str | Path) -> Any:
    """Read a JSON file; a missing file raises FileNotFoundError naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found (run `dvc repro` to build it)")
    with path.open() as fh:
        return json.load(fh)


def save_text(text: str, path: str | Path) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a prepared parquet table."""
    return pd.read_parquet(path)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write parquet deterministically (pyarrow, no index) and atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow")


def file_md5(path: str | Path) -> str:
    """MD5 of a file's bytes (the same hash DVC records)."""
    digest = hashlib.md5()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Loggers of HTTP clients that print whole requests at DEBUG (the Groq client: the prompt, which
#: holds the customer's profile). They stay at INFO unless GROQ_LOG=debug asks for them.
CHATTY_LOGGERS = ("groq", "httpx", "httpcore")


def configure_logging(level: str = "INFO") -> None:
    """Configure root logging once; called by entry points (stages, CLI, app), never on import.

    Every line is written with URL credentials redacted (`postgresql://user:***@…`).
    """
    import logging

    from churn.redact import RedactingFilter

    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    if os.environ.get("GROQ_LOG", "").lower() != "debug":
        for name in CHATTY_LOGGERS:
            if logging.getLogger(name).getEffectiveLevel() < logging.INFO:
                logging.getLogger(name).setLevel(logging.INFO)


def load_env_file(path: str | Path = ".env") -> bool:
    """Load secrets (GROQ_API_KEY, …) from a git-ignored `.env`; variables already set win.

    Called by the CLI and the app at start-up; values are never logged.
    """
    from dotenv import load_dotenv

    return load_dotenv(path, override=False) if Path(path).is_file() else False


def save_model(model: Any, path: str | Path) -> None:
    """joblib-dump a fitted pipeline atomically."""
    import joblib

    with atomic_path(path) as tmp:
        joblib.dump(model, tmp)


def load_model(path: str | Path) -> Any:
    """joblib-load a pipeline; a missing file says to run the pipeline."""
    import joblib

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model not found (run `dvc repro` to build it)")
    return joblib.load(path)
