"""Hide secrets and server paths in text shown to users or written to logs: one place, used everywhere."""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

#: `scheme://user:password@` (up to the last `@` before the path: a password may hold a raw `@`).
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@'\"`]*):(?P<password>[^\s/'\"`]*)@")
#: Secrets passed as query parameters (`?password=…`, `&token=…`).
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|token|access_token|api_key|apikey|secret|sig|signature)=)[^&\s#'\"`]*",
    re.IGNORECASE,
)
#: Characters that end a path inside a message (`…/champion.joblib: not found`, quotes, brackets).
_PATH_CHARS = r"[^\s'\"`,;:()\[\]{}<>|]*"
MASK = "***"


#: Settings that may hold a URL with a password; their passwords are hidden wherever they appear,
#: even where a password holds characters (`/`, spaces, quotes) that no URL pattern can delimit.
SECRET_URL_ENVS = ("MLFLOW_TRACKING_URI", "CHURN_DB_URL", "CHURN_ALERT_WEBHOOK", "GROQ_BASE_URL")


def _configured_passwords() -> list[str]:
    """The passwords of the URLs in SECRET_URL_ENVS (raw, percent-encoded and decoded), longest first."""
    from urllib.parse import quote, unquote

    found = set()
    for name in SECRET_URL_ENVS:
        url = os.environ.get(name, "")
        userinfo, at, _ = url.partition("://")[2].rpartition("@")
        password = userinfo.partition(":")[2] if at else ""
        if len(password) >= 4:  # shorter ones would mask ordinary text; the URL pattern still covers them
            found.update({password, quote(password, safe=""), unquote(password)})
    return sorted(found, key=len, reverse=True)


def redact_url(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (`postgresql://user:***@host/db`),
    and secret query parameters likewise (`?token=***`). The passwords of the configured store URLs
    (SECRET_URL_ENVS) are hidden wherever they appear. Text without URLs is returned unchanged."""
    for password in _configured_passwords():
        text = text.replace(password, MASK)
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)


def display_path(path: str | Path, root: str | Path) -> str:
    """`path` relative to the project folder `root` (POSIX), or only its file name outside the project."""
    path, root = Path(path), Path(root)
    for base in {root, root.resolve()}:
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(base))
        except ValueError:
            continue
        return rel.as_posix() if rel.parts else "."
    return path.name


def display_uri(uri: str, root: str | Path) -> str:
    """A store URL for users: credentials redacted; a SQLite file as `sqlite:///mlflow.db (project folder)`
    or, outside the project, by its file name only."""
    uri = redact_url(uri)
    if not uri.startswith("sqlite:///") or uri in ("sqlite:///", "sqlite:///:memory:"):
        return uri
    file = uri.removeprefix("sqlite:///").split("?", 1)[0]
    shown = display_path(file, root)
    where = "project folder" if _within(file, root) else "outside the project folder"
    return f"sqlite:///{shown} ({where})"


def scrub(text: str, root: str | Path) -> str:
    """A message for the UI: URLs redacted, paths under the project folder made relative, and other
    server paths (temporary files, home folders) cut to their file name."""
    text = redact_url(str(text))
    for base in _roots(root):
        text = re.sub(
            re.escape(base) + r"(?:/(" + _PATH_CHARS + r")|(?![\w\-]|\.\w))",
            lambda m: m.group(1) or "the project folder",
            text,
        )
    for base in _server_dirs():
        text = re.sub(re.escape(base) + r"/" + _PATH_CHARS, lambda m: Path(m.group(0)).name, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts URL credentials in every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_url(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_url(record.exc_text)
        return True


def _within(path: str, root: str | Path) -> bool:
    return any(Path(os.path.abspath(path)).is_relative_to(base) for base in _roots(root))


def _roots(root: str | Path) -> list[str]:
    """The project folder as given and resolved, longest first (so a symlinked root matches too)."""
    found = {os.path.abspath(root), str(Path(root).resolve())}
    return sorted((p.rstrip("/") for p in found if p.rstrip("/")), key=len, reverse=True)


def _server_dirs() -> list[str]:
    """Folders of the serving machine that users need not see: temporary files and home folders."""
    dirs = {tempfile.gettempdir(), os.environ.get("GRADIO_TEMP_DIR", ""), str(Path.home()), "/home", "/root"}
    dirs |= {str(Path(d).resolve()) for d in dirs if d}
    return sorted((d.rstrip("/") for d in dirs if d.rstrip("/")), key=len, reverse=True)
