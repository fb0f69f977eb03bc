"""The device model's batch stacker walks its transition table and nothing else.

Every ``(state, event) -> next`` of :data:`TRANSITIONS` is driven through the FakeSeestar's public
methods (and its clock) and the state a status read shows afterwards is the table's; a pair that
is not in the table is refused with the device's code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.batch_stack import (
    TRANSITIONS,
    StackerState,
    StackEvent,
    transition,
)
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.night import add_sub
from crowdsky.errors import SeestarRpcError

SETUP, PER_FRAME = 1.0, 2.0  # a stack of 3 frames takes 7 s
FOLDER = "MyWorks/IC 434_sub"
START = datetime(2026, 2, 27, 20, 22, 40, tzinfo=UTC)


class Rig:
    """A device with three sub-frames on a fake clock."""

    def __init__(self) -> None:
        self.clock = FakeClock(datetime(2026, 2, 28, 6, 0, tzinfo=UTC))
        self.device = FakeSeestar(
            clock=self.clock, seconds_per_frame=PER_FRAME, setup_seconds=SETUP
        )
        self.paths = [
            add_sub(self.device, "IC 434", 10.0, "LP", START + i * timedelta(seconds=13))
            for i in range(3)
        ]

    def start(self, frames: int) -> None:
        self.device.configure_batch_stack(FOLDER, self.paths[:frames])
        self.device.start_batch_stack()

    def state(self) -> StackerState:
        """The stacker's state as a status read shows it (no result: idle)."""
        status = self.device.batch_stack_status()
        return StackerState.IDLE if status is None else StackerState(status.state.value)

    def stacked(self) -> int:
        status = self.device.batch_stack_status()
        assert status is not None
        return status.stacked_img


Step = Callable[[Rig], None]


def _working(rig: Rig) -> None:
    rig.start(3)


def _working_then_failing(rig: Rig) -> None:
    rig.device.faults.fail_stack = ("stack error, too few stars", 263)
    rig.start(3)  # fails half way, after 1 + 2 x 1 = 3 s


def _complete(rig: Rig) -> None:
    rig.start(3)
    rig.clock.advance(3600)


def _failed(rig: Rig) -> None:
    rig.start(0)  # nothing resolved: fail at once, 267 "no image"


def _cancelled(rig: Rig) -> None:
    rig.start(3)
    rig.device.stop_batch_stack()


REACH: dict[StackerState, Step] = {
    StackerState.IDLE: lambda rig: None,
    StackerState.WORKING: _working,
    StackerState.COMPLETE: _complete,
    StackerState.FAIL: _failed,
    StackerState.CANCEL: _cancelled,
}

ACT: dict[StackEvent, Step] = {
    StackEvent.CONFIGURE: lambda rig: rig.device.configure_batch_stack(FOLDER, rig.paths[:2]),
    StackEvent.START: lambda rig: rig.start(3),
    StackEvent.TICK: lambda rig: rig.clock.advance(SETUP + PER_FRAME),  # 1 of 3 frames done
    StackEvent.FINISH: lambda rig: rig.clock.advance(3600),
    StackEvent.FAIL: lambda rig: rig.clock.advance(3600),
    StackEvent.STOP: lambda rig: rig.device.stop_batch_stack(),
    StackEvent.CLEAR: lambda rig: rig.device.clear_batch_stack(),
}

#: Where a transition needs a particular way into its state.
REACH_FOR = {(StackerState.WORKING, StackEvent.FAIL): _working_then_failing}


def test_the_walk_covers_the_table() -> None:
    assert set(REACH) == set(StackerState)
    assert set(ACT) == set(StackEvent)


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS), ids=lambda x: x.name)
def test_each_transition_is_reachable_through_the_public_methods(
    state: StackerState, event: StackEvent
) -> None:
    rig = Rig()
    REACH_FOR.get((state, event), REACH[state])(rig)
    assert rig.state() is state
    ACT[event](rig)
    assert rig.state() is TRANSITIONS[state, event]
    if (state, event) == (StackerState.WORKING, StackEvent.TICK):
        assert rig.stacked() == 1  # the tick is progress, not standing still


def test_a_start_while_working_is_refused_and_changes_nothing() -> None:
    rig = Rig()
    rig.start(3)
    rig.clock.advance(SETUP + PER_FRAME)
    rig.device.configure_batch_stack(FOLDER, rig.paths[:1])
    with pytest.raises(SeestarRpcError) as refused:
        rig.device.start_batch_stack()
    assert (refused.value.method, refused.value.code) == ("start_batch_stack", 259)
    status = rig.device.batch_stack_status()
    assert status is not None
    assert (rig.state(), status.stacked_img, status.total_img) == (StackerState.WORKING, 1, 3)


MISSING = [pair for pair in itertools.product(StackerState, StackEvent) if pair not in TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), MISSING, ids=lambda x: x.name)
def test_a_pair_not_in_the_table_is_refused(state: StackerState, event: StackEvent) -> None:
    with pytest.raises(SeestarRpcError) as refused:
        transition(state, event)
    expected = 259 if (state, event) == (StackerState.WORKING, StackEvent.START) else 207
    assert (refused.value.method, refused.value.code) == (event.method, expected)


def test_only_a_working_stacker_ticks_finishes_or_fails() -> None:
    ended = {StackEvent.TICK, StackEvent.FINISH, StackEvent.FAIL}
    assert {(s, e) for s, e in MISSING if e in ended} == {
        (s, e) for s in StackerState for e in ended if s is not StackerState.WORKING
    }
