"""A stack the device finished after crowdsky was killed is adopted by the next run, not left.

The kill is simulated: the first progress reading of a block raises :class:`Killed` (a
``BaseException`` nothing catches) and from then on the device hears nothing (every command
fails as over a dead link), as after a SIGKILL; then the device is let finish alone and a new
:class:`Crowdsky` (a new process) runs with the same journal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.batch_stack import output_name, stack_image
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.state import JsonStackJournal, MemoryStackJournal
from crowdsky.app.ports import BatchStackStatus, StackJournal
from crowdsky.app.service import Crowdsky
from crowdsky.errors import SeestarConnectionError

from .conftest import AddRun, spec_night

FOLDER = "IC 434"


class Killed(BaseException):
    """The process died: nothing in crowdsky catches this."""


class KillableSeestar(FakeSeestar):
    """The in-memory device, unreachable while ``dead``; counts the starts it accepted."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dead = False
        self.starts = 0

    def _check(self) -> None:
        if self.dead:
            raise SeestarConnectionError("the process that sent this is dead")

    def start_batch_stack(self) -> None:
        self._check()
        super().start_batch_stack()
        self.starts += 1

    def stop_batch_stack(self) -> None:
        self._check()
        super().stop_batch_stack()

    def clear_batch_stack(self) -> None:
        self._check()
        super().clear_batch_stack()

    def batch_stack_status(self) -> BatchStackStatus | None:
        self._check()
        return super().batch_stack_status()


class KillingProgress(CollectingProgress):
    """Kills the process at the first progress reading of a stack."""

    def __init__(self, device: KillableSeestar) -> None:
        super().__init__()
        self.device = device

    def stack_progress(self, status: BatchStackStatus) -> None:
        self.device.dead = True
        raise Killed


@pytest.fixture
def device(clock: FakeClock) -> KillableSeestar:
    return KillableSeestar(clock=clock, zone="Europe/Vienna", seconds_per_frame=1.0)


@pytest.fixture(params=["memory", "json"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> StackJournal:
    if request.param == "memory":
        return MemoryStackJournal()
    return JsonStackJournal(tmp_path / "state" / "pending-stacks.json")


def names(device: FakeSeestar, prefix: str) -> list[str]:
    """The ``.fit`` files in the target folder whose name starts with ``prefix``."""
    return sorted(
        e.name
        for e in device.list_files(FOLDER)
        if e.name.startswith(prefix) and e.name.endswith(".fit")
    )


def kill_during_first_block(
    device: KillableSeestar, clock: FakeClock, journal: StackJournal
) -> str:
    """Run until the first block stacks, kill, let the device finish; the orphan's name."""
    app = Crowdsky(device, clock, KillingProgress(device), host_zone=UTC, journal=journal)
    with pytest.raises(Killed):
        app.stack_blocks(FOLDER)
    assert journal.pending(device.identity)  # the record outlived the kill
    device.dead = False
    clock.advance(3600)
    device.poll_events()  # the device finishes alone
    [orphan] = names(device, "DSO_Stacked_")
    return orphan


def rerun(
    device: KillableSeestar, clock: FakeClock, journal: StackJournal
) -> tuple[dict[str, Any], CollectingProgress]:
    progress = CollectingProgress()
    app = Crowdsky(device, clock, progress, host_zone=UTC, journal=journal)
    return app.stack_blocks(FOLDER), progress


def test_the_orphan_of_a_killed_run_is_renamed_and_not_stacked_again(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    spec_night(add_run)
    orphan = kill_during_first_block(device, clock, journal)
    assert orphan.startswith("DSO_Stacked_33_IC 434_10.0s_")
    starts = device.starts

    result, progress = rerun(device, clock, journal)

    assert device.starts - starts == 2  # only the two other blocks were stacked
    assert result["blocks_stacked"] == 3
    assert names(device, "DSO_Stacked_") == []
    first = names(device, "CrowdSky_33_")
    assert first == ["CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit"]
    assert len(names(device, "CrowdSky_")) == 3
    assert any(orphan in line for line in progress.lines)
    assert journal.pending(device.identity) == ()
    assert rerun(device, clock, journal)[0]["blocks_stacked"] == 0


def test_without_a_journal_the_orphan_stays_and_the_block_is_stacked_twice(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun
) -> None:
    # What the journal is for: the behaviour the fault soak reported as stray_dso_stacked.
    spec_night(add_run)
    orphan = kill_during_first_block(device, clock, MemoryStackJournal())
    app = Crowdsky(device, clock, CollectingProgress(), host_zone=UTC)
    assert app.stack_blocks(FOLDER)["blocks_stacked"] == 3
    assert names(device, "DSO_Stacked_") == [orphan]


def test_the_users_own_stacks_in_the_snapshot_are_never_touched(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    spec_night(add_run)
    # A stack the user made in the app of the very frames of the first block, before crowdsky.
    first = [f"MyWorks/IC 434_sub/{e.name}" for e in device.list_files("IC 434_sub")]
    headers = [device.read_header(p) for p in first if p.endswith(".fit")][:20]
    users = output_name(20, FOLDER, 10.0, datetime(2026, 2, 27, 23, 0, 0))
    device.storage.put(f"MyWorks/{FOLDER}/{users}", stack_image(headers, target=FOLDER))

    app = Crowdsky(device, clock, KillingProgress(device), host_zone=UTC, journal=journal)
    with pytest.raises(Killed):
        app.stack_blocks(FOLDER)
    device.dead = False
    clock.advance(3600)
    device.poll_events()
    [orphan] = [n for n in names(device, "DSO_Stacked_") if n != users]

    result, _ = rerun(device, clock, journal)

    assert result["blocks_stacked"] == 3
    assert names(device, "DSO_Stacked_") == [users]
    assert len(names(device, "CrowdSky_")) == 3
    assert orphan not in names(device, "DSO_Stacked_")


def test_two_candidates_are_left_alone_and_the_block_is_stacked_as_usual(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    spec_night(add_run)
    orphan = kill_during_first_block(device, clock, journal)
    # Another new stack that fits the block just as well (made in the app meanwhile).
    header = device.read_header(f"MyWorks/{FOLDER}/{orphan}")
    other = output_name(30, FOLDER, 10.0, datetime(2026, 2, 28, 6, 30, 0))
    device.storage.put(f"MyWorks/{FOLDER}/{other}", stack_image([header], target=FOLDER))
    starts = device.starts

    result, progress = rerun(device, clock, journal)

    assert device.starts - starts == 3  # the first block was stacked afresh
    assert result["blocks_stacked"] == 3
    assert names(device, "DSO_Stacked_") == sorted([orphan, other])
    assert any("left alone" in line for line in progress.lines)
    assert journal.pending(device.identity) == ()


def test_an_unreadable_candidate_header_adopts_nothing_and_stacks_nothing_now(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    spec_night(add_run)
    orphan = kill_during_first_block(device, clock, journal)
    device.faults.read_fails = {orphan}
    starts = device.starts

    result, _ = rerun(device, clock, journal)

    assert device.starts - starts == 2  # not the first block: it might be a duplicate
    assert result["blocks_failed"] == 1
    [failed] = [b for b in result["blocks"] if b["status"] == "failed"]
    assert failed["chunk_key"] == "20260227.81"
    assert "header could not be read" in failed["error"]
    assert names(device, "DSO_Stacked_") == [orphan]
    assert len(journal.pending(device.identity)) == 1  # asked again next run

    device.faults.read_fails = None
    result, _ = rerun(device, clock, journal)
    assert result["blocks_stacked"] == 1
    assert names(device, "DSO_Stacked_") == []
    assert journal.pending(device.identity) == ()


def test_ctrl_c_stops_the_stack_and_removes_the_record(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    class CtrlC(CollectingProgress):
        def stack_progress(self, status: BatchStackStatus) -> None:
            raise KeyboardInterrupt

    spec_night(add_run)
    app = Crowdsky(device, clock, CtrlC(), host_zone=UTC, journal=journal)
    with pytest.raises(KeyboardInterrupt):
        app.stack_blocks(FOLDER)
    clock.advance(3600)
    device.poll_events()
    assert names(device, "DSO_Stacked_") == []
    assert journal.pending(device.identity) == ()


def test_a_failed_rename_keeps_the_record_and_the_next_run_adopts_the_output(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    spec_night(add_run)
    device.faults.rename_fails = lambda path: "DSO_Stacked_33_" in path
    result, _ = rerun(device, clock, journal)
    assert result["rename_failed"] == 1
    [output] = names(device, "DSO_Stacked_")
    assert len(journal.pending(device.identity)) == 1
    starts = device.starts

    device.faults.rename_fails = None
    result, _ = rerun(device, clock, journal)

    assert device.starts == starts
    assert result["blocks_stacked"] == 1
    assert names(device, "DSO_Stacked_") == []
    assert output.split("_")[2] == "33"
    assert len(names(device, "CrowdSky_")) == 3


def test_a_record_of_a_block_that_got_covered_is_dropped(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    spec_night(add_run)
    kill_during_first_block(device, clock, journal)
    Crowdsky(device, clock, CollectingProgress(), host_zone=UTC).stack_blocks(FOLDER)
    assert len(journal.pending(device.identity)) == 1

    rerun(device, clock, journal)

    assert journal.pending(device.identity) == ()


def test_a_device_still_stacking_is_waited_for_before_deciding(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    spec_night(add_run)
    app = Crowdsky(device, clock, KillingProgress(device), host_zone=UTC, journal=journal)
    with pytest.raises(Killed):
        app.stack_blocks(FOLDER)
    device.dead = False  # the next run starts while the device still stacks the first block
    starts = device.starts

    result, progress = rerun(device, clock, journal)

    assert device.starts - starts == 2
    assert result["blocks_stacked"] == 3
    assert names(device, "DSO_Stacked_") == []
    assert any("still stacking" in line for line in progress.lines)


def test_ctrl_c_after_the_stack_completed_keeps_the_record_and_the_output_is_adopted(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    class CtrlCAtComplete(CollectingProgress):
        def line(self, text: str) -> None:
            super().line(text)
            if text.startswith("  Complete:"):
                raise KeyboardInterrupt

    spec_night(add_run)
    app = Crowdsky(device, clock, CtrlCAtComplete(), host_zone=UTC, journal=journal)
    with pytest.raises(KeyboardInterrupt):
        app.stack_blocks(FOLDER)
    [output] = names(device, "DSO_Stacked_")
    assert len(journal.pending(device.identity)) == 1
    starts = device.starts

    result, progress = rerun(device, clock, journal)

    assert device.starts - starts == 2
    assert result["blocks_stacked"] == 3
    assert names(device, "DSO_Stacked_") == []
    assert any(output in line for line in progress.lines)


def test_ctrl_c_as_the_device_completes_unseen_keeps_the_record_and_the_output_is_adopted(
    device: KillableSeestar, clock: FakeClock, add_run: AddRun, journal: StackJournal
) -> None:
    # Found by the soak: the stack completed between two polls, Ctrl-C came before crowdsky
    # saw it, and the stop-and-clear that leaves the device idle erased the "complete" state.
    class CtrlCAsItCompletes(CollectingProgress):
        def stack_progress(self, status: BatchStackStatus) -> None:
            clock.advance(3600)  # the device finishes before crowdsky looks again
            raise KeyboardInterrupt

    spec_night(add_run)
    app = Crowdsky(device, clock, CtrlCAsItCompletes(), host_zone=UTC, journal=journal)
    with pytest.raises(KeyboardInterrupt):
        app.stack_blocks(FOLDER)
    [output] = names(device, "DSO_Stacked_")
    assert len(journal.pending(device.identity)) == 1
    starts = device.starts

    result, progress = rerun(device, clock, journal)

    assert device.starts - starts == 2
    assert result["blocks_stacked"] == 3
    assert names(device, "DSO_Stacked_") == []
    assert any(output in line for line in progress.lines)
