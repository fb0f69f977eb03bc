"""``crowdsky discover``: the probe and answers sans-I/O, then against the simulator on loopback.

Probes go to 127.0.0.1 only, never to a broadcast or another address.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crowdsky.adapters.seestar.discovery import (
    DiscoveredSeestar,
    decode_reply,
    encode_probe,
    scan,
)
from crowdsky.cli import main

from .night_helpers import free_port, simulated


def test_the_probe_is_the_official_apps() -> None:
    assert json.loads(encode_probe()) == {"id": 1, "method": "scan_iscope", "params": ""}


@pytest.mark.parametrize(
    "datagram",
    [
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"method": "get_device_state", "result": {"sn": "x"}}',
        b'{"method": "scan_iscope", "result": "S50"}',
        b'{"method": "scan_iscope", "error": "busy"}',
    ],
)
def test_what_is_not_an_answer_is_skipped(datagram: bytes) -> None:
    assert decode_reply(datagram, "127.0.0.1") is None


def test_an_answer_with_odd_fields_keeps_what_it_can() -> None:
    reply = {
        "method": "scan_iscope",
        "result": {"product_model": " ", "sn": 42, "tcp_client_num": True,
                   "firmware_ver_int": 2706},
    }  # fmt: skip
    assert decode_reply(json.dumps(reply).encode(), "10.0.0.5") == DiscoveredSeestar(
        "10.0.0.5", model=None, serial="42", firmware="2706", clients=None
    )


def test_scan_finds_the_simulator_on_loopback(tmp_path: Path) -> None:
    with simulated(tmp_path, zone="Europe/Vienna", serial="cafe0042", seed=0) as sim:
        assert sim.udp_port is not None
        found = scan([("127.0.0.1", sim.udp_port)], timeout=1.0)
    assert found == [DiscoveredSeestar("127.0.0.1", "Seestar S50", "cafe0042", None, 0)]


def test_scan_of_a_silent_port_finds_nothing() -> None:
    assert scan([("127.0.0.1", free_port())], timeout=0.3) == []


def test_discover_lists_address_model_serial_and_firmware(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with simulated(tmp_path, zone="Europe/Vienna", serial="cafe0042", seed=0) as sim:
        argv = ["discover", "--to", f"127.0.0.1:{sim.udp_port}", "--port", str(sim.rpc_port)]
        assert main([*argv, "--timeout", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ADDRESS", "MODEL", "SERIAL", "FIRMWARE"]
    assert lines[1].split() == ["127.0.0.1", "Seestar", "S50", "cafe0042", "7.75"]


def test_discover_says_when_nobody_answered(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["discover", "--to", f"127.0.0.1:{free_port()}", "--timeout", "0.3"]
    assert main(argv) == 1
    assert "No Seestar answered" in capsys.readouterr().out
