"""Pre-flight over the device model: links, a busy telescope, and waiting for it (fake clock)."""

from __future__ import annotations

from datetime import UTC, datetime

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.app.preflight import preflight
from crowdsky.domain.preflight import Link, Problem

from .conftest import AddRun


def _problems(device: FakeSeestar, clock: FakeClock, **options: float) -> list[Problem]:
    found = preflight(device, clock=clock, progress=CollectingProgress(), **options)
    return [f.problem for f in found]


def test_an_idle_device_with_working_links_is_ready(device: FakeSeestar, clock: FakeClock) -> None:
    assert _problems(device, clock) == []


def test_each_broken_link_is_one_finding(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.unreachable = {"files", "rename"}
    assert _problems(device, clock) == [Problem.FILES_UNREACHABLE, Problem.RENAME_UNAVAILABLE]


def test_live_view_is_busy(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.imaging = {"View": "working"}
    found = preflight(device, clock=clock, progress=CollectingProgress())
    assert [(f.problem, f.detail) for f in found] == [(Problem.BUSY, "View")]


def test_the_state_is_not_read_when_not_asked(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.imaging = {"View": "working"}
    found = preflight(device, clock=clock, progress=CollectingProgress(), check_state=False)
    assert found == ()


def _stack_started_elsewhere(device: FakeSeestar, add_run: AddRun) -> None:
    paths = add_run(datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC), 3)
    device.seconds_per_frame = 10.0  # 30 s of device time
    device.configure_batch_stack("IC 434", paths)
    device.start_batch_stack()


def test_a_batch_stack_started_elsewhere_is_waited_for(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun
) -> None:
    _stack_started_elsewhere(device, add_run)
    start = clock.now()
    progress = CollectingProgress()
    assert preflight(device, clock=clock, progress=progress, wait=120, poll=5) == ()
    waited = (clock.now() - start).total_seconds()
    assert 30 <= waited <= 35
    assert "waiting up to 120 s" in progress.lines[0]


def test_waiting_is_bounded(device: FakeSeestar, clock: FakeClock, add_run: AddRun) -> None:
    _stack_started_elsewhere(device, add_run)
    start = clock.now()
    assert _problems(device, clock, wait=12, poll=5) == [Problem.BUSY]
    assert (clock.now() - start).total_seconds() == 12


def test_only_the_links_asked_for_are_probed(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.unreachable = {"rename"}
    found = preflight(
        device,
        links={Link.CONTROL, Link.FILES},
        clock=clock,
        progress=CollectingProgress(),
    )
    assert found == ()
