"""Benchmarks of the pure planning core and of a whole night on the in-memory Seestar.

Run from the repository root:  python bench/bench_planning.py
Prints a Markdown table; paste it into BENCHMARKS.md.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.console import QuietProgress
from crowdsky.adapters.device_model.night import demo_seestar
from crowdsky.app.service import Crowdsky
from crowdsky.domain import parse_raw_name, plan_blocks

VIENNA = ZoneInfo("Europe/Vienna")


def frame_names(count: int) -> list[str]:
    start = datetime(2026, 2, 27, 19, 0)
    return [
        f"Light_M 81_10.0s_IRCUT_{start + timedelta(seconds=11.5 * i):%Y%m%d-%H%M%S}.fit"
        for i in range(count)
    ]


def timed(run: Callable[[], object], repeat: int = 5) -> tuple[float, float]:
    """Median seconds and peak traced MiB of ``run``."""
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        run()
        times.append(time.perf_counter() - begin)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def main() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    rows = []
    for count in (3_000, 30_000):
        names = frame_names(count)
        parse = timed(lambda names=names: [parse_raw_name(n) for n in names])
        frames = [f for f in map(parse_raw_name, names) if f is not None]
        plan = timed(lambda frames=frames: plan_blocks(frames, now=now, device_tz=VIENNA))
        rows.append((f"parse {count:,} raw names", *parse))
        rows.append((f"plan_blocks over {count:,} frames", *plan))

    def whole_night() -> None:
        app = Crowdsky(demo_seestar(), SystemClock(), QuietProgress())
        app.stack_all()

    rows.append(("demo night, stack_all (2 427 subs, in memory)", *timed(whole_night, 3)))
    print("| what | median time | peak traced memory |")
    print("|---|---|---|")
    for what, seconds, mib in rows:
        print(f"| {what} | {seconds * 1000:.1f} ms | {mib:.1f} MiB |")


if __name__ == "__main__":
    main()
