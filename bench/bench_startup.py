"""Start-up: wall time of fresh interpreters running ``import crowdsky`` and CLI commands.

Each measurement is a new ``python`` process (best of N, so the number is the machine's cost and
not another process's), run from the repository root with ``PYTHONPATH`` set to the source tree.
The bare interpreter is measured too: it is the floor no change to crowdsky can go below.

Bytecode is written and used, as in an installed package (``PYTHONDONTWRITEBYTECODE`` is
dropped for the children), and one unmeasured run of each case comes first: it compiles the
modules and makes the ``--simulator`` cache (a temporary ``$CROWDSKY_CACHE_DIR``), so
``plan --simulator`` is measured against a cached simulator, as a user's second command.

Give ``--src`` more than once to compare source trees (say, an older commit unpacked with
``git archive <commit> src | tar -x -C /tmp/before``): their runs alternate, so a change in the
machine's load falls on all of them alike.

    python bench/bench_startup.py [--runs 15] [--src /tmp/before/src --src src]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES = {
    "bare interpreter (`python -c pass`)": ["-c", "pass"],
    "`import crowdsky`": ["-c", "import crowdsky"],
    "`crowdsky --help`": ["-m", "crowdsky.cli", "--help"],
    "`crowdsky plan IC 434 --simulator`": ["-m", "crowdsky.cli", "plan", "IC 434", "--simulator"],
}


def _environment(src: Path, cache: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(src), "CROWDSKY_CACHE_DIR": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _run_once(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--src", type=Path, action="append", help="a source tree (repeatable)")
    options = parser.parse_args()
    trees = [path.resolve() for path in options.src or [ROOT / "src"]]
    with tempfile.TemporaryDirectory() as scratch:
        envs = [_environment(tree, Path(scratch) / str(n)) for n, tree in enumerate(trees)]
        print(
            "| what | " + " | ".join(f"{t}: best of {options.runs}, median" for t in trees) + " |"
        )
        print("|---" * (len(trees) + 1) + "|")
        for name, args in CASES.items():
            for env in envs:
                _run_once(args, env)  # compile, make the simulator cache
            times: list[list[float]] = [[] for _ in trees]
            for _ in range(options.runs):
                for env, taken in zip(envs, times, strict=True):
                    taken.append(_run_once(args, env))
            cells = []
            for taken in times:
                taken.sort()
                cells.append(f"{taken[0] * 1000:.0f} ms, {taken[len(taken) // 2] * 1000:.0f} ms")
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
