"""The specification's workflow over the network: Crowdsky on NetworkSeestar on the simulator.

The simulated device holds the spec's night (IC 434, 33 + 69 + 56 frames in three 15-minute
blocks) and one block of M 42; it authenticates every connection with a key pair made here, and
stacks instantly (``seconds_per_frame=0``), so the test exercises every channel (JSON-RPC,
HTTP headers, renames through the share) with real sockets in a second or two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.journal import JOURNAL_NAME, JsonUploadJournal
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.collab.stack_meta import LocalFitsFiles
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.faults import ReadFault
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.jsonrpc import ABSENT, JsonRpcConnection
from crowdsky.adapters.seestar.network import NetworkSeestar, connect_seestar
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.options import FIRMWARE_PROFILES
from crowdsky.adapters.simulator.server import device_firmware
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import StackOptions
from crowdsky.app.upload import upload_all_stacks
from crowdsky.errors import HeaderReadError, SeestarAuthError

IC434 = (85.25, -2.46)
M42 = (83.82, -5.39)
EXPECTED = [
    "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
    "CrowdSky_69_IC 434_10.0s_LP_20260227.82_HP102265.fit",
    "CrowdSky_56_IC 434_10.0s_LP_20260227.83_HP102265.fit",
]


def lay_run(
    device: FakeSeestar, target: str, start: datetime, count: int, cadence: float, radec: tuple
) -> None:
    for i in range(count):
        add_sub(device, target, 10.0, "LP", start + i * timedelta(seconds=cadence), *radec)


def spec_night(device: FakeSeestar) -> None:
    """The spec's example: UTC blocks 20:15, 20:30 and 20:45 of 2026-02-27 (Vienna, UTC+1)."""
    lay_run(device, "IC 434", datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC), 33, 27, IC434)
    lay_run(device, "IC 434", datetime(2026, 2, 27, 20, 30, 2, tzinfo=UTC), 69, 12.8, IC434)
    lay_run(device, "IC 434", datetime(2026, 2, 27, 20, 45, 2, tzinfo=UTC), 56, 15.5, IC434)
    lay_run(device, "M 42", datetime(2026, 2, 27, 21, 0, 5, tzinfo=UTC), 30, 12, M42)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return generate_test_keypair()


@pytest.fixture
def key_file(tmp_path: Path, keypair: tuple[bytes, bytes]) -> Path:
    path = tmp_path / "seestar_key.pem"
    path.write_bytes(keypair[0])
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "emmc"


@pytest.fixture
def sim(root: Path, keypair: tuple[bytes, bytes]) -> Iterator[SimulatorServer]:
    device = FakeSeestar(clock=SystemClock(), zone="Europe/Vienna", storage=DirectoryStorage(root))
    spec_night(device)
    # Split writes cost ~40 ms per reply on loopback (the simulator's socket keeps Nagle on,
    # the client's delayed ACK waits); the contract suite keeps them on, here they are off so
    # that 150 pages and five batch stacks take a second, not ten.
    options = SimulatorOptions(
        auth_public_key=keypair[1], pistatus_interval=0.5, coalesce_and_split=False
    )
    with SimulatorServer(device, root, options=options) as server:
        yield server


def test_the_spec_workflow_over_the_network(
    sim: SimulatorServer, root: Path, key_file: Path
) -> None:
    raw_before = digest(root / "MyWorks" / "IC 434_sub")
    progress = CollectingProgress()
    with connect_seestar(
        sim.host,
        port=sim.rpc_port,
        http_port=sim.http_port,
        key_path=key_file,
        mounted_share=root,
        timeout=5.0,
    ) as seestar:
        app = Crowdsky(
            seestar, SystemClock(), progress, options=StackOptions(poll_min=0.01, poll_max=0.05)
        )
        targets = {t["target"]: t for t in app.list_targets()}
        assert targets["IC 434"]["raw_files"] == 158
        assert targets["M 42"]["raw_files"] == 30

        blocks = app.find_unstacked_blocks("IC 434")
        assert [b["frame_count"] for b in blocks] == [33, 69, 56]
        assert [b["chunk_key"] for b in blocks] == ["20260227.81", "20260227.82", "20260227.83"]

        result = app.stack_blocks("IC 434")
        assert (result["blocks_stacked"], result["blocks_failed"]) == (3, 0)
        on_disk = sorted(p.name for p in (root / "MyWorks" / "IC 434").glob("CrowdSky_*.fit"))
        assert on_disk == sorted(EXPECTED)
        assert not list((root / "MyWorks" / "IC 434").glob("DSO_Stacked_*"))
        assert "  Renamed -> " + EXPECTED[0] in progress.lines

        everything = app.stack_all()
        assert everything["total_blocks_stacked"] == 1  # M 42; IC 434 is already covered
        assert everything["targets_failed"] == {}

        purged = app.purge_crowdsky_stacks()
        assert purged["files_failed"] == {}
        assert len(purged["files_deleted"]) == 4 * 3  # each .fit with .jpg and _thn.jpg
    assert not list(root.glob("MyWorks/*/CrowdSky_*"))
    assert digest(root / "MyWorks" / "IC 434_sub") == raw_before


def test_without_the_key_the_device_stays_closed(sim: SimulatorServer, tmp_path: Path) -> None:
    with pytest.raises(SeestarAuthError):
        connect_seestar(
            sim.host, port=sim.rpc_port, http_port=sim.http_port, key_path=tmp_path / "none.pem"
        )
    other = tmp_path / "other.pem"
    other.write_bytes(generate_test_keypair()[0])
    with pytest.raises(SeestarAuthError):
        connect_seestar(sim.host, port=sim.rpc_port, http_port=sim.http_port, key_path=other)


def test_a_folder_of_3000_files_lists_through_150_pages(
    sim: SimulatorServer, root: Path, key_file: Path
) -> None:
    big = root / "MyWorks" / "Big_sub"
    big.mkdir()
    for i in range(3000):
        (big / f"Light_Big_10.0s_LP_20260227-{i:06d}.fit").write_bytes(b"x" * 2048)
    with NetworkSeestar(
        sim.host, port=sim.rpc_port, http_port=sim.http_port, key_path=key_file, timeout=5.0
    ) as seestar:
        entries = seestar.list_files("Big_sub")
    assert len(entries) == 3000
    assert {e.size for e in entries} == {2048}
    assert entries[0].name == "Light_Big_10.0s_LP_20260227-000000.fit"


@pytest.mark.parametrize("firmware", ["7.06", "old"])
def test_older_firmware_needs_no_key_and_clears_its_own_way(
    firmware: str, root: Path, tmp_path: Path
) -> None:
    device = FakeSeestar(clock=SystemClock(), storage=DirectoryStorage(root))
    lay_run(device, "M 42", datetime(2026, 2, 27, 21, 0, 5, tzinfo=UTC), 3, 12, M42)
    paths = [f"MyWorks/M 42_sub/{e.name}" for e in device.list_files("M 42_sub")]
    options = SimulatorOptions(firmware=firmware, coalesce_and_split=False)
    with (
        SimulatorServer(device, root, options=options) as sim,
        connect_seestar(
            sim.host, port=sim.rpc_port, http_port=sim.http_port, key_path=tmp_path / "none.pem"
        ) as seestar,
    ):
        seestar.clear_batch_stack()
        seestar.configure_batch_stack("M 42_sub", [p for p in paths if p.endswith(".fit")])
        seestar.start_batch_stack()
        status = seestar.batch_stack_status()
        assert status is not None
        assert status.state == "complete"
        seestar.clear_batch_stack()
        seestar.clear_batch_stack()
        assert seestar.batch_stack_status() is None


@pytest.mark.parametrize("fault", list(ReadFault))
def test_a_header_the_file_server_fails_to_send_is_no_missing_date_obs(
    fault: ReadFault, root: Path, tmp_path: Path
) -> None:
    """HTTP 500 or a body cut short: the target is reported failed, not planned in the host zone.

    The device reports no zone, so a header read taken for "no DATE-OBS" would leave only the
    computer's zone (New York here) and shift every chunk key of the night.
    """
    device = FakeSeestar(
        clock=SystemClock(), zone="Europe/Vienna", report_zone=False, storage=DirectoryStorage(root)
    )
    spec_night(device)
    device.faults.read_fails = lambda path: path.startswith("MyWorks/IC 434_sub/")
    device.faults.read_fault = fault
    options = SimulatorOptions(coalesce_and_split=False, pistatus_interval=None)
    with (
        SimulatorServer(device, root, options=options) as sim,
        connect_seestar(
            sim.host, port=sim.rpc_port, http_port=sim.http_port, mounted_share=root, timeout=5.0
        ) as seestar,
    ):
        app = Crowdsky(
            seestar,
            SystemClock(),
            CollectingProgress(),
            host_zone=ZoneInfo("America/New_York"),
            options=StackOptions(poll_min=0.01, poll_max=0.05),
        )
        with pytest.raises(HeaderReadError, match="could not be read"):
            app.find_unstacked_blocks("IC 434")
        result = app.stack_all()
        assert list(result["targets_failed"]) == ["IC 434"]
        assert [f.split("_")[5] for f in result["results"]["M 42"]["files"]] == ["20260227.84"]

        device.faults.read_fail_times = 2  # now only a passing glitch per file: retried
        keys = [b["chunk_key"] for b in app.find_unstacked_blocks("IC 434")]
        assert keys == ["20260227.81", "20260227.82", "20260227.83"]


# --- the workflow on every firmware profile ------------------------------------------------------

SMALL_NIGHT = {
    "IC 434": (datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC), IC434),
    "M 42": (datetime(2026, 2, 27, 21, 0, 5, tzinfo=UTC), M42),
}
SMALL_EXPECTED = {
    "IC 434": "CrowdSky_25_IC 434_10.0s_LP_20260227.81_HP102265.fit",
    "M 42": "CrowdSky_25_M 42_10.0s_LP_20260227.84_HP107383.fit",
}


@pytest.mark.parametrize("firmware", FIRMWARE_PROFILES)
def test_list_stack_and_upload_on_every_firmware_profile(
    firmware: str, root: Path, tmp_path: Path, key_file: Path, keypair: tuple[bytes, bytes]
) -> None:
    """``list_targets`` -> ``stack_all`` -> ``upload_all_stacks`` through ``NetworkSeestar``.

    The device runs ``firmware`` with realistic traffic (events of many kinds between requests
    and replies, split and joined writes); a profile added to ``FIRMWARE_PROFILES`` is tested
    here without further ado. One 25-frame block per target keeps it small.
    """
    device = FakeSeestar(
        clock=SystemClock(),
        zone="Europe/Vienna",
        storage=DirectoryStorage(root),
        firmware=device_firmware(firmware),
    )
    for target, (start, radec) in SMALL_NIGHT.items():
        lay_run(device, target, start, 25, 14, radec)
    options = SimulatorOptions(
        auth_public_key=keypair[1],
        firmware=firmware,
        pistatus_interval=0.2,
        events_before_reply=2,
    )
    progress = CollectingProgress()
    with (
        SimulatorServer(device, root, options=options) as sim,
        LoopbackCrowdskyServer(tmp_path / "server-data", users={"me": "pw"}) as collab,
        HttpCollabServer(collab.url, username="me", password="pw") as server,
        connect_seestar(
            sim.host,
            port=sim.rpc_port,
            http_port=sim.http_port,
            key_path=key_file,
            mounted_share=root,
            timeout=5.0,
        ) as seestar,
    ):
        app = Crowdsky(
            seestar, SystemClock(), progress, options=StackOptions(poll_min=0.01, poll_max=0.05)
        )
        targets = {t["target"]: t["raw_files"] for t in app.list_targets()}
        assert targets == {"IC 434": 25, "M 42": 25}
        stacked = app.stack_all()
        assert stacked["total_blocks_stacked"] == 2, progress.lines
        assert stacked["targets_failed"] == {}
        for target, name in SMALL_EXPECTED.items():
            assert [p.name for p in (root / "MyWorks" / target).glob("*.fit")] == [name]
        summary = upload_all_stacks(
            server,
            journal=JsonUploadJournal(tmp_path / "dl" / JOURNAL_NAME),
            progress=progress,
            clock=SystemClock(),
            local_fits=LocalFitsFiles(),
            seestar=seestar,
            dest=tmp_path / "dl",
        )
        assert sorted(summary["uploaded"]) == sorted(SMALL_EXPECTED.values()), summary
        keys = sorted(record.chunk_key for record in server.list_stacks())
    assert keys == ["20260227.81_HP102265", "20260227.84_HP107383"]  # as the names say


# --- requests per block (issue 12), on a device that takes real time per frame ----------------

BATCH_METHODS = frozenset(
    {
        "clear_batch_stack",
        "set_batch_stack_setting",
        "start_batch_stack",
        "iscope_get_app_state",
        "stop_batch_stack",
    }
)


class CountingConnection(JsonRpcConnection):
    """A JSON-RPC connection that records the method of every request it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.methods: list[str] = []

    def call(self, method: str, params: object = ABSENT, **kwargs: Any) -> Any:
        self.methods.append(method)
        return super().call(method, params, **kwargs)


@pytest.fixture(params=[False, True], ids=["polled", "pushed"])
def timed_sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimulatorServer]:
    root = tmp_path / "emmc"
    device = FakeSeestar(
        clock=SystemClock(),
        zone="Europe/Vienna",
        storage=DirectoryStorage(root),
        seconds_per_frame=0.005,
    )
    spec_night(device)
    options = SimulatorOptions(
        push_batch_events=request.param, coalesce_and_split=False, pistatus_interval=0.05
    )
    with SimulatorServer(device, root, options=options) as server:
        yield server


def test_at_most_ten_requests_per_block(timed_sim: SimulatorServer) -> None:
    """Issue 12: with or without pushed events, a block costs at most ten JSON-RPC requests."""
    sim = timed_sim
    rpc = CountingConnection(sim.host, sim.rpc_port, timeout=10.0)
    with (
        rpc,
        NetworkSeestar(
            sim.host, http_port=sim.http_port, mounted_share=sim.root, connection=rpc, timeout=10.0
        ) as seestar,
    ):
        result = Crowdsky(seestar, SystemClock(), CollectingProgress()).stack_blocks("IC 434")
    assert result["blocks_stacked"] == 3
    batch = [method for method in rpc.methods if method in BATCH_METHODS]
    assert batch.count("start_batch_stack") == 3
    assert batch.count("clear_batch_stack") == 3 + 1  # before each block, after the last
    assert len(batch) <= 10 * 3
