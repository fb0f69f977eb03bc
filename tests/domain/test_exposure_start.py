"""A frame belongs to the block its exposure started in: DATE-OBS, else the name less exposure
and save delay, with the headers of frames too close to a block boundary read first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from crowdsky.domain import (
    BOUNDARY_MARGIN_S,
    LATER_START_MARGIN_S,
    SAVE_DELAY_S,
    RawFrame,
    block_bounds,
    chunk_key,
    decide_zone,
    frame_utc,
    local_to_utc,
    near_boundary,
    parse_raw_name,
    plan_blocks,
)
from strategies import (
    block_minutes,
    device_zones,
    exposures,
    frame_started_at,
    name_stamp,
    raw_frames,
    raw_name,
)

VIENNA = ZoneInfo("Europe/Vienna")
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
# 21:30 in Vienna (UTC+1) on 2026-02-27: the boundary between chunks .81 and .82.
BOUNDARY_LOCAL = datetime(2026, 2, 27, 21, 30)
BOUNDARY = datetime(2026, 2, 27, 20, 30, tzinfo=UTC)
#: The slowest save (end of exposure to name stamp) the boundary margins allow for.
SLOWEST_SAVE_S = 24.0


def named(local_time: datetime, exposure_s: float = 10.0, filter: str = "LP") -> RawFrame:
    """The frame the device named ``local_time`` (Vienna wall time)."""
    frame = parse_raw_name(raw_name("IC 434", exposure_s, filter, local_time))
    assert frame is not None
    return frame


def seconds_after_boundary(seconds: float) -> datetime:
    return BOUNDARY_LOCAL + timedelta(seconds=seconds)


def keys(frames: list[RawFrame]) -> list[str]:
    return [b.chunk_key for b in plan_blocks(frames, now=FAR_FUTURE, device_tz=VIENNA)]


# --- the rule ------------------------------------------------------------------------------------


def test_a_frame_named_just_after_a_boundary_started_before_it() -> None:
    """A 10 s sub named 21:30:13 started at 21:29:59: the block before the boundary."""
    frame = named(seconds_after_boundary(13))
    assert frame_utc(frame, VIENNA) == BOUNDARY - timedelta(seconds=1)
    assert keys([frame]) == ["20260227.81"]


def test_a_frame_named_exposure_and_delay_after_a_boundary_starts_on_it() -> None:
    """Named 14 s after 21:30, a 10 s sub is estimated to start on the boundary: block .82.

    Blocks are ``[start, end)``, so the boundary itself opens the later block.
    """
    frame = named(seconds_after_boundary(14))
    assert frame_utc(frame, VIENNA) == BOUNDARY
    assert keys([frame]) == ["20260227.82"]


@pytest.mark.parametrize(
    ("name_seconds", "date_obs_seconds", "key"),
    [
        (13, 0.4, "20260227.82"),  # estimated before the boundary, started after it
        (14, -0.4, "20260227.81"),  # estimated on the boundary, started before it
        (20, -3.0, "20260227.81"),  # a slow save: named 23 s after it started
        (10, 2.0, "20260227.82"),  # a quick save: named 8 s after it started
    ],
)
def test_date_obs_says_otherwise(name_seconds: int, date_obs_seconds: float, key: str) -> None:
    frame = named(seconds_after_boundary(name_seconds))
    date_obs = BOUNDARY + timedelta(seconds=date_obs_seconds)
    estimated = chunk_key(frame_utc(frame, VIENNA))
    assert estimated != key
    read = attrs.evolve(frame, date_obs=date_obs)
    assert frame_utc(read, VIENNA) == date_obs
    assert keys([read]) == [key]


def test_a_long_exposure_belongs_to_the_block_it_started_in() -> None:
    """A 600 s sub named 21:45:03 started at 21:34:59, well inside 21:30-21:45 (.82)."""
    frame = named(datetime(2026, 2, 27, 21, 45, 3), exposure_s=600.0)
    assert frame_utc(frame, VIENNA) == datetime(2026, 2, 27, 20, 34, 59, tzinfo=UTC)
    assert keys([frame]) == ["20260227.82"]


def test_the_first_frame_of_a_block_gives_the_server_s_key() -> None:
    """The server keys a stack by its first frame's DATE-OBS; the block's key must be that key."""
    starts = [seconds_after_boundary(-60 + 14 * i) for i in range(10)]
    frames = [
        attrs.evolve(f, date_obs=local_to_utc(s, VIENNA))
        for f, s in zip(map(frame_started_at, starts), starts, strict=True)
    ]
    blocks = plan_blocks(frames, now=FAR_FUTURE, device_tz=VIENNA)
    assert [(b.chunk_key, b.frame_count) for b in blocks] == [
        ("20260227.81", 5),
        ("20260227.82", 5),
    ]
    for block in blocks:
        first = block.frames[0].date_obs
        assert first is not None
        assert chunk_key(first) == block.chunk_key


@given(
    raw_frames(),
    device_zones(),
    device_zones(),
    st.floats(min_value=-60, max_value=60),
    st.integers(min_value=0, max_value=999_999),
)
def test_date_obs_wins_over_the_estimate_in_any_zone(
    frame: RawFrame, device_tz: tzinfo, read_in: tzinfo, lag_error_s: float, micro: int
) -> None:
    """Read, a frame's time is its DATE-OBS, however far the name's estimate is from it."""
    estimate = frame_utc(frame, device_tz)
    date_obs = estimate + timedelta(seconds=lag_error_s, microseconds=micro)
    read = attrs.evolve(frame, date_obs=date_obs)
    assert frame_utc(read, read_in) == date_obs
    (block,) = plan_blocks([read], block_minutes=15, now=FAR_FUTURE, device_tz=read_in)
    assert block.chunk_key == chunk_key(date_obs)


# --- near_boundary -------------------------------------------------------------------------------


def test_near_boundary_lists_exactly_the_frames_within_the_margins() -> None:
    """10 s subs estimated to start from 30 s before 21:30 to 30 s after it, one a second.

    A start may lie up to 20 s before its estimate (a slow save) but at most 5 s after it (the
    name is stamped after the exposure ended, to the second below): frames estimated up to 20 s
    after the boundary or up to 5 s before it are read.
    """
    by_offset = {k: named(seconds_after_boundary(k + 14)) for k in range(-30, 31)}
    for k, frame in by_offset.items():
        assert frame_utc(frame, VIENNA) == BOUNDARY + timedelta(seconds=k)
    assert BOUNDARY_MARGIN_S == 20.0
    assert LATER_START_MARGIN_S == SAVE_DELAY_S + 1 == 5.0
    listed = near_boundary(by_offset.values(), VIENNA, 15)
    assert listed == tuple(by_offset[k] for k in range(-5, 20))
    narrow = near_boundary(by_offset.values(), VIENNA, 15, margin_s=5, later_s=2)
    assert narrow == tuple(by_offset[k] for k in range(-2, 5))


@given(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    st.integers(min_value=-40, max_value=40),
    st.one_of(st.sampled_from([0, 1, 999_999]), st.integers(min_value=0, max_value=999_999)),
    exposures(),
    st.one_of(
        st.sampled_from([0.0, SLOWEST_SAVE_S]),
        st.floats(min_value=0, max_value=SLOWEST_SAVE_S),
    ),
    device_zones(),
    block_minutes(),
)
@example(datetime(2026, 2, 27), -1, 999_999, 10.0, SLOWEST_SAVE_S, UTC, 15)
@example(datetime(2026, 2, 27), 0, 0, 10.99, 0.0, UTC, 15)  # started 4.99 s after its estimate
def test_a_frame_that_started_in_another_block_than_its_estimate_has_its_header_read(
    day: datetime,
    seconds_from_boundary: int,
    micro: int,
    exposure_s: float,
    save_delay_s: float,
    tz: tzinfo,
    minutes: int,
) -> None:
    """Any save delay from 0 to 24 s: the frame is read whenever its estimate is in another block.

    The exposure starts within 40 s of a block boundary (to the microsecond, as DATE-OBS has
    it); the name is stamped ``exposure + delay`` later, to the second below, in the device's
    zone.
    """
    boundary, _ = block_bounds(day.replace(tzinfo=UTC), minutes)
    start = boundary + timedelta(seconds=seconds_from_boundary, microseconds=micro)
    frame = frame_started_at(start, exposure_s, tz=tz, delay_s=save_delay_s)
    saved = start + timedelta(seconds=exposure_s + save_delay_s)
    named_at = local_to_utc(frame.local_time, tz)
    assume(saved - timedelta(seconds=1) < named_at <= saved)  # not a repeated hour's guess
    estimated, _ = block_bounds(frame_utc(frame, tz), minutes)
    started, _ = block_bounds(start, minutes)
    if estimated != started:
        assert near_boundary([frame], tz, minutes) == (frame,)


def test_near_boundary_depends_on_the_block_length() -> None:
    """21:20:05 is near a 10-minute boundary and deep inside a 15-minute block."""
    frame = frame_started_at(datetime(2026, 2, 27, 21, 20, 5))
    assert near_boundary([frame], VIENNA, 10) == (frame,)
    assert near_boundary([frame], VIENNA, 15) == ()


@given(
    st.lists(raw_frames(), max_size=20),
    device_zones(),
    block_minutes(),
    st.one_of(st.just(BOUNDARY_MARGIN_S), st.floats(min_value=0.5, max_value=300)),
    st.one_of(st.just(LATER_START_MARGIN_S), st.floats(min_value=0.5, max_value=300)),
)
def test_near_boundary_is_the_frames_closer_than_the_margins(
    frames: list[RawFrame], tz: tzinfo, minutes: int, margin_s: float, later_s: float
) -> None:
    """Listed: estimated less than ``margin_s`` after a boundary or ``later_s`` before one."""
    earlier, later = timedelta(seconds=margin_s), timedelta(seconds=later_s)
    expected = []
    for frame in frames:
        estimate = frame_utc(frame, tz)
        start, end = block_bounds(estimate, minutes)
        assume(estimate - start != earlier)  # which side an exact tie falls on is no matter
        assume(end - estimate != later)
        if estimate - start < earlier or end - estimate < later:
            expected.append(frame)
    listed = (
        near_boundary(frames, tz, minutes)  # the default margins
        if (margin_s, later_s) == (BOUNDARY_MARGIN_S, LATER_START_MARGIN_S)
        else near_boundary(frames, tz, minutes, margin_s=margin_s, later_s=later_s)
    )
    assert listed == tuple(expected)


def test_near_boundary_skips_frames_whose_date_obs_is_known() -> None:
    frame = named(seconds_after_boundary(14))
    assert near_boundary([frame], VIENNA, 15) == (frame,)
    read = attrs.evolve(frame, date_obs=BOUNDARY - timedelta(seconds=0.4))
    assert near_boundary([read], VIENNA, 15) == ()
    assert near_boundary([read, frame], VIENNA, 15) == (frame,)


def test_near_boundary_skips_a_frame_whose_candidate_blocks_are_both_stacked() -> None:
    """Like the inventory: a block counts as settled when its stack exists for that filter."""
    before, after = BOUNDARY - timedelta(minutes=15), BOUNDARY
    stacked = {("LP", before), ("LP", after), ("IRCUT", before)}
    asked: list[tuple[str, datetime]] = []

    def settled(frame: RawFrame, block_start: datetime) -> bool:
        asked.append((frame.filter, block_start))
        return (frame.filter, block_start) in stacked

    lp = named(seconds_after_boundary(14), filter="LP")
    ircut = named(seconds_after_boundary(14), filter="IRCUT")
    far = named(seconds_after_boundary(14 + 300), filter="IRCUT")
    assert near_boundary([lp, ircut, far], VIENNA, 15, settled=settled) == (ircut,)
    assert set(asked) == {("LP", before), ("LP", after), ("IRCUT", before), ("IRCUT", after)}
    # Unsettled, the same frames are listed.
    assert near_boundary([lp, ircut, far], VIENNA, 15) == (lp, ircut)


# --- the whole rule: estimate, read what is near a boundary, plan ---------------------------------


_MOMENTS = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
)


def exposure_starts(minutes: int) -> st.SearchStrategy[datetime]:
    """Aware exposure starts, most within 40 s of a block boundary, where the estimate can err."""

    def near_a_boundary(moment: datetime, seconds: float) -> datetime:
        start, _ = block_bounds(moment, minutes)
        return start + timedelta(seconds=seconds)

    near = st.builds(near_a_boundary, _MOMENTS, st.floats(min_value=-40, max_value=40))
    return st.one_of(near, near, _MOMENTS)


@given(device_zones(), block_minutes(), st.data())
def test_reading_the_frames_near_a_boundary_puts_every_frame_in_its_true_block(
    tz: tzinfo, minutes: int, data: st.DataObject
) -> None:
    """Names stamped exposure + 0 to 18 s after the start: the reads settle every frame."""
    shots = data.draw(
        st.lists(
            st.tuples(
                exposure_starts(minutes),
                exposures(),
                st.floats(min_value=0, max_value=2 * SAVE_DELAY_S + 10),
            ),
            min_size=1,
            max_size=20,
        )
    )
    truth: dict[str, datetime] = {}
    for start, exposure_s, delay_s in shots:
        stamp = name_stamp(start, exposure_s, tz=tz, delay_s=delay_s)
        truth.setdefault(raw_name("M 42", exposure_s, "LP", stamp), start)
    listed = [f for f in map(parse_raw_name, truth) if f is not None]
    assert len(listed) == len(truth)

    def read(frames: list[RawFrame], names: set[str]) -> list[RawFrame]:
        return [attrs.evolve(f, date_obs=truth[f.name]) if f.name in names else f for f in frames]

    # As the inventory does: the zone's own reads (a repeated hour), then those near a boundary.
    known = read(listed, set(decide_zone(listed, override=tz).read_headers))
    settled = read(known, {f.name for f in near_boundary(known, tz, minutes)})
    blocks = plan_blocks(settled, block_minutes=minutes, now=FAR_FUTURE, device_tz=tz)
    assert sum(b.frame_count for b in blocks) == len(listed)
    for block in blocks:
        for frame in block.frames:
            assert block.start <= truth[frame.name] < block.end
        assert chunk_key(truth[block.frames[0].name], minutes) == block.chunk_key
