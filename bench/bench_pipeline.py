"""Full `dvc repro` from a clean checkout, a forced `dvc repro -f`, a no-op `dvc repro`, and each
stage on its own: wall time, CPU time and peak memory.

    python bench/bench_pipeline.py [--out bench/results/pipeline.json] [--repeats 3]

The working tree is copied into a fresh git repository in a temporary directory (no DVC cache),
so the full run is what a fresh clone does; the forced run then re-runs every stage on the same
inputs, and each stage's command (as dvc.lock records it) is timed on its own.

CPU seconds (user + sys of the child processes) are the figure to compare on a shared machine;
wall seconds depend on what else runs, so the JSON records the load average beside them. The
forced run and each stage are repeated and the smallest figure kept (other work on the machine
only ever adds time). Peak memory is the largest resident set of any stage process
(RUSAGE_CHILDREN). `outputs_match_committed_lock` compares every stage's outs hashes with the
committed dvc.lock (deps hashes change with the code, outs must not).
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

import yaml

from churn.paths import Layout

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"full_seconds": 60.0, "forced_seconds": 30.0, "noop_seconds": 3.0}


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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str] | str, cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return its wall seconds, CPU seconds (its process tree) and output."""
    cpu, t = _cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, shell=isinstance(cmd, str))
    elapsed, cpu = time.perf_counter() - t, _cpu() - cpu
    if proc.returncode:
        shown = cmd if isinstance(cmd, str) else " ".join(cmd)
        sys.exit(f"{shown} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed, cpu, proc.stdout + proc.stderr


def _lock(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["stages"]


def _outs(path: Path) -> dict[str, dict[str, str]]:
    """Each stage's outs hashes in a dvc.lock."""
    return {name: {o["path"]: o["md5"] for o in st.get("outs", [])} for name, st in _lock(path).items()}


def _stage_times(
    repo: Path, env: dict[str, str], order: list[str], repeats: int
) -> dict[str, dict[str, float]]:
    """Each stage's command from dvc.lock run on its own, in pipeline order: wall and CPU seconds.
    `report` finds its runs tracked already (as in a forced re-run); `report (new MLflow store)` is
    the first build's cost: the store's tables created and both models logged."""
    commands = {name: st["cmd"] for name, st in _lock(repo / "dvc.lock").items()}
    runs = [(name, commands[name], env) for name in order]
    fresh = dict(env, MLFLOW_TRACKING_URI=f"sqlite:///{repo.parent / 'mlflow-fresh.db'}")
    runs.append(("report (new MLflow store)", commands["report"], fresh))
    times = {}
    for name, cmd, stage_env in runs:
        tries = [_timed(cmd, repo, stage_env)[:2] for _ in range(repeats if stage_env is env else 1)]
        times[name] = {
            "wall_seconds": round(min(t[0] for t in tries), 2),
            "cpu_seconds": round(min(t[1] for t in tries), 2),
        }
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "pipeline.json"))
    p.add_argument("--repeats", type=int, default=3, help="forced runs and runs of each stage (default 3)")
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
        load_before = os.getloadavg()
        full, full_cpu, log = _timed(["dvc", "repro", "--force"], repo, env)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        stages = re.findall(r"Running stage '([^']+)'", log)
        forced_runs = [_timed(["dvc", "repro", "--force"], repo, env)[:2] for _ in range(args.repeats)]
        forced, forced_cpu = min(t[0] for t in forced_runs), min(t[1] for t in forced_runs)
        load_forced = os.getloadavg()
        noop, _, noop_log = _timed(["dvc", "repro"], repo, env)
        outs_match = _outs(repo / "dvc.lock") == _outs(ROOT / "dvc.lock")
        per_stage = _stage_times(repo, env, stages, args.repeats)
        outs_match = outs_match and _outs(repo / "dvc.lock") == _outs(ROOT / "dvc.lock")
    result = {
        "full_repro_seconds": round(full, 2),
        "full_repro_cpu_seconds": round(full_cpu, 2),
        "forced_repro_seconds": round(forced, 2),
        "forced_repro_cpu_seconds": round(forced_cpu, 2),
        "noop_repro_seconds": round(noop, 2),
        "stages": per_stage,
        "stages_cpu_seconds_total": round(sum(per_stage[s]["cpu_seconds"] for s in stages), 2),
        "load_average_1min": {"before": round(load_before[0], 2), "after_forced": round(load_forced[0], 2)},
        "peak_stage_rss_mb": round(peak_mb, 1),
        "stages_run": stages,
        "noop_ran_no_stage": "Running stage" not in noop_log,
        "outputs_match_committed_lock": outs_match,
        "targets": TARGETS,
        "targets_met": {
            "full_seconds": full <= TARGETS["full_seconds"],
            "forced_seconds": forced <= TARGETS["forced_seconds"],
            "noop_seconds": noop <= TARGETS["noop_seconds"],
        },
        "repeats": args.repeats,
        "cpus": os.cpu_count(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
