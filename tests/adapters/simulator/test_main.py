"""``run_simulator``: the demo device served until stopped, with a key written for the client."""

from __future__ import annotations

import io
import json
import re
import socket
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from crowdsky.adapters.jsonrpc import sign_challenge
from crowdsky.adapters.simulator import run_simulator
from crowdsky.adapters.simulator.main import write_private_key
from crowdsky.errors import PlanError

from .conftest import RawClient


class _Lines(io.StringIO):
    """A text sink that lets a test wait for the first line without sleeping blindly."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        count = super().write(text)
        if "\n" in text:
            self.ready.set()
        return count


def test_run_simulator_serves_the_demo_with_a_key(tmp_path: Path) -> None:
    key_path = tmp_path / "sim_key.pem"
    out, stop = _Lines(), threading.Event()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            run_simulator(
                root=tmp_path / "emmc",
                rpc_port=0,
                http_port=0,
                udp_port=0,
                auth_key_out=key_path,
                firmware="7.32",
                out=out,
                stop=stop,
            )
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)
            out.ready.set()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert out.ready.wait(60)
        assert errors == []
        banner = out.getvalue()
        assert "PRIVATE" not in banner
        assert str(key_path) in banner
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        port = int(re.search(r"JSON-RPC 127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        client = RawClient(port)
        try:
            challenge = client.call("get_verify_str").result["str"]
            key = load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, RSAPrivateKey)
            sign = sign_challenge(key, challenge)
            assert client.call("verify_client", {"sign": sign, "data": challenge}).ok
            albums = client.call("get_albums").result["list"][0]["files"]
            assert {a["name"]: a["count"] for a in albums}["IC 434_sub"] == 158
        finally:
            client.close()
        udp = int(re.search(r"discovery UDP 127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(10)
            probe.sendto(b'{"id":1,"method":"scan_iscope","params":""}', ("127.0.0.1", udp))
            assert json.loads(probe.recvfrom(65536)[0])["result"]["product_model"]
    finally:
        stop.set()
        thread.join()


def test_an_existing_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(b"precious")
    with pytest.raises(PlanError, match="will not overwrite"):
        write_private_key(path, b"new")
    assert path.read_bytes() == b"precious"


def test_unknown_profile_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="firmware profile"):
        run_simulator(root=tmp_path, firmware="nine", rpc_port=0, http_port=0)
