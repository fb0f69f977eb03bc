"""UTC chunk keys, block bounds, the device's UTC offset from headers, NightlyOffsets."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
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
    parse_crowdsky_name,
    parse_raw_name,
)
from crowdsky.errors import PlanError
from strategies import ALLOWED_BLOCK_MINUTES, aware_datetimes, block_minutes, exposures, raw_name

VIENNA = ZoneInfo("Europe/Vienna")
NEW_YORK = ZoneInfo("America/New_York")
TEXAS = timezone(timedelta(hours=-5))  # the S50 of the field notes, on daylight time


def frame_at(local_time: datetime, target: str = "IC 434") -> RawFrame:
    frame = parse_raw_name(raw_name(target, 10.0, "LP", local_time))
    assert frame is not None
    return frame


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
    """22:45 in Vienna is 21:45 UTC: slot 87. The reference tool on a New York host said .15.

    The frame's exposure started at 22:45:00; the device named it 14 s later, at save time.
    """
    frame = frame_at(datetime(2026, 2, 27, 22, 45, 14))
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
    """Texas, UTC-5: name 01:01:16 local, DATE-OBS 06:01:02.382641 UTC (a 10 s sub)."""
    frame = parse_raw_name("Light_NGC 281_10.0s_LP_20250929-010116.fit")
    assert frame is not None
    date_obs = datetime(2025, 9, 29, 6, 1, 2, 382641)
    assert header_offset(frame.local_time, date_obs) == timedelta(hours=-5)
    assert header_offset(frame.local_time, date_obs, exposure_s=10.0) == timedelta(hours=-5)
    aware = date_obs.replace(tzinfo=UTC).astimezone(VIENNA)
    assert header_offset(frame.local_time, aware) == timedelta(hours=-5)
    observed_frame = attrs.evolve(frame, date_obs=date_obs.replace(tzinfo=UTC))
    # Read, DATE-OBS is the frame's time, whatever zone the names are read in.
    for zone in (UTC, VIENNA, TEXAS):
        assert frame_utc(observed_frame, zone) == date_obs.replace(tzinfo=UTC)
    # Unread, the estimate from the name in the right zone (less 10 s and the 4 s save delay)
    # lands within a second of it: the save delay is the one this real frame shows.
    estimate = frame_utc(frame, TEXAS)
    assert estimate == datetime(2025, 9, 29, 6, 1, 2, tzinfo=UTC)
    assert abs(estimate - date_obs.replace(tzinfo=UTC)) < timedelta(seconds=1)


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
    started = datetime(2026, 2, 27, 21, 0, 0, tzinfo=UTC)
    # Unread, the name less 600 s and the save delay gives the start; read, DATE-OBS does.
    assert frame_utc(frame, VIENNA) == started
    frame = attrs.evolve(frame, date_obs=started)
    assert frame_utc(frame, VIENNA) == started
    assert chunk_key(frame_utc(frame, VIENNA)) == "20260227.84"
    samples = [frame]
    decision = decide_zone([frame], samples=samples, device_zone=VIENNA)
    assert decision.source == "device"
    headers = decide_zone([frame], samples=samples)
    assert headers.tz.utcoffset(frame.local_time) == timedelta(hours=1)


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
