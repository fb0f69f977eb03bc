"""The device's zone: DST wall times, the choice of zone and headers that are no clock reading."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import (
    SAVE_DELAY_S,
    NightlyOffsets,
    RawFrame,
    chunk_key,
    decide_zone,
    frame_utc,
    local_to_utc,
    needs_date_obs,
    night_samples,
    parse_raw_name,
)
from crowdsky.errors import PlanError
from strategies import NAMED_ZONES, frame_started_at, raw_name

VIENNA = ZoneInfo("Europe/Vienna")
NEW_YORK = ZoneInfo("America/New_York")
# A 10 s sub is named when it is saved, 14 s after its exposure started (its DATE-OBS).
SAVE_LAG = timedelta(seconds=10.0 + SAVE_DELAY_S)


def frame_at(local_time: datetime, target: str = "IC 434") -> RawFrame:
    frame = parse_raw_name(raw_name(target, 10.0, "LP", local_time))
    assert frame is not None
    return frame


def observed(frame: RawFrame, offset: timedelta) -> RawFrame:
    """The frame with the DATE-OBS a device running ``offset`` ahead of UTC writes."""
    return attrs.evolve(frame, date_obs=(frame.local_time - offset - SAVE_LAG).replace(tzinfo=UTC))


# --- DST -----------------------------------------------------------------------------------------


def _transitions(tz: tzinfo, year: int) -> list[datetime]:
    """UTC instants in ``year`` at which ``tz`` changes its offset (found by a half-hour scan)."""
    found = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    before = moment.astimezone(tz).utcoffset()
    while moment.year == year:
        moment += timedelta(minutes=15)
        now = moment.astimezone(tz).utcoffset()
        if now != before:
            found.append(moment)
            before = now
    return found


_TRANSITIONS = [
    (name, instant) for name in NAMED_ZONES for instant in _transitions(ZoneInfo(name), 2025)
]


def _wall_time_occurrences(local: datetime, tz: tzinfo) -> int:
    """How many UTC instants show ``local`` on the wall in ``tz`` (1 except around DST)."""
    offsets = {
        (local + timedelta(hours=h)).replace(tzinfo=tz).utcoffset() for h in range(-26, 27, 2)
    }
    hits = set()
    for offset in offsets:
        assert offset is not None
        utc = (local - offset).replace(tzinfo=UTC)
        if utc.astimezone(tz).replace(tzinfo=None) == local:
            hits.add(utc)
    return len(hits)


@given(st.sampled_from(_TRANSITIONS), st.integers(min_value=-180 * 60, max_value=180 * 60))
def test_needs_date_obs_flags_exactly_repeated_and_skipped_wall_times(
    transition: tuple[str, datetime], seconds: int
) -> None:
    name, instant = transition
    tz = ZoneInfo(name)
    local = (instant.astimezone(tz) + timedelta(seconds=seconds)).replace(tzinfo=None)
    flagged = needs_date_obs([frame_at(local)], tz)
    assert bool(flagged) == (_wall_time_occurrences(local, tz) != 1)


def test_transitions_were_found() -> None:
    zones = {name for name, _ in _TRANSITIONS}
    assert zones == {"Europe/Vienna", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham"}


@pytest.mark.parametrize(
    ("zone", "local", "flagged"),
    [
        ("Europe/Vienna", datetime(2025, 10, 26, 1, 59, 59), False),
        ("Europe/Vienna", datetime(2025, 10, 26, 2, 0, 0), True),
        ("Europe/Vienna", datetime(2025, 10, 26, 2, 20, 0), True),
        ("Europe/Vienna", datetime(2025, 10, 26, 2, 59, 59), True),
        ("Europe/Vienna", datetime(2025, 10, 26, 3, 0, 0), False),
        ("Europe/Vienna", datetime(2025, 3, 30, 1, 59, 59), False),
        ("Europe/Vienna", datetime(2025, 3, 30, 2, 30, 0), True),
        ("Europe/Vienna", datetime(2025, 3, 30, 3, 0, 0), False),
        ("Europe/Vienna", datetime(2025, 10, 27, 2, 20, 0), False),
        ("Australia/Lord_Howe", datetime(2025, 4, 6, 1, 45, 0), True),
        ("Australia/Lord_Howe", datetime(2025, 4, 6, 2, 0, 0), False),
        ("Australia/Lord_Howe", datetime(2025, 10, 5, 2, 15, 0), True),
        ("Australia/Lord_Howe", datetime(2025, 10, 5, 2, 30, 0), False),
        ("Asia/Kathmandu", datetime(2025, 10, 26, 2, 20, 0), False),
        ("UTC", datetime(2025, 10, 26, 2, 20, 0), False),
    ],
)
def test_needs_date_obs_examples(zone: str, local: datetime, flagged: bool) -> None:
    assert bool(needs_date_obs([frame_at(local)], ZoneInfo(zone))) == flagged


def test_a_frame_whose_date_obs_is_known_is_never_flagged() -> None:
    frame = observed(frame_at(datetime(2025, 10, 26, 2, 20)), timedelta(hours=1))
    assert needs_date_obs([frame], VIENNA) == ()


def test_both_passes_of_a_fall_back_hour_get_their_own_utc_time() -> None:
    """Vienna, 2025-10-26: 02:20 happens at 00:20 UTC (CEST) and again at 01:20 UTC (CET).

    Two 10 s subs started at 02:20:00 on each pass are both named 02:20:14.
    """
    local = datetime(2025, 10, 26, 2, 20, 14)
    first = observed(frame_at(local), timedelta(hours=2))
    second = observed(frame_at(local), timedelta(hours=1))
    assert first.name == second.name
    assert frame_utc(first, VIENNA) == datetime(2025, 10, 26, 0, 20, 0, tzinfo=UTC)
    assert frame_utc(second, VIENNA) == datetime(2025, 10, 26, 1, 20, 0, tzinfo=UTC)
    assert [chunk_key(frame_utc(f, VIENNA)) for f in (first, second)] == [
        "20251026.01",
        "20251026.05",
    ]
    assert local_to_utc(local, VIENNA, fold=1) - local_to_utc(local, VIENNA) == timedelta(hours=1)


# --- choosing the zone ---------------------------------------------------------------------------


def exposure_starts(start: datetime, count: int, step: timedelta) -> list[datetime]:
    return [start + i * step for i in range(count)]


def night_of_frames(start: datetime, count: int, step: timedelta) -> list[RawFrame]:
    """10 s subs whose exposures start every ``step`` from device time ``start``."""
    return [frame_started_at(t) for t in exposure_starts(start, count, step)]


FEB_STARTS = exposure_starts(datetime(2026, 2, 27, 21, 15, 3), 40, timedelta(seconds=67))
FEB_NIGHT = [frame_started_at(t) for t in FEB_STARTS]


def sampled(frames: list[RawFrame], offset: timedelta) -> list[RawFrame]:
    return [observed(f, offset) for f in night_samples(frames)]


def test_night_samples_are_the_first_and_last_frame_of_each_night() -> None:
    second_night = night_of_frames(datetime(2026, 2, 28, 20, 0), 5, timedelta(minutes=30))
    picked = night_samples(list(reversed(FEB_NIGHT + second_night)))
    assert {f.name for f in picked} == {
        FEB_NIGHT[0].name,
        FEB_NIGHT[-1].name,
        second_night[0].name,
        second_night[-1].name,
    }


def test_override_wins() -> None:
    decision = decide_zone(
        FEB_NIGHT,
        samples=sampled(FEB_NIGHT, timedelta(hours=1)),
        override=NEW_YORK,
        device_zone=VIENNA,
        host_zone=UTC,
    )
    assert (decision.tz, decision.source, decision.warning) == (NEW_YORK, "override", None)


def test_device_zone_that_agrees_with_the_headers_is_used() -> None:
    decision = decide_zone(
        FEB_NIGHT,
        samples=sampled(FEB_NIGHT, timedelta(hours=1)),
        device_zone=VIENNA,
        host_zone=NEW_YORK,
    )
    assert (decision.tz, decision.source, decision.warning) == (VIENNA, "device", None)
    assert decision.read_headers == ()


def test_device_zone_without_headers_is_used_with_a_warning() -> None:
    decision = decide_zone(FEB_NIGHT, device_zone=VIENNA, host_zone=NEW_YORK)
    assert (decision.tz, decision.source) == (VIENNA, "device")
    assert decision.warning


def test_device_zone_that_disagrees_gives_way_to_the_headers() -> None:
    decision = decide_zone(
        FEB_NIGHT,
        samples=sampled(FEB_NIGHT, timedelta(hours=1)),
        device_zone=NEW_YORK,
        host_zone=NEW_YORK,
    )
    assert decision.source == "header"
    assert decision.warning is not None
    assert "disagree" in decision.warning
    assert isinstance(decision.tz, NightlyOffsets)
    assert chunk_key(frame_utc(FEB_NIGHT[0], decision.tz)) == "20260227.81"


def test_headers_without_a_device_zone() -> None:
    decision = decide_zone(
        FEB_NIGHT, samples=sampled(FEB_NIGHT, timedelta(hours=1)), host_zone=NEW_YORK
    )
    assert (decision.source, decision.warning, decision.read_headers) == ("header", None, ())
    for frame, start in zip(FEB_NIGHT, FEB_STARTS, strict=True):
        assert frame_utc(frame, decision.tz) == local_to_utc(start, VIENNA)


def test_host_zone_is_the_last_resort_with_a_warning() -> None:
    decision = decide_zone(FEB_NIGHT, host_zone=NEW_YORK)
    assert (decision.tz, decision.source) == (NEW_YORK, "host")
    assert decision.warning
    assert decide_zone(FEB_NIGHT).tz is UTC


def test_samples_without_date_obs_do_not_count_as_measurements() -> None:
    decision = decide_zone(FEB_NIGHT, samples=night_samples(FEB_NIGHT), host_zone=NEW_YORK)
    assert decision.source == "host"


# Vienna's fall-back night: 2025-10-25 22:00 to 2025-10-26 05:00 local, one frame every 5 min.
DST_NIGHT = night_of_frames(datetime(2025, 10, 25, 22, 0, 7), 84, timedelta(minutes=5))
NEXT_NIGHT = night_of_frames(datetime(2025, 10, 26, 22, 0, 7), 12, timedelta(minutes=5))


def _truly_observed(frame: RawFrame) -> RawFrame:
    """Frames before 02:00 on the 26th were taken in CEST; the device's clock then fell back."""
    cest = frame.local_time < datetime(2025, 10, 26, 2, 0)
    return observed(frame, timedelta(hours=2 if cest else 1))


def test_a_night_whose_samples_disagree_has_every_header_read() -> None:
    frames = DST_NIGHT + NEXT_NIGHT
    samples = [_truly_observed(f) for f in night_samples(frames)]
    decision = decide_zone(frames, samples=samples)
    assert decision.source == "header"
    assert set(decision.read_headers) == {f.name for f in DST_NIGHT}


def test_a_device_zone_reads_only_the_ambiguous_hour() -> None:
    frames = DST_NIGHT + NEXT_NIGHT
    samples = [_truly_observed(f) for f in night_samples(frames)]
    decision = decide_zone(frames, samples=samples, device_zone=VIENNA)
    assert decision.source == "device"
    assert set(decision.read_headers) == {f.name for f in DST_NIGHT if f.local_time.hour == 2}
    assert len(decision.read_headers) == 12


def test_a_device_zone_with_the_wrong_offset_disagrees() -> None:
    fixed = timezone(timedelta(hours=2))
    samples = [_truly_observed(f) for f in night_samples(NEXT_NIGHT)]
    assert decide_zone(NEXT_NIGHT, samples=samples, device_zone=fixed).source == "header"


# --- headers that are no clock reading -----------------------------------------------------------

# A DATE-OBS from a reset clock (or a file copied from elsewhere) implies an "offset" of years.
RESET_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)


def test_a_date_obs_implying_no_real_offset_is_not_a_measurement() -> None:
    good = sampled(FEB_NIGHT, timedelta(hours=1))
    broken = attrs.evolve(good[0], date_obs=RESET_CLOCK)
    decision = decide_zone(FEB_NIGHT, samples=[broken, good[1]], host_zone=NEW_YORK)
    assert decision.source == "header"
    assert decision.tz.utcoffset(FEB_NIGHT[0].local_time) == timedelta(hours=1)
    assert "NightlyOffsets" in repr(decision.tz)

    only_broken = decide_zone(FEB_NIGHT, samples=[broken], host_zone=NEW_YORK)
    assert (only_broken.tz, only_broken.source) == (NEW_YORK, "host")
    assert only_broken.warning
    with_device = decide_zone(FEB_NIGHT, samples=[broken], device_zone=VIENNA)
    assert (with_device.tz, with_device.source) == (VIENNA, "device")


def test_a_frame_with_such_a_date_obs_is_read_in_the_zone() -> None:
    """The broken DATE-OBS is ignored: the frame is placed as if its header were unread."""
    frame = attrs.evolve(FEB_NIGHT[0], date_obs=RESET_CLOCK)
    assert frame_utc(frame, VIENNA) == local_to_utc(FEB_STARTS[0], VIENNA)
    assert frame_utc(frame, VIENNA) == frame_utc(FEB_NIGHT[0], VIENNA)


@pytest.mark.parametrize("hours", [24, -24, 30, 24 * 365])
def test_nightly_offsets_refuse_impossible_offsets(hours: int) -> None:
    with pytest.raises(PlanError):
        NightlyOffsets({date(2026, 2, 27): timedelta(hours=hours)})
