"""Folder listings over a link that drops while they are paged: complete, or an error.

The device keeps the folder chosen by ``get_img_file_page_number`` per connection (protocol
reference §3.3), so pages asked for on a new socket come back empty. A listing cut short that
way once made blocks stack with part of their frames and count as covered for good.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.jsonrpc import ABSENT, JsonRpcConnection
from crowdsky.adapters.seestar.network import PAGES_IN_FLIGHT, NetworkSeestar
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer
from crowdsky.errors import ListingIncompleteError

START = datetime(2026, 2, 27, 20, 0, 0, tzinfo=UTC)
#: 90 raw sub-frames without companions: five pages of 20, the last one holding 10.
FRAMES = 90
FOLDER = "IC 434_sub"

Rig = Callable[..., tuple[NetworkSeestar, JsonRpcConnection, FakeSeestar]]


def night(root: Path) -> FakeSeestar:
    device = FakeSeestar(
        clock=FakeClock(START + timedelta(hours=3)), storage=DirectoryStorage(root)
    )
    for n in range(FRAMES):
        add_sub(device, "IC 434", 10.0, "LP", START + timedelta(seconds=14 * n), companions=False)
    return device


@pytest.fixture
def sims() -> list[SimulatorServer]:
    """The simulators ``rig`` started, in order (to switch their faults during a test)."""
    return []


@pytest.fixture
def rig(tmp_path: Path, sims: list[SimulatorServer]) -> Iterator[Rig]:
    """A NetworkSeestar on a simulator with the given options; all closed at teardown."""
    opened: list[Callable[[], None]] = []

    def make(**options: Any) -> tuple[NetworkSeestar, JsonRpcConnection, FakeSeestar]:
        root = tmp_path / f"emmc{len(opened)}"
        device = night(root)
        options.setdefault("pistatus_interval", None)
        sim = SimulatorServer(device, root, SimulatorOptions(**options)).start()
        sims.append(sim)
        opened.append(sim.close)
        rpc = JsonRpcConnection(sim.host, sim.rpc_port, timeout=5.0, heartbeat_interval=0)
        opened.append(rpc.close)
        seestar = NetworkSeestar(
            sim.host,
            http_port=sim.http_port,
            connection=rpc,
            mounted_share=root,
            list_through_share=False,  # the JSON-RPC pages are under test
        )
        opened.append(seestar.close)
        return seestar, rpc, device

    yield make
    for close in reversed(opened):
        close()


def names(entries: Any) -> list[str]:
    return [entry.name for entry in entries]


@pytest.mark.parametrize("dropped", [1, 2, 3, 5])
def test_a_link_dropped_while_paging_still_lists_the_whole_folder(rig: Rig, dropped: int) -> None:
    seestar, rpc, device = rig(drop_page_requests={dropped})
    listed = seestar.list_files(FOLDER)
    assert rpc.generation == 2  # the fault really cut the first socket
    assert len(listed) == FRAMES
    assert names(listed) == sorted(names(device.list_files(FOLDER)))


def test_a_link_that_drops_on_every_attempt_raises_rather_than_list_short(rig: Rig) -> None:
    # Every third page request from the second on is dropped: no attempt gets past page 1.
    seestar, rpc, _ = rig(drop_page_requests=set(range(2, 100, 3)))
    with pytest.raises(ListingIncompleteError, match="IC 434_sub"):
        seestar.list_files(FOLDER)
    assert rpc.generation > 2


def test_after_a_failed_listing_the_next_one_is_complete(
    rig: Rig, sims: list[SimulatorServer]
) -> None:
    # Pages go several at a time, so how many page requests an attempt sends before its link
    # drops depends on timing: the faults are switched off once the listing has failed.
    seestar, _, _ = rig(drop_page_requests=set(range(2, 100, 3)))
    with pytest.raises(ListingIncompleteError):
        seestar.list_files(FOLDER)
    sim = sims[-1]
    sim.options = attrs.evolve(sim.options, drop_page_requests=frozenset())
    assert len(seestar.list_files(FOLDER)) == FRAMES


class _InFlightConnection(JsonRpcConnection):
    """Counts the page requests waiting for their reply at once (the most seen)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._count_lock = threading.Lock()
        self.waiting = 0
        self.most_waiting = 0

    def call(self, method: str, params: object = ABSENT, **kwargs: Any) -> Any:
        if method != "get_img_file_page_name":
            return super().call(method, params, **kwargs)
        with self._count_lock:
            self.waiting += 1
            self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            return super().call(method, params, **kwargs)
        finally:
            with self._count_lock:
                self.waiting -= 1


def test_pages_are_asked_for_before_the_previous_ones_came_back(tmp_path: Path) -> None:
    # 0.1 s before each reply: the next pages are sent long before the first one returns.
    device = night(tmp_path)
    options = SimulatorOptions(pistatus_interval=None, latency=(0.1, 0.1))
    with SimulatorServer(device, tmp_path, options) as sim:
        rpc = _InFlightConnection(sim.host, sim.rpc_port, timeout=5.0, heartbeat_interval=0)
        seestar = NetworkSeestar(
            sim.host, connection=rpc, mounted_share=tmp_path, list_through_share=False
        )
        with rpc, seestar:
            listed = seestar.list_files(FOLDER)
    assert names(listed) == sorted(names(device.list_files(FOLDER)))
    assert 2 <= rpc.most_waiting <= PAGES_IN_FLIGHT
