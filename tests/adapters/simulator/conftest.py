"""Fixtures for the network simulator tests: small devices on disk, servers, raw clients.

The clients here are deliberately raw (a socket and the codec's :class:`Decoder`), so these
tests check the simulator's wire behaviour, not the network adapter's.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import DEMO_TARGETS, add_sub
from crowdsky.adapters.jsonrpc import Decoder, Event, Problem, Reply
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer
from crowdsky.adapters.simulator.auth import generate_test_keypair

#: Generous safety net for reads; tests never assert on time.
READ_TIMEOUT = 10.0
START = datetime(2026, 2, 27, 20, 0, 0, tzinfo=UTC)


class RawClient:
    """A socket speaking CRLF JSON frames, collecting events while it waits for replies."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=READ_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.decoder = Decoder()
        self.events: list[Event] = []
        self.problems: list[Problem] = []
        self.replies: list[Reply] = []
        self.log: list[Reply | Event] = []
        self._next_id = 100

    def close(self) -> None:
        self.sock.close()

    def send(self, method: str, params: Any = None, *, id: Any = None, **extra: Any) -> Any:
        if id is None:
            self._next_id += 1
            id = self._next_id
        frame: dict[str, Any] = {"id": id, "method": method, **extra}
        if params is not None:
            frame["params"] = params
        self.sock.sendall(json.dumps(frame).encode() + b"\r\n")
        return id

    def _pump(self) -> bool:
        """Read once; False at end of stream."""
        data = self.sock.recv(65536)
        if not data:
            return False
        self.decoder.receive_data(data)
        for message in self.decoder:
            if not isinstance(message, Problem):
                self.log.append(message)
            if isinstance(message, Event):
                self.events.append(message)
            elif isinstance(message, Problem):
                self.problems.append(message)
            else:
                self.replies.append(message)
        return True

    def reply_to(self, id: Any) -> Reply:
        while True:
            for reply in self.replies:
                if reply.id == id:
                    self.replies.remove(reply)
                    return reply
            if not self._pump():
                raise ConnectionError("closed before the reply")

    def call(self, method: str, params: Any = None, **extra: Any) -> Reply:
        return self.reply_to(self.send(method, params, **extra))

    def wait_event(self, name: str, predicate: Callable[[Event], bool] = lambda e: True) -> Event:
        while True:
            for event in self.events:
                if event.name == name and predicate(event):
                    return event
            if not self._pump():
                raise ConnectionError("closed before the event")

    def read_until_closed(self) -> None:
        while self._pump():
            pass


def small_device(root: Path, *, clock: FakeClock | None = None, **kwargs: Any) -> FakeSeestar:
    """A device on disk with 15 IC 434 subs (45 files) and nothing else."""
    device = FakeSeestar(
        clock=clock or FakeClock(START + timedelta(hours=3)),
        storage=DirectoryStorage(root),
        **kwargs,
    )
    for n in range(15):
        add_sub(device, DEMO_TARGETS[0], 10.0, "LP", START + timedelta(seconds=14 * n))
    return device


@pytest.fixture(scope="session")
def keypair() -> tuple[bytes, bytes]:
    """A stand-in for the app's key, made at run time (never shipped)."""
    return generate_test_keypair()


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., SimulatorServer]]:
    """Start simulators over a small device (or a given one); all closed at teardown."""
    servers: list[SimulatorServer] = []

    def make(
        device: FakeSeestar | None = None, root: Path | None = None, **options: Any
    ) -> SimulatorServer:
        where = root if root is not None else tmp_path / f"root{len(servers)}"
        options.setdefault("pistatus_interval", None)
        sim = SimulatorServer(
            device if device is not None else small_device(where),
            where,
            SimulatorOptions(**options),
        )
        servers.append(sim)
        return sim.start()

    yield make
    for sim in servers:
        sim.close()


@pytest.fixture
def connect() -> Iterator[Callable[[SimulatorServer], RawClient]]:
    """Open raw clients; all closed at teardown."""
    clients: list[RawClient] = []

    def open_client(sim: SimulatorServer) -> RawClient:
        client = RawClient(sim.rpc_port, sim.host)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()
