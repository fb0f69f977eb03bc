"""Nights laid down on the device model: local names, UTC headers, DST, and the spec's demo."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import attrs
import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.night import (
    DEMO_TARGETS,
    Site,
    Target,
    add_sub,
    demo_seestar,
    lay_down_night,
    lay_down_session,
)
from crowdsky.app.ports import DeviceTime
from crowdsky.app.service import Crowdsky
from crowdsky.domain import RawFrame, chunk_key, frame_utc, header_offset, parse_raw_name
from crowdsky.domain.headers import parse_date_obs
from crowdsky.errors import PlanError

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def device_in(zone: str) -> FakeSeestar:
    return FakeSeestar(clock=FakeClock(NOW), zone=zone)


def frames_of(device: FakeSeestar, paths: list[str]) -> list[RawFrame]:
    """The laid subs as the planner sees them, with the DATE-OBS of their headers."""
    frames = []
    for path in paths:
        frame = parse_raw_name(path.rsplit("/", 1)[1])
        assert frame is not None, path
        date_obs = parse_date_obs(device.read_header(path)["DATE-OBS"])
        frames.append(attrs.evolve(frame, date_obs=date_obs))
    return frames


def test_the_real_s50_pairing_of_name_and_date_obs() -> None:
    """Protocol reference §3.5: Texas (CDT), DATE-OBS 06:01:02.38 UTC, named 01:01:16 local."""
    device = device_in("America/Chicago")
    date_obs = datetime(2025, 9, 29, 6, 1, 2, 382641, tzinfo=UTC)
    path = add_sub(
        device, "NGC 281", 10.0, "LP", date_obs, 13.633335, 56.775833, site=Site(30.5, -97.74)
    )
    assert path == "MyWorks/NGC 281_sub/Light_NGC 281_10.0s_LP_20250929-010116.fit"
    header = device.read_header(path)
    assert header["DATE-OBS"] == "2025-09-29T06:01:02.382641"
    assert (header["SITELAT"], header["SITELONG"]) == (30.5, -97.74)


def test_sub_header_carries_the_section_6_cards() -> None:
    device = device_in("Europe/Vienna")
    path = add_sub(device, Target("M 81", 148.89, 69.07), 20.0, "IRCUT", NOW)
    header = device.read_header(path)
    expected = {
        "OBJECT": "M 81",
        "RA": 148.89,
        "DEC": 69.07,
        "EXPTIME": 20.0,
        "EXPOSURE": 20.0,
        "FILTER": "IRCUT",
        "DATE-OBS": "2026-06-01T00:00:00.000000",
        "INSTRUME": "Seestar S50",
        "TELESCOP": device.telescope,
        "CREATOR": "ZWO Seestar S50",
        "IMAGETYP": "Light",
        "GAIN": 80,
        "BAYERPAT": "GRBG",
        "NAXIS": 2,
    }
    assert {key: header[key] for key in expected} == expected
    assert "SITELAT" in header
    assert "SITELONG" in header


def test_companions_are_laid_beside_each_sub() -> None:
    device = device_in("Europe/Vienna")
    add_sub(device, "M 42", 10.0, "LP", NOW, 83.82, -5.39)
    assert [f.name for f in device.list_files("M 42_sub")] == [
        "Light_M 42_10.0s_LP_20260601-020014.fit",
        "Light_M 42_10.0s_LP_20260601-020014.jpg",
        "Light_M 42_10.0s_LP_20260601-020014_thn.jpg",
    ]
    add_sub(device, "M 42", 10.0, "LP", NOW + timedelta(minutes=1), companions=False)
    assert len(device.list_files("M 42_sub")) == 4


def test_naive_date_obs_is_refused() -> None:
    with pytest.raises(PlanError):
        add_sub(device_in("UTC"), "M 42", 10.0, "LP", datetime(2026, 1, 1))


def test_session_has_exact_count_cadence_and_gaps() -> None:
    device = device_in("Europe/Vienna")
    first = datetime(2026, 2, 27, 20, 0, tzinfo=UTC)
    paths = lay_down_session(
        device, DEMO_TARGETS[0], first_date_obs=first, frames=20, gaps={10: 300.0}
    )
    assert len(paths) == 20
    starts = [f.date_obs for f in frames_of(device, paths)]
    assert all(s is not None for s in starts)
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]  # type: ignore[operator]
    assert steps[9] == pytest.approx(313.0, abs=1.0)
    assert all(step == pytest.approx(13.0, abs=1.0) for i, step in enumerate(steps) if i != 9)


@pytest.mark.parametrize(
    ("zone", "evening", "repeated_hour"),
    [
        ("Europe/Vienna", datetime(2025, 10, 25, 23, 0), 2),
        ("America/New_York", datetime(2025, 11, 1, 23, 0), 1),
    ],
)
def test_fall_back_night_repeats_an_hour_of_names(
    zone: str, evening: datetime, repeated_hour: int
) -> None:
    device = device_in(zone)
    target = Target("M 81", 148.89, 69.07)
    paths = lay_down_night(
        device,
        start_local=evening,
        hours=5,
        targets=[target],
        exposures=(10.0,),
        cloud_gaps=0,
        meridian_flip_s=0,
    )
    frames = frames_of(device, paths)
    assert len({f.name for f in frames}) == len(frames)  # no frame was overwritten
    in_hour = [f for f in frames if f.local_time.hour == repeated_hour]
    offsets = Counter(header_offset(f.local_time, f.date_obs) for f in in_hour)  # type: ignore[arg-type]
    # Two passes through the same-looking hour, one UTC hour apart (summer, then winter time).
    assert len(offsets) == 2
    assert all(count > 200 for count in offsets.values())
    tz = ZoneInfo(zone)
    for frame in frames:
        assert frame.date_obs is not None
        # The header settles every frame, the second pass of the repeated hour too.
        assert frame_utc(frame, tz) == frame.date_obs
        # Without it the name (read as the first pass) less exposure and save delay is the
        # exposure start to the second, and an hour early in the second pass.
        estimate = frame_utc(attrs.evolve(frame, date_obs=None), tz)
        lag = frame.date_obs.replace(microsecond=0) - estimate
        winter = header_offset(frame.local_time, frame.date_obs) == min(offsets)
        second_pass = frame.local_time.hour == repeated_hour and winter
        assert lag == (timedelta(hours=1) if second_pass else timedelta(0))


def test_spring_forward_night_skips_an_hour_of_names() -> None:
    device = device_in("Europe/Vienna")
    paths = lay_down_night(
        device, start_local=datetime(2026, 3, 28, 23, 0), hours=5, targets=DEMO_TARGETS[2:]
    )
    frames = frames_of(device, paths)
    assert not [f for f in frames if f.local_time.date().day == 29 and f.local_time.hour == 2]
    assert [f for f in frames if f.local_time.hour == 3]


def test_night_is_deterministic_and_uses_the_choices_given() -> None:
    first, second, other = (device_in("Europe/Vienna") for _ in range(3))
    options = {"start_local": datetime(2026, 1, 10, 19, 0), "hours": 3.0, "seed": 7}
    paths = lay_down_night(first, **options)  # type: ignore[arg-type]
    assert paths == lay_down_night(second, **options)  # type: ignore[arg-type]
    assert paths != lay_down_night(other, **{**options, "seed": 8})  # type: ignore[arg-type]
    frames = frames_of(first, paths)
    assert {f.exposure_s for f in frames} <= {10.0, 20.0}
    assert {f.filter for f in frames} <= {"LP", "IRCUT"}
    assert {f.target for f in frames} == {"IC 434", "M 42", "M 81"}


def test_night_has_cloud_and_meridian_gaps() -> None:
    device = device_in("Europe/Vienna")
    paths = lay_down_night(
        device,
        start_local=datetime(2026, 1, 10, 19, 0),
        hours=2.0,
        targets=DEMO_TARGETS[:1],
        exposures=(10.0,),
        cloud_gaps=2,
    )
    starts = [f.date_obs for f in frames_of(device, paths)]
    steps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]  # type: ignore[operator]
    assert sum(1 for s in steps if s > 170) >= 2
    assert len(paths) < 2 * 3600 / 13


# --- the demo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> FakeSeestar:
    return demo_seestar()


def service(device: FakeSeestar) -> tuple[Crowdsky, CollectingProgress]:
    progress = CollectingProgress()
    return Crowdsky(device, device.clock, progress), progress


def test_demo_lists_the_spec_targets(demo: FakeSeestar) -> None:
    app, _ = service(demo)
    rows = [(t["target"], t["raw_files"], t["stacked_files"]) for t in app.list_targets()]
    assert rows == [("IC 434", 158, 1), ("M 42", 216, 1), ("M 81", 2053, 1)]


def test_demo_plans_the_spec_blocks(demo: FakeSeestar) -> None:
    app, progress = service(demo)
    blocks = app.find_unstacked_blocks("IC 434")
    assert [
        (b["block_start"].strftime("%H:%M"), b["frame_count"], b["chunk_key"]) for b in blocks
    ] == [("21:15", 33, "20260227.81"), ("21:30", 69, "20260227.82"), ("21:45", 56, "20260227.83")]
    app.stack_blocks("IC 434", dry_run=True)
    assert progress.lines == [
        "Dry run: 3 blocks to stack for IC 434",
        "  21:15-21:30  33 frames x 10.0s (LP) = 330s",
        "  21:30-21:45  69 frames x 10.0s (LP) = 690s",
        "  21:45-22:00  56 frames x 10.0s (LP) = 560s",
    ]


def test_demo_m42_first_block_is_already_covered(demo: FakeSeestar) -> None:
    app, _ = service(demo)
    [crowd] = [f.name for f in demo.list_files("M 42") if f.name.endswith(".fit")]
    assert crowd.startswith("CrowdSky_")
    assert crowd.endswith("_20260227.77_HP107383.fit")
    # The server keys a stack by its DATE-OBS (the earliest exposure start): the same block.
    stacked_from = parse_date_obs(demo.read_header(f"MyWorks/M 42/{crowd}")["DATE-OBS"])
    assert stacked_from is not None
    assert chunk_key(stacked_from) == "20260227.77"
    keys = [b["chunk_key"] for b in app.find_unstacked_blocks("M 42", min_exptime=0)]
    assert "20260227.77" not in keys
    assert keys


def test_demo_stacks_the_spec_night() -> None:
    device = demo_seestar(seconds_per_frame=1.5, setup_seconds=2.0)
    app, progress = service(device)
    result = app.stack_blocks("IC 434")
    assert result["blocks_stacked"] == 3
    assert result["files"] == [
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
        "CrowdSky_69_IC 434_10.0s_LP_20260227.82_HP102265.fit",
        "CrowdSky_56_IC 434_10.0s_LP_20260227.83_HP102265.fit",
    ]
    assert progress.lines[:3] == [
        "Stacking block 21:15-21:30 (33 frames, 10.0s LP)...",
        "  Complete: 33 frames stacked",
        "  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
    ]
    assert app.find_unstacked_blocks("IC 434") == []


def test_demo_is_deterministic(demo: FakeSeestar) -> None:
    again = demo_seestar()
    assert again.list_folders() == demo.list_folders()
    name = demo.list_files("M 81_sub")[501].name
    assert again.list_files("M 81_sub")[501].name == name
    assert again.read_header(f"MyWorks/M 81_sub/{name}") == demo.read_header(
        f"MyWorks/M 81_sub/{name}"
    )


def test_demo_clock_starts_after_the_last_sub(demo: FakeSeestar) -> None:
    last = max(
        f.local_time
        for f in (parse_raw_name(e.name) for e in demo.list_files("M 81_sub"))
        if f is not None
    )
    local_now = demo.device_time().local
    assert local_now is not None
    assert local_now - last > timedelta(hours=2)


def test_demo_takes_device_options() -> None:
    device = demo_seestar(now=datetime(2026, 3, 1, tzinfo=UTC), report_zone=False, firmware="7.32")
    assert device.device_time() == DeviceTime(datetime(2026, 3, 1, 1, 0), None)
    assert device.firmware_ver_int == 2732
