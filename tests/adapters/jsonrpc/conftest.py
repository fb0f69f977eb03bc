"""Fixtures for the JSON-RPC tests: test key pairs, scripted loopback servers, connections."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crowdsky.adapters.jsonrpc import JsonRpcConnection
from crowdsky.adapters.simulator.auth import generate_test_keypair

try:  # tests/ laid out as packages
    from .scripted_server import ScriptedServer
except ImportError:  # rootdir-relative imports
    from scripted_server import ScriptedServer  # type: ignore[no-redef]


@pytest.fixture(scope="session")
def keypair() -> tuple[bytes, bytes]:
    """The stand-in for the Seestar app's key, generated at run time (never shipped)."""
    return generate_test_keypair()


@pytest.fixture(scope="session")
def other_keypair() -> tuple[bytes, bytes]:
    return generate_test_keypair()


@pytest.fixture
def key_file(tmp_path: Path, keypair: tuple[bytes, bytes]) -> Path:
    path = tmp_path / "seestar_key.pem"
    path.write_bytes(keypair[0])
    return path


@pytest.fixture
def make_server() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def make(*args: Any, **kwargs: Any) -> ScriptedServer:
        server = ScriptedServer(*args, **kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def make_conn() -> Iterator[Callable[..., JsonRpcConnection]]:
    """Connections to a scripted server, closed after the test; short timeouts by default."""
    conns: list[JsonRpcConnection] = []

    def make(server: ScriptedServer, **kwargs: Any) -> JsonRpcConnection:
        kwargs.setdefault("timeout", 2.0)
        kwargs.setdefault("connect_timeout", 2.0)
        kwargs.setdefault("heartbeat_interval", 0)
        conn = JsonRpcConnection("127.0.0.1", server.port, **kwargs)
        conns.append(conn)
        return conn

    yield make
    for conn in conns:
        conn.close()
