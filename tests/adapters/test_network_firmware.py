"""NetworkSeestar on every firmware profile: probing, the verify marker, batch-stack path forms.

Against the simulator (which answers as recorded traffic shows the devices do) and, to pin the
exact wire forms, against a scripted Seestar of firmware 6.70 that ignores unmarked requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.jsonrpc import JsonRpcConnection, Request
from crowdsky.adapters.jsonrpc.marker import carries_marker
from crowdsky.adapters.seestar.file_ops import MountedShareFileOps
from crowdsky.adapters.seestar.network import NetworkSeestar
from crowdsky.adapters.simulator import FIRMWARE_PROFILES, SimulatorOptions, SimulatorServer
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.server import device_firmware
from crowdsky.app.ports import BatchStackState
from crowdsky.domain.firmware import Firmware, PathForm
from crowdsky.errors import SeestarError

try:  # tests/ laid out as packages
    from .jsonrpc.scripted_server import ScriptedServer, ServerConn
except ImportError:  # rootdir-relative imports
    from jsonrpc.scripted_server import ScriptedServer, ServerConn  # type: ignore[no-redef]

M42 = (83.82, -5.39)
START = datetime(2026, 2, 27, 21, 0, 5, tzinfo=UTC)
WINDOW = {"6.70", "7.06"}
VERSION = {
    "7.75": 2775, "7.32": 2732, "7.18": 2718, "7.06": 2706, "6.70": 2670, "2.x": 2225, "old": 2427,
}  # fmt: skip
#: Profiles that are given the key pair (mandatory on 7.32+, optional on 7.18).
KEYED = {"7.75", "7.32", "7.18"}
PROBE = 1.0


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return generate_test_keypair()


@pytest.fixture
def key_file(tmp_path: Path, keypair: tuple[bytes, bytes]) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(keypair[0])
    return path


def lay_m42(root: Path, firmware: str, count: int = 3) -> FakeSeestar:
    device = FakeSeestar(clock=SystemClock(), storage=DirectoryStorage(root), firmware=firmware)
    for i in range(count):
        add_sub(device, "M 42", 10.0, "LP", START + i * timedelta(seconds=12), *M42)
    return device


@pytest.fixture
def serve(tmp_path: Path, keypair: tuple[bytes, bytes]) -> Iterator[Callable[..., SimulatorServer]]:
    servers: list[SimulatorServer] = []

    def start(profile: str, device_fw: str | None = None) -> SimulatorServer:
        root = tmp_path / f"emmc{len(servers)}"
        device = lay_m42(root, device_fw or device_firmware(profile))
        options = SimulatorOptions(
            firmware=profile,
            auth_public_key=keypair[1] if profile in KEYED else None,
            coalesce_and_split=False,
            pistatus_interval=0.3,
        )
        server = SimulatorServer(device, root, options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def network(sim: SimulatorServer, key: Path) -> NetworkSeestar:
    return NetworkSeestar(
        sim.host,
        port=sim.rpc_port,
        http_port=sim.http_port,
        key_path=key,
        mounted_share=sim.root,
        timeout=5.0,
        probe_timeout=PROBE,
    )


@pytest.mark.parametrize("profile", FIRMWARE_PROFILES)
def test_probing_learns_the_firmware_of_every_profile(
    profile: str, serve: Callable[..., SimulatorServer], key_file: Path
) -> None:
    with network(serve(profile), key_file) as seestar:
        firmware = seestar.firmware_info()
        assert firmware is not None
        assert (firmware.ver_int, firmware.model) == (VERSION[profile], "Seestar S50")
        assert firmware.marker is (profile in WINDOW)
        assert [f.name for f in seestar.list_folders()] == ["M 42_sub"]
        assert len(seestar.list_files("M 42_sub")) == 9
        assert seestar.path_form is (PathForm.FULL if profile == "7.75" else PathForm.BARE)


@pytest.mark.parametrize("profile", sorted(WINDOW))
def test_without_the_marker_the_window_never_answers_but_the_client_no_longer_waits(
    profile: str, serve: Callable[..., SimulatorServer], key_file: Path
) -> None:
    sim = serve(profile)
    # The client of before: every call times out ("busy" or "key required").
    with (
        JsonRpcConnection(sim.host, sim.rpc_port, timeout=0.5, heartbeat_interval=0) as plain,
        pytest.raises(SeestarError, match="did not answer 'get_albums'"),
    ):
        plain.call("get_albums")
    with JsonRpcConnection(
        sim.host, sim.rpc_port, timeout=5.0, probe_firmware=True, probe_timeout=PROBE
    ) as probing:
        assert probing.call("get_albums")["path"] == "MyWorks"
        assert probing.firmware == Firmware(VERSION[profile], profile, "Seestar S50", True)


@pytest.mark.parametrize("profile", FIRMWARE_PROFILES)
def test_a_batch_stack_completes_on_every_profile(
    profile: str, serve: Callable[..., SimulatorServer], key_file: Path
) -> None:
    sim = serve(profile)
    paths = [f"MyWorks/M 42_sub/{e.name}" for e in sim.device.list_files("M 42_sub")]
    with network(sim, key_file) as seestar:
        seestar.clear_batch_stack()
        seestar.configure_batch_stack("M 42_sub", [p for p in paths if p.endswith(".fit")])
        names = [f["name"] for f in sim.device.batch_stack_setting()["files"]]
        assert len(names) == 3  # the device resolved every frame in its own form
        seestar.start_batch_stack()
        status = seestar.batch_stack_status()
        assert status is not None
        assert (status.state, status.stacked_img) == (BatchStackState.COMPLETE, 3)


@pytest.mark.parametrize(
    ("profile", "device_fw", "learnt"),
    [("7.18", "7.75", PathForm.FULL), ("7.75", "7.32", PathForm.BARE)],
)
def test_no_image_retries_once_with_the_other_form_and_keeps_it(
    profile: str,
    device_fw: str,
    learnt: PathForm,
    serve: Callable[..., SimulatorServer],
    key_file: Path,
) -> None:
    # A device that resolves the other form than its version suggests: 267 "no image" first.
    sim = serve(profile, device_fw)
    fits = [
        f"MyWorks/M 42_sub/{e.name}"
        for e in sim.device.list_files("M 42_sub")
        if e.name.endswith(".fit")
    ]
    with network(sim, key_file) as seestar:
        assert seestar.firmware_info() is not None
        assert seestar.path_form is learnt.other
        seestar.clear_batch_stack()
        seestar.configure_batch_stack("M 42_sub", fits)
        seestar.start_batch_stack()
        status = seestar.batch_stack_status()
        assert status is not None
        assert (status.state, status.stacked_img) == (BatchStackState.COMPLETE, 3)
        assert seestar.path_form is learnt
        seestar.clear_batch_stack()
        seestar.configure_batch_stack("M 42_sub", fits)  # the learnt form at once
        assert len(sim.device.batch_stack_setting()["files"]) == 3


def test_when_neither_form_finds_an_image_the_failure_stands(
    serve: Callable[..., SimulatorServer], key_file: Path
) -> None:
    sim = serve("7.75")
    with network(sim, key_file) as seestar:
        seestar.clear_batch_stack()
        seestar.configure_batch_stack("M 42_sub", ["MyWorks/M 42_sub/Light_gone.fit"])
        seestar.start_batch_stack()
        status = seestar.batch_stack_status()
        assert status is not None
        assert (status.state, status.code) == (BatchStackState.FAIL, 267)
        assert seestar.path_form is PathForm.FULL  # back to the firmware's own rule


# --- the exact wire forms, against a scripted firmware 6.70 -----------------------------------

DEVICE_STATE = {"device": {"firmware_ver_int": 2670, "firmware_ver_string": "6.70",
                           "product_model": "Seestar S50", "sn": "5eed0042"}}  # fmt: skip


def window_device(conn: ServerConn, request: Request) -> None:
    """Firmware 6.70: silent without the marker; answers what crowdsky asks."""
    if not carries_marker(request.params):
        return
    answers: dict[str, Any] = {
        "get_device_state": DEVICE_STATE,
        "get_albums": {"path": "MyWorks", "list": []},
        "get_img_file_page_number": 1,
        "get_img_file_page_name": [],
        "iscope_get_app_state": {},
    }
    conn.reply(request, answers.get(request.method, 0))


@pytest.fixture
def window_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer(window_device, old_firmware=True)
    yield server
    server.close()


def sent(server: ScriptedServer, method: str) -> list[Any]:
    with server.changed:
        return [r.params for _, r in server.requests if r.method == method]


def test_each_request_carries_the_marker_its_method_accepts(
    window_server: ScriptedServer, tmp_path: Path
) -> None:
    with NetworkSeestar(
        "127.0.0.1",
        port=window_server.port,
        file_ops=MountedShareFileOps(tmp_path),
        timeout=5.0,
        probe_timeout=PROBE,
    ) as seestar:
        assert seestar.list_folders() == []
        assert seestar.list_files("M 42_sub") == []
        seestar.clear_batch_stack()
        seestar.configure_batch_stack("M 42_sub", ["MyWorks/M 42_sub/Light_a.fit"])
        seestar.start_batch_stack()
        assert seestar.batch_stack_status() is None
    # Probing: unmarked first (unanswered), then marked; no handshake on this firmware.
    assert sent(window_server, "get_device_state") == [None, ["verify"]]
    assert sent(window_server, "verify_client") == []
    assert sent(window_server, "get_albums") == [["verify"]]
    assert sent(window_server, "get_img_file_page_number") == [
        {"dir": "MyWorks/M 42_sub", "skip_avi": True, "verify": True}
    ]
    assert sent(window_server, "get_img_file_page_name") == [{"page": 0, "verify": True}]
    assert sent(window_server, "clear_batch_stack") == [["verify"]]
    assert sent(window_server, "set_batch_stack_setting") == [
        {"path": "MyWorks/M 42_sub", "files": [{"name": "Light_a.fit"}], "verify": True}
    ]
    assert sent(window_server, "start_batch_stack") == [["verify"]]
    assert sent(window_server, "iscope_get_app_state") == [["verify"]]


def test_the_firmware_is_probed_once_per_connection(window_server: ScriptedServer) -> None:
    with JsonRpcConnection(
        "127.0.0.1", window_server.port, heartbeat_interval=0, probe_firmware=True,
        probe_timeout=PROBE,
    ) as rpc:  # fmt: skip
        assert rpc.call("get_albums") == {"path": "MyWorks", "list": []}
        window_server.handler = lambda conn, request: conn.drop()
        with pytest.raises(SeestarError):
            rpc.call("get_albums", retry=False)
        window_server.handler = window_device
        assert rpc.call("get_albums") == {"path": "MyWorks", "list": []}  # a new socket
        assert rpc.reconnects == 1
    assert window_server.connections == 2
    assert sent(window_server, "get_device_state") == [None, ["verify"]]
    assert sent(window_server, "get_albums") == [["verify"]] * 3


def test_the_heartbeat_carries_the_marker_too(window_server: ScriptedServer) -> None:
    with JsonRpcConnection(
        "127.0.0.1",
        window_server.port,
        heartbeat_interval=0.05,
        probe_firmware=True,
        probe_timeout=PROBE,
    ) as rpc:
        rpc.connect()
        assert window_server.wait_for(lambda: window_server.count("test_connection") >= 2)
    assert set(map(repr, sent(window_server, "test_connection"))) == {"['verify']"}


def test_a_slow_answer_to_the_unmarked_probe_still_means_no_marker() -> None:
    """The unmarked ``get_device_state`` is answered only after the marked one went out."""
    held: list[Request] = []

    def slow_device(conn: ServerConn, request: Request) -> None:
        if request.method != "get_device_state":
            conn.reply(request, {"path": "MyWorks", "list": []})
        elif not carries_marker(request.params):
            held.append(request)  # busy: answered late
        else:
            state = {"device": {"firmware_ver_int": 2427, "product_model": "Seestar S50"}}
            conn.reply(held.pop(), state)  # and the marked copy is never answered

    server = ScriptedServer(slow_device, old_firmware=True)
    try:
        with JsonRpcConnection(
            "127.0.0.1", server.port, heartbeat_interval=0, probe_firmware=True, probe_timeout=0.2
        ) as rpc:
            assert rpc.call("get_albums") == {"path": "MyWorks", "list": []}
            assert rpc.firmware == Firmware(2427, None, "Seestar S50", marker=False)
        assert sent(server, "get_albums") == [None]
    finally:
        server.close()
