"""The batch stacker against a tiny model of §4: any order of configure, start, stop, clear, wait.

The model says what state a read must show; the device must agree after every step, must refuse
a start (259) exactly while a stack works, and must have written the outputs it reports.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.night import add_sub
from crowdsky.errors import SeestarRpcError

SETUP, PER_FRAME = 1.0, 2.0
START = datetime(2026, 2, 27, 20, 22, 40, tzinfo=UTC)


@attrs.define
class Model:
    """What the firmware keeps: the last run's start, size, and how it ended (if it did)."""

    started: datetime
    frames: int
    ended: str | None = None

    def state(self, now: datetime) -> str:
        if self.ended is not None:
            return self.ended
        if self.frames == 0:
            return "fail"
        done = self.started + timedelta(seconds=SETUP + PER_FRAME * self.frames)
        return "complete" if now >= done else "working"


class BatchStacker(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(datetime(2026, 2, 28, 6, 0, tzinfo=UTC))
        self.device = FakeSeestar(
            clock=self.clock, seconds_per_frame=PER_FRAME, setup_seconds=SETUP
        )
        self.paths = [
            add_sub(self.device, "IC 434", 10.0, "LP", START + i * timedelta(seconds=13))
            for i in range(6)
        ]
        self.configured = 0
        self.model: Model | None = None

    def _model_state(self) -> str | None:
        return None if self.model is None else self.model.state(self.clock.now())

    @rule(count=st.integers(0, 6))
    def configure(self, count: int) -> None:
        self.device.configure_batch_stack("MyWorks/IC 434_sub", self.paths[:count])
        self.configured = count

    @rule()
    def start(self) -> None:
        if self._model_state() == "working":
            with pytest.raises(SeestarRpcError) as refused:
                self.device.start_batch_stack()
            assert refused.value.code == 259
            return
        self.device.start_batch_stack()
        self.model = Model(self.clock.now(), self.configured)

    @rule()
    def stop(self) -> None:
        self.device.stop_batch_stack()
        if self.model is not None and self._model_state() == "working":
            self.model.ended = "cancel"

    @rule()
    def clear(self) -> None:
        self.device.clear_batch_stack()
        if self._model_state() != "working":
            self.model = None

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 5.0, 30.0]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def reads_agree_with_the_model(self) -> None:
        status = self.device.batch_stack_status()
        expected = self._model_state()
        if expected is None:
            assert status is None
            return
        assert status is not None
        assert status.state == expected
        assert self.model is not None
        assert status.total_img == self.model.frames
        if expected == "complete":
            assert status.stacked_img == self.model.frames
            assert status.output_folder is not None
            names = {f.name for f in self.device.list_files("IC 434")}
            assert set(status.output_files) <= names

    @invariant()
    def raw_frames_stay(self) -> None:
        assert len(self.device.list_files("IC 434_sub")) == 18


TestBatchStacker = BatchStacker.TestCase
