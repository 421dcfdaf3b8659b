"""Files the app hands out (scored CSVs, run exports, email drafts): never left behind in the temp folder.

Each is written in a private per-request folder (`churn-batch-*`, `churn-runs-*`, `churn-email-*`), moved into the
component's Gradio cache — which the Blocks' `delete_cache` (see `app.CACHE_LIFETIME`) empties on
a schedule, like the uploads — and the folder is removed when the request ends, however it ends.
Folders a killed app left behind are swept by the next request once they are `STALE_S` old, and
so are the empty files Gradio itself leaves in its cache root.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BATCH_PREFIX = "churn-batch-"
RUNS_PREFIX = "churn-runs-"
EMAIL_PREFIX = "churn-email-"
PREFIXES = (BATCH_PREFIX, RUNS_PREFIX, EMAIL_PREFIX)
#: A request folder older than this was left by an app that died mid-request.
STALE_S = 600


@contextlib.contextmanager
def request_folder(prefix: str) -> Iterator[Path]:
    """A private temp folder for one request's files, removed on every exit path."""
    sweep()
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish(component: Any, path: Path) -> str:
    """Hand `path` to a Gradio output component: copied into its cache (served from there, deleted
    by `delete_cache`), so the request folder can go. Returns the cached path to return."""
    sweep_empty_leftovers(component.GRADIO_CACHE)
    return str(component.move_resource_to_block_cache(path))


def sweep_empty_leftovers(cache: str | Path, max_age_s: float = STALE_S) -> list[Path]:
    """Remove the empty `tmp*` files Gradio 6 leaves in its cache root (`gr.File` preprocessing opens
    one per call and never deletes it; `delete_cache` does not know them) once `max_age_s` old."""
    cutoff, removed = time.time() - max_age_s, []
    for path in Path(cache).glob("tmp*"):
        with contextlib.suppress(FileNotFoundError):
            info = path.lstat()
            if path.is_file() and not path.is_symlink() and info.st_size == 0 and info.st_mtime < cutoff:
                path.unlink()
                removed.append(path)
    return removed


def sweep(max_age_s: float = STALE_S, folder: str | Path | None = None) -> list[Path]:
    """Remove `churn-batch-*` / `churn-runs-*` folders older than `max_age_s`; return them."""
    folder = Path(folder or tempfile.gettempdir())
    cutoff, removed = time.time() - max_age_s, []
    for prefix in PREFIXES:
        for path in folder.glob(f"{prefix}*"):
            try:
                if not path.is_dir() or path.is_symlink() or path.lstat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %d request folder(s) older than %d s", len(removed), max_age_s)
    return removed
