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
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crowdsky import bootstrap
from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.night import demo_seestar
from crowdsky.app.night import Telescope
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


def devices(clock: FakeClock) -> dict[str, FakeSeestar]:
    return {
        "north": demo_seestar(clock=clock, zone="Europe/Vienna", telescope="S50_00000001"),
        "south": demo_seestar(
            clock=clock, zone="America/Santiago", seed=3, telescope="S50_00000002"
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
