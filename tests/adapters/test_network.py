"""NetworkSeestar against a scripted loopback Seestar: the exact requests sent, odd reply shapes.

The contract suite (``test_seestar_contract.py``) checks behaviour against the simulator; these
tests pin what goes over the wire and how replies the simulator never sends are read.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from crowdsky.adapters.jsonrpc import JsonRpcConnection, Request
from crowdsky.adapters.seestar.file_ops import MountedShareFileOps
from crowdsky.adapters.seestar.network import (
    LISTING_ATTEMPTS,
    NetworkSeestar,
    connect_seestar,
)
from crowdsky.adapters.seestar.replies import (
    parse_batch_stack,
)
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.app.ports import (
    BatchStackEvents,
    BatchStackState,
    DeviceTime,
    FileEntry,
    FolderEntry,
    PagedListing,
    Seestar,
)
from crowdsky.errors import (
    ListingIncompleteError,
    SeestarAuthError,
    SeestarConnectionError,
    SeestarRpcError,
    StorageError,
)

try:  # tests/ laid out as packages
    from .jsonrpc.scripted_server import ScriptedServer, ServerConn
except ImportError:  # rootdir-relative imports
    from jsonrpc.scripted_server import ScriptedServer, ServerConn  # type: ignore[no-redef]

Handler = Callable[[ServerConn, Request], None]


def files_of(count: int) -> list[dict[str, Any]]:
    return [
        {"name": f"Light_M 81_10.0s_LP_20260227-2100{i:02d}.fit", "size_k": 4050, "is_dir": False}
        for i in range(count)
    ]


class Device:
    """Answers for the scripted server: a folder listing and a batch-stack state."""

    def __init__(self, listing: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.listing = listing or {}
        self.current: list[dict[str, Any]] = []
        self.page_count: Any = None
        self.answers: dict[str, Any] = {}
        self.errors: dict[str, tuple[int, str]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        #: Pages answered with ``blank_page`` once each (a device losing its place).
        self.blank_once: set[int] = set()
        self.blank_page: Any = []
        #: Called with the page number before each page is answered (the folder changing).
        self.before_page: Callable[[int], None] = lambda page: None

    def __call__(self, conn: ServerConn, request: Request) -> None:
        method = request.method
        for fields in self.events.get(method, []):
            conn.event("BatchStack", **fields)
        if method in self.errors:
            conn.error(request, *self.errors[method])
        elif method in self.answers:
            conn.reply(request, self.answers[method])
        elif method == "get_img_file_page_number":
            folder = request.params["dir"]
            if folder not in self.listing:
                conn.error(request, 255, "file not exist")
                return
            self.current = self.listing[folder]
            pages = (len(self.current) + 19) // 20
            conn.reply(request, pages if self.page_count is None else self.page_count)
        elif method == "get_img_file_page_name":
            page = request.params["page"]
            self.before_page(page)
            if page in self.blank_once:
                self.blank_once.discard(page)
                conn.reply(request, self.blank_page)
                return
            conn.reply(request, self.current[page * 20 : page * 20 + 20])
        else:
            conn.reply(request, 0)


@pytest.fixture
def device() -> Device:
    return Device()


@pytest.fixture
def server(device: Device) -> Iterator[ScriptedServer]:
    scripted = ScriptedServer(device)
    yield scripted
    scripted.close()


@pytest.fixture
def share(tmp_path: Path) -> Path:
    (tmp_path / "share" / "MyWorks" / "M 81").mkdir(parents=True)
    (tmp_path / "share" / "MyWorks" / "M 81_sub").mkdir(parents=True)
    return tmp_path / "share"


@pytest.fixture
def seestar(server: ScriptedServer, share: Path) -> Iterator[NetworkSeestar]:
    rpc = JsonRpcConnection("127.0.0.1", server.port, timeout=2.0, heartbeat_interval=0)
    # The scripted device's JSON-RPC listing is under test here, not the share's.
    ops = MountedShareFileOps(share)
    with NetworkSeestar("127.0.0.1", connection=rpc, file_ops=ops, list_through_share=False) as s:
        yield s
    rpc.close()


def sent(server: ScriptedServer, method: str) -> list[Any]:
    with server.changed:
        return [r.params for _, r in server.requests if r.method == method]


# --- listings ------------------------------------------------------------------------------------


def test_folders_are_every_group_flattened(seestar: NetworkSeestar, device: Device) -> None:
    device.answers["get_albums"] = {
        "path": "MyWorks",
        "list": [
            {"group_name": "SolarSystem", "files": [{"name": "Lunar", "count": 2, "type": 0}]},
            {
                "group_name": "DeepSky",
                "files": [{"name": "M 81", "count": 1}, {"name": "M 81_sub"}],
            },
            {"group_name": "Odd", "files": None},
            "junk",
        ],
    }
    assert seestar.list_folders() == [
        FolderEntry("Lunar", 2),
        FolderEntry("M 81", 1),
        FolderEntry("M 81_sub", 0),
    ]


def test_a_listing_pages_through_every_page(
    seestar: NetworkSeestar, server: ScriptedServer, device: Device
) -> None:
    device.listing["MyWorks/M 81_sub"] = files_of(45)
    entries = seestar.list_files("M 81_sub")
    assert len(entries) == 45
    assert entries[0] == FileEntry("Light_M 81_10.0s_LP_20260227-210000.fit", 4050 * 1024)
    assert sent(server, "get_img_file_page_number") == [
        {"dir": "MyWorks/M 81_sub", "skip_avi": True}
    ]
    assert sent(server, "get_img_file_page_name") == [{"page": 0}, {"page": 1}, {"page": 2}]


def test_a_paged_listing_hands_each_page_over_as_it_arrives(
    seestar: NetworkSeestar, server: ScriptedServer, device: Device
) -> None:
    device.listing["MyWorks/M 81_sub"] = files_of(245)
    pages: list[tuple[int, list[str]]] = []

    def on_page(page: Sequence[FileEntry]) -> None:
        asked = len(sent(server, "get_img_file_page_name"))  # pages asked for so far
        pages.append((asked, [entry.name for entry in page]))

    entries = seestar.list_files_paged("M 81_sub", on_page)
    assert isinstance(seestar, PagedListing)
    assert [len(names) for _, names in pages] == [20] * 12 + [5]
    # Each page is handed over in order as its reply is taken; how many requests are on the
    # link by then depends on timing (PAGES_IN_FLIGHT pages are asked for ahead).
    assert sorted(name for _, names in pages for name in names) == [e.name for e in entries]
    assert entries == seestar.list_files("M 81_sub")


def test_a_paged_listing_that_stays_short_still_raises(
    seestar: NetworkSeestar, device: Device
) -> None:
    device.listing["MyWorks/M 81_sub"] = files_of(45)
    device.page_count = 5
    pages: list[Sequence[FileEntry]] = []
    with pytest.raises(ListingIncompleteError, match="M 81_sub"):
        seestar.list_files_paged("M 81_sub", pages.append)
    assert pages  # the pages seen before it proved short were handed over all the same


@pytest.mark.parametrize("count", ["3", 3.0, None, "many"])
def test_a_page_count_that_is_not_an_int_still_lists_everything(
    seestar: NetworkSeestar, device: Device, count: Any
) -> None:
    device.listing["MyWorks/M 81_sub"] = files_of(45)
    device.page_count = count
    assert len(seestar.list_files("M 81_sub")) == 45


def test_a_missing_folder_lists_empty(seestar: NetworkSeestar, device: Device) -> None:
    assert seestar.list_files("No Such_sub") == []
    device.listing["MyWorks/Empty"] = []
    assert seestar.list_files("Empty") == []


def test_one_empty_page_is_an_empty_folder(seestar: NetworkSeestar, device: Device) -> None:
    device.listing["MyWorks/Empty"] = []
    device.page_count = 1
    assert seestar.list_files("Empty") == []


@pytest.mark.parametrize("blank", [[], files_of(7), "busy", None])
def test_a_page_short_of_the_count_restarts_the_listing(
    seestar: NetworkSeestar, server: ScriptedServer, device: Device, blank: Any
) -> None:
    device.listing["MyWorks/M 81_sub"] = files_of(45)
    device.blank_once, device.blank_page = {1}, blank
    assert len(seestar.list_files("M 81_sub")) == 45
    assert len(sent(server, "get_img_file_page_number")) == 2


@pytest.mark.parametrize(("files", "pages"), [(45, 5), (40, 3), (45, 4)])
def test_fewer_entries_than_the_page_count_promises_is_an_error(
    seestar: NetworkSeestar, server: ScriptedServer, device: Device, files: int, pages: int
) -> None:
    # 45 files in "5 pages": page 3 holds 5; 40 files in "3 pages": the last page is empty.
    device.listing["MyWorks/M 81_sub"] = files_of(files)
    device.page_count = pages
    with pytest.raises(ListingIncompleteError, match="M 81_sub") as short:
        seestar.list_files("M 81_sub")
    assert short.value.attempts == LISTING_ATTEMPTS
    assert len(sent(server, "get_img_file_page_number")) == LISTING_ATTEMPTS


def test_a_folder_growing_while_paged_lists_every_file_it_had(
    seestar: NetworkSeestar, server: ScriptedServer, device: Device
) -> None:
    # A device paging the live folder: three subs saved after page 1 sort first and push every
    # later entry three places on; entries repeat across pages, none is lost.
    folder = files_of(45)
    device.listing["MyWorks/M 81_sub"] = list(folder)

    def save_three(page: int) -> None:
        if page == 1:
            device.current[:0] = [
                {"name": f"Light_M 81_10.0s_LP_20260227-2059{i:02d}.fit", "size_k": 1}
                for i in range(3)
            ]

    device.before_page = save_three
    listed = {entry.name for entry in seestar.list_files("M 81_sub")}
    assert listed >= {entry["name"] for entry in folder}
    assert len(sent(server, "get_img_file_page_number")) == 1


# --- device time ---------------------------------------------------------------------------------


def test_device_time_reads_the_pi_set_time_fields(seestar: NetworkSeestar, device: Device) -> None:
    device.answers["pi_get_time"] = {
        "year": 2026, "mon": 2, "day": 27, "hour": 21, "min": 15, "sec": 3,
        "time_zone": "Europe/Vienna",
    }  # fmt: skip
    assert seestar.device_time() == DeviceTime(datetime(2026, 2, 27, 21, 15, 3), "Europe/Vienna")


def test_device_time_is_empty_when_the_firmware_lacks_it(
    seestar: NetworkSeestar, device: Device
) -> None:
    device.errors["pi_get_time"] = (103, "method not found")
    assert seestar.device_time() == DeviceTime()


# --- batch stacking ------------------------------------------------------------------------------


def test_configure_sends_full_paths(seestar: NetworkSeestar, server: ScriptedServer) -> None:
    full = "MyWorks/NGC 7000_sub/Light_NGC 7000_20.0s_IRCUT_20260613-225623.fit"
    seestar.configure_batch_stack("NGC 7000_sub", [full, "Light_b.fit"])
    assert sent(server, "set_batch_stack_setting") == [
        {
            "path": "MyWorks/NGC 7000_sub",
            "files": [{"name": full}, {"name": "MyWorks/NGC 7000_sub/Light_b.fit"}],
        }
    ]


def test_clear_falls_back_to_clear_app_state_once_and_remembers(
    seestar: NetworkSeestar, server: ScriptedServer, device: Device
) -> None:
    device.errors["clear_batch_stack"] = (103, "method not found")
    seestar.clear_batch_stack()
    seestar.clear_batch_stack()
    assert len(sent(server, "clear_batch_stack")) == 1
    assert sent(server, "clear_app_state") == [{"name": "BatchStack"}] * 2


def test_clear_passes_other_refusals_on(seestar: NetworkSeestar, device: Device) -> None:
    device.errors["clear_batch_stack"] = (207, "fail to operate")
    with pytest.raises(SeestarRpcError) as caught:
        seestar.clear_batch_stack()
    assert caught.value.code == 207


def test_status_reads_the_batch_stack_entry(seestar: NetworkSeestar, device: Device) -> None:
    device.answers["iscope_get_app_state"] = {"FocuserMove": {"state": "complete"}}
    assert seestar.batch_stack_status() is None
    device.answers["iscope_get_app_state"] = {
        "BatchStack": {
            "state": "complete", "lapse_ms": 20517, "percent": 100.0, "stacked_img": 5,
            "total_img": 5, "remaining_sec": 0, "route": [],
            "output_file": {"path": "MyWorks/M 81", "files": [
                {"name": "DSO_Stacked_5_M 81_20.0s_20260311_213509.fit", "type": 0},
                {"name": "DSO_Stacked_5_M 81_20.0s_20260311_213509_thn.jpg", "type": 0}]},
        }
    }  # fmt: skip
    status = seestar.batch_stack_status()
    assert status is not None
    assert status.terminal
    assert (status.stacked_img, status.total_img, status.percent) == (5, 5, 100.0)
    assert status.output_fit == "MyWorks/M 81/DSO_Stacked_5_M 81_20.0s_20260311_213509.fit"


@pytest.mark.parametrize(
    ("sent", "state", "text"),
    [
        ("working", BatchStackState.WORKING, "working"),
        ("cancel", BatchStackState.CANCEL, "cancel"),
        ("", BatchStackState.STARTING, ""),
        (None, BatchStackState.STARTING, ""),
        ("paused", BatchStackState.UNKNOWN, "paused"),
        ("start", BatchStackState.UNKNOWN, "start"),
    ],
)
def test_a_state_is_named_and_an_unknown_one_keeps_its_text(
    sent: object, state: BatchStackState, text: str
) -> None:
    status = parse_batch_stack({"state": sent})
    assert status is not None
    assert (status.state, status.state_text) == (state, text)
    assert status.terminal is (state is BatchStackState.CANCEL)


def test_a_second_start_is_refused_with_259(seestar: NetworkSeestar, device: Device) -> None:
    device.errors["start_batch_stack"] = (259, "stack is already running")
    with pytest.raises(SeestarRpcError) as caught:
        seestar.start_batch_stack()
    assert caught.value.code == 259


def test_stop_when_idle_is_harmless_but_not_while_working(
    seestar: NetworkSeestar, device: Device
) -> None:
    device.errors["stop_batch_stack"] = (207, "fail to operate")
    seestar.stop_batch_stack()  # no state at all: nothing to stop
    device.answers["iscope_get_app_state"] = {"BatchStack": {"state": "working"}}
    with pytest.raises(SeestarRpcError):
        seestar.stop_batch_stack()


def test_pushed_batch_stack_events_wake_a_waiter(seestar: NetworkSeestar, device: Device) -> None:
    assert isinstance(seestar, BatchStackEvents)
    assert not seestar.wait_batch_stack_event(0.05)
    device.events["start_batch_stack"] = [{"state": "working", "percent": 0.0}]
    seestar.start_batch_stack()
    assert seestar.wait_batch_stack_event(5.0)
    assert not seestar.wait_batch_stack_event(0.05)


def test_events_of_an_earlier_stack_do_not_wake_the_next(
    seestar: NetworkSeestar, device: Device
) -> None:
    device.events["iscope_get_app_state"] = [{"state": "complete"}] * 3
    seestar.batch_stack_status()
    seestar.batch_stack_status()  # the reply follows the events: all are queued by now
    seestar.start_batch_stack()
    assert not seestar.wait_batch_stack_event(0.05)


# --- renames and deletes -------------------------------------------------------------------------


def test_renames_and_deletes_never_use_delete_image(
    seestar: NetworkSeestar, server: ScriptedServer, share: Path
) -> None:
    (share / "MyWorks" / "M 81" / "a.fit").write_bytes(b"x")
    (share / "MyWorks" / "M 81_sub" / "s.fit").write_bytes(b"x")
    seestar.rename("MyWorks/M 81/a.fit", "b.fit")
    seestar.delete("MyWorks/M 81/b.fit")
    with pytest.raises(StorageError):
        seestar.delete("MyWorks/M 81_sub/s.fit")
    with pytest.raises(StorageError):
        seestar.call("delete_image", {"name": ""})
    assert not (share / "MyWorks" / "M 81" / "b.fit").exists()
    assert (share / "MyWorks" / "M 81_sub" / "s.fit").exists()
    assert sent(server, "delete_image") == []


# --- connecting ----------------------------------------------------------------------------------


def test_connect_authenticates_with_the_key(tmp_path: Path, device: Device) -> None:
    private, public = generate_test_keypair()
    key = tmp_path / "key.pem"
    key.write_bytes(private)
    server = ScriptedServer(device, public_pem=public, require_auth=True)
    try:
        with connect_seestar("127.0.0.1", port=server.port, key_path=key, timeout=2.0) as seestar:
            assert server.verified == 1
            assert seestar.batch_stack_status() is None
        with pytest.raises(SeestarAuthError):
            connect_seestar("127.0.0.1", port=server.port, key_path=tmp_path / "none.pem")
    finally:
        server.close()


def test_old_firmware_needs_no_key(tmp_path: Path, device: Device) -> None:
    server = ScriptedServer(device, old_firmware=True)
    try:
        seestar = connect_seestar(
            "127.0.0.1", port=server.port, key_path=tmp_path / "none.pem", timeout=2.0
        )
        with seestar:
            assert seestar.list_files("x") == []
    finally:
        server.close()


def test_threads_list_one_folder_at_a_time(seestar: NetworkSeestar, device: Device) -> None:
    device.listing["MyWorks/A"] = files_of(30)
    device.listing["MyWorks/B"] = files_of(5)
    results: dict[str, int] = {}

    def list_one(folder: str) -> None:
        for _ in range(5):
            results[folder] = len(seestar.list_files(folder))

    threads = [threading.Thread(target=list_one, args=(f,)) for f in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"A": 30, "B": 5}


# The reply parsers against any JSON value: tests/fuzz/test_device_replies.py.


def test_every_port_method_exists_with_the_same_parameters() -> None:
    ports = {
        name: member
        for name, member in vars(Seestar).items()
        if callable(member) and not name.startswith("_")
    }
    assert len(ports) == 12
    for name, member in ports.items():
        mine = getattr(NetworkSeestar, name)
        assert list(inspect.signature(mine).parameters) == list(
            inspect.signature(member).parameters
        ), name


def test_close_closes_what_it_opened(device: Device, share: Path) -> None:
    server = ScriptedServer(device, old_firmware=True)
    try:
        seestar = NetworkSeestar(
            "127.0.0.1",
            port=server.port,
            mounted_share=share,
            timeout=2.0,
            list_through_share=False,  # the listing opens the JSON-RPC connection
        )
        assert seestar.list_files("nothing") == []
        seestar.close()
        seestar.close()
        with pytest.raises(SeestarConnectionError):
            seestar.list_folders()
    finally:
        server.close()
