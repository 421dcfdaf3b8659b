"""Full `dvc repro` from a clean checkout and a no-op `dvc repro`: wall time and peak memory.

    python bench/bench_pipeline.py [--out bench/results/pipeline.json]

The working tree is copied into a fresh git repository in a temporary directory (no DVC cache),
so the full run is what a fresh clone does. Peak memory is the largest resident set of any stage
process (RUSAGE_CHILDREN), per DVC's own process tree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from churn.paths import Layout

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"full_seconds": 60.0, "noop_seconds": 3.0}


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    for rel in filter(None, files):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, proc.stdout + proc.stderr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "pipeline.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        _copy_tree(repo)
        env = dict(
            os.environ,
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            MLFLOW_TRACKING_URI=f"sqlite:///{Layout(tmp).mlflow_db}",
            GIT_AUTHOR_NAME="bench",
            GIT_AUTHOR_EMAIL="bench@example.invalid",
            GIT_COMMITTER_NAME="bench",
            GIT_COMMITTER_EMAIL="bench@example.invalid",
        )
        for cmd in (
            ["git", "init", "-q", "-b", "main"],
            ["git", "add", "-A"],
            ["git", "commit", "-qm", "bench"],
        ):
            subprocess.run(cmd, cwd=repo, env=env, check=True)
        full, log = _timed(["dvc", "repro", "--force"], repo, env)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        stages = re.findall(r"Running stage '([^']+)'", log)
        noop, noop_log = _timed(["dvc", "repro"], repo, env)
        lock_unchanged = (repo / "dvc.lock").read_bytes() == (ROOT / "dvc.lock").read_bytes()
    result = {
        "full_repro_seconds": round(full, 2),
        "noop_repro_seconds": round(noop, 2),
        "peak_stage_rss_mb": round(peak_mb, 1),
        "stages_run": stages,
        "noop_ran_no_stage": "Running stage" not in noop_log,
        "dvc_lock_reproduced": lock_unchanged,
        "targets": TARGETS,
        "targets_met": {
            "full_seconds": full <= TARGETS["full_seconds"],
            "noop_seconds": noop <= TARGETS["noop_seconds"],
        },
        "cpus": os.cpu_count(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
