"""``run_night``: interrupted anywhere and run again, nothing is stacked or uploaded twice.

The telescopes are in-memory demo Seestars (the same two devices across runs, as a real
telescope keeps its files), the server the loopback one over HTTP. The interruption is a
``KeyboardInterrupt`` raised by the progress display at its n-th report line, whichever
thread (stacking or uploading) reports it.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crowdsky import bootstrap
from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.night import demo_seestar
from crowdsky.adapters.device_model.storage import MemoryStorage
from crowdsky.app.night import Telescope, run_night
from crowdsky.app.ports import BatchStackState, Progress
from crowdsky.app.progress import SilentProgress

SECRET = "resume-Pa55"
AFTER_THE_NIGHT = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)


class InterruptAt:
    """Collects every telescope's lines as ``telescope: line``; raises ``KeyboardInterrupt`` at
    the ``at``-th line of all (1-based), once, in the thread that reports it."""

    def __init__(self, at: int | None) -> None:
        self.at = at
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def add(self, telescope: str, text: str) -> None:
        with self._lock:
            self.lines.append(f"{telescope}: {text}")
            if self.at is not None and len(self.lines) == self.at:
                raise KeyboardInterrupt

    def of(self, telescope: str) -> Progress:
        return _Of(self, telescope)


class _Of(SilentProgress):
    def __init__(self, into: InterruptAt, telescope: str) -> None:
        self._into, self._telescope = into, telescope

    def line(self, text: str) -> None:
        self._into.add(self._telescope, text)


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[LoopbackCrowdskyServer]:
    with LoopbackCrowdskyServer(tmp_path / "server", users={"ada": SECRET}) as running:
        yield running


@pytest.fixture
def server(loopback: LoopbackCrowdskyServer) -> Iterator[HttpCollabServer]:
    with HttpCollabServer(loopback.url, username="ada", password=SECRET) as client:
        yield client


def uploads_received(loopback: LoopbackCrowdskyServer) -> int:
    return sum(1 for request in loopback.requests if request == ("POST", "/api/upload_stack.php"))


def small_frames() -> MemoryStorage:
    """Tiny frames: a night's 96 full-size stacks, downloaded and uploaded, fill 2.3 GB per test."""
    return MemoryStorage(shape=(16, 12))


def devices(clock: FakeClock) -> dict[str, FakeSeestar]:
    return {
        "north": demo_seestar(
            clock=clock, zone="Europe/Vienna", telescope="S50_00000001", storage=small_frames()
        ),
        "south": demo_seestar(
            clock=clock,
            zone="America/Santiago",
            seed=3,
            telescope="S50_00000002",
            storage=small_frames(),
        ),
    }


def night(
    scopes: dict[str, FakeSeestar],
    server: HttpCollabServer,
    dest: Path,
    clock: FakeClock,
    progress: InterruptAt,
) -> dict[str, object]:
    telescopes = [Telescope(name, lambda d=device: d) for name, device in scopes.items()]
    ports = bootstrap.night_ports(clock=clock, progress_for=progress.of)
    return bootstrap.run_night(telescopes, server, dest=dest, ports=ports)


def renamed(lines: list[str]) -> list[str]:
    """``telescope: name`` of every stack renamed."""
    return [line.replace("  Renamed -> ", "") for line in lines if "  Renamed -> " in line]


def uploaded(lines: list[str]) -> list[str]:
    """``telescope: name`` of every stack uploaded."""
    return [
        line.split(" -> ")[0].replace("  upload ", "") for line in lines if ":   upload " in line
    ]


def test_a_full_night_then_nothing_left(server: HttpCollabServer, tmp_path: Path) -> None:
    clock = FakeClock(AFTER_THE_NIGHT)
    scopes = devices(clock)
    first = InterruptAt(None)
    result = night(scopes, server, tmp_path / "stacks", clock, first)
    assert result["ok"] is True
    per_scope = {r["telescope"]: r for r in result["telescopes"]}  # type: ignore[attr-defined]
    assert set(per_scope) == {"north", "south"}
    assert all(r["blocks_stacked"] == 47 for r in per_scope.values())
    assert all(r["files_uploaded"] == 48 for r in per_scope.values())
    assert len(server.list_stacks()) == 96
    # Downloads are kept per telescope, each with its own journal.
    assert (tmp_path / "stacks" / "north" / ".crowdsky-uploads.json").is_file()
    assert len(list((tmp_path / "stacks" / "south").rglob("CrowdSky_*.fit"))) == 48

    again = InterruptAt(None)
    result = night(scopes, server, tmp_path / "stacks", clock, again)
    assert result["ok"] is True
    assert renamed(again.lines) == []
    assert uploaded(again.lines) == []
    assert len(server.list_stacks()) == 96


@pytest.mark.parametrize("at", sorted(random.Random(11).sample(range(2, 260), 5)))
def test_interrupted_anywhere_then_resumed(
    at: int, server: HttpCollabServer, loopback: LoopbackCrowdskyServer, tmp_path: Path
) -> None:
    clock = FakeClock(AFTER_THE_NIGHT)
    scopes = devices(clock)
    dest = tmp_path / "stacks"
    interrupted = InterruptAt(at)
    with pytest.raises(KeyboardInterrupt):
        night(scopes, server, dest, clock, interrupted)
    for device in scopes.values():  # no batch stack left running
        status = device.batch_stack_status()
        assert status is None or status.state is not BatchStackState.WORKING

    resumed = InterruptAt(None)
    result = night(scopes, server, dest, clock, resumed)
    assert result["ok"] is True
    lines = interrupted.lines + resumed.lines
    assert [n for n, c in Counter(renamed(lines)).items() if c > 1] == []
    assert [n for n, c in Counter(uploaded(lines)).items() if c > 1] == []
    records = server.list_stacks()
    assert len(records) == 96
    assert len({(r.chunk_key, r.telescope_id) for r in records}) == 96
    # The server received each stack once over the two runs: none was sent twice.
    assert uploads_received(loopback) == 96


def files_on(device: FakeSeestar) -> list[tuple[str, str, int]]:
    """Every file the device holds: folder, name and size."""
    storage = device.storage
    return sorted((f, e.name, e.size) for f in storage.folders() for e in storage.files(f))


class ClearsWhenWaited(InterruptAt):
    """Collects lines; the first "waiting" line of ``telescope`` ends its live view."""

    def __init__(self, telescope: str, device: FakeSeestar) -> None:
        super().__init__(None)
        self._telescope, self._device = telescope, device

    def add(self, telescope: str, text: str) -> None:
        super().add(telescope, text)
        if telescope == self._telescope and "waiting up to" in text:
            self._device.faults.imaging = {}


def test_a_busy_telescope_is_left_alone_and_the_other_goes_on(
    server: HttpCollabServer, tmp_path: Path
) -> None:
    clock = FakeClock(AFTER_THE_NIGHT)
    scopes = devices(clock)
    scopes["north"].faults.imaging = {"View": "working"}
    before = files_on(scopes["north"])
    progress = InterruptAt(None)
    result = night(scopes, server, tmp_path / "stacks", clock, progress)
    per_scope = {r["telescope"]: r for r in result["telescopes"]}  # type: ignore[attr-defined]
    north, south = per_scope["north"], per_scope["south"]
    assert result["ok"] is False
    assert (north["ok"], north["busy"], north["error"]) == (False, "View", None)
    assert north["preflight"] == [{"problem": "busy", "detail": "View"}]
    assert north["blocks_stacked"] == north["files_uploaded"] == 0
    # Untouched: no batch stack configured or started, not a file added or renamed.
    assert scopes["north"].batch_stack_status() is None
    assert files_on(scopes["north"]) == before
    assert (south["ok"], south["blocks_stacked"], south["files_uploaded"]) == (True, 47, 48)
    assert {r.telescope_id for r in server.list_stacks()} == {"S50_00000002"}
    said = [line for line in progress.lines if line.startswith("north: ")]
    assert said == ["north: north: busy (View running); skipped so as not to disturb it."]


def test_a_busy_telescope_is_waited_for_until_it_is_idle(
    server: HttpCollabServer, tmp_path: Path
) -> None:
    clock = FakeClock(AFTER_THE_NIGHT)
    scopes = devices(clock)
    scopes["north"].faults.imaging = {"View": "working"}
    progress = ClearsWhenWaited("north", scopes["north"])
    telescopes = [Telescope(name, lambda d=device: d) for name, device in scopes.items()]
    ports = bootstrap.night_ports(clock=clock, progress_for=progress.of)
    result = run_night(telescopes, server, ports, dest=tmp_path / "stacks", wait=600, wait_poll=5)
    assert result["ok"] is True
    per_scope = {r["telescope"]: r for r in result["telescopes"]}
    assert per_scope["north"]["busy"] is None
    assert per_scope["north"]["blocks_stacked"] == 47
    assert len(server.list_stacks()) == 96
    assert "north: The Seestar is busy (View); waiting up to 600 s." in progress.lines


def test_waiting_for_a_busy_telescope_is_bounded(tmp_path: Path) -> None:
    clock = FakeClock(AFTER_THE_NIGHT)
    scopes = {"north": devices(clock)["north"]}
    scopes["north"].faults.imaging = {"Stack": "working"}
    progress = InterruptAt(None)
    telescopes = [Telescope("north", lambda: scopes["north"])]
    ports = bootstrap.night_ports(clock=clock, progress_for=progress.of)
    result = run_night(telescopes, None, ports, dest=tmp_path, wait=60, wait_poll=5)
    (north,) = result["telescopes"]
    assert (north["ok"], north["busy"]) == (False, "Stack")
    assert clock.now() - AFTER_THE_NIGHT == timedelta(seconds=60)
    assert progress.lines[-1] == (
        "north: north: busy (Stack running) after waiting 60 s; skipped so as not to disturb it."
    )
    assert scopes["north"].batch_stack_status() is None


def test_links_not_ready_fail_the_telescope_before_any_block(
    server: HttpCollabServer, tmp_path: Path
) -> None:
    clock = FakeClock(AFTER_THE_NIGHT)
    scopes = devices(clock)
    scopes["north"].faults.unreachable = {"rename"}
    before = files_on(scopes["north"])
    result = night(scopes, server, tmp_path / "stacks", clock, InterruptAt(None))
    per_scope = {r["telescope"]: r for r in result["telescopes"]}  # type: ignore[attr-defined]
    north = per_scope["north"]
    assert north["ok"] is False
    assert north["busy"] is None
    assert north["error"].startswith("not ready (nothing done): rename unavailable: ")
    assert [f["problem"] for f in north["preflight"]] == ["rename unavailable"]
    assert scopes["north"].batch_stack_status() is None
    assert files_on(scopes["north"]) == before  # no stray DSO_Stacked
    assert per_scope["south"]["ok"] is True
