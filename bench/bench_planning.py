"""Benchmarks of the pure planning core and of a whole night on the in-memory Seestar.

Run from the repository root:  python bench/bench_planning.py [--frames 1000000] [--repeat 3]
Prints Markdown tables; paste them into BENCHMARKS.md.

The million-frame run plans names to blocks for several targets, filters and exposures, in the
device's listing order and shuffled (the same strings, and strings made in the shuffled order
as a listing arriving in that order has them): straight from the names (``plan_raw_names``),
through frame objects (``parse_raw_names`` + ``plan_blocks``, the way the app plans, since its
zone and header steps need frames) and with the old one-by-one planner kept in
``tests/reference_planner.py``; all three must give equal blocks.
The machine is shared, so each run is repeated: the best time is reported, and the speed-up is
the ratio of the best times of ``plan_raw_names`` and of the reference; CPU time is given too. A
fixed pure-Python loop (the yardstick) is timed before and after: frames per yardstick (rate
times yardstick seconds) compares runs made under different loads.
Memory is the peak growth traced by ``tracemalloc`` (in a separate run: tracing slows Python).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.console import QuietProgress
from crowdsky.adapters.device_model.night import demo_seestar
from crowdsky.app.service import Crowdsky
from crowdsky.domain import parse_raw_name, parse_raw_names, plan_blocks
from crowdsky.domain.blocks import plan_raw_names

sys.path.insert(0, "tests")
from reference_planner import reference_plan_names

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


def archive_names(count: int) -> list[str]:
    """An archive of ``count`` raw names: 4 targets x 2 filters x 3 exposures, many nights."""
    kinds = [
        (target, exposure, filter)
        for target in ("M 81", "IC 434", "NGC 7000", "ε Cnc")
        for filter in ("IRCUT", "LP")
        for exposure in ("10.0s", "20.0s", "30.0s")
    ]
    names = []
    start = datetime(2025, 9, 1, 19, 0)
    per_run = 300  # a session of one kind, then the next
    for run in range(-(-count // per_run)):
        target, exposure, filter = kinds[run % len(kinds)]
        night = start + timedelta(days=run // 8, minutes=45 * (run % 8))
        step = float(exposure[:-1]) + 3.5
        for k in range(min(per_run, count - run * per_run)):
            stamp = night + timedelta(seconds=step * k)
            names.append(f"Light_{target}_{exposure}_{filter}_{stamp:%Y%m%d-%H%M%S}.fit")
    return sorted(names)  # as the device lists them


def best_of(run: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Best wall time and best CPU time of ``repeat`` runs, and the last result.

    Each time includes the garbage collection the run put off (the planner pauses the collector
    while it makes its objects): a full collection after the run, its result still alive, less
    a full collection of the same heap just before it (the bench's own million-name lists cost
    every collection the same, run or not). CPU time (``process_time``) counts only this
    process, so it says more than wall time on a shared machine (though neighbours still slow
    it through shared caches).
    """
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        result = None
        gc.collect()
        begin, begin_cpu = time.perf_counter(), time.process_time()
        gc.collect()
        before, before_cpu = time.perf_counter() - begin, time.process_time() - begin_cpu
        begin, begin_cpu = time.perf_counter(), time.process_time()
        result = run()
        gc.collect()
        best = min(best, time.perf_counter() - begin - before)
        best_cpu = min(best_cpu, time.process_time() - begin_cpu - before_cpu)
    return best, best_cpu, result


def peak_growth_mib(run: Callable[[], object]) -> float:
    """Peak traced memory growth of ``run`` (its result included) in MiB."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    result = run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del result
    return (peak - base) / 2**20


def yardstick_s(repeat: int = 3) -> float:
    """Best time of a fixed pure-Python loop: how fast this machine runs Python right now.

    The machine is shared, so a rate is only comparable across runs divided by this: the
    report gives frames per yardstick-second as well.
    """
    best = float("inf")
    for _ in range(repeat):
        begin = time.perf_counter()
        total, table = 0, {}
        for i in range(1_000_000):
            table[i & 1023] = total = (total + i * 7) % 1_000_003
        best = min(best, time.perf_counter() - begin)
    return best


def million(count: int, repeat: int) -> None:
    """Names to blocks at ``count`` frames: fast planner against the reference, per order."""
    now = datetime(2030, 1, 1, tzinfo=UTC)
    listed = archive_names(count)
    shuffled = random.Random(12).sample(listed, len(listed))
    # A listing that arrives in this order (decoded from a reply, read from a folder) has its
    # strings made in this order too; ``shuffled`` keeps the device order's strings, scattered.
    arrived = json.loads(json.dumps(shuffled))
    yard = yardstick_s()
    print(f"yardstick (1e6-step pure-Python loop, best of 3) before: {yard:.3f} s")
    print()
    print(
        f"| {count:,} names | frames/s | best of {repeat} | best CPU time | CPU frames/s "
        "| peak memory growth | frames per yardstick |"
    )
    print("|---|---|---|---|---|---|---|")
    orders = (
        ("device order", listed),
        ("shuffled", shuffled),
        ("shuffled, names made in that order", arrived),
    )
    for order, names in orders:

        def from_names(names: list[str] = names) -> object:
            return plan_raw_names(names, now=now, device_tz=VIENNA)

        def via_frames(names: list[str] = names) -> object:
            return plan_blocks(parse_raw_names(names), now=now, device_tz=VIENNA)

        def reference(names: list[str] = names) -> object:
            return reference_plan_names(names, now=now, device_tz=VIENNA)

        runs = (
            ("plan_raw_names", from_names, repeat),
            ("parse_raw_names + plan_blocks", via_frames, repeat),
            ("reference", reference, max(1, repeat // 2)),
        )
        timings, expected = {}, None
        for who, run, times in runs:
            seconds, cpu, blocks = best_of(run, times)
            expected = blocks if expected is None else expected
            assert blocks == expected, f"{who} disagrees with plan_raw_names"
            timings[who] = seconds
            del blocks
            mib = peak_growth_mib(run)
            print(
                f"| {who}, {order} | {count / seconds:,.0f} | {seconds:.2f} s | {cpu:.2f} s "
                f"| {count / cpu:,.0f} | {mib:.0f} MiB | {count / seconds * yard:,.0f} |"
            )
        del expected
        fastest = timings["plan_raw_names"]
        print(
            f"| speed-up over the reference, {order} | {timings['reference'] / fastest:.1f}x "
            "| | | | | |"
        )
    print()
    print(f"yardstick after: {yardstick_s():.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--million-only", action="store_true")
    args = parser.parse_args()
    million(args.frames, args.repeat)
    if not args.million_only:
        print()
        small()


def small() -> None:
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
