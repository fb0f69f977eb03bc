"""Folder listings through the file share: the paged listing's result, in a few round trips.

:class:`NetworkSeestar` lists a folder through its file ops (a mounted share, or SMB) when they
can list, and falls back to the JSON-RPC pages when they cannot. These cases check that both
ways give the same files for the same folder (companions, odd names, folders and videos left
out, empty and missing folders), that a failed share listing is never read as empty, and that
planning a night gives the same blocks either way.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.jsonrpc import ABSENT, JsonRpcConnection
from crowdsky.adapters.seestar.file_ops import MountedShareFileOps, SmbFileOps
from crowdsky.adapters.seestar.network import NetworkSeestar
from crowdsky.adapters.simulator import SimulatorOptions, SimulatorServer
from crowdsky.app.ports import FileEntry
from crowdsky.app.service import Crowdsky
from crowdsky.errors import SeestarConnectionError, StorageError

try:  # tests/ laid out as packages
    from .samba import SambaServer
except ImportError:  # rootdir-relative imports
    from samba import SambaServer  # type: ignore[no-redef]

START = datetime(2026, 2, 27, 18, 0, 5, tzinfo=UTC)
MORNING = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)
SUBS = "IC 434_sub"
ODD = "\u03b5 Cnc (test) #2"
FOLDERS = (SUBS, "IC 434", f"{ODD}_sub", "Empty", "No Such Folder", "No Such Folder_sub")


class CountingConnection(JsonRpcConnection):
    """A JSON-RPC connection that remembers the methods it called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.methods: list[str] = []

    def call(self, method: str, params: object = ABSENT, **kwargs: Any) -> Any:
        self.methods.append(method)
        return super().call(method, params, **kwargs)


def _night(root: Path) -> FakeSeestar:
    """Three blocks of subs with their JPEG companions, plus the odd files a card may hold."""
    device = FakeSeestar(
        clock=FakeClock(MORNING),
        zone="Europe/Vienna",
        storage=DirectoryStorage(root),
        seconds_per_frame=2.0,
    )
    for i in range(70):  # 210 files: 11 pages of 20
        add_sub(device, "IC 434", 10.0, "LP", START + i * timedelta(seconds=27), 85.25, -2.46)
    works = root / "MyWorks"
    (works / "IC 434").mkdir(exist_ok=True)
    (works / "IC 434" / "Stacked_30_IC 434_10.0s_LP_20260227-190000.fit").write_bytes(b"x" * 5000)
    (works / "IC 434" / "clip.AVI").write_bytes(b"v" * 3000)
    (works / "IC 434" / "nested").mkdir()
    (works / f"{ODD}_sub").mkdir()
    for name in ("a b \u03b5.fit", "(1) [x] & y.fit", "z\u00e9.jpg", "video.avi"):
        (works / f"{ODD}_sub" / name).write_bytes(b"y" * 2049)
    (works / "Empty").mkdir()
    return device


@pytest.fixture
def simulated(tmp_path: Path) -> Iterator[tuple[SimulatorServer, Path]]:
    root = tmp_path / "emmc"
    with SimulatorServer(_night(root), root, SimulatorOptions(pistatus_interval=None)) as sim:
        yield sim, root


def _seestar(sim: SimulatorServer, *, through_share: bool, **options: Any) -> NetworkSeestar:
    options.setdefault("mounted_share", sim.root)
    rpc = CountingConnection(sim.host, sim.rpc_port, timeout=5.0, heartbeat_interval=0)
    seestar = NetworkSeestar(
        sim.host,
        http_port=sim.http_port,
        connection=rpc,
        list_through_share=through_share,
        **options,
    )
    seestar._owned.append(rpc.close)  # closed with the seestar
    return seestar


def _methods(seestar: NetworkSeestar) -> list[str]:
    rpc = seestar._rpc
    assert isinstance(rpc, CountingConnection)
    return rpc.methods


def _same_listing(share: list[FileEntry], pages: list[FileEntry]) -> None:
    """Same names in the same order; the share's exact bytes round down to the pages' KiB."""
    assert [e.name for e in share] == [e.name for e in pages]
    for exact, whole_kib in zip(share, pages, strict=True):
        assert whole_kib.size == exact.size // 1024 * 1024


def test_the_share_lists_what_the_pages_list(simulated: tuple[SimulatorServer, Path]) -> None:
    sim, _ = simulated
    with (
        _seestar(sim, through_share=True) as share,
        _seestar(sim, through_share=False) as pages,
    ):
        for folder in FOLDERS:
            _same_listing(share.list_files(folder), pages.list_files(folder))
        assert "get_img_file_page_name" not in _methods(share)
        assert "get_img_file_page_name" in _methods(pages)


def test_the_listing_skips_videos_and_folders_and_keeps_companions(
    simulated: tuple[SimulatorServer, Path],
) -> None:
    sim, _ = simulated
    with _seestar(sim, through_share=True) as seestar:
        subs = seestar.list_files(SUBS)
        target = seestar.list_files("IC 434")
        odd = seestar.list_files(f"{ODD}_sub")
    assert len(subs) == 210  # each sub with its two JPEG companions
    assert sum(e.name.endswith("_thn.jpg") for e in subs) == 70
    assert [e.name for e in target] == ["Stacked_30_IC 434_10.0s_LP_20260227-190000.fit"]
    assert target[0].size == 5000  # the share's exact bytes
    assert [e.name for e in odd] == sorted(["a b \u03b5.fit", "(1) [x] & y.fit", "z\u00e9.jpg"])


def test_on_page_is_told_the_whole_listing_once(simulated: tuple[SimulatorServer, Path]) -> None:
    sim, _ = simulated
    told: list[list[FileEntry]] = []
    with _seestar(sim, through_share=True) as seestar:
        listed = seestar.list_files_paged(SUBS, lambda page: told.append(list(page)))
    assert told == [listed]


class RefusingShare(MountedShareFileOps):
    """A share whose listings fail with ``error`` (renames and the rest work)."""

    def __init__(self, root: Path, error: Exception) -> None:
        super().__init__(root)
        self.error = error
        self.listings = 0

    def list(self, folder: str) -> list[FileEntry]:
        self.listings += 1
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        StorageError("Cannot list MyWorks/IC 434_sub: Permission denied"),
        ValueError("an SMB reply the client could not read"),
    ],
)
def test_a_share_listing_that_fails_falls_back_to_the_pages(
    simulated: tuple[SimulatorServer, Path], error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    sim, root = simulated
    ops = RefusingShare(root, error)
    with (
        caplog.at_level(logging.INFO, logger="crowdsky.adapters.seestar.network"),
        _seestar(sim, through_share=True, file_ops=ops) as seestar,
        _seestar(sim, through_share=False) as pages,
    ):
        assert seestar.list_files(SUBS) == pages.list_files(SUBS)
        assert len(seestar.list_files(SUBS)) == 210  # not read as empty
        assert "get_img_file_page_name" in _methods(seestar)
    assert ops.listings == 2  # a refusal for one folder does not stop the next try
    assert "listing it in pages instead" in caplog.text


def test_a_share_out_of_reach_is_not_waited_for_again(
    simulated: tuple[SimulatorServer, Path],
) -> None:
    sim, root = simulated
    ops = RefusingShare(root, SeestarConnectionError("SMB server unreachable"))
    with _seestar(sim, through_share=True, file_ops=ops) as seestar:
        assert len(seestar.list_files(SUBS)) == 210
        assert len(seestar.list_files("IC 434")) == 1
    assert ops.listings == 1


def test_a_folder_the_share_cannot_read_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "MyWorks").mkdir()
    (tmp_path / "MyWorks" / "Odd_sub").write_bytes(b"")  # there, but not a folder
    with pytest.raises(StorageError):
        MountedShareFileOps(tmp_path).list("Odd_sub")


def test_a_missing_folder_on_the_share_is_empty(tmp_path: Path) -> None:
    (tmp_path / "MyWorks").mkdir()
    assert MountedShareFileOps(tmp_path).list("No Such Folder_sub") == []


def test_a_real_smb_share_lists_what_the_pages_list(
    samba_server: SambaServer, samba_share: Path
) -> None:
    device = _night(samba_share)
    with SimulatorServer(device, samba_share, SimulatorOptions(pistatus_interval=None)) as sim:
        smb = SmbFileOps(samba_server.host, port=samba_server.port, timeout=10)
        with (
            smb,
            _seestar(sim, through_share=True, file_ops=smb) as share,
            _seestar(sim, through_share=False) as pages,
        ):
            for folder in FOLDERS:
                _same_listing(share.list_files(folder), pages.list_files(folder))
            assert "get_img_file_page_name" not in _methods(share)


def test_planning_through_the_share_equals_planning_through_the_pages(
    simulated: tuple[SimulatorServer, Path],
) -> None:
    sim, _ = simulated
    plans = []
    for through_share in (True, False):
        with _seestar(sim, through_share=through_share) as seestar:
            app = Crowdsky(seestar, FakeClock(MORNING), CollectingProgress())
            plans.append(app.find_unstacked_blocks("IC 434", min_exptime=0))
            pages_asked = "get_img_file_page_name" in _methods(seestar)
            assert pages_asked is not through_share
    assert plans[0] == plans[1]
    assert len(plans[0]) == 3  # 70 subs 27 s apart from 18:00:05 UTC


class SilentServer:
    """A loopback TCP server that accepts connections and never says a word (a hung share)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self.accepted.append(self.sock.accept()[0])

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_an_smb_share_that_does_not_answer_is_given_up_within_the_time_asked(
    silent_server: SilentServer,
) -> None:
    """``connect_within`` waits the seconds it is given, not the share's 30 s per operation."""
    smb = SmbFileOps("127.0.0.1", port=silent_server.port, timeout=30.0)
    answers: list[bool] = []
    worker = threading.Thread(target=lambda: answers.append(smb.connect_within(0.2)))
    worker.start()
    worker.join(10.0)  # a liveness bound far above 0.2 s and far below 30 s
    assert not worker.is_alive()
    assert answers == [False]
    smb.close()


def test_an_smb_share_that_answers_is_connected_once(
    samba_server: SambaServer, samba_share: Path
) -> None:
    with SmbFileOps(samba_server.host, port=samba_server.port, timeout=10) as smb:
        assert smb.connect_within(5.0)
        first = smb._conn
        assert smb.connect_within(5.0)
        assert smb._conn is first


class SlowShare(MountedShareFileOps):
    """A share that does not answer within the time it is given (as ``SmbFileOps`` would say)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[float] = []
        self.listings = 0

    def connect_within(self, seconds: float) -> bool:
        self.asked.append(seconds)
        return False

    def list(self, folder: str) -> list[FileEntry]:
        self.listings += 1
        return super().list(folder)


def test_a_share_that_does_not_answer_in_time_is_not_listed_through(
    simulated: tuple[SimulatorServer, Path],
) -> None:
    sim, root = simulated
    ops = SlowShare(root)
    with _seestar(sim, through_share=True, file_ops=ops, probe_timeout=0.7) as seestar:
        assert len(seestar.list_files(SUBS)) == 210  # from the pages, not read as empty
        assert len(seestar.list_files("IC 434")) == 1
        assert "get_img_file_page_name" in _methods(seestar)
    assert ops.asked == [0.7]  # asked once, with the short wait, then left alone
    assert ops.listings == 0
