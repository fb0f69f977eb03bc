"""A state machine over the in-memory Seestar: nights, clock steps, runs, purges and faults.

Whatever the interleaving, raw sub-frames never change and no block ever has two CrowdSky files.
"""

from __future__ import annotations

import warnings
from collections import Counter
from datetime import UTC, datetime

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import QuietProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.app.service import Crowdsky
from crowdsky.domain import coverage_key_of, parse_crowdsky_name
from crowdsky.domain.device_paths import target_of_sub_folder
from crowdsky.errors import CrowdskyWarning

TARGETS = {"IC 434": (85.25, -2.46), "M 42": (83.82, -5.39), "Sh2_101 ε": (300.0, 35.3)}
ZONES = ["Europe/Vienna", "America/New_York", "Asia/Kathmandu"]


class SeestarNights(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(datetime(2025, 10, 25, 18, 0, tzinfo=UTC))
        self.device: FakeSeestar | None = None
        self.app: Crowdsky | None = None
        self.raw: dict[str, object] = {}
        self.faulty = False

    @precondition(lambda self: self.device is None)
    @rule(zone=st.sampled_from(ZONES), seconds_per_frame=st.sampled_from([0.0, 0.7, 2.5]))
    def boot(self, zone: str, seconds_per_frame: float) -> None:
        self.device = FakeSeestar(clock=self.clock, zone=zone)
        self.device.seconds_per_frame = seconds_per_frame
        self.app = Crowdsky(self.device, self.clock, QuietProgress(), host_zone=UTC)

    @precondition(lambda self: self.device is not None)
    @rule(
        name=st.sampled_from(sorted(TARGETS)),
        exposure=st.sampled_from([10.0, 20.0]),
        filter=st.sampled_from(["LP", "IRCUT"]),
        count=st.integers(1, 60),
    )
    def observe(self, name: str, exposure: float, filter: str, count: int) -> None:
        target = name
        assert self.device is not None
        cadence = exposure + 2.0
        for _ in range(count):
            sub = add_sub(self.device, target, exposure, filter, self.clock.now(), *TARGETS[target])
            path = sub  # add_sub returns the MyWorks/... path
            self.raw[path] = dict(self.device.read_header(path))
            self.clock.advance(cadence)

    @precondition(lambda self: self.device is not None)
    @rule(minutes=st.integers(1, 180))
    def wait(self, minutes: int) -> None:
        self.clock.advance(minutes * 60)

    @precondition(lambda self: self.app is not None)
    @rule(block_minutes=st.sampled_from([15, 10, 30]), min_exptime=st.sampled_from([0, 240]))
    def stack(self, block_minutes: int, min_exptime: int) -> None:
        assert self.app is not None
        planned_at = FakeClock(self.clock.now())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CrowdskyWarning)
            self.app.stack_all(block_minutes=block_minutes, min_exptime=min_exptime)
            if not self.faulty:
                # Planning after stacking is empty, seen from the moment the run planned (the
                # clock moved on while the device stacked, completing blocks that were open).
                then = attrs.evolve(self.app, clock=planned_at)
                for target in self._targets():
                    left = then.find_unstacked_blocks(
                        target, block_minutes=block_minutes, min_exptime=min_exptime
                    )
                    assert left == [], left

    @precondition(lambda self: self.app is not None)
    @rule(everything=st.booleans(), name=st.sampled_from(sorted(TARGETS)))
    def purge(self, everything: bool, name: str) -> None:
        target = name
        assert self.app is not None
        if everything:
            self.app.purge_crowdsky_stacks()
        elif target in self._targets():
            self.app.purge_crowdsky_stacks(target)

    @precondition(lambda self: self.device is not None)
    @rule(
        fault=st.sampled_from(
            ["none", "refuse_start", "fail_stack", "reject", "rename_fit", "companions", "stuck"]
        )
    )
    def inject(self, fault: str) -> None:
        assert self.device is not None
        faults = self.device.faults
        faults.refuse_start = 259 if fault == "refuse_start" else None
        faults.fail_stack = ("stack error, too few stars", 263) if fault == "fail_stack" else None
        faults.reject_frames = 2 if fault == "reject" else 0
        faults.rename_fails = (lambda n: n.endswith(".fit")) if fault == "rename_fit" else None
        faults.drop_companions = fault == "companions"
        faults.stuck = fault == "stuck"
        # Rejections can fail a block outright (all of its frames rejected), so they count.
        self.faulty = fault not in ("none", "companions")

    def _targets(self) -> list[str]:
        assert self.device is not None
        folders = (e.name for e in self.device.list_folders())
        return [t for t in (target_of_sub_folder(f) for f in folders) if t]

    @invariant()
    def raw_frames_never_change(self) -> None:
        if self.device is None:
            return
        now: dict[str, object] = {}
        for folder in self.device.list_folders():
            if target_of_sub_folder(folder.name) is None:
                continue
            for entry in self.device.list_files(folder.name):
                if entry.name.endswith(".fit"):
                    path = f"MyWorks/{folder.name}/{entry.name}"
                    now[path] = dict(self.device.read_header(path))
        assert now == self.raw

    @invariant()
    def no_block_has_two_crowdsky_files(self) -> None:
        if self.device is None:
            return
        keys: Counter[object] = Counter()
        for target in self._targets():
            for entry in self.device.list_files(target):
                parsed = parse_crowdsky_name(entry.name)
                if parsed is not None and entry.name.endswith(".fit"):
                    keys[coverage_key_of(parsed, UTC)] += 1
        assert all(n == 1 for n in keys.values()), keys


SeestarNights.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestSeestarNights = SeestarNights.TestCase
