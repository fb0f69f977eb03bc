"""A header that could not be read is never a header without DATE-OBS or RA/DEC.

Fault soak finding: an HTTP 500 or a truncated body while reading a sub-frame's header made
planning fall back to the computer's zone (every chunk key of the night shifted) and made stack
names fall back to ``HP000000``. A failed read is retried a few times; if it still fails the
target (planning) or the block (naming) is reported failed, never planned or named from a guess.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.faults import ReadFault
from crowdsky.app.ports import BatchStackStatus
from crowdsky.app.service import Crowdsky
from crowdsky.errors import HeaderReadError, StorageError

from .conftest import AddRun, spec_night
from .test_service import crowdsky_files

SPEC_KEYS = ["20260227.81", "20260227.82", "20260227.83"]
NEW_YORK = ZoneInfo("America/New_York")
M42 = (83.82, -5.39)


def in_folder(folder: str) -> object:
    return lambda path: path.startswith(f"MyWorks/{folder}/")


@pytest.fixture
def quiet(clock: FakeClock, add_run: AddRun) -> FakeSeestar:
    """The spec's night and one M 42 block on a device that reports no zone (zone from headers)."""
    device = FakeSeestar(clock=clock, zone="Europe/Vienna", report_zone=False)
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    add_run(datetime(2026, 2, 27, 22, 0, 5, tzinfo=UTC), 40, target="M 42", radec=M42, on=device)
    return device


@pytest.mark.parametrize("fault", list(ReadFault))
def test_unreadable_sub_headers_skip_the_target_instead_of_using_the_host_zone(
    quiet: FakeSeestar, clock: FakeClock, progress: CollectingProgress, fault: ReadFault
) -> None:
    quiet.faults.read_fails = in_folder("IC 434_sub")  # type: ignore[assignment]
    quiet.faults.read_fault = fault
    app = Crowdsky(quiet, clock, progress, host_zone=NEW_YORK)
    with pytest.raises(HeaderReadError, match="could not be read") as caught:
        app.find_unstacked_blocks("IC 434")
    assert isinstance(caught.value, StorageError)
    assert caught.value.path.startswith("MyWorks/IC 434_sub/Light_IC 434_10.0s_LP_")

    result = app.stack_all()
    assert "could not be read" in result["targets_failed"]["IC 434"]
    assert crowdsky_files(quiet) == []
    assert [f.split("_")[5] for f in result["results"]["M 42"]["files"]] == ["20260227.88"]


def test_a_failing_read_is_retried_a_few_times_then_given_up(
    quiet: FakeSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    reads: list[str] = []

    def failing(path: str) -> bool:
        reads.append(path)
        return path.startswith("MyWorks/IC 434_sub/")

    quiet.faults.read_fails = failing
    app = Crowdsky(quiet, clock, progress, host_zone=NEW_YORK)
    with pytest.raises(HeaderReadError) as caught:
        app.find_unstacked_blocks("IC 434")
    tries = Counter(reads)
    assert list(tries) == [caught.value.path]  # the first failure stops the target
    assert tries[caught.value.path] == caught.value.attempts == 3


@pytest.mark.parametrize("fault", list(ReadFault))
def test_a_passing_glitch_is_retried_and_the_night_planned_right(
    quiet: FakeSeestar, clock: FakeClock, progress: CollectingProgress, fault: ReadFault
) -> None:
    quiet.faults.read_fails = in_folder("IC 434_sub")  # type: ignore[assignment]
    quiet.faults.read_fault = fault
    quiet.faults.read_fail_times = 2
    app = Crowdsky(quiet, clock, progress, host_zone=NEW_YORK)
    keys = [b["chunk_key"] for b in app.find_unstacked_blocks("IC 434")]
    assert keys == SPEC_KEYS


def test_a_device_zone_is_not_taken_unchecked_when_the_headers_cannot_be_read(
    device: FakeSeestar, add_run: AddRun, clock: FakeClock, progress: CollectingProgress
) -> None:
    """Even with a reported zone, an unreadable sample is no "could not check": it is a failure."""
    spec_night(add_run)
    device.faults.read_fails = in_folder("IC 434_sub")  # type: ignore[assignment]
    app = Crowdsky(device, clock, progress, host_zone=UTC)
    with pytest.raises(HeaderReadError):
        app.find_unstacked_blocks("IC 434")


# --- naming a stack ------------------------------------------------------------------------------


def stack_outputs(device: FakeSeestar) -> list[str]:
    return [e.name for e in device.list_files("IC 434") if e.name.startswith("DSO_Stacked_")]


@pytest.mark.parametrize("fault", list(ReadFault))
def test_an_unreadable_stack_header_leaves_the_block_unnamed_and_restacked_next_run(
    app: Crowdsky,
    add_run: AddRun,
    device: FakeSeestar,
    progress: CollectingProgress,
    fault: ReadFault,
) -> None:
    spec_night(add_run)
    device.faults.read_fails = ["DSO_Stacked_*"]
    device.faults.read_fault = fault
    result = app.stack_blocks("IC 434")
    assert (result["blocks_stacked"], result["blocks_failed"]) == (0, 3)
    assert all("could not be read" in (b["error"] or "") for b in result["blocks"])
    assert crowdsky_files(device) == []
    assert len([n for n in stack_outputs(device) if n.endswith(".fit")]) == 3  # nothing lost
    assert any(line.startswith("  Failed: ") for line in progress.lines)

    device.faults.read_fails = None
    files = app.stack_blocks("IC 434")["files"]
    assert [f.split("_")[-1] for f in files] == ["HP102265.fit"] * 3


class FaultsWhileStacking(CollectingProgress):
    """Turns on read faults of the raw sub-frames once stacking has begun (after planning)."""

    def __init__(self, device: FakeSeestar) -> None:
        super().__init__()
        self.device = device

    def stack_progress(self, status: BatchStackStatus) -> None:
        super().stack_progress(status)
        self.device.faults.read_fails = in_folder("IC 434_sub")  # type: ignore[assignment]


def test_an_unreadable_sub_header_is_not_named_hp000000(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun
) -> None:
    """The stack has no RA/DEC (read fine); its first sub's header fails: no pixel is known."""
    spec_night(add_run)
    device.faults.missing_radec = True
    progress = FaultsWhileStacking(device)
    app = Crowdsky(device, clock, progress, host_zone=UTC)
    result = app.stack_blocks("IC 434")
    assert result["blocks_stacked"] == 0
    assert not [f for f in crowdsky_files(device) if "HP000000" in f]
    assert all("IC 434_sub" in (b["error"] or "") for b in result["blocks"])
    assert len([n for n in stack_outputs(device) if n.endswith(".fit")]) == 3


# --- reads in parallel ---------------------------------------------------------------------------


class ParallelReads(FakeSeestar):
    """A device that takes several header reads at once; records each read and its thread."""

    concurrent_header_reads = 4

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reads: list[tuple[str, str]] = []

    def read_header(self, path: str) -> dict[str, object]:
        self.reads.append((path, threading.current_thread().name))
        return super().read_header(path)


def night_on(device: FakeSeestar, add_run: AddRun) -> FakeSeestar:
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    add_run(datetime(2026, 2, 27, 22, 0, 5, tzinfo=UTC), 40, target="M 42", radec=M42, on=device)
    return device


def test_parallel_header_reads_plan_the_same_blocks(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    parallel = night_on(ParallelReads(clock=clock, zone="Europe/Vienna"), add_run)
    one_by_one = night_on(FakeSeestar(clock=clock, zone="Europe/Vienna"), add_run)
    planned = [
        Crowdsky(device, clock, progress, host_zone=NEW_YORK).find_unstacked_blocks("IC 434")
        for device in (parallel, one_by_one)
    ]
    assert planned[0] == planned[1]
    assert [b["chunk_key"] for b in planned[0]] == SPEC_KEYS
    raw_reads = [thread for path, thread in parallel.reads if "_sub/" in path]
    assert len(raw_reads) > 1
    assert all(thread.startswith("crowdsky-headers") for thread in raw_reads)


def test_parallel_reads_fail_the_target_at_the_first_unreadable_header(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    """The same failure as one read after another: the first in order, after its retries."""
    parallel = night_on(
        ParallelReads(clock=clock, zone="Europe/Vienna", report_zone=False), add_run
    )
    one_by_one = night_on(
        FakeSeestar(clock=clock, zone="Europe/Vienna", report_zone=False), add_run
    )
    failed = []
    for device in (parallel, one_by_one):
        device.faults.read_fails = in_folder("IC 434_sub")  # type: ignore[assignment]
        app = Crowdsky(device, clock, progress, host_zone=NEW_YORK)
        with pytest.raises(HeaderReadError, match="could not be read") as caught:
            app.find_unstacked_blocks("IC 434")
        assert caught.value.attempts == 3
        failed.append(caught.value.path)
    assert failed[0] == failed[1]
    assert Counter(path for path, _ in parallel.reads)[failed[0]] == 3
