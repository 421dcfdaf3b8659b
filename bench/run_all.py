"""Run every benchmark script (bench/bench_*.py) in turn; each writes bench/results/<name>.json."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for script in sorted(BENCH.glob("bench_*.py")):
        t = time.perf_counter()
        print(f"== {script.name}", flush=True)
        code = subprocess.call([sys.executable, str(script)], cwd=BENCH.parent)
        print(f"== {script.name}: exit {code} in {time.perf_counter() - t:.1f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
