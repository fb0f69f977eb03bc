"""Requests the stacking loop sends per block (issue 12): few polls, one clear, events used.

Every device call the loop makes is counted by a counting subclass of the in-memory device on
a fake clock, so the counts are exact and no assertion depends on timing.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from typing import Any

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.seestar.replies import parse_batch_stack
from crowdsky.app.ports import BatchStackEvents, BatchStackStatus
from crowdsky.app.service import Crowdsky

from .conftest import AddRun, spec_night

BATCH_METHODS = (
    "clear_batch_stack",
    "configure_batch_stack",
    "start_batch_stack",
    "batch_stack_status",
    "stop_batch_stack",
)


class CountingSeestar(FakeSeestar):
    """The in-memory device, recording every batch-stack call in order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[str] = []

    def clear_batch_stack(self) -> None:
        self.calls.append("clear_batch_stack")
        super().clear_batch_stack()

    def configure_batch_stack(self, folder: str, paths: Any) -> None:
        self.calls.append("configure_batch_stack")
        super().configure_batch_stack(folder, paths)

    def start_batch_stack(self) -> None:
        self.calls.append("start_batch_stack")
        super().start_batch_stack()

    def batch_stack_status(self) -> BatchStackStatus | None:
        self.calls.append("batch_stack_status")
        return super().batch_stack_status()

    def stop_batch_stack(self) -> None:
        self.calls.append("stop_batch_stack")
        super().stop_batch_stack()


class PushingSeestar(CountingSeestar):
    """Pushes a BatchStack event on every state change, as the simulator does."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: deque[dict[str, Any]] = deque()
        self.subscribe(self.events.append)

    def next_batch_stack_status(self, timeout: float) -> BatchStackStatus | None:
        if not self.events:
            self.clock.advance(min(timeout, 0.5))  # type: ignore[attr-defined]
            self.poll_events()
        return parse_batch_stack(self.events.popleft()) if self.events else None


def stack_spec_night(device: CountingSeestar, add_run: AddRun, clock: FakeClock) -> list[str]:
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    app = Crowdsky(device, clock, CollectingProgress())
    result = app.stack_blocks("IC 434")
    assert result["blocks_stacked"] == 3
    return [call for call in device.calls if call in BATCH_METHODS]


def between_starts(calls: list[str]) -> list[list[str]]:
    """The calls of each block: from one configure to the next."""
    blocks: list[list[str]] = []
    for call in calls:
        if call == "configure_batch_stack" or not blocks:
            blocks.append([])
        blocks[-1].append(call)
    return blocks


@pytest.mark.parametrize("pushing", [False, True], ids=["polled", "pushed"])
@pytest.mark.parametrize("seconds_per_frame", [0.1, 1.0, 2.0])
def test_at_most_ten_requests_per_block(
    clock: FakeClock, add_run: AddRun, pushing: bool, seconds_per_frame: float
) -> None:
    kind = PushingSeestar if pushing else CountingSeestar
    device = kind(clock=clock, zone="Europe/Vienna", seconds_per_frame=seconds_per_frame)
    calls = stack_spec_night(device, add_run, clock)
    assert calls.count("start_batch_stack") == 3
    assert len(calls) <= 10 * 3


@pytest.mark.parametrize("pushing", [False, True], ids=["polled", "pushed"])
def test_the_batch_stack_is_cleared_once_per_block(
    clock: FakeClock, add_run: AddRun, pushing: bool
) -> None:
    kind = PushingSeestar if pushing else CountingSeestar
    device = kind(clock=clock, zone="Europe/Vienna", seconds_per_frame=1.0)
    calls = stack_spec_night(device, add_run, clock)
    # One clear before each block (it also clears the block before), one after the last.
    assert calls[0] == "clear_batch_stack"
    assert calls[-1] == "clear_batch_stack"
    assert calls.count("clear_batch_stack") == 3 + 1
    blocks = between_starts(calls)
    assert blocks[0] == ["clear_batch_stack"]
    assert [block.count("clear_batch_stack") for block in blocks[1:]] == [1, 1, 1]


def test_the_state_an_event_carries_is_taken_without_a_poll(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = PushingSeestar(clock=clock, zone="Europe/Vienna", seconds_per_frame=1.0)
    assert isinstance(device, BatchStackEvents)
    calls = stack_spec_night(device, add_run, clock)
    # One poll right after each start; progress and the end come in the events.
    assert calls.count("batch_stack_status") == 3


def test_polls_follow_the_devices_remaining_time(clock: FakeClock, add_run: AddRun) -> None:
    # 69 frames at 2 s: the stack takes 138 s, and the default ceiling is 30 s.
    device = CountingSeestar(clock=clock, zone="Europe/Vienna", seconds_per_frame=2.0)
    calls = stack_spec_night(device, add_run, clock)
    polls = [block.count("batch_stack_status") for block in between_starts(calls)[1:]]
    # 66 s: polls at 0, 30, 60 and 66 s; 138 s: 0, 30, 60, 90, 120, 138 s; 112 s: five.
    assert polls == [4, 6, 5]
    assert clock.slept
    assert min(clock.slept) >= 0.05


class LaggingSeestar(CountingSeestar):
    """Every status read travels half a second each way: the device reads its state between."""

    LAG = 0.5

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.started: list[datetime] = []
        self.seen_ending: list[datetime] = []

    def start_batch_stack(self) -> None:
        super().start_batch_stack()
        self.started.append(self.clock.now())

    def batch_stack_status(self) -> BatchStackStatus | None:
        self.clock.advance(self.LAG)  # type: ignore[attr-defined]
        status = super().batch_stack_status()
        if status is not None and status.terminal:
            self.seen_ending.append(self.clock.now())
        self.clock.advance(self.LAG)  # type: ignore[attr-defined]
        return status


def test_the_poll_is_sent_a_round_trip_early_and_reaches_the_device_as_it_ends(
    clock: FakeClock, add_run: AddRun
) -> None:
    device = LaggingSeestar(clock=clock, zone="Europe/Vienna", seconds_per_frame=1.0)
    stack_spec_night(device, add_run, clock)
    # 33, 69 and 56 frames at 1 s: each end is seen the moment it comes, not a round trip late.
    took = [end - start for start, end in zip(device.started, device.seen_ending, strict=True)]
    assert took == [timedelta(seconds=33), timedelta(seconds=69), timedelta(seconds=56)]


class LosingSeestar(PushingSeestar):
    """Pushes every working event but loses the terminal one."""

    def next_batch_stack_status(self, timeout: float) -> BatchStackStatus | None:
        status = super().next_batch_stack_status(timeout)
        return None if status is not None and status.terminal else status


def test_a_lost_terminal_event_is_made_up_for_by_a_poll(clock: FakeClock, add_run: AddRun) -> None:
    device = LosingSeestar(clock=clock, zone="Europe/Vienna", seconds_per_frame=1.0)
    calls = stack_spec_night(device, add_run, clock)
    polls = [block.count("batch_stack_status") for block in between_starts(calls)[1:]]
    assert polls == [2, 2, 2]  # right after the start, and once the events' estimate ran out
