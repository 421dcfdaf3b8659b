"""Small disk helpers: JSON metrics, tables, models and atomic writes (the only I/O the library does)."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from churn.paths import LAYOUT

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

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
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds.

    The temporary file (`.<name>.<pid>.<random>.tmp`) is removed on every exit path Python sees
    (see `churn.commands.serving` for SIGTERM); one left by a killed process is never published and
    is removed by the next write to `path` (`sweep_temp_files`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_temp_files(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
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


#: A temp file whose writer cannot be told apart (no pid in its name) is removed after this long.
TEMP_MAX_AGE_S = 3600


def sweep_temp_files(path: str | Path, max_age_s: float = TEMP_MAX_AGE_S) -> list[Path]:
    """Remove `atomic_path` temp files of `path` left by dead processes; return what was removed.

    A temp file named after a process that no longer runs on this machine is removed at once (or
    after a day: its pid may be reused); one without a process id (older versions) once it is
    `max_age_s` old. Process ids are this machine's: do not write one output path from several
    hosts at once (a shared folder's other writers would look ended).
    """
    path = Path(path)
    prefix, now, removed = f".{path.name}.", time.time(), []
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        owner = tmp.name[len(prefix) :].split(".", 1)[0]
        try:
            age = now - tmp.lstat().st_mtime
        except FileNotFoundError:
            continue
        if owner.isdigit():  # a live writer's file is kept, unless its pid has surely been reused
            stale = not pid_alive(int(owner)) or age > max(max_age_s, 86_400)
        else:
            stale = age > max_age_s
        if stale:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    if removed:
        log.info("removed %d temp file(s) left beside %s by ended processes", len(removed), path.name)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (ours or another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


#: First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every text cell (and column name) that a spreadsheet would run as a formula
    neutralised by a leading single quote: cells starting with = + - @ tab or CR, unless the cell is a
    plain number (`-1.5` stays a number). Numeric columns are untouched. Returns a copy when changed."""
    out = df
    for col in df.select_dtypes(exclude="number").columns:
        values = df[col]
        if values.dtype == object:  # mixed cells: only the strings can be formulas
            text = values.where(values.map(lambda v: isinstance(v, str)).astype(bool)).astype("string")
        else:
            text = values.astype("string")
        risky = text.str.startswith(FORMULA_START).fillna(False).astype(bool)
        if risky.any():
            risky &= ~text.str.strip().str.match(_NUMBER).fillna(False).astype(bool)
        if risky.any():
            if out is df:
                out = df.copy()
            out[col] = values.mask(risky, "'" + text.where(risky, ""))
    names = [_safe_name(c) for c in out.columns]
    if names != list(out.columns):
        out = out.set_axis(names, axis=1) if out is not df else df.set_axis(names, axis=1)
    return out


def _safe_name(name: Any) -> Any:
    text = str(name)
    return f"'{text}" if text[:1] in FORMULA_START and not _NUMBER.match(text.strip()) else name


def write_csv(df: pd.DataFrame, path: str | Path, **to_csv: Any) -> None:
    """Write `df` as CSV atomically, formula cells neutralised (`csv_safe`); no index unless asked."""
    to_csv.setdefault("index", False)
    with atomic_path(path) as tmp:
        csv_safe(df).to_csv(tmp, **to_csv)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a prepared parquet table."""
    import pandas as pd

    return pd.read_parquet(path)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write parquet deterministically (pyarrow, no index) and atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow")


def file_digest(path: str | Path, algorithm: str = "md5") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the key of a logged batch: the same file is logged once per model)."""
    return file_digest(path, "sha256")


def file_md5(path: str | Path) -> str:
    """MD5 of a file's bytes (the same hash DVC records)."""
    return file_digest(path, "md5")


#: Loggers of HTTP clients that print whole requests at DEBUG (the Groq client: the prompt, which
#: holds the customer's profile). They stay at INFO unless GROQ_LOG=debug asks for them.
CHATTY_LOGGERS = ("groq", "httpx", "httpcore")


def configure_logging(level: str = "INFO") -> None:
    """Configure root logging once; called by entry points (stages, CLI, app), never on import.

    Every line is written with URL credentials redacted (`postgresql://user:***@…`).
    """
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


TRUST_FLAG = "--trust-model"
MODELS_DIR = LAYOUT.models_dir.as_posix()
LOCK_FILE = LAYOUT.dvc_lock.as_posix()


class UntrustedModelError(ValueError):
    """A model file this project may not load: joblib runs any code a file holds while loading it."""


def recorded_md5(root: str | Path, rel: str) -> tuple[str, str] | None:
    """(stage, MD5) that `<root>/dvc.lock` records for the output `rel` (e.g. models/champion.joblib),
    or None when no stage lists it. Raises FileNotFoundError when there is no dvc.lock."""
    lock = Path(root) / LOCK_FILE
    with lock.open() as fh:
        stages = (yaml.safe_load(fh) or {}).get("stages") or {}
    name = Path(rel).stem
    ordered = sorted(stages.items(), key=lambda item: item[0] != f"train@{name}")  # train@<name> first
    for stage, entry in ordered:
        for out in (entry or {}).get("outs") or []:
            if isinstance(out, dict) and out.get("path") == rel and out.get("md5"):
                return stage, str(out["md5"])
    return None


def read_model(
    path: str | Path, *, root: str | Path = ".", trust: bool = False, md5: str | None = None
) -> tuple[Any, str]:
    """(pipeline, MD5 of its file), joblib-loaded only from a trusted place, checked before unpickling.

    Trusted: `trust=True` (the caller vouches for the file: `--trust-model`, or a stage loading what
    the pipeline just built); a file whose MD5 equals `md5`, a hash the caller has on record from the
    pipeline (e.g. the lineage in metrics/validation.json); or a file in `<root>/models/` whose MD5
    equals the one `<root>/dvc.lock` records for it; or, in a project without dvc.lock (stage mains
    called directly: nothing recorded to check against), any file in `<root>/models/`. Anything else
    raises UntrustedModelError. The bytes checked are the bytes loaded (no second read of the file).
    """
    import io as _io

    import joblib

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: model not found (run `dvc repro` to build it)")
    if path.is_dir():
        raise UntrustedModelError(f"{path}: is a directory, not a model file")
    if not path.is_file():
        raise UntrustedModelError(f"{path}: not a regular file (a device or a pipe is no model file)")
    if not trust and md5 is None and not _inside(path, Path(root) / MODELS_DIR):
        _check_trusted(path, "", Path(root))  # refused by its place, before a byte of it is read
    blob = path.read_bytes()
    actual = hashlib.md5(blob).hexdigest()
    if md5 is not None and not trust:
        if actual != md5:
            raise UntrustedModelError(
                f"{path}: MD5 {actual} differs from {md5} that the pipeline recorded for it: "
                "the file changed after the pipeline built it — run `dvc repro`"
            )
    elif not trust:
        _check_trusted(path, actual, Path(root))
    elif not _inside(path, Path(root) / MODELS_DIR):
        log.warning("loading %s without checks (%s given)", path, TRUST_FLAG)
    return joblib.load(_io.BytesIO(blob)), actual


def _inside(path: Path, folder: Path) -> bool:
    """True when `path` lies in `folder` itself (by absolute path: DVC may link the file into its cache)."""
    return Path(os.path.abspath(path)).parent == Path(os.path.abspath(folder))


def _check_trusted(path: Path, md5: str, root: Path) -> None:
    if not _inside(path, root / MODELS_DIR):
        raise UntrustedModelError(
            f"{path}: not one of this project's pipeline models ({MODELS_DIR}/<name>.joblib, checked "
            f"against {LOCK_FILE}); loading a joblib file runs any code inside it — pass {TRUST_FLAG} "
            "only if you trust this file"
        )
    rel = f"{MODELS_DIR}/{path.name}"
    try:
        found = recorded_md5(root, rel)
    except FileNotFoundError:
        log.info(  # the documented rule for a project built without DVC (README: model files)
            "%s: no %s in %s, so nothing to check this model against: trusting the project's %s/ folder",
            rel,
            LOCK_FILE,
            os.path.abspath(root),
            MODELS_DIR,
        )
        return
    except (OSError, yaml.YAMLError) as exc:
        raise UntrustedModelError(f"{rel}: cannot read {LOCK_FILE} to check this model ({exc})") from exc
    if found is None:
        raise UntrustedModelError(
            f"{rel}: {LOCK_FILE} records no hash for this file (no pipeline stage builds it); loading a "
            f"joblib file runs any code inside it — pass {TRUST_FLAG} only if you trust this file"
        )
    stage, expected = found
    if md5 != expected:
        raise UntrustedModelError(
            f"{rel}: MD5 {md5} differs from {expected} that {LOCK_FILE} records (stage {stage}): "
            "the file changed after the pipeline built it — run `dvc repro` (or `dvc checkout`) to restore it"
        )


def load_model(
    path: str | Path, *, root: str | Path = ".", trust: bool = False, md5: str | None = None
) -> Any:
    """A joblib pipeline from a trusted place (see `read_model`); a missing file says to run the pipeline."""
    return read_model(path, root=root, trust=trust, md5=md5)[0]
