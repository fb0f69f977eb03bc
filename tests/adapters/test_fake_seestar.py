"""The in-memory Seestar: files, device time and batch stacker, as the protocol reference says."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import COMPANION_FILES, FIT_FILES, FakeSeestar, Faults
from crowdsky.adapters.device_model.night import add_sub
from crowdsky.adapters.device_model.storage import MemoryStorage
from crowdsky.app.ports import (
    BatchStackState,
    BatchStackStatus,
    DeviceTime,
    FileEntry,
    FolderEntry,
    Seestar,
)
from crowdsky.domain import parse_stacked_name
from crowdsky.errors import PlanError, SeestarRpcError, StorageError

START = datetime(2026, 2, 27, 20, 22, 40, tzinfo=UTC)  # 21:22:40 in Vienna
MORNING = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)  # 07:00 in Vienna
SUB_SIZE = 4_150_080  # 2 880-byte header block + 1080 x 1920 x 2 bytes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MORNING)


def make_device(clock: FakeClock, **options: Any) -> FakeSeestar:
    return FakeSeestar(clock=clock, **options)


@pytest.fixture
def device(clock: FakeClock) -> FakeSeestar:
    return make_device(clock, seconds_per_frame=2.0, setup_seconds=1.0)


def lay(device: FakeSeestar, count: int, *, target: str = "IC 434", ra: float = 85.25) -> list[str]:
    step = timedelta(seconds=13)
    return [
        add_sub(device, target, 10.0, "LP", START + i * step, ra + 0.01 * i, -2.46)
        for i in range(count)
    ]


def run_to_end(
    device: FakeSeestar, clock: FakeClock, paths: list[str], folder: str = "MyWorks/IC 434_sub"
) -> BatchStackStatus:
    device.clear_batch_stack()
    device.configure_batch_stack(folder, paths)
    device.start_batch_stack()
    clock.advance(3600)
    status = device.batch_stack_status()
    assert status is not None
    return status


# --- the port ------------------------------------------------------------------------------------


def test_every_port_method_exists_with_the_same_parameters() -> None:
    ports = {
        name: member
        for name, member in vars(Seestar).items()
        if callable(member) and not name.startswith("_")
    }
    assert len(ports) == 12
    for name, member in ports.items():
        mine = getattr(FakeSeestar, name)
        assert list(inspect.signature(mine).parameters) == list(
            inspect.signature(member).parameters
        ), name


def test_import_has_no_side_effects_and_defaults_work() -> None:
    device = FakeSeestar()
    assert device.list_folders() == []
    assert device.batch_stack_status() is None
    assert device.device_time().zone == "Europe/Vienna"


# --- device time ---------------------------------------------------------------------------------


def test_device_time_is_local_wall_time_in_the_zone(clock: FakeClock) -> None:
    device = make_device(clock, zone="America/New_York")
    assert device.device_time() == DeviceTime(datetime(2026, 2, 28, 1, 0), "America/New_York")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../etc", ""])
def test_unknown_zone_is_a_plan_error(clock: FakeClock, zone: str) -> None:
    with pytest.raises(PlanError):
        make_device(clock, zone=zone)


def test_zone_can_be_withheld_like_old_firmware(clock: FakeClock) -> None:
    device = make_device(clock, report_zone=False)
    assert device.device_time() == DeviceTime(datetime(2026, 2, 28, 7, 0), None)


def test_set_device_time_sets_zone_and_wall_clock(clock: FakeClock) -> None:
    device = make_device(clock)
    device.set_device_time(datetime(2026, 2, 28, 12, 30), "Asia/Kathmandu")
    clock.advance(60)
    assert device.device_time() == DeviceTime(datetime(2026, 2, 28, 12, 31), "Asia/Kathmandu")


# --- files ---------------------------------------------------------------------------------------


def test_folders_count_entries_not_files(device: FakeSeestar) -> None:
    lay(device, 3)
    assert device.list_folders() == [FolderEntry("IC 434_sub", 3)]
    names = [f.name for f in device.list_files("IC 434_sub")]
    assert len(names) == 9
    assert names[:3] == [
        "Light_IC 434_10.0s_LP_20260227-212254.fit",
        "Light_IC 434_10.0s_LP_20260227-212254.jpg",
        "Light_IC 434_10.0s_LP_20260227-212254_thn.jpg",
    ]


def test_listing_sizes_are_those_of_an_s50_sub(device: FakeSeestar) -> None:
    lay(device, 1)
    sizes = {f.name.rsplit(".", 1)[-1]: f.size for f in device.list_files("IC 434_sub")}
    assert sizes["fit"] == SUB_SIZE
    assert round(SUB_SIZE / 1024) == 4053  # the device's size_k is about 4050
    assert 0 < sizes["jpg"] < 1024


def test_missing_folder_lists_empty(device: FakeSeestar) -> None:
    assert device.list_files("Nowhere_sub") == []


def test_header_has_the_sub_cards(device: FakeSeestar) -> None:
    [path] = lay(device, 1)
    header = device.read_header(path)
    assert header["NAXIS"] == 2
    assert (header["NAXIS1"], header["NAXIS2"]) == (1080, 1920)
    assert header["BZERO"] == 32768
    assert header["DATE-OBS"] == "2026-02-27T20:22:40.000000"
    assert header["OBJECT"] == "IC 434"
    assert header["IMAGETYP"] == "Light"
    assert header["BAYERPAT"] == "GRBG"
    assert (header["RA"], header["DEC"], header["EXPTIME"]) == (85.25, -2.46, 10.0)


@pytest.mark.parametrize("name", ["Light_nope.fit", "Light_IC 434_10.0s_LP_20260227-212254.jpg"])
def test_header_of_missing_or_non_fits_file_is_a_storage_error(
    device: FakeSeestar, name: str
) -> None:
    lay(device, 1)
    with pytest.raises(StorageError):
        device.read_header(f"MyWorks/IC 434_sub/{name}")


@pytest.mark.parametrize("path", ["IC 434_sub/x.fit", "MyWorks/../etc/passwd", "MyWorks/a/b/c"])
def test_malformed_paths_are_refused(device: FakeSeestar, path: str) -> None:
    with pytest.raises(StorageError):
        device.read_header(path)


def stacked(device: FakeSeestar, clock: FakeClock) -> tuple[str, BatchStackStatus]:
    status = run_to_end(device, clock, lay(device, 3))
    assert status.output_fit is not None
    return status.output_fit, status


def test_rename_in_a_target_folder(device: FakeSeestar, clock: FakeClock) -> None:
    fit, _ = stacked(device, clock)
    device.rename(fit, "CrowdSky_3_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    names = {f.name for f in device.list_files("IC 434")}
    assert "CrowdSky_3_IC 434_10.0s_LP_20260227.81_HP102265.fit" in names
    assert fit.rsplit("/", 1)[1] not in names


def test_rename_refuses_missing_file_and_existing_target(
    device: FakeSeestar, clock: FakeClock
) -> None:
    fit, status = stacked(device, clock)
    with pytest.raises(StorageError):
        device.rename("MyWorks/IC 434/nothing.fit", "x.fit")
    with pytest.raises(StorageError, match="exists"):
        device.rename(fit, status.output_files[1])
    with pytest.raises(StorageError):
        device.rename(fit, "../escape.fit")


@pytest.mark.parametrize("name", ["a*b.jpg", "b?.jpg", "a:b.jpg", "a|b.jpg", "   "])
def test_names_the_real_adapters_refuse_are_refused(device: FakeSeestar, name: str) -> None:
    """A wildcard is a pattern to SMB: the model must not take a name the Seestar refuses."""
    path = "MyWorks/IC 434/DSO_Stacked_3_IC 434_10.0s_20260227_212500_thn.jpg"
    device.storage.put(path, b"jpeg")
    with pytest.raises(StorageError, match="Refusing"):
        device.rename(path, name)
    assert [f.name for f in device.list_files("IC 434")] == [path.rsplit("/", 1)[1]]
    device.storage.put(f"MyWorks/IC 434/{name}", b"jpeg")
    with pytest.raises(StorageError, match="Refusing"):
        device.delete(f"MyWorks/IC 434/{name}")
    assert len(device.list_files("IC 434")) == 2


@pytest.mark.parametrize(
    "folder", ["IC 434_sub", "Algol-sub", "M 31_mosaic_sub", "IC 434_SUB", "M 31_Mosaic_Sub."]
)
def test_raw_sub_frames_are_never_renamed_or_deleted(device: FakeSeestar, folder: str) -> None:
    path = f"MyWorks/{folder}/Light_x_10.0s_LP_20260227-212254.fit"
    device.storage.put(path, b"raw")
    with pytest.raises(StorageError, match="never"):
        device.rename(path, "other.fit")
    with pytest.raises(StorageError, match="never"):
        device.delete(path)
    assert device.storage.exists(path)


def test_delete_in_a_target_folder(device: FakeSeestar, clock: FakeClock) -> None:
    fit, _ = stacked(device, clock)
    device.delete(fit)
    assert fit.rsplit("/", 1)[1] not in {f.name for f in device.list_files("IC 434")}
    with pytest.raises(StorageError):
        device.delete(fit)


def test_download_writes_a_valid_fits_file_atomically(
    device: FakeSeestar, clock: FakeClock, tmp_path: Path
) -> None:
    fit, _ = stacked(device, clock)
    dest = tmp_path / "stack.fit"
    dest.write_bytes(b"old contents")
    assert device.download(fit, dest) == dest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.fit"]
    assert (
        dest.stat().st_size
        == {f.name: f.size for f in device.list_files("IC 434")}[fit.rsplit("/", 1)[1]]
    )
    with fits.open(dest) as hdul:
        assert hdul[0].data.shape == (3, 1920, 1080)
        assert hdul[0].header["STACKCNT"] == 3


def test_failed_download_leaves_nothing_behind(device: FakeSeestar, tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        device.download("MyWorks/IC 434/none.fit", tmp_path / "none.fit")
    assert list(tmp_path.iterdir()) == []


def test_download_into_a_missing_directory_is_a_storage_error(
    device: FakeSeestar, tmp_path: Path
) -> None:
    [path] = lay(device, 1)
    with pytest.raises(StorageError):
        device.download(path, tmp_path / "missing" / "x.fit")


# --- batch stacking ------------------------------------------------------------------------------


def test_lifecycle_working_then_complete(device: FakeSeestar, clock: FakeClock) -> None:
    paths = lay(device, 5)
    assert device.batch_stack_status() is None
    device.clear_batch_stack()
    device.configure_batch_stack("MyWorks/IC 434_sub", paths)
    device.start_batch_stack()  # takes 1 + 5 x 2 = 11 s
    first = device.batch_stack_status()
    assert first == BatchStackStatus(BatchStackState.WORKING, 0.0, 0, 5, 11.0)
    clock.advance(5.5)  # 2 frames done
    assert device.batch_stack_status() == BatchStackStatus(BatchStackState.WORKING, 40.0, 2, 5, 5.5)
    clock.advance(5.5)
    done = device.batch_stack_status()
    assert done is not None
    assert done.state == "complete"
    assert (done.percent, done.stacked_img, done.total_img, done.remaining_sec) == (100, 5, 5, 0)
    assert done.output_folder == "MyWorks/IC 434"
    # Completed at 07:00:11 Vienna time (the fake clock's 06:00:11 UTC).
    stem = "DSO_Stacked_5_IC 434_10.0s_20260228_070011"
    assert done.output_files == (f"{stem}.fit", f"{stem}_thn.jpg")
    names = {f.name for f in device.list_files("IC 434")}
    assert names == {f"{stem}.fit", f"{stem}.jpg", f"{stem}_thn.jpg"}


def test_stack_header_has_three_planes_and_mean_pointing(
    device: FakeSeestar, clock: FakeClock
) -> None:
    fit, _ = stacked(device, clock)
    header = device.read_header(fit)
    assert (header["NAXIS"], header["NAXIS3"]) == (3, 3)
    assert header["STACKCNT"] == 3
    assert header["TOTALEXP"] == 30.0
    assert header["EXPTIME"] == 10.0
    assert header["RA"] == pytest.approx(85.26)
    assert header["DEC"] == pytest.approx(-2.46)
    assert header["DATE-OBS"] == "2026-02-27T20:22:40.000000"
    for key, value in {
        "FILTER": "LP",
        "OBJECT": "IC 434",
        "INSTRUME": "Seestar S50",
        "TELESCOP": device.telescope,
        "CREATOR": "ZWO Seestar S50",
    }.items():
        assert header[key] == value


def test_mean_ra_wraps_around_zero(device: FakeSeestar, clock: FakeClock) -> None:
    paths = [
        add_sub(device, "Wrap", 10.0, "LP", START + timedelta(seconds=13 * i), ra, 10.0)
        for i, ra in enumerate((359.9, 0.1))
    ]
    status = run_to_end(device, clock, paths, "MyWorks/Wrap_sub")
    assert status.output_fit is not None
    assert device.read_header(status.output_fit)["RA"] == pytest.approx(0.0, abs=1e-6)


def test_state_is_stale_until_cleared(device: FakeSeestar, clock: FakeClock) -> None:
    status = run_to_end(device, clock, lay(device, 2))
    clock.advance(86400)
    assert device.batch_stack_status() == status
    device.clear_batch_stack()
    assert device.batch_stack_status() is None


def test_second_start_while_working_is_259(device: FakeSeestar) -> None:
    paths = lay(device, 3)
    device.configure_batch_stack("MyWorks/IC 434_sub", paths)
    device.start_batch_stack()
    with pytest.raises(SeestarRpcError) as caught:
        device.start_batch_stack()
    assert (caught.value.code, caught.value.message) == (259, "stack is already running")


def test_clear_does_not_hide_a_working_stack(device: FakeSeestar) -> None:
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 3))
    device.start_batch_stack()
    device.clear_batch_stack()
    status = device.batch_stack_status()
    assert status is not None
    assert status.state == "working"


def test_start_after_a_finished_stack_is_allowed(device: FakeSeestar, clock: FakeClock) -> None:
    paths = lay(device, 3)
    run_to_end(device, clock, paths)
    device.configure_batch_stack("MyWorks/IC 434_sub", paths[:2])
    device.start_batch_stack()
    status = device.batch_stack_status()
    assert status is not None
    assert (status.state, status.total_img) == ("working", 2)


def test_stop_cancels_and_writes_nothing(device: FakeSeestar, clock: FakeClock) -> None:
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 5))
    device.start_batch_stack()
    clock.advance(3.5)
    device.stop_batch_stack()
    clock.advance(3600)
    status = device.batch_stack_status()
    assert status is not None
    assert (status.state, status.stacked_img, status.total_img) == ("cancel", 1, 5)
    assert device.list_files("IC 434") == []


def test_stop_when_idle_or_finished_is_harmless(device: FakeSeestar, clock: FakeClock) -> None:
    device.stop_batch_stack()
    assert device.batch_stack_status() is None
    done = run_to_end(device, clock, lay(device, 2))
    device.stop_batch_stack()
    assert device.batch_stack_status() == done


def test_bare_names_on_775_store_nothing_and_fail_267(
    device: FakeSeestar, clock: FakeClock
) -> None:
    paths = lay(device, 3)
    device.configure_batch_stack("MyWorks/IC 434_sub", [p.rsplit("/", 1)[1] for p in paths])
    assert device.batch_stack_setting() == {"path": "MyWorks/IC 434_sub", "files": []}
    device.start_batch_stack()
    status = device.batch_stack_status()
    assert status is not None
    assert (status.state, status.error, status.code) == ("fail", "no image", 267)
    assert device.list_files("IC 434") == []


def test_bare_names_work_on_older_firmware(clock: FakeClock) -> None:
    device = make_device(clock, firmware="7.06")
    paths = lay(device, 3)
    status = run_to_end(device, clock, [p.rsplit("/", 1)[1] for p in paths])
    assert (status.state, status.stacked_img) == ("complete", 3)
    assert device.firmware_ver_int == 2706


def test_paths_that_do_not_exist_are_dropped(device: FakeSeestar) -> None:
    paths = lay(device, 2)
    device.configure_batch_stack("IC 434_sub", [*paths, "MyWorks/IC 434_sub/Light_gone.fit"])
    assert device.batch_stack_setting()["files"] == [{"name": p} for p in paths]


def test_blank_state_right_after_start(clock: FakeClock) -> None:
    device = make_device(clock, start_blank_polls=2, seconds_per_frame=1.0)
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 3))
    device.start_batch_stack()
    states = []
    for _ in range(3):
        status = device.batch_stack_status()
        assert status is not None
        states.append(status.state)
    assert states == ["", "", "working"]


def test_status_follows_the_clock_and_never_goes_back(
    device: FakeSeestar, clock: FakeClock
) -> None:
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 10))
    device.start_batch_stack()
    readings = []
    for _ in range(30):
        status = device.batch_stack_status()
        assert status is not None
        readings.append(status)
        clock.advance(1.0)
    percents = [r.percent for r in readings]
    assert percents == sorted(percents)
    assert readings[-1].state == "complete"
    assert all(r.state == "working" for r in readings[:21])


# --- faults --------------------------------------------------------------------------------------


def test_refuse_start(device: FakeSeestar) -> None:
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 2))
    device.faults.refuse_start = 207
    with pytest.raises(SeestarRpcError) as caught:
        device.start_batch_stack()
    assert (caught.value.method, caught.value.code) == ("start_batch_stack", 207)
    assert device.batch_stack_status() is None


def test_fail_stack(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.fail_stack = ("stack error, transform failed", 264)
    status = run_to_end(device, clock, lay(device, 4))
    assert (status.state, status.error, status.code) == (
        "fail",
        "stack error, transform failed",
        264,
    )
    assert status.stacked_img == 2
    assert device.list_files("IC 434") == []


def test_rejected_frames_give_a_smaller_n(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.reject_frames = 2
    status = run_to_end(device, clock, lay(device, 5))
    assert (status.state, status.stacked_img, status.total_img) == ("complete", 3, 5)
    assert status.output_fit is not None
    parsed = parse_stacked_name(status.output_fit.rsplit("/", 1)[1])
    assert parsed is not None
    assert parsed.frames == 3
    assert device.read_header(status.output_fit)["STACKCNT"] == 3


def test_all_frames_rejected_fails_263(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.reject_frames = 9
    status = run_to_end(device, clock, lay(device, 3))
    assert (status.state, status.code) == ("fail", 263)


def test_stuck_stays_working_until_stopped(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.stuck = True
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 4))
    device.start_batch_stack()
    clock.advance(10 * 86400)
    status = device.batch_stack_status()
    assert status is not None
    assert (status.state, status.stacked_img) == ("working", 2)
    device.stop_batch_stack()
    stopped = device.batch_stack_status()
    assert stopped is not None
    assert stopped.state == "cancel"


@pytest.mark.parametrize(
    ("rule", "fit_fails", "companion_fails"),
    [
        (FIT_FILES, True, False),
        (COMPANION_FILES, False, True),
        (lambda path: path.endswith("_thn.jpg"), False, True),
    ],
)
def test_rename_faults(
    device: FakeSeestar,
    clock: FakeClock,
    rule: frozenset[str] | Callable[[str], bool],
    fit_fails: bool,
    companion_fails: bool,
) -> None:
    fit, status = stacked(device, clock)
    device.faults.rename_fails = rule
    thn = f"{status.output_folder}/{status.output_files[1]}"
    for path, fails in ((fit, fit_fails), (thn, companion_fails)):
        if fails:
            with pytest.raises(StorageError, match="injected"):
                device.rename(path, "CrowdSky_" + path.rsplit("/", 1)[1])
        else:
            device.rename(path, "CrowdSky_" + path.rsplit("/", 1)[1])


def test_drop_companions(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.drop_companions = True
    status = run_to_end(device, clock, lay(device, 2))
    assert len(status.output_files) == 1
    assert [f.name for f in device.list_files("IC 434")] == list(status.output_files)


def test_missing_radec(device: FakeSeestar, clock: FakeClock) -> None:
    device.faults.missing_radec = True
    fit, _ = stacked(device, clock)
    header = device.read_header(fit)
    assert "RA" not in header
    assert "DEC" not in header


def test_faults_are_off_by_default() -> None:
    faults = Faults()
    assert not faults.rename_refused("MyWorks/IC 434/DSO_Stacked_1_IC 434_10.0s_x.fit")
    assert (faults.refuse_start, faults.fail_stack, faults.reject_frames) == (None, None, 0)
    assert not faults.stuck
    assert not faults.drop_companions
    assert not faults.missing_radec


# --- events and the wire form --------------------------------------------------------------------


def test_events_on_each_change(device: FakeSeestar, clock: FakeClock) -> None:
    events: list[dict[str, Any]] = []
    unsubscribe = device.subscribe(events.append)
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 2))
    device.start_batch_stack()
    clock.advance(3.0)
    device.poll_events()
    clock.advance(60)
    device.poll_events()
    device.poll_events()
    assert [(e["Event"], e["state"], e.get("stacked_img")) for e in events] == [
        ("BatchStack", "working", 0),
        ("BatchStack", "working", 1),
        ("BatchStack", "complete", 2),
    ]
    assert events[-1]["output_file"]["path"] == "MyWorks/IC 434"
    unsubscribe()
    device.clear_batch_stack()
    device.start_batch_stack()
    device.poll_events()
    assert len(events) == 3


def test_app_state_entry(device: FakeSeestar, clock: FakeClock) -> None:
    assert device.batch_stack_app_state() is None
    run_to_end(device, clock, lay(device, 2))
    entry = device.batch_stack_app_state()
    assert entry is not None
    assert entry["state"] == "complete"
    assert entry["lapse_ms"] == 5000
    files = entry["output_file"]["files"]
    assert [f["name"].rsplit("_", 1)[-1] for f in files] == ["070005.fit", "thn.jpg"]
    assert files[0]["date"] == "2026-02-28 07:00:05"
    assert "route" not in entry  # real app-state entries carry none


def test_fail_entry_carries_error_and_code(device: FakeSeestar) -> None:
    device.start_batch_stack()  # nothing configured
    entry = device.batch_stack_app_state()
    assert entry is not None
    assert (entry["state"], entry["error"], entry["code"]) == ("fail", "no image", 267)


def test_concurrent_readers_see_one_consistent_stack(device: FakeSeestar, clock: FakeClock) -> None:
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 5))
    device.start_batch_stack()
    clock.advance(3600)
    seen: list[BatchStackStatus | None] = []

    def read() -> None:
        for _ in range(50):
            seen.append(device.batch_stack_status())

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1
    assert len(device.list_files("IC 434")) == 3


@given(
    frames=st.integers(1, 40),
    per_frame=st.floats(0.0, 5.0),
    setup=st.floats(0.0, 3.0),
    steps=st.lists(st.floats(0.0, 30.0), max_size=20),
)
def test_progress_is_monotonic_and_ends_complete(
    frames: int, per_frame: float, setup: float, steps: list[float]
) -> None:
    clock = FakeClock(MORNING)
    device = make_device(clock, seconds_per_frame=per_frame, setup_seconds=setup)
    paths = lay(device, frames)
    device.configure_batch_stack("MyWorks/IC 434_sub", paths)
    device.start_batch_stack()
    last = -1.0
    for step in steps:
        clock.advance(step)
        status = device.batch_stack_status()
        assert status is not None
        assert status.percent >= last
        assert status.stacked_img <= frames
        last = status.percent
    clock.advance(setup + per_frame * frames)
    status = device.batch_stack_status()
    assert status is not None
    assert (status.state, status.stacked_img) == ("complete", frames)


def test_entries_are_value_types() -> None:
    assert FileEntry("a.fit", 1) == FileEntry("a.fit", 1)


@pytest.mark.parametrize("firmware", ["4.27", "6.70", "7.32"])
def test_full_paths_on_older_firmware_store_nothing_and_fail_267(
    clock: FakeClock, firmware: str
) -> None:
    # The reference client's notes: 6.58 and 7.32 reject full paths with 267 (§4.1).
    device = make_device(clock, firmware=firmware)
    paths = lay(device, 3)
    device.configure_batch_stack("MyWorks/IC 434_sub", paths)
    assert device.batch_stack_setting() == {"path": "MyWorks/IC 434_sub", "files": []}
    device.start_batch_stack()
    status = device.batch_stack_status()
    assert status is not None
    assert (status.state, status.error, status.code) == ("fail", "no image", 267)


# --- working in the background (the simulator's device worker) ---------------------------------


def test_the_next_change_is_the_next_frame_or_the_end(
    device: FakeSeestar, clock: FakeClock
) -> None:
    assert device.seconds_to_next_change() is None  # nothing works
    device.configure_batch_stack("MyWorks/IC 434_sub", lay(device, 3))
    device.start_batch_stack()  # 1 s setup, then 2 s per frame: frames done at 3, 5 and 7 s
    assert device.seconds_to_next_change() == pytest.approx(3.0)
    clock.advance(4.0)
    assert device.seconds_to_next_change() == pytest.approx(1.0)
    clock.advance(2.5)
    assert device.seconds_to_next_change() == pytest.approx(0.5)
    clock.advance(1.0)
    device.poll_events()
    assert device.seconds_to_next_change() is None  # complete


class CountingStorage(MemoryStorage):
    """Memory storage that records every header read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def read_header(self, path: str) -> dict[str, Any]:
        self.reads.append(path)
        return super().read_header(path)


def test_a_stack_read_while_it_works_finishes_without_reading_its_frames_again(
    clock: FakeClock,
) -> None:
    storage = CountingStorage()
    device = make_device(clock, storage=storage, seconds_per_frame=2.0)
    paths = lay(device, 3)
    device.configure_batch_stack("MyWorks/IC 434_sub", paths)
    device.start_batch_stack()
    device.poll_events()  # the worker's look right after the start reads the frames
    assert sorted(storage.reads) == sorted(paths)
    storage.reads.clear()
    clock.advance(60)
    status = device.batch_stack_status()
    assert status is not None
    assert status.state is BatchStackState.COMPLETE
    assert storage.reads == []  # the finish only writes its output
    assert status.output_fit is not None
    assert device.read_header(status.output_fit)["STACKCNT"] == 3
