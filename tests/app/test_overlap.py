"""Block n is renamed while block n+1 stacks (issue 12 item 3).

The fakes take a second per frame, so a stack is not instant: the next block's start comes
before the previous block's renames, and an interrupt or a refusal in between still leaves the
previous block fully renamed and its journal record settled.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.state import MemoryStackJournal
from crowdsky.app.ports import BatchStackStatus
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import BlockOutcome
from crowdsky.domain import BlockStatus, companion_names
from crowdsky.errors import SeestarRpcError

from .conftest import AddRun, spec_night

FOLDER = "IC 434"
MORNING_AFTER = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)


class RecordingSeestar(FakeSeestar):
    """Notes every start and rename, in order; can refuse or interrupt the n-th start/poll."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(seconds_per_frame=1.0, **kwargs)  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.starts = 0
        self.refuse_start_no: int | None = None
        self.interrupt_start_no: int | None = None
        self.interrupt_poll_of_start: tuple[int, int] | None = None  # (start no, poll no)
        self._polls_since_start = 0

    def start_batch_stack(self) -> None:
        self.starts += 1
        self._polls_since_start = 0
        if self.starts == self.interrupt_start_no:
            raise KeyboardInterrupt
        if self.starts == self.refuse_start_no:
            raise SeestarRpcError("start_batch_stack", 259, "fail")
        super().start_batch_stack()
        self.calls.append(f"start {self.starts}")

    def batch_stack_status(self) -> BatchStackStatus | None:
        self._polls_since_start += 1
        if self.interrupt_poll_of_start == (self.starts, self._polls_since_start):
            raise KeyboardInterrupt
        return super().batch_stack_status()

    def rename(self, path: str, new_name: str) -> None:
        super().rename(path, new_name)
        self.calls.append(f"rename {new_name}")


@pytest.fixture
def scope(clock: FakeClock, add_run: AddRun) -> RecordingSeestar:
    device = RecordingSeestar(clock=clock, zone="Europe/Vienna")
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    return device


def files(device: FakeSeestar, prefix: str) -> list[str]:
    return sorted(e.name for e in device.list_files(FOLDER) if e.name.startswith(prefix))


def renames(device: RecordingSeestar) -> list[str]:
    return [call.split(" ", 1)[1] for call in device.calls if call.startswith("rename ")]


def triple(fit: str) -> list[str]:
    return [fit, *companion_names(fit)]


def test_a_block_is_renamed_after_the_next_block_started(
    scope: RecordingSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    journal = MemoryStackJournal()
    result = Crowdsky(scope, clock, progress, host_zone=UTC, journal=journal).stack_blocks(FOLDER)
    assert result["blocks_stacked"] == 3
    first, second, third = result["files"]
    kinds = [call if call.startswith("start") else call.split(" ", 1)[1] for call in scope.calls]
    assert kinds == [
        "start 1",
        "start 2",
        *triple(first),
        "start 3",
        *triple(second),
        *triple(third),  # the last block's after its own completion
    ]
    assert files(scope, "DSO_Stacked") == []
    assert len(files(scope, "CrowdSky_")) == 9
    assert not journal.pending(scope.identity)
    assert [b["status"] for b in result["blocks"]] == ["stacked"] * 3


def test_the_next_blocks_stacking_line_follows_the_previous_blocks_result(
    scope: RecordingSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    Crowdsky(scope, clock, progress, host_zone=UTC).stack_blocks(FOLDER)
    heads = [line.split(" ")[0] if "Renamed" not in line else "Renamed" for line in progress.lines]
    shown = [h for h in heads if h in ("Stacking", "Renamed")]
    assert shown == ["Stacking", "Renamed"] * 3
    events = [e[0] for e in progress.events if e[0] in ("block_started", "block_finished")]
    assert events == ["block_started", "block_finished"] * 3


def test_ctrl_c_during_the_next_start_still_renames_the_block(
    scope: RecordingSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    journal = MemoryStackJournal()
    scope.interrupt_start_no = 2
    app = Crowdsky(scope, clock, progress, host_zone=UTC, journal=journal)
    with pytest.raises(KeyboardInterrupt):
        app.stack_blocks(FOLDER)
    [fit] = [n for n in files(scope, "CrowdSky_") if n.endswith(".fit")]
    assert renames(scope) == triple(fit)
    assert files(scope, "DSO_Stacked") == []
    assert not journal.pending(scope.identity)


def test_ctrl_c_while_waiting_for_the_next_block_still_renames_the_block(
    scope: RecordingSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    journal = MemoryStackJournal()
    scope.interrupt_poll_of_start = (2, 2)  # the poll after the one that let block 1 finish
    app = Crowdsky(scope, clock, progress, host_zone=UTC, journal=journal)
    with pytest.raises(KeyboardInterrupt):
        app.stack_blocks(FOLDER)
    [fit] = [n for n in files(scope, "CrowdSky_") if n.endswith(".fit")]
    assert renames(scope) == triple(fit)
    assert scope.batch_stack_status() is None  # block 2 was stopped and cleared
    assert files(scope, "DSO_Stacked") == []
    assert not journal.pending(scope.identity)


def test_a_refused_next_start_still_finishes_the_block(
    scope: RecordingSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    scope.refuse_start_no = 2
    result = Crowdsky(scope, clock, progress, host_zone=UTC).stack_blocks(FOLDER)
    assert [b["status"] for b in result["blocks"]] == ["stacked", "failed", "stacked"]
    assert len(files(scope, "CrowdSky_")) == 6
    assert files(scope, "DSO_Stacked") == []


def test_on_block_sees_a_block_only_once_it_is_renamed(
    scope: RecordingSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    seen: list[tuple[str | None, list[str]]] = []

    def on_block(outcome: BlockOutcome) -> None:
        seen.append((outcome.file, files(scope, "CrowdSky_")))

    Crowdsky(scope, clock, progress, host_zone=UTC).stack_blocks(FOLDER, on_block=on_block)
    assert len(seen) == 3
    for name, listing in seen:
        assert name is not None
        assert set(triple(name)) <= set(listing)


class InstantSecondStack(RecordingSeestar):
    """The second stack ends the instant it starts: within the second the first one ended."""

    def start_batch_stack(self) -> None:
        self.seconds_per_frame = 0.0 if self.starts == 1 else 1.0
        super().start_batch_stack()


def test_a_next_stack_that_took_the_outputs_name_is_not_renamed_as_the_block(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    device = InstantSecondStack(clock=clock, zone="Europe/Vienna")
    add_run(datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC), 30, cadence=27, on=device)
    add_run(datetime(2026, 2, 27, 20, 30, 2, tzinfo=UTC), 30, cadence=27, on=device)
    result = Crowdsky(device, clock, progress, host_zone=UTC).stack_blocks(FOLDER)
    first, second = result["blocks"]
    assert first["status"] == BlockStatus.FAILED.value
    assert "overwrote" in first["error"]
    assert second["status"] == BlockStatus.STACKED.value
    # The only CrowdSky stack is the second block's: no name claims the first block's frames.
    assert [n for n in files(device, "CrowdSky_") if n.endswith(".fit")] == [second["file"]]


class SlowShare(RecordingSeestar):
    """Every rename takes 0.25 s of the fake clock, as a share far away would."""

    def rename(self, path: str, new_name: str) -> None:
        super().rename(path, new_name)
        self.clock.advance(0.25)  # type: ignore[attr-defined]


def night_length(device: RecordingSeestar, clock: FakeClock, add_run: AddRun) -> float:
    device.seconds_per_frame = 0.1  # stacks of 3-7 s: the first wait is not capped by poll_max
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    began = clock.now()
    result = Crowdsky(device, clock, CollectingProgress(), host_zone=UTC).stack_blocks(FOLDER)
    assert result["blocks_stacked"] == 3
    return (clock.now() - began).total_seconds()


def test_the_renames_cost_the_night_only_for_the_last_block(add_run: AddRun) -> None:
    free_clock, slow_clock = FakeClock(MORNING_AFTER), FakeClock(MORNING_AFTER)
    free = night_length(RecordingSeestar(clock=free_clock), free_clock, add_run)
    slow = night_length(SlowShare(clock=slow_clock), slow_clock, add_run)
    # The last block's three renames; the others' overlap the next block's stack.
    assert slow - free == pytest.approx(0.75)
