"""The settler's time checks on integers give exactly what the frame-by-frame datetime way gave.

The old checks live on in ``reference_device_time.py``; these properties compare both on DST
nights (repeated and skipped hours, a 30-minute step, 45-minute zones), zones measured as
nightly offsets, frames whose local time is not their name's, frames with ``DATE-OBS``, any
block length and margin, and blocks already stacked.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdsky.domain import RawFrame, parse_raw_name
from crowdsky.domain.device_time import likely_headers
from crowdsky.domain.local_hours import HourStarts
from crowdsky.domain.names import crowdsky_name, parse_crowdsky_name
from crowdsky.domain.timekeys import (
    NightlyOffsets,
    chunk_key,
    frame_utc,
    near_boundary,
    needs_date_obs,
    night_samples,
)
from reference_device_time import (
    reference_near_boundary,
    reference_needs_date_obs,
    reference_night_samples,
)
from strategies import block_minutes, exposures, raw_name

_NIGHTS = (  # zone, an evening, the local wall time of its clock change (if any)
    (ZoneInfo("Europe/Vienna"), datetime(2025, 10, 25, 18), datetime(2025, 10, 26, 2)),
    (ZoneInfo("Europe/Vienna"), datetime(2026, 3, 28, 18), datetime(2026, 3, 29, 2)),
    (ZoneInfo("America/New_York"), datetime(2025, 11, 1, 18), datetime(2025, 11, 2, 1)),
    (ZoneInfo("Pacific/Chatham"), datetime(2025, 9, 27, 18), datetime(2025, 9, 28, 2, 45)),
    (ZoneInfo("Australia/Lord_Howe"), datetime(2025, 10, 4, 18), datetime(2025, 10, 5, 2)),
    (ZoneInfo("Australia/Lord_Howe"), datetime(2026, 4, 4, 18), datetime(2026, 4, 5, 1, 30)),
    (ZoneInfo("Asia/Kathmandu"), datetime(2026, 2, 27, 18), None),
    (timezone(timedelta(hours=-9, minutes=-30)), datetime(2026, 2, 27, 18), None),
    (UTC, datetime(2026, 2, 27, 18), None),
    (  # offsets measured per night: the change falls at local noon between two nights
        NightlyOffsets(
            {date(2026, 2, 27): timedelta(hours=1), date(2026, 2, 28): timedelta(hours=2)}
        ),
        datetime(2026, 2, 27, 18),
        datetime(2026, 2, 28, 12),
    ),
)


@st.composite
def frames_in_a_zone(draw: st.DrawFn) -> tuple[tzinfo, list[RawFrame]]:
    """A zone and runs of frames, some near its clock change, some with odd local times."""
    tz, evening, change = draw(st.sampled_from(_NIGHTS))
    frames: list[RawFrame] = []
    for _ in range(draw(st.integers(1, 4))):
        exposure = draw(exposures())
        if change is not None and draw(st.booleans()):
            moment = change + timedelta(seconds=draw(st.integers(-5400, 5400)))
        else:
            moment = evening + timedelta(seconds=draw(st.integers(0, 40 * 3600)))
        step = draw(st.sampled_from((1, 7, 13, 25, 61)))
        suffix = draw(st.sampled_from((".fit", ".fits")))
        for k in range(draw(st.integers(1, 50))):
            frame = parse_raw_name(raw_name("M 42", exposure, "LP", moment + k * step * _S, suffix))
            assert frame is not None
            frames.append(frame)
    for pick in draw(st.lists(st.integers(0, 10_000), max_size=4)):  # a header read
        i = pick % len(frames)
        start = datetime(2026, 2, 27, 20, tzinfo=UTC) + pick * _S
        frames[i] = attrs.evolve(frames[i], date_obs=start)
    for pick in draw(st.lists(st.integers(0, 10_000), max_size=3)):  # a time not the name's
        i = pick % len(frames)
        other = frames[i].local_time + timedelta(seconds=pick % 977, microseconds=pick % 3 * 7)
        frames[i] = attrs.evolve(frames[i], local_time=other)
    return tz, frames


_S = timedelta(seconds=1)


def _some_stacked(frame: RawFrame, block_start: datetime) -> bool:
    return (block_start.minute + len(frame.name)) % 3 == 0


@settings(max_examples=300)
@given(
    frames_in_a_zone(),
    block_minutes(),
    st.sampled_from((20.0, 0.0, 7.5)),
    st.sampled_from((5.0, 0.5, 30.0)),
)
def test_near_boundary_lists_what_the_datetime_way_listed(
    zoned: tuple[tzinfo, list[RawFrame]], minutes: int, margin_s: float, later_s: float
) -> None:
    tz, frames = zoned
    for settled in (lambda frame, start: False, _some_stacked):
        expected = reference_near_boundary(
            frames, tz, minutes, settled=settled, margin_s=margin_s, later_s=later_s
        )
        got = near_boundary(
            frames, tz, minutes, settled=settled, margin_s=margin_s, later_s=later_s
        )
        assert got == expected


@settings(max_examples=300)
@given(frames_in_a_zone())
def test_needs_date_obs_and_night_samples_are_what_they_were(
    zoned: tuple[tzinfo, list[RawFrame]],
) -> None:
    tz, frames = zoned
    assert needs_date_obs(frames, tz) == reference_needs_date_obs(frames, tz)
    assert night_samples(frames) == reference_night_samples(frames)
    plain = [attrs.evolve(f, local_time=None) if f.date_obs is None else f for f in frames]
    assert night_samples(plain) == reference_night_samples(plain)


@settings(max_examples=300)
@given(frames_in_a_zone(), st.randoms(use_true_random=False), st.integers(0, 6))
def test_fit_names_taken_in_bulk_give_what_each_frame_gives(
    zoned: tuple[tzinfo, list[RawFrame]], rnd: random.Random, repeats: int
) -> None:
    """Every frame a ``.fit`` carrying its name's time (the bulk ways), some listed twice."""
    tz, frames = zoned
    fit = []
    for frame in frames:
        name = frame.name.removesuffix("s")  # .fits -> .fit
        parsed = parse_raw_name(name)
        assert parsed is not None
        fit.append(attrs.evolve(parsed, date_obs=frame.date_obs))
    fit += [attrs.evolve(f, date_obs=None) for f in rnd.choices(fit, k=repeats)]  # two folders
    rnd.shuffle(fit)
    hours = HourStarts(tz)
    assert hours.stamps_seconds(fit) == [HourStarts(tz).stamp_seconds(f) for f in fit]
    assert night_samples(fit) == reference_night_samples(fit)
    assert needs_date_obs(fit, tz) == reference_needs_date_obs(fit, tz)
    assert near_boundary(fit, tz, 15) == reference_near_boundary(fit, tz, 15)


@settings(max_examples=200)
@given(frames_in_a_zone(), st.integers(1, 30), st.lists(st.integers(0, 10_000), max_size=4))
def test_the_forecast_of_each_page_is_what_the_reference_checks_give(
    zoned: tuple[tzinfo, list[RawFrame]], page: int, picks: list[int]
) -> None:
    """likely_headers, page by page, with blocks stacked around some frames."""
    tz, frames = zoned
    stacked = []
    for pick in picks:  # stacked: the block some frame's estimate falls in, and both beside it
        frame = frames[pick % len(frames)]
        start = frame_utc(frame, tz)
        for step in (-1, 0, 1) if pick % 2 else (0,):
            key = chunk_key(start + step * timedelta(minutes=15))
            name = crowdsky_name(
                frames=3, target=frame.target, exposure_s=frame.exposure_s,
                filter=frame.filter, chunk_key=key, pixel=7,
            )  # fmt: skip
            stacked.append(parse_crowdsky_name(name))
    known = [s for s in stacked if s is not None]
    covered = {(s.target, s.exposure_s, s.filter, s.chunk_key) for s in known}

    def settled(frame: RawFrame, block_start: datetime) -> bool:
        return (frame.target, frame.exposure_s, frame.filter, chunk_key(block_start)) in covered

    for first in range(0, len(frames), page):
        chunk = frames[first : first + page]
        by_reference = (
            *reference_needs_date_obs(chunk, tz),
            *reference_near_boundary(chunk, tz, 15, settled=settled),
        )
        forecast = likely_headers(chunk, tz, stacked=known)
        assert forecast == tuple(dict.fromkeys(f.name for f in by_reference))


def test_a_repeated_hour_needs_its_headers_and_the_hours_around_it_do_not() -> None:
    vienna = ZoneInfo("Europe/Vienna")
    stamps = [
        datetime(2025, 10, 26, 1, 59, 50),
        datetime(2025, 10, 26, 2, 30),
        datetime(2025, 10, 26, 3),
    ]
    frames = [parse_raw_name(raw_name("M 42", 10.0, "LP", s)) for s in stamps]
    assert needs_date_obs([f for f in frames if f], vienna) == (frames[1],)
