from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import attrs
import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.app.ports import BatchStackState, BatchStackStatus, Seestar
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import StackOptions
from crowdsky.errors import ListingIncompleteError, SeestarConnectionError

from .conftest import AddRun, spec_night
from .test_service import crowdsky_files


def test_refused_start_is_recorded_and_the_rest_goes_on(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    device.faults.refuse_start = 259
    result = app.stack_blocks("IC 434")
    assert result["blocks_failed"] == 3
    assert result["blocks_stacked"] == 0
    assert all("stack is already running" in (b["error"] or "") for b in result["blocks"])
    device.faults.refuse_start = None
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 3


def test_device_failure_text_is_reported(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    device.faults.fail_stack = ("stack error, too few stars", 263)
    result = app.stack_blocks("IC 434")
    assert result["blocks_failed"] == 3
    assert "  Failed: the device reported fail: stack error, too few stars (code 263)" in (
        progress.lines
    )
    assert crowdsky_files(device) == []


def test_rejected_frames_give_the_real_frame_count(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    spec_night(add_run)
    device.faults.reject_frames = 3
    result = app.stack_blocks("IC 434")
    assert [f.split("_")[1] for f in result["files"]] == ["30", "66", "53"]
    # Coverage does not depend on the frame count: nothing is stacked twice.
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 0


def test_stuck_stack_times_out_and_is_stopped(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    device.faults.stuck = True
    app = Crowdsky(device, clock, progress, options=StackOptions(block_timeout=60))
    result = app.stack_blocks("IC 434")
    assert result["blocks_failed"] == 3
    assert "did not finish within 60 s" in result["blocks"][0]["error"]
    assert device.batch_stack_status() is None  # stopped and cleared, not left running
    assert sum(clock.slept) >= 3 * 60


def test_polling_is_adaptive_not_a_fixed_sleep(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    device.seconds_per_frame = 1.5
    app = Crowdsky(device, clock, progress)
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 3
    working = [s for s in progress.statuses if s.state is BatchStackState.WORKING]
    assert working, "progress readings are reported while the device stacks"
    assert any(s.percent > 0 for s in working)
    assert len(set(clock.slept)) > 1  # the wait follows the device's remaining_sec


def test_failed_fit_rename_is_loud_and_restacked_next_run(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    device.faults.rename_fails = lambda name: name.endswith(".fit")
    result = app.stack_blocks("IC 434")
    assert result["rename_failed"] == 3
    assert result["blocks_failed"] == 3
    assert any(line.startswith("  RENAME FAILED:") for line in progress.lines)
    assert crowdsky_files(device) == []
    device.faults.rename_fails = None
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 3


def test_missing_companions_do_not_fail_the_block(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    spec_night(add_run)
    device.faults.drop_companions = True
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 3
    assert len(crowdsky_files(device)) == 3


def test_missing_radec_falls_back_to_a_sub_frame(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    spec_night(add_run)
    device.faults.missing_radec = True
    files = app.stack_blocks("IC 434")["files"]
    assert all(f.endswith("_HP102265.fit") for f in files)


class InterruptingProgress(CollectingProgress):
    """Ctrl-C arrives while the second block stacks."""

    def stack_progress(self, status: BatchStackStatus) -> None:
        super().stack_progress(status)
        if sum(1 for line in self.lines if line.startswith("Stacking")) == 2:
            raise KeyboardInterrupt


def test_ctrl_c_stops_and_clears_the_device_then_propagates(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun
) -> None:
    spec_night(add_run)
    device.seconds_per_frame = 1.0
    progress = InterruptingProgress()
    app = Crowdsky(device, clock, progress)
    with pytest.raises(KeyboardInterrupt):
        app.stack_blocks("IC 434")
    assert device.batch_stack_status() is None
    names = crowdsky_files(device)
    assert len([n for n in names if n.endswith(".fit")]) == 1  # the first block only
    assert len(names) == 3  # with both companions: nothing half-renamed
    assert not [e for e in device.list_files("IC 434") if e.name.startswith("DSO_Stacked")]


class BrokenFolder:
    """A Seestar whose listing of one folder fails (a fake wrapping the fake)."""

    def __init__(self, inner: Seestar, folder: str) -> None:
        self._inner = inner
        self._folder = folder

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def list_files(self, folder: str) -> object:
        if folder == self._folder:
            raise SeestarConnectionError("link dropped while listing")
        return self._inner.list_files(folder)


def test_stack_all_goes_on_past_a_target_that_fails(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    add_run(datetime(2026, 2, 27, 22, 0, 5, tzinfo=UTC), 40, target="M 42", radec=(83.82, -5.39))
    app = Crowdsky(BrokenFolder(device, "IC 434_sub"), clock, progress)  # type: ignore[arg-type]
    result = app.stack_all()
    assert "IC 434" in result["targets_failed"]
    assert result["total_blocks_stacked"] == 1
    assert result["targets_processed"] == 1


def test_a_target_whose_listing_comes_back_short_fails_and_no_block_of_it_is_stacked(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    add_run(datetime(2026, 2, 27, 22, 0, 5, tzinfo=UTC), 40, target="M 42", radec=(83.82, -5.39))
    device.faults.listing_fails = {"IC 434_sub"}
    with pytest.raises(ListingIncompleteError):
        app.find_unstacked_blocks("IC 434")  # nothing is planned from a short listing
    result = app.stack_all()
    assert "came back short" in result["targets_failed"]["IC 434"]
    assert any(line.startswith("IC 434: The listing of") for line in progress.lines)
    assert list(result["results"]) == ["M 42"]
    assert result["total_blocks_stacked"] == 1
    device.faults.listing_fails = ()
    assert device.list_files("IC 434") == []  # not a stack, not a rename, nothing
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 3  # once listed in full


def test_a_short_listing_of_the_stacks_never_reads_as_uncovered(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    # The target folder tells which blocks are covered: unread, they would all be stacked again.
    spec_night(add_run)
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 3
    stacked = crowdsky_files(device)
    device.faults.listing_fails = {"IC 434"}
    with pytest.raises(ListingIncompleteError):
        app.stack_blocks("IC 434")
    device.faults.listing_fails = ()
    assert crowdsky_files(device) == stacked


class PushingSeestar(FakeSeestar):
    """A device that pushes BatchStack events: the loop waits on them instead of sleeping."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.waits: list[float] = []

    def next_batch_stack_status(self, timeout: float) -> BatchStackStatus | None:
        self.waits.append(timeout)
        self.clock.advance(timeout)  # type: ignore[attr-defined]
        return None


def test_pushed_events_replace_the_sleep(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    device = PushingSeestar(clock=clock, zone="Europe/Vienna", seconds_per_frame=1.0)
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    app = Crowdsky(device, clock, progress)
    assert app.stack_blocks("IC 434")["blocks_stacked"] == 3
    assert device.waits
    assert clock.slept == []


class InterruptedRename(FakeSeestar):
    """Ctrl-C (a real SIGINT) arrives right after the .fit rename."""

    def rename(self, path: str, new_name: str) -> None:
        super().rename(path, new_name)
        if new_name.endswith(".fit"):
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_renames_waits_until_the_block_is_renamed(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    # The first block is renamed while the second one stacks: the Ctrl-C stops and clears the
    # second (it takes a while, so it leaves no output) after the first block's renames.
    device = InterruptedRename(clock=clock, zone="Europe/Vienna", seconds_per_frame=1.0)
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    app = Crowdsky(device, clock, progress)
    with pytest.raises(KeyboardInterrupt):
        app.stack_blocks("IC 434")
    names = crowdsky_files(device, "IC 434")
    assert len(names) == 3  # the .fit and both companions of the first block
    assert device.batch_stack_status() is None  # the second block was stopped and cleared
    assert not [e for e in device.list_files("IC 434") if e.name.startswith("DSO_Stacked")]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_summary_statuses_are_the_plain_strings_of_the_spec(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    spec_night(add_run)
    add_run(datetime(2026, 2, 27, 21, 0, 5, tzinfo=UTC), 2)  # 20 s: below min_exptime
    planned = app.stack_blocks("IC 434", dry_run=True)["blocks"]
    assert [b["status"] for b in planned] == ["planned"] * 3 + ["skipped"]
    device.faults.rename_fails = lambda name: name.endswith(".fit") and "_33_" in name
    result = app.stack_blocks("IC 434")
    statuses = [b["status"] for b in result["blocks"]]
    assert statuses == ["rename_failed", "stacked", "stacked", "skipped"]
    assert {type(s) for s in statuses} == {str}  # not the enum: the dicts print as before
    assert (result["blocks_failed"], result["rename_failed"]) == (1, 1)


class PausedSeestar(FakeSeestar):
    """A device that reports a batch-stack state this version does not know."""

    def batch_stack_status(self) -> BatchStackStatus | None:
        status = super().batch_stack_status()
        if status is None or status.terminal:
            return status
        return attrs.evolve(status, state=BatchStackState.UNKNOWN, device_state="paused")


def test_an_unknown_device_state_is_waited_on_and_named_in_the_timeout(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    device = PausedSeestar(clock=clock, seconds_per_frame=1.0)
    add_run(datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC), 33, cadence=27, on=device)
    app = Crowdsky(device, clock, progress, options=StackOptions(block_timeout=20))
    [block] = app.stack_blocks("IC 434")["blocks"]
    assert "(last state: paused)" in block["error"]
    assert {s.state_text for s in progress.statuses} == {"paused"}
    assert device.batch_stack_status() is None  # stopped and cleared


class Vanishing:
    """A Seestar that stops answering altogether once its first block has been stacked."""

    def __init__(self, inner: FakeSeestar) -> None:
        self._inner = inner
        self.gone = False
        self.calls_after = 0

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: object, **kwargs: object) -> object:
            if self.gone:
                self.calls_after += 1
                raise SeestarConnectionError("the Seestar did not answer")
            result = attribute(*args, **kwargs)
            if name == "rename" and str(args[1]).endswith(".fit"):
                self.gone = True  # out of Wi-Fi range right after the first block
            return result

        return call


def test_a_telescope_that_vanishes_ends_the_run_once(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    add_run(datetime(2026, 2, 27, 22, 0, 5, tzinfo=UTC), 40, target="M 42", radec=(83.82, -5.39))
    vanishing = Vanishing(device)
    app = Crowdsky(vanishing, clock, progress)  # type: ignore[arg-type]
    with pytest.raises(SeestarConnectionError):
        app.stack_all()
    # A clear of the failed block, the final clear, one look at the folders: not a try per block.
    assert vanishing.calls_after <= 4
    assert sum(1 for line in progress.lines if line.startswith("Stacking")) <= 2
