"""Bring the pipeline's outputs into the workspace: from the DVC remote when one is configured, else
by running the pipeline (`make pull`; `make repro` runs it before `churn track`).

    python scripts/pull_or_repro.py                  # the default remote (or the only one), if any
    python scripts/pull_or_repro.py --remote storage --strict

With a remote: `dvc fetch` (into the cache only), `dvc checkout`, then `dvc repro`, which runs only
the stages whose outputs the remote did not hold or whose inputs changed since (none after a clean
pull: no retraining). `--strict` fails instead when the remote lacks an output of dvc.lock (the
Docker build uses it). Without a remote: `dvc repro`. A remote that is not configured, a local
remote folder that does not exist, or a fetch that fails gives one line on stderr (URL redacted)
and exit 1, and leaves the workspace as it was: nothing is checked out before the fetch succeeded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from churn.redact import redact_url  # noqa: E402 - after the path set-up above

PROG = "pull-or-repro"


class PullError(Exception):
    """Why nothing was pulled; one line for the user."""


def _dvc(*args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=capture, text=True)


def _dvc_error(proc: subprocess.CompletedProcess) -> str:
    """DVC's own error line (`ERROR: …`) without the prefix, else its last line."""
    lines = [line.strip() for line in f"{proc.stderr}\n{proc.stdout}".splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR")]
    return (errors or lines or [f"exit code {proc.returncode}"])[0]


def remotes() -> tuple[dict[str, str], str | None]:
    """{name: url} of the configured DVC remotes, and the default one's name (None without one).

    From `dvc config --list`, which prints every config level (system, global, repository, local)
    in that order, so a later line overrides an earlier one."""
    proc = _dvc("config", "--list")
    if proc.returncode:
        raise PullError(f"cannot read the DVC config: {_dvc_error(proc)}")
    found: dict[str, str] = {}
    default = None
    for line in proc.stdout.splitlines():
        key, _, value = line.strip().partition("=")
        parts = key.split(".")
        if parts == ["core", "remote"]:
            default = value or None
        elif len(parts) == 3 and parts[0] == "remote" and parts[2] == "url":
            found[parts[1]] = value
    return found, default


def choose_remote(requested: str | None, found: dict[str, str], default: str | None) -> str | None:
    """The remote to pull from: `requested`, else DVC's default, else the only one; None if none."""
    name = requested or default
    if name:
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise PullError(
                f"no DVC remote named {name!r} (configured: {known}); add one with `dvc remote add -d NAME URL`"
            )
        return name
    if len(found) > 1:
        raise PullError(
            f"DVC remotes {', '.join(sorted(found))} are configured but none is the default: "
            "run `dvc remote default NAME` or pass --remote NAME"
        )
    return next(iter(found), None)


def local_folder(url: str) -> Path | None:
    """The folder of a local remote (a path, or file://), resolved as DVC does (relative to .dvc/)."""
    if url.startswith("file://"):
        url = url.removeprefix("file://")
    elif "://" in url:
        return None
    path = Path(url).expanduser()
    return path if path.is_absolute() else (Path(".dvc") / path).resolve()


def pull(name: str, url: str, strict: bool) -> None:
    """Fetch every output of dvc.lock from remote `name` into the cache, then check them out."""
    where = f"DVC remote {name!r} ({redact_url(url)})"
    folder = local_folder(url)
    if folder is not None and not folder.is_dir():
        raise PullError(f"{where}: the folder {folder} does not exist; nothing pulled")
    lenient = [] if strict else ["--allow-missing"]
    fetched = _dvc("fetch", "--remote", name)
    if fetched.returncode and (strict or "missing" not in _dvc_error(fetched).lower()):
        raise PullError(f"{where}: dvc fetch failed: {redact_url(_dvc_error(fetched))}; nothing pulled")
    checked = _dvc("checkout", *lenient)
    if checked.returncode:
        raise PullError(f"{where}: dvc checkout failed: {redact_url(_dvc_error(checked))}")
    print(f"{PROG}: pulled the pipeline's outputs from {where}")  # noqa: T201 - a script's report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--remote", help="the DVC remote (default: DVC's default remote, or the only one)")
    parser.add_argument(
        "--strict", action="store_true", help="fail when the remote lacks an output instead of rebuilding it"
    )
    parser.add_argument("--no-commit", action="store_true", help="passed to dvc repro (the Docker build)")
    args = parser.parse_args(argv)
    try:
        found, default = remotes()
        name = choose_remote(args.remote, found, default)
        if name is None:
            print(f"{PROG}: no DVC remote configured: running the pipeline (dvc repro)")  # noqa: T201
        else:
            pull(name, found[name], args.strict)
    except PullError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 1
    sys.stdout.flush()
    return _dvc("repro", *(["--no-commit"] if args.no_commit else []), capture=False).returncode


if __name__ == "__main__":
    sys.exit(main())
