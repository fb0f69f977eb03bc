"""The simulator's JSON-RPC over a real loopback socket: shapes, listing, clock, batch stack."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from crowdsky.adapters.clock import FakeClock, SystemClock
from crowdsky.adapters.jsonrpc import Event, Reply
from crowdsky.adapters.simulator import SimulatorServer
from crowdsky.adapters.simulator.methods import albums
from crowdsky.app.ports import FileEntry

from .conftest import READ_TIMEOUT, START, RawClient, small_device

Sim = Callable[..., SimulatorServer]
Connect = Callable[[SimulatorServer], RawClient]


def test_replies_have_the_device_shape_and_echo_any_id(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim())
    ok = client.call("test_connection", id="abc-1")
    assert list(ok.raw) == ["jsonrpc", "Timestamp", "method", "result", "code", "id"]
    assert (ok.id, ok.result, ok.code, ok.method) == (
        "abc-1",
        "server connected!",
        0,
        "test_connection",
    )
    assert isinstance(ok.raw["Timestamp"], str)
    assert "." in ok.raw["Timestamp"]
    for odd_id in (0, 2.5, [1, 2], {"k": 1}, None):
        assert client.call("test_connection", id=odd_id if odd_id is not None else "n").ok


def test_unknown_method_is_103_without_a_result(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim())
    reply = client.call("get_event_state", id=7)
    assert list(reply.raw) == ["jsonrpc", "Timestamp", "method", "error", "code", "id"]
    assert (reply.code, reply.error, reply.id) == (103, "method not found", 7)
    assert "result" not in reply.raw


def test_albums_count_entries_not_files(make_sim: Sim, connect: Connect) -> None:
    result = connect(make_sim()).call("get_albums").result
    assert result["path"] == "MyWorks"
    (group,) = result["list"]
    assert group["group_name"] == "DeepSky"
    (album,) = group["files"]
    assert (album["name"], album["count"], album["type"]) == ("IC 434_sub", 15, 0)
    assert album["thn"].startswith("IC 434_sub/Light_IC 434_")
    assert album["thn"].endswith("_thn.jpg")


def test_albums_list_each_folder_once(tmp_path: Path) -> None:
    """Counts and thumbnails come from one listing of each folder (it was two: 3 000 stats)."""
    device = small_device(tmp_path)
    storage = device.storage
    listed: list[str] = []
    plain_files = storage.files

    def counted(folder: str) -> list[FileEntry]:
        listed.append(folder)
        return plain_files(folder)

    storage.files = counted  # type: ignore[method-assign]
    result = albums(device)
    (album,) = result["list"][0]["files"]
    assert (album["name"], album["count"]) == ("IC 434_sub", 15)
    assert album["thn"].endswith("_thn.jpg")
    assert listed == ["IC 434_sub"]


def test_paged_listing_of_45_files_is_20_20_5(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim())
    pages = client.call(
        "get_img_file_page_number", {"dir": "MyWorks/IC 434_sub", "skip_avi": False}
    )
    assert pages.result == 3
    sizes = [len(client.call("get_img_file_page_name", {"page": n}).result) for n in range(4)]
    assert sizes == [20, 20, 5, 0]
    entry = client.call("get_img_file_page_name", {"page": 0}).result[0]
    assert set(entry) == {"name", "date", "size_k", "is_dir", "file_cnt", "avi_duration_sec"}
    assert entry["is_dir"] is False
    assert entry["avi_duration_sec"] is None


def test_listing_context_is_per_connection(make_sim: Sim, connect: Connect) -> None:
    sim = make_sim()
    one, two = connect(sim), connect(sim)
    assert one.call("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"}).result == 3
    assert two.call("get_img_file_page_number", {"dir": "MyWorks/Nope"}).result == 0
    assert len(one.call("get_img_file_page_name", {"page": 1}).result) == 20
    assert two.call("get_img_file_page_name", {"page": 0}).result == []


def test_pi_get_time_reads_the_device_clock(make_sim: Sim, connect: Connect) -> None:
    result = connect(make_sim()).call("pi_get_time").result
    # START + 3 h = 23:00 UTC = 00:00 in Vienna (CET) the next day.
    assert result == {
        "year": 2026, "mon": 2, "day": 28, "hour": 0, "min": 0, "sec": 0,
        "time_zone": "Europe/Vienna",
    }  # fmt: skip


def test_pi_get_time_without_zone_and_pi_set_time(
    tmp_path: Path, make_sim: Sim, connect: Connect
) -> None:
    device = small_device(tmp_path, report_zone=False)
    client = connect(make_sim(device, tmp_path))
    assert "time_zone" not in client.call("pi_get_time").result
    setting = {"year": 2026, "mon": 3, "day": 1, "hour": 21, "min": 5, "sec": 7,
               "time_zone": "Asia/Kathmandu"}  # fmt: skip
    assert client.call("pi_set_time", [setting]).result == 0
    device.report_zone = True
    assert client.call("pi_get_time").result == setting


def _select_all(client: RawClient, full_paths: bool = True) -> list[str]:
    client.call("get_img_file_page_number", {"dir": "MyWorks/IC 434_sub"})
    names = [
        entry["name"]
        for page in range(3)
        for entry in client.call("get_img_file_page_name", {"page": page}).result
        if entry["name"].endswith(".fit")
    ]
    files = [{"name": f"MyWorks/IC 434_sub/{n}" if full_paths else n} for n in names]
    assert client.call("clear_batch_stack").ok
    assert client.call("set_batch_stack_setting", {"path": "MyWorks/IC 434_sub", "files": files}).ok
    return names


def test_a_batch_stack_over_the_wire(tmp_path: Path, make_sim: Sim, connect: Connect) -> None:
    clock = FakeClock(START + timedelta(hours=3))
    device = small_device(tmp_path, clock=clock, seconds_per_frame=2.0, setup_seconds=1.0)
    sim = make_sim(device, tmp_path)
    client = connect(sim)
    before = client.call("iscope_get_app_state").result
    assert "BatchStack" not in before
    # Like a real reply: the other stages' entries, none of them with a route.
    assert {"View", "FocuserMove", "DarkLibrary", "PlateSolve"} <= set(before)
    assert not any("route" in entry for entry in before.values())
    names = _select_all(client)
    assert len(client.call("get_batch_stack_setting").result["files"]) == len(names) == 15
    assert client.call("start_batch_stack").ok
    working = client.call("iscope_get_app_state").result["BatchStack"]
    assert working["state"] == "working"
    assert working["total_img"] == 15
    second = client.call("start_batch_stack")
    assert (second.code, second.error) == (259, "stack is already running")
    assert "result" not in second.raw
    while (state := client.call("iscope_get_app_state").result["BatchStack"])["state"] == "working":
        clock.advance(5.0)
    assert state["state"] == "complete"
    assert "route" not in state
    assert state["stacked_img"] == 15
    output = state["output_file"]
    assert output["path"] == "MyWorks/IC 434"
    fit = next(f["name"] for f in output["files"] if f["name"].endswith(".fit"))
    on_disk = tmp_path / "MyWorks" / "IC 434" / fit
    assert fit.startswith("DSO_Stacked_15_IC 434_10.0s_")
    assert on_disk.is_file()
    conn = http.client.HTTPConnection(sim.host, sim.http_port, timeout=10)
    try:
        conn.request("GET", f"/MyWorks/IC%20434/{fit.replace(' ', '%20')}")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, on_disk.read_bytes())
    finally:
        conn.close()
    # Stale until cleared, then absent.
    assert client.call("iscope_get_app_state").result["BatchStack"]["state"] == "complete"
    assert client.call("clear_batch_stack").ok
    assert "BatchStack" not in client.call("iscope_get_app_state").result


def test_bare_names_fail_with_267(tmp_path: Path, make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim(small_device(tmp_path), tmp_path))
    _select_all(client, full_paths=False)
    assert client.call("get_batch_stack_setting").result["files"] == []
    assert client.call("start_batch_stack").ok
    state = client.call("iscope_get_app_state").result["BatchStack"]
    assert (state["state"], state["error"], state["code"]) == ("fail", "no image", 267)


def test_stop_cancels(tmp_path: Path, make_sim: Sim, connect: Connect) -> None:
    device = small_device(tmp_path, seconds_per_frame=60.0)
    client = connect(make_sim(device, tmp_path))
    _select_all(client)
    assert client.call("start_batch_stack").ok
    assert client.call("stop_batch_stack").ok
    assert client.call("iscope_get_app_state").result["BatchStack"]["state"] == "cancel"
    assert client.call("clear_app_state", {"name": "BatchStack"}).ok
    assert "BatchStack" not in client.call("iscope_get_app_state").result


def test_events_reach_every_connection(tmp_path: Path, make_sim: Sim, connect: Connect) -> None:
    clock = FakeClock(START + timedelta(hours=3))
    device = small_device(tmp_path, clock=clock, seconds_per_frame=2.0)
    sim = make_sim(device, tmp_path, pistatus_interval=0.02, batch_poll_interval=0.01)
    actor, watcher = connect(sim), connect(sim)
    assert watcher.call("test_connection").ok  # registered before the stack starts
    _select_all(actor)
    assert actor.call("start_batch_stack").ok
    clock.advance(3600.0)
    done = watcher.wait_event("BatchStack", lambda e: e.get("state") == "complete")
    assert done.get("stacked_img") == 15
    assert "output_file" in done.fields
    assert {e.get("state") for e in watcher.events if e.name == "BatchStack"} >= {"working"}
    status = watcher.wait_event("PiStatus")
    assert status.fields  # only what changed, never empty


@pytest.mark.parametrize("first", [True, False])
def test_side_effect_events_and_the_reply(
    tmp_path: Path, make_sim: Sim, connect: Connect, first: bool
) -> None:
    device = small_device(tmp_path, seconds_per_frame=60.0)
    # A ticker that never ticks: only the command itself raises the event.
    sim = make_sim(device, tmp_path, side_effect_events_first=first, batch_poll_interval=600.0)
    client = connect(sim)
    _select_all(client)
    sent = client.send("start_batch_stack")
    client.reply_to(sent)
    client.wait_event("BatchStack")
    kinds = [
        "event" if isinstance(m, Event) else "reply"
        for m in client.log
        if getattr(m, "name", None) == "BatchStack" or getattr(m, "id", None) == sent
    ]
    assert kinds == (["event", "reply"] if first else ["reply", "event"])


def test_skip_avi_and_the_root_listing(tmp_path: Path, make_sim: Sim, connect: Connect) -> None:
    device = small_device(tmp_path)
    device.storage.put("MyWorks/Lunar/2025-06-11-223602-Lunar.avi", b"RIFF")
    device.storage.put("MyWorks/Lunar/2025-06-11-223602-Lunar_thn.jpg", b"\xff\xd8")
    client = connect(make_sim(device, tmp_path))
    listing = {"dir": "MyWorks/Lunar", "skip_avi": True}
    assert client.call("get_img_file_page_number", listing).result == 1
    names = [e["name"] for e in client.call("get_img_file_page_name", {"page": 0}).result]
    assert names == ["2025-06-11-223602-Lunar_thn.jpg"]
    assert client.call("get_img_file_page_number", {"dir": "MyWorks", "skip_avi": False}).ok
    folders = client.call("get_img_file_page_name", {"page": 0}).result
    assert {(f["name"], f["is_dir"], f["file_cnt"]) for f in folders} == {
        ("IC 434_sub", True, 45),
        ("Lunar", True, 2),
    }
    groups = {g["group_name"] for g in client.call("get_albums").result["list"]}
    assert groups == {"SolarSystem", "DeepSky"}


def test_wrong_param_types_are_errors_not_crashes(make_sim: Sim, connect: Connect) -> None:
    client = connect(make_sim())
    assert client.call("get_img_file_page_number", ["MyWorks/IC 434_sub"]).code == 107
    assert client.call("get_img_file_page_name", {"page": "0"}).code == 109
    assert client.call("set_batch_stack_setting", {"path": 3}).code == 109
    assert client.call("pi_set_time", {"year": 2026}).code == 109
    bad_zone = {
        "year": 2026,
        "mon": 3,
        "day": 1,
        "hour": 1,
        "min": 0,
        "sec": 0,
        "time_zone": "Mars/Base",
    }
    assert client.call("pi_set_time", bad_zone).code == 207
    assert client.call("test_connection").ok


def test_only_pistatus_without_event_variety(
    tmp_path: Path, make_sim: Sim, connect: Connect
) -> None:
    sim = make_sim(event_variety=False, app_state_stages=False, events_before_reply=3)
    client = connect(sim)
    assert client.call("iscope_get_app_state").result == {}
    assert [e.name for e in client.events] == ["PiStatus"] * 3


def test_events_of_many_kinds_come_between_request_and_reply(
    tmp_path: Path, make_sim: Sim, connect: Connect
) -> None:
    client = connect(make_sim(events_before_reply=5))
    for _ in range(40):
        assert client.call("test_connection").result == "server connected!"
    assert len(client.events) == 200
    assert not client.problems
    kinds = {e.name for e in client.events}
    assert {"PiStatus", "View", "Stack", "FocuserMove", "PlateSolve", "DarkLibrary"} <= kinds
    assert any("code" in e.fields and "error" in e.fields for e in client.events)
    assert any("result" in e.fields for e in client.events)
    assert len({tuple(sorted(e.fields)) for e in client.events if e.name == "PiStatus"}) > 2
    # Each reply came after its five events: the log alternates 5 events, 1 reply.
    assert [isinstance(m, Event) for m in client.log[:12]] == [True] * 5 + [False] + [True] * 5 + [
        False
    ]


# --- the device's worker: a stack ends at its end, not when someone looks --------------------


def test_the_complete_event_comes_at_the_end_of_the_stack(
    tmp_path: Path, make_sim: Sim, connect: Connect
) -> None:
    device = small_device(tmp_path, clock=SystemClock(), seconds_per_frame=0.01)
    # An interval that never runs out here: only the stack's own end can raise the event.
    client = connect(make_sim(device, tmp_path, batch_poll_interval=600.0))
    _select_all(client)
    assert client.call("start_batch_stack").ok
    done = client.wait_event("BatchStack", lambda e: e.get("state") == "complete")
    assert done.get("stacked_img") == 15
    assert not any(r.method == "iscope_get_app_state" for r in client.log if isinstance(r, Reply))


def test_without_events_the_device_still_finishes_on_its_own(
    tmp_path: Path, make_sim: Sim, connect: Connect
) -> None:
    device = small_device(tmp_path, clock=SystemClock(), seconds_per_frame=0.01)
    sim = make_sim(device, tmp_path, push_batch_events=False, batch_poll_interval=600.0)
    client = connect(sim)
    _select_all(client)
    assert client.call("start_batch_stack").ok
    stacks = tmp_path / "MyWorks" / "IC 434"
    deadline = time.monotonic() + READ_TIMEOUT  # a safety net, not a timed assertion
    # The thumbnail is the last of the three files written: wait for it, not for the .fit.
    while not list(stacks.glob("DSO_Stacked_15_*_thn.jpg")) and time.monotonic() < deadline:
        time.sleep(0.01)
    # Written with no status read in between, as a device writes its output when it is done.
    assert [p.name for p in stacks.glob("DSO_Stacked_15_*_thn.jpg")]
    assert [p.name for p in stacks.glob("DSO_Stacked_15_*.fit")]
    entry = client.call("iscope_get_app_state").result["BatchStack"]
    assert entry["state"] == "complete"
    assert not any(e.name == "BatchStack" for e in client.events)
