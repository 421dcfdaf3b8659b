"""Deploy a container image to a Hugging Face Docker Space and wait until the Space runs it."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("ci.deploy_space")

#: Settings passed to the Space as secrets when they are set in the workflow's environment.
FORWARDED_SECRETS = (
    "GROQ_API_KEY",
    "CHURN_DB_URL",
    "CHURN_APP_AUTH",
    "CHURN_APP_ADMIN",
    "CHURN_APP_ALLOW_ANONYMOUS",
)
FAILED = {"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"}


def space_files(image: str, title: str) -> dict[str, str]:
    """The whole Space repository: a card that declares a Docker Space, and a Dockerfile of one line."""
    card = "\n".join(
        [
            "---",
            f"title: {title}",
            "emoji: 📉",
            "colorFrom: blue",
            "colorTo: gray",
            "sdk: docker",
            "app_port: 7860",
            "pinned: false",
            "---",
            "",
            f"Customer churn predictions, explanations and retention emails. Image: `{image}`.",
            "",
        ]
    )
    return {"README.md": card, "Dockerfile": f"FROM {image}\n"}


def wait_running(api, space: str, timeout: float, rebuilt: bool) -> str:
    """Poll the Space until it runs (after a new build if `rebuilt`); raise on failure or after `timeout`."""
    deadline = time.monotonic() + timeout
    seen_build = not rebuilt
    while time.monotonic() < deadline:
        stage = str(api.get_space_runtime(space).stage)
        seen_build = seen_build or "BUILDING" in stage or "STARTING" in stage
        if stage in FAILED:
            raise RuntimeError(f"Space {space}: {stage} (see its logs on huggingface.co)")
        if stage == "RUNNING" and seen_build:
            return stage
        log.info("Space %s: %s", space, stage)
        time.sleep(15)
    raise TimeoutError(f"Space {space} was not running the new image after {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("space", help="Space id, owner/name")
    p.add_argument("image", help="image reference, ideally by digest (registry/name@sha256:…)")
    p.add_argument("--title", default="Churn", help="Space title")
    p.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the Space to run")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    token = os.environ.get("HF_TOKEN")
    if not token:
        log.error("HF_TOKEN is not set (a Hugging Face token with write access to %s)", args.space)
        return 2

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(args.space, repo_type="space", space_sdk="docker", exist_ok=True)
    before = api.repo_info(args.space, repo_type="space").sha
    for key in FORWARDED_SECRETS:
        if os.environ.get(key):
            api.add_space_secret(args.space, key, os.environ[key])
            log.info("Space secret %s set", key)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in space_files(args.image, args.title).items():
            Path(tmp, name).write_text(text)
        commit = api.upload_folder(
            repo_id=args.space,
            repo_type="space",
            folder_path=tmp,
            commit_message=f"Deploy {args.image}",
        )
    log.info("pushed %s to Space %s (%s)", args.image, args.space, commit.oid)
    wait_running(api, args.space, args.timeout, rebuilt=commit.oid != before)
    log.info("Space %s is running %s", args.space, args.image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
