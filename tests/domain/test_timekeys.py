"""UTC chunk keys, block bounds, the device's UTC offset, DST and the choice of zone."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import (
    NightlyOffsets,
    RawFrame,
    as_utc,
    block_bounds,
    check_block_minutes,
    chunk_key,
    crowdsky_name,
    decide_zone,
    frame_utc,
    header_offset,
    local_to_utc,
    needs_date_obs,
    night_of,
    night_samples,
    parse_crowdsky_name,
    parse_raw_name,
)
from crowdsky.errors import PlanError
from strategies import (
    ALLOWED_BLOCK_MINUTES,
    NAMED_ZONES,
    aware_datetimes,
    block_minutes,
    exposures,
    raw_name,
)

VIENNA = ZoneInfo("Europe/Vienna")
NEW_YORK = ZoneInfo("America/New_York")
# The name is stamped when the frame is saved, about 14 s after the exposure starts (DATE-OBS).
SAVE_LAG = timedelta(seconds=14)


def frame_at(local_time: datetime, target: str = "IC 434") -> RawFrame:
    frame = parse_raw_name(raw_name(target, 10.0, "LP", local_time))
    assert frame is not None
    return frame


def observed(frame: RawFrame, offset: timedelta) -> RawFrame:
    """The frame with the DATE-OBS a device running ``offset`` ahead of UTC writes."""
    return attrs.evolve(frame, date_obs=(frame.local_time - offset - SAVE_LAG).replace(tzinfo=UTC))


# --- chunk keys --------------------------------------------------------------------------------


@given(aware_datetimes())
def test_fifteen_minute_key_is_utc_date_and_two_digit_slot(moment: datetime) -> None:
    key = chunk_key(moment)
    assert re.fullmatch(r"\d{8}\.\d{2}", key)
    day, slot = key.split(".")
    utc = moment.astimezone(UTC)
    assert day == f"{utc:%Y%m%d}"
    assert 0 <= int(slot) <= 95
    assert int(slot) == (utc.hour * 60 + utc.minute) // 15


def test_every_slot_of_a_day_has_its_own_key() -> None:
    midnight = datetime(2026, 2, 27, tzinfo=UTC)
    keys = [chunk_key(midnight + timedelta(minutes=15 * i)) for i in range(96)]
    assert keys == [f"20260227.{i:02d}" for i in range(96)]


def test_keys_never_collide_across_block_lengths() -> None:
    """Every block of two days, for every allowed length: one key each, no key shared."""
    seen: dict[str, tuple[int, datetime]] = {}
    for minutes in ALLOWED_BLOCK_MINUTES:
        start = datetime(2026, 2, 27, tzinfo=UTC)
        while start < datetime(2026, 3, 1, tzinfo=UTC):
            key = chunk_key(start, minutes)
            assert key not in seen, f"{key} names both {seen[key]} and {(minutes, start)}"
            seen[key] = (minutes, start)
            start += timedelta(minutes=minutes)
    assert len(seen) == 2 * sum(1440 // m for m in ALLOWED_BLOCK_MINUTES)


@given(
    aware_datetimes(),
    block_minutes(),
    block_minutes(),
    st.one_of(st.integers(min_value=-90, max_value=90), st.integers(-(10**6), 10**6)),
)
def test_same_key_only_for_the_same_block(
    moment: datetime, minutes_a: int, minutes_b: int, delta_minutes: int
) -> None:
    other = moment + timedelta(minutes=delta_minutes)
    same_block = minutes_a == minutes_b and block_bounds(moment, minutes_a) == block_bounds(
        other, minutes_b
    )
    assert (chunk_key(moment, minutes_a) == chunk_key(other, minutes_b)) == same_block


def test_ten_and_fifteen_minute_blocks_do_not_collide() -> None:
    """Field notes item 3: the 22:10 block must not pass for covered once 22:00 is stacked."""
    at_2200 = datetime(2026, 2, 27, 22, 0, tzinfo=UTC)
    at_2210 = datetime(2026, 2, 27, 22, 10, tzinfo=UTC)
    keys = {chunk_key(at_2200, 10), chunk_key(at_2210, 10), chunk_key(at_2200, 15)}
    assert len(keys) == 3
    assert chunk_key(at_2200, 15) == "20260227.88"


@given(aware_datetimes(), block_minutes())
def test_every_key_survives_a_crowdsky_name(moment: datetime, minutes: int) -> None:
    key = chunk_key(moment, minutes)
    name = crowdsky_name(
        frames=1, target="M 42", exposure_s=10.0, filter="LP", chunk_key=key, pixel=107383
    )
    parsed = parse_crowdsky_name(name)
    assert parsed is not None
    assert parsed.chunk_key == key


def test_spec_reference_block_in_vienna() -> None:
    """21:15-21:30 Vienna (UTC+1) on 2026-02-27 is 20:15 UTC, slot 81."""
    start = local_to_utc(datetime(2026, 2, 27, 21, 15), VIENNA)
    assert chunk_key(start) == "20260227.81"
    assert chunk_key(local_to_utc(datetime(2026, 2, 27, 21, 29, 59), VIENNA)) == "20260227.81"
    assert chunk_key(local_to_utc(datetime(2026, 2, 27, 21, 30), VIENNA)) == "20260227.82"


def test_field_notes_frame_uses_the_telescope_zone_not_the_host() -> None:
    """22:45 in Vienna is 21:45 UTC: slot 87. The reference tool on a New York host said .15."""
    frame = frame_at(datetime(2026, 2, 27, 22, 45))
    key = chunk_key(frame_utc(frame, VIENNA))
    assert key == "20260227.87"
    assert key != "20260228.15"
    assert chunk_key(frame_utc(frame, NEW_YORK)) == "20260228.15"


# --- block bounds ------------------------------------------------------------------------------


@given(aware_datetimes(), block_minutes())
def test_block_bounds_hold_the_moment_on_a_utc_boundary(moment: datetime, minutes: int) -> None:
    start, end = block_bounds(moment, minutes)
    assert start.utcoffset() == timedelta(0)
    assert start <= moment < end
    assert end - start == timedelta(minutes=minutes)
    since_midnight = start - start.replace(hour=0, minute=0, second=0, microsecond=0)
    assert since_midnight % timedelta(minutes=minutes) == timedelta(0)


@pytest.mark.parametrize("bad", [0, -15, 7, 50, 25, 1441, 2880, True, False, 15.0, "15", None])
def test_bad_block_minutes(bad: object) -> None:
    with pytest.raises(PlanError) as caught:
        check_block_minutes(bad)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    with pytest.raises(PlanError):
        block_bounds(datetime(2026, 1, 1, tzinfo=UTC), bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("good", ALLOWED_BLOCK_MINUTES)
def test_every_divisor_of_a_day_is_allowed(good: int) -> None:
    assert check_block_minutes(good) == good


def test_naive_moments_are_refused() -> None:
    with pytest.raises(PlanError):
        as_utc(datetime(2026, 2, 27, 21, 15))
    with pytest.raises(PlanError):
        chunk_key(datetime(2026, 2, 27, 21, 15))


# --- the device's offset from headers ------------------------------------------------------------


def test_header_offset_of_a_real_s50_frame() -> None:
    """Texas, UTC-5: name 01:01:16 local, DATE-OBS 06:01:02.382641 UTC."""
    frame = parse_raw_name("Light_M 31_10.0s_IRCUT_20250929-010116.fit")
    assert frame is not None
    offset = header_offset(frame.local_time, datetime(2025, 9, 29, 6, 1, 2, 382641))
    assert offset == timedelta(hours=-5)
    aware = datetime(2025, 9, 29, 6, 1, 2, 382641, tzinfo=UTC).astimezone(VIENNA)
    assert header_offset(frame.local_time, aware) == timedelta(hours=-5)


@given(
    st.integers(min_value=-48, max_value=56),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.integers(min_value=0, max_value=120),
)
def test_header_offset_rounds_the_save_lag_away(quarters: int, utc: datetime, lag: int) -> None:
    offset = timedelta(minutes=15 * quarters)
    local = (utc + offset + timedelta(seconds=lag)).replace(microsecond=0)
    assert header_offset(local, utc) == offset


def test_night_of() -> None:
    assert night_of(datetime(2026, 2, 27, 23, 0)) == date(2026, 2, 27)
    assert night_of(datetime(2026, 2, 28, 5, 0)) == date(2026, 2, 27)
    assert night_of(datetime(2026, 2, 28, 12, 0)) == date(2026, 2, 28)


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
    """Vienna, 2025-10-26: 02:20 happens at 00:20 UTC (CEST) and again at 01:20 UTC (CET)."""
    local = datetime(2025, 10, 26, 2, 20, 14)
    first = observed(frame_at(local), timedelta(hours=2))
    second = observed(frame_at(local), timedelta(hours=1))
    assert frame_utc(first, VIENNA) == datetime(2025, 10, 26, 0, 20, 14, tzinfo=UTC)
    assert frame_utc(second, VIENNA) == datetime(2025, 10, 26, 1, 20, 14, tzinfo=UTC)
    assert local_to_utc(local, VIENNA, fold=1) - local_to_utc(local, VIENNA) == timedelta(hours=1)


# --- NightlyOffsets ------------------------------------------------------------------------------


@st.composite
def nightly_offsets(draw: st.DrawFn) -> dict[date, timedelta]:
    """Consecutive nights whose offset moves by at most an hour a night, as DST makes it."""
    first = draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 1, 1)))
    quarters = draw(st.integers(min_value=-48, max_value=52))
    steps = draw(st.lists(st.sampled_from((-4, 0, 0, 0, 4)), min_size=0, max_size=6))
    offsets = {first: timedelta(minutes=15 * quarters)}
    for i, step in enumerate(steps, start=1):
        quarters = max(-48, min(56, quarters + step))
        offsets[first + timedelta(days=i)] = timedelta(minutes=15 * quarters)
    return offsets


@given(
    nightly_offsets(),
    st.data(),
    st.integers(min_value=18 * 3600, max_value=(24 + 7) * 3600 - 1),
)
def test_nightly_offsets_round_trip_local_and_utc(
    offsets: dict[date, timedelta], data: st.DataObject, seconds_after_midnight: int
) -> None:
    night = data.draw(st.sampled_from(sorted(offsets)))
    local = datetime.combine(night, datetime.min.time()) + timedelta(seconds=seconds_after_midnight)
    tz = NightlyOffsets(offsets)
    utc = local_to_utc(local, tz)
    assert utc == (local - offsets[night]).replace(tzinfo=UTC)
    assert utc.astimezone(tz).replace(tzinfo=None) == local
    assert needs_date_obs([frame_at(local)], tz) == ()


def test_nightly_offsets_take_the_nearest_sampled_night() -> None:
    tz = NightlyOffsets(
        {date(2026, 3, 1): timedelta(hours=1), date(2026, 3, 11): timedelta(hours=2)}
    )
    assert tz.utcoffset(datetime(2026, 2, 20, 22, 0)) == timedelta(hours=1)
    assert tz.utcoffset(datetime(2026, 3, 5, 22, 0)) == timedelta(hours=1)
    assert tz.utcoffset(datetime(2026, 3, 8, 22, 0)) == timedelta(hours=2)
    assert tz.utcoffset(datetime(2026, 4, 1, 3, 0)) == timedelta(hours=2)
    assert tz.tzname(datetime(2026, 3, 12, 1, 0)) == "UTC+02:00"


def test_nightly_offsets_need_a_night() -> None:
    with pytest.raises(PlanError):
        NightlyOffsets({})


# --- choosing the zone ---------------------------------------------------------------------------


def night_of_frames(start: datetime, count: int, step: timedelta) -> list[RawFrame]:
    return [frame_at(start + i * step) for i in range(count)]


FEB_NIGHT = night_of_frames(datetime(2026, 2, 27, 21, 15, 3), 40, timedelta(seconds=67))


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
    for frame in FEB_NIGHT:
        assert frame_utc(frame, decision.tz) == local_to_utc(frame.local_time, VIENNA)


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


# --- long exposures ------------------------------------------------------------------------------


@given(
    st.integers(min_value=-48, max_value=56),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    exposures(),
    st.integers(min_value=0, max_value=30),
)
def test_header_offset_of_any_exposure(
    quarters: int, start: datetime, exposure_s: float, download_s: int
) -> None:
    """DATE-OBS is the exposure start; the name is stamped at save time, after the exposure."""
    offset = timedelta(minutes=15 * quarters)
    saved = start + timedelta(seconds=exposure_s + download_s)
    local = (saved + offset).replace(microsecond=0)
    assert header_offset(local, start, exposure_s=exposure_s) == offset


def test_a_ten_minute_frame_keeps_the_device_offset() -> None:
    """A 600 s sub in Vienna (UTC+1) started 21:00:00 UTC and was saved at 22:10:04 local."""
    frame = parse_raw_name("Light_M 42_600.0s_LP_20260227-221004.fit")
    assert frame is not None
    frame = attrs.evolve(frame, date_obs=datetime(2026, 2, 27, 21, 0, 0, tzinfo=UTC))
    assert frame_utc(frame, VIENNA) == datetime(2026, 2, 27, 21, 10, 4, tzinfo=UTC)
    samples = [frame]
    decision = decide_zone([frame], samples=samples, device_zone=VIENNA)
    assert decision.source == "device"
    headers = decide_zone([frame], samples=samples)
    assert headers.tz.utcoffset(frame.local_time) == timedelta(hours=1)


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
    frame = attrs.evolve(FEB_NIGHT[0], date_obs=RESET_CLOCK)
    assert frame_utc(frame, VIENNA) == local_to_utc(frame.local_time, VIENNA)


@pytest.mark.parametrize("hours", [24, -24, 30, 24 * 365])
def test_nightly_offsets_refuse_impossible_offsets(hours: int) -> None:
    with pytest.raises(PlanError):
        NightlyOffsets({date(2026, 2, 27): timedelta(hours=hours)})
