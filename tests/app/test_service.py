from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.app.service import Crowdsky
from crowdsky.domain import parse_crowdsky_name, parse_raw_name
from crowdsky.errors import DeviceTimeWarning, PlanError, UnknownTargetError

from .conftest import IC434, AddRun, spec_night

VIENNA = ZoneInfo("Europe/Vienna")


def crowdsky_files(device: FakeSeestar, folder: str = "IC 434") -> list[str]:
    return sorted(e.name for e in device.list_files(folder) if e.name.startswith("CrowdSky_"))


def raw_snapshot(device: FakeSeestar) -> dict[str, object]:
    """Every file in every *_sub folder with its header: what must never change."""
    snap: dict[str, object] = {}
    for folder in device.list_folders():
        if folder.name.endswith("_sub"):
            for entry in device.list_files(folder.name):
                path = f"MyWorks/{folder.name}/{entry.name}"
                header = dict(device.read_header(path)) if entry.name.endswith(".fit") else None
                snap[path] = (entry.size, header)
    return snap


def test_spec_dry_run_prints_the_spec_lines(
    app: Crowdsky, add_run: AddRun, progress: CollectingProgress, device: FakeSeestar
) -> None:
    spec_night(add_run)
    result = app.stack_blocks("IC 434", dry_run=True)
    assert progress.lines == [
        "Dry run: 3 blocks to stack for IC 434",
        "  21:15-21:30  33 frames x 10.0s (LP) = 330s",
        "  21:30-21:45  69 frames x 10.0s (LP) = 690s",
        "  21:45-22:00  56 frames x 10.0s (LP) = 560s",
    ]
    assert result["blocks_planned"] == 3
    assert result["blocks_stacked"] == 0
    assert crowdsky_files(device) == []


def test_stacking_prints_the_spec_lines_and_renames(
    app: Crowdsky, add_run: AddRun, progress: CollectingProgress, device: FakeSeestar
) -> None:
    spec_night(add_run)
    result = app.stack_blocks("IC 434")
    assert progress.lines == [
        "Stacking block 21:15-21:30 (33 frames, 10.0s LP)...",
        "  Complete: 33 frames stacked",
        "  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
        "Stacking block 21:30-21:45 (69 frames, 10.0s LP)...",
        "  Complete: 69 frames stacked",
        "  Renamed -> CrowdSky_69_IC 434_10.0s_LP_20260227.82_HP102265.fit",
        "Stacking block 21:45-22:00 (56 frames, 10.0s LP)...",
        "  Complete: 56 frames stacked",
        "  Renamed -> CrowdSky_56_IC 434_10.0s_LP_20260227.83_HP102265.fit",
    ]
    assert result["blocks_stacked"] == 3
    assert result["blocks_failed"] == 0
    names = crowdsky_files(device)
    # Each .fit came with its two JPEG companions, all renamed.
    assert len([n for n in names if n.endswith(".fit")]) == 3
    assert len([n for n in names if n.endswith("_thn.jpg")]) == 3
    assert not [e.name for e in device.list_files("IC 434") if e.name.startswith("DSO_Stacked")]


def test_rerun_is_idempotent(app: Crowdsky, add_run: AddRun, device: FakeSeestar) -> None:
    spec_night(add_run)
    app.stack_blocks("IC 434")
    before = crowdsky_files(device)
    again = app.stack_blocks("IC 434")
    assert again["blocks_stacked"] == 0
    assert again["blocks"] == []
    assert crowdsky_files(device) == before


def test_find_unstacked_blocks_returns_spec_dicts(app: Crowdsky, add_run: AddRun) -> None:
    spec_night(add_run)
    blocks = app.find_unstacked_blocks("IC 434")
    spans = [(b["block_start"].strftime("%H:%M"), b["block_end"].strftime("%H:%M")) for b in blocks]
    assert spans == [("21:15", "21:30"), ("21:30", "21:45"), ("21:45", "22:00")]
    assert [b["frame_count"] for b in blocks] == [33, 69, 56]
    assert {b["exposure"] for b in blocks} == {"10.0s"}
    assert {b["filter"] for b in blocks} == {"LP"}
    assert blocks[0]["block_start"].utcoffset() == timedelta(hours=1)
    assert blocks[0]["chunk_key"] == "20260227.81"


def test_min_exptime_skips_small_blocks(app: Crowdsky, add_run: AddRun) -> None:
    spec_night(add_run)
    add_run(datetime(2026, 2, 27, 21, 0, 5, tzinfo=UTC), 5)  # 50 s: below 240 s
    result = app.stack_blocks("IC 434", dry_run=True)
    assert result["blocks_skipped"] == 1
    assert result["blocks_planned"] == 3
    everything = app.stack_blocks("IC 434", dry_run=True, min_exptime=0)
    assert everything["blocks_planned"] == 4


def test_block_still_being_observed_is_left_alone(
    app: Crowdsky, add_run: AddRun, clock: FakeClock
) -> None:
    spec_night(add_run)
    clock.set(datetime(2026, 2, 27, 20, 58, tzinfo=UTC))  # the 20:45 UTC block ends at 21:00
    assert len(app.find_unstacked_blocks("IC 434")) == 2
    # A 10 s exposure started at 20:59:59 is only saved at about 21:00:13: wait for it.
    clock.set(datetime(2026, 2, 27, 21, 0, 20, tzinfo=UTC))
    assert len(app.find_unstacked_blocks("IC 434")) == 2
    clock.set(datetime(2026, 2, 27, 21, 0, 34, tzinfo=UTC))
    assert len(app.find_unstacked_blocks("IC 434")) == 3


def test_exposures_and_filters_make_separate_blocks(app: Crowdsky, add_run: AddRun) -> None:
    start = datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC)
    add_run(start, 30, cadence=20)
    add_run(start + timedelta(seconds=7), 20, exposure_s=20.0, cadence=31)
    add_run(start + timedelta(seconds=3), 30, filter="IRCUT", cadence=25)
    blocks = app.find_unstacked_blocks("IC 434")
    assert sorted((b["exposure"], b["filter"]) for b in blocks) == [
        ("10.0s", "IRCUT"),
        ("10.0s", "LP"),
        ("20.0s", "LP"),
    ]


def test_ten_minute_blocks_are_never_mistaken_for_covered(app: Crowdsky, add_run: AddRun) -> None:
    # The reference tool counted 15-minute slots whatever the block length, so the 22:10 block
    # looked covered once 22:00 was stacked (field notes, defect 3).
    add_run(datetime(2026, 2, 27, 21, 0, 3, tzinfo=UTC), 90, cadence=13)
    first = app.stack_blocks("IC 434", block_minutes=10, min_exptime=120)
    keys = [parse_crowdsky_name(f).chunk_key for f in first["files"]]  # type: ignore[union-attr]
    assert keys == ["20260227.126m10", "20260227.127m10"]
    assert app.stack_blocks("IC 434", block_minutes=10, min_exptime=120)["blocks_stacked"] == 0
    # 15-minute blocks of the same frames are different blocks with different keys.
    assert app.stack_blocks("IC 434", min_exptime=120)["blocks_stacked"] == 2


@pytest.mark.parametrize("minutes", [0, -15, 7, 25, 1441])
def test_bad_block_minutes_is_a_clear_error(app: Crowdsky, add_run: AddRun, minutes: int) -> None:
    spec_night(add_run)
    with pytest.raises(PlanError, match="1440"):
        app.stack_blocks("IC 434", block_minutes=minutes)


def test_negative_min_exptime_is_a_clear_error(app: Crowdsky, add_run: AddRun) -> None:
    spec_night(add_run)
    with pytest.raises(ValueError, match="min_exptime"):
        app.stack_blocks("IC 434", min_exptime=-1)


def test_unknown_target_names_the_known_ones(app: Crowdsky, add_run: AddRun) -> None:
    spec_night(add_run)
    with pytest.raises(UnknownTargetError, match="IC 434"):
        app.stack_blocks("IC434")


def test_list_targets_counts_raw_and_stacked(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    spec_night(add_run)
    add_run(datetime(2026, 2, 27, 22, 0, 5, tzinfo=UTC), 40, target="M 42", radec=(83.82, -5.39))
    app.stack_blocks("IC 434")
    targets = {t["target"]: t for t in app.list_targets()}
    assert targets["IC 434"]["raw_files"] == 158
    assert targets["IC 434"]["raw_exposure_s"] == 1580.0
    assert targets["IC 434"]["stacked_files"] == 3
    assert targets["M 42"]["raw_files"] == 40
    assert targets["M 42"]["stacked_files"] == 0


def test_stack_all_processes_every_target(
    app: Crowdsky, add_run: AddRun, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    add_run(datetime(2026, 2, 27, 22, 0, 5, tzinfo=UTC), 40, target="M 42", radec=(83.82, -5.39))
    result = app.stack_all()
    assert result["targets_processed"] == 2
    assert result["total_blocks_stacked"] == 4
    assert result["total_blocks_failed"] == 0
    assert "  Renamed -> CrowdSky_40_M 42_10.0s_LP_20260227.88_HP107383.fit" in progress.lines
    assert app.stack_all()["total_blocks_stacked"] == 0


def test_raw_frames_never_change(app: Crowdsky, add_run: AddRun, device: FakeSeestar) -> None:
    spec_night(add_run)
    before = raw_snapshot(device)
    app.stack_all()
    app.purge_crowdsky_stacks()
    app.stack_all()
    assert raw_snapshot(device) == before


def test_purge_deletes_only_crowdsky_files(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    spec_night(add_run)
    app.stack_blocks("IC 434")
    device.faults.fail_stack = ("stack error, too few stars", 263)
    result = app.purge_crowdsky_stacks("IC 434", dry_run=True)
    assert len(result["files_deleted"]) == 9
    assert len(crowdsky_files(device)) == 9  # dry run changed nothing
    result = app.purge_crowdsky_stacks("IC 434")
    assert len(result["files_deleted"]) == 9
    assert crowdsky_files(device) == []
    assert len(app.find_unstacked_blocks("IC 434")) == 3


def test_purge_never_touches_sub_folders_even_with_crowdsky_names(
    app: Crowdsky, add_run: AddRun, device: FakeSeestar
) -> None:
    spec_night(add_run)
    result = app.purge_crowdsky_stacks("IC 434_sub")
    assert result["files_deleted"] == []


def test_device_zone_is_used_not_the_host_zone(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    # A New York host must get the same chunk keys as a Vienna host (field notes, defect 1).
    spec_night(add_run)
    for host in (ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo"), UTC):
        app = Crowdsky(device, clock, progress, host_zone=host)
        keys = [b["chunk_key"] for b in app.find_unstacked_blocks("IC 434")]
        assert keys == ["20260227.81", "20260227.82", "20260227.83"]


def test_zone_from_headers_when_the_device_reports_none(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    quiet = FakeSeestar(clock=clock, zone="Europe/Vienna", report_zone=False)
    spec_night(lambda *a, **k: add_run(*a, on=quiet, **k))  # type: ignore[arg-type]
    app = Crowdsky(quiet, clock, progress, host_zone=ZoneInfo("America/New_York"))
    blocks = app.find_unstacked_blocks("IC 434")
    assert [b["chunk_key"] for b in blocks] == ["20260227.81", "20260227.82", "20260227.83"]
    assert blocks[0]["block_start"].strftime("%H:%M") == "21:15"


def test_a_wrong_device_zone_is_overruled_by_the_headers(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    # Frames named in Vienna time, but the device claims to be in New York.
    device = FakeSeestar(clock=clock, zone="Europe/Vienna")
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    device.zone = "America/New_York"
    app = Crowdsky(device, clock, progress, host_zone=UTC)
    with pytest.warns(DeviceTimeWarning, match="disagree"):
        blocks = app.find_unstacked_blocks("IC 434")
    assert [b["chunk_key"] for b in blocks] == ["20260227.81", "20260227.82", "20260227.83"]


def test_a_tz_override_that_the_headers_contradict_gives_way_with_a_warning(
    device: FakeSeestar, clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    spec_night(add_run)
    app = Crowdsky(device, clock, progress, tz=ZoneInfo("UTC"))
    with pytest.warns(DeviceTimeWarning, match="contradict the override time zone"):
        keys = [b["chunk_key"] for b in app.find_unstacked_blocks("IC 434")]
    # DATE-OBS is UTC whatever the override says: the frames keep their true blocks.
    assert keys == ["20260227.81", "20260227.82", "20260227.83"]


def test_a_tz_override_is_used_without_reading_the_night_samples(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    device = CountingReads(clock=clock, zone="Europe/Vienna")
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    app = Crowdsky(device, clock, progress, tz=ZoneInfo("Europe/Vienna"))
    keys = [b["chunk_key"] for b in app.find_unstacked_blocks("IC 434")]
    assert keys == ["20260227.81", "20260227.82", "20260227.83"]
    boundary_reads = len(device.reads)
    assert boundary_reads < 20  # only frames within 20 s of a boundary, no night samples


def test_dst_fall_back_night_groups_by_true_utc(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    # Vienna, 2025-10-26: 02:00-03:00 local happens twice (00:00-01:00 and 01:00-02:00 UTC).
    device = FakeSeestar(clock=clock, zone="Europe/Vienna")
    clock.set(datetime(2025, 10, 26, 12, 0, tzinfo=UTC))
    first = add_run(datetime(2025, 10, 26, 0, 15, 5, tzinfo=UTC), 30, on=device, cadence=25)
    # Offset by a few seconds: identical wall-clock names would overwrite each other on the device.
    second = add_run(datetime(2025, 10, 26, 1, 15, 17, tzinfo=UTC), 30, on=device, cadence=25)
    names = {parse_raw_name(p.rsplit("/", 1)[-1]).local_time.hour for p in first + second}  # type: ignore[union-attr]
    assert names == {2}  # both passes look like 02:15-02:30 local
    app = Crowdsky(device, clock, progress, host_zone=UTC)
    blocks = app.find_unstacked_blocks("IC 434")
    assert [(b["chunk_key"], b["frame_count"]) for b in blocks] == [
        ("20251026.01", 30),
        ("20251026.05", 30),
    ]
    assert [b["block_start"].utcoffset() for b in blocks] == [
        timedelta(hours=2),
        timedelta(hours=1),
    ]


def test_clock_report_shows_device_beside_host(
    device: FakeSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    app = Crowdsky(device, clock, progress, host_zone=ZoneInfo("America/New_York"))
    report = app.clock_report()
    assert report["device_zone"] == "Europe/Vienna"
    assert report["device_time"] == datetime(2026, 2, 28, 7, 0)  # 06:00 UTC in Vienna
    assert report["host_time"].hour == 1  # 06:00 UTC in New York
    assert report["drift_s"] == 0
    assert (report["device_model"], report["firmware"], report["firmware_int"]) == (
        "Seestar S50", "7.75", 2775,
    )  # fmt: skip


class _NoFirmware:
    """A Seestar without the optional firmware report: only what the clock report needs."""

    def __init__(self, device: FakeSeestar) -> None:
        self.device_time = device.device_time


def test_clock_report_without_a_firmware_report(
    device: FakeSeestar, clock: FakeClock, progress: CollectingProgress
) -> None:
    app = Crowdsky(_NoFirmware(device), clock, progress)  # type: ignore[arg-type]
    report = app.clock_report()
    assert report["device_zone"] == "Europe/Vienna"
    assert (report["device_model"], report["firmware"], report["firmware_int"]) == (None,) * 3


class CountingReads(FakeSeestar):
    """Counts header reads (the costly part on a real device: one HTTP request each)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.reads: list[str] = []

    def read_header(self, path: str) -> dict[str, object]:
        self.reads.append(path)
        return super().read_header(path)


def test_frames_near_a_boundary_are_placed_by_their_date_obs(
    clock: FakeClock, progress: CollectingProgress
) -> None:
    device = CountingReads(clock=clock, zone="Europe/Vienna")
    start = datetime(2026, 2, 27, 20, 14, 50, tzinfo=UTC)
    # A slow save: named 30 s after its exposure started, so its name alone suggests 20:15:16.
    late = add_sub(device, "IC 434", 10.0, "LP", start, *IC434, save_delay_s=20.0)
    for i in range(1, 30):
        add_sub(device, "IC 434", 10.0, "LP", start + timedelta(seconds=12 * i), *IC434)
    app = Crowdsky(device, clock, progress, host_zone=UTC)
    blocks = app.find_unstacked_blocks("IC 434", min_exptime=0)
    early = [b for b in blocks if b["chunk_key"] == "20260227.80"]
    assert [b["files"] for b in early] == [[late.rsplit("/", 1)[-1]]]
    assert late in device.reads


def test_a_rerun_over_stacked_nights_reads_almost_no_headers(
    clock: FakeClock, add_run: AddRun, progress: CollectingProgress
) -> None:
    device = CountingReads(clock=clock, zone="Europe/Vienna")
    spec_night(lambda *a, **k: add_run(*a, on=device, **k))  # type: ignore[arg-type]
    app = Crowdsky(device, clock, progress, host_zone=UTC)
    app.stack_blocks("IC 434")
    device.reads.clear()
    assert app.stack_blocks("IC 434")["blocks"] == []
    raw_reads = [p for p in device.reads if "_sub/" in p]
    assert len(raw_reads) <= 2  # the night's first and last frame, to check the zone
