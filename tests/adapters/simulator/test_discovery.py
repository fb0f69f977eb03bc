"""UDP discovery: the simulator answers ``scan_iscope`` on a loopback UDP port (never broadcast)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from crowdsky.adapters.jsonrpc import Decoder, Reply
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer

from .conftest import READ_TIMEOUT, RawClient, small_device


def _probe(port: int, payload: bytes, *, wait: float = READ_TIMEOUT) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        sock.sendto(payload, ("127.0.0.1", port))  # one host, never a broadcast address
        try:
            return sock.recvfrom(65536)[0]
        except TimeoutError:
            return None


def _reply(datagram: bytes | None) -> Reply:
    assert datagram is not None
    decoder = Decoder()
    decoder.receive_data(datagram if datagram.endswith(b"\r\n") else datagram + b"\r\n")
    (message,) = list(decoder)
    assert isinstance(message, Reply)
    return message


@pytest.fixture
def sim(tmp_path: Path) -> SimulatorServer:
    device = small_device(tmp_path)
    server = SimulatorServer(
        device, tmp_path, SimulatorOptions(pistatus_interval=None), udp_port=0
    ).start()
    yield server
    server.close()


def test_scan_iscope_is_answered_with_the_device_and_its_clients(sim: SimulatorServer) -> None:
    assert sim.udp_port
    first = _reply(_probe(sim.udp_port, b'{"id":1,"method":"scan_iscope","params":""}'))
    assert (first.id, first.method, first.code) == (1, "scan_iscope", 0)
    assert first.raw["jsonrpc"] == "2.0"
    assert isinstance(first.raw["Timestamp"], str)
    assert first.result == {
        "product_model": "Seestar S50",
        "sn": "5eed0042",
        "ip": "127.0.0.1",
        "tcp_client_num": 0,
    }
    client = RawClient(sim.rpc_port)
    try:
        assert client.call("test_connection").ok
        # seestar_alp's form: another id, extra keys, CRLF
        probe = json.dumps({"id": 201, "method": "scan_iscope", "name": "iphone", "ip": "x"})
        second = _reply(_probe(sim.udp_port, probe.encode() + b"\r\n"))
        assert second.id == 201
        assert second.result["tcp_client_num"] == 1
    finally:
        client.close()


@pytest.mark.parametrize(
    "payload", [b"", b"hello", b'{"id":1,"method":"get_albums"}', b"\xff\xfe", b"[1,2]"]
)
def test_other_datagrams_get_no_answer(sim: SimulatorServer, payload: bytes) -> None:
    assert sim.udp_port
    assert _probe(sim.udp_port, payload, wait=0.3) is None
    assert _reply(_probe(sim.udp_port, b'{"id":7,"method":"scan_iscope"}')).id == 7


def test_no_responder_unless_asked(tmp_path: Path) -> None:
    with SimulatorServer(small_device(tmp_path), tmp_path) as plain:
        assert plain.udp_port is None
