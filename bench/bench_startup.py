"""Start-up: wall time of fresh interpreters running ``import crowdsky`` and CLI commands.

Each measurement is a new ``python`` process (best of N, so the number is the machine's cost and
not another process's), run from the repository root with ``PYTHONPATH=src``. The bare
interpreter is measured too: it is the floor no change to crowdsky can go below.

    python bench/bench_startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "bare interpreter (`python -c pass`)": ["-c", "pass"],
    "`import crowdsky`": ["-c", "import crowdsky"],
    "`crowdsky --help`": ["-m", "crowdsky.cli", "--help"],
    "`crowdsky plan IC 434 --simulator`": ["-m", "crowdsky.cli", "plan", "IC 434", "--simulator"],
}


def _run_once(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    print(f"| what | best of {runs} | median |")
    print("|---|---|---|")
    for name, args in CASES.items():
        times = sorted(_run_once(args) for _ in range(runs))
        print(f"| {name} | {times[0] * 1000:.0f} ms | {times[len(times) // 2] * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
