"""The device-time settler: asks for headers, is fed the results, settles (or cannot)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import attrs
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import (
    RawFrame,
    parse_crowdsky_name,
    parse_raw_name,
    plan_blocks,
)
from crowdsky.domain.device_time import (
    CannotSettle,
    DeviceTimeSettler,
    HeaderRead,
    HeaderResult,
    HeaderUnreadable,
    NeedHeaders,
    Settled,
    SettleStep,
)
from crowdsky.domain.timekeys import ZoneSource
from strategies import block_minutes, device_zones, exposures, name_stamp, raw_name

VIENNA = ZoneInfo("Europe/Vienna")
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
#: Four rounds of reads at most (samples, zone, boundary, surprises), then the answer.
MAX_STEPS = 5

Answer = Callable[[str], HeaderResult]


@attrs.frozen
class Night:
    """Frames as the device names them, and the true exposure start behind each name."""

    frames: tuple[RawFrame, ...]
    truth: dict[str, datetime]

    def read(self, name: str) -> HeaderResult:
        return HeaderRead(name=name, date_obs=self.truth[name])


def night_in(tz: tzinfo, starts: list[datetime], exposure_s: float) -> Night:
    truth: dict[str, datetime] = {}
    for start in sorted(starts):
        truth.setdefault(
            raw_name("M 42", exposure_s, "LP", name_stamp(start, exposure_s, tz=tz)), start
        )
    frames = tuple(f for f in map(parse_raw_name, truth) if f is not None)
    return Night(frames, truth)


@st.composite
def nights(draw: st.DrawFn) -> tuple[Night, tzinfo]:
    tz = draw(device_zones())
    start = draw(
        st.datetimes(
            min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
        )
    )
    offsets = draw(st.lists(st.integers(0, 8 * 3600), min_size=1, max_size=30))
    starts = [start + timedelta(seconds=s) for s in offsets]
    return night_in(tz, starts, draw(exposures())), tz


def run(settler: DeviceTimeSettler, answer: Answer) -> tuple[SettleStep, list[tuple[str, ...]]]:
    """Drive the settler to its answer; the names asked for in each step."""
    asked: list[tuple[str, ...]] = []
    step = settler.next_step()
    while isinstance(step, NeedHeaders):
        assert len(asked) < MAX_STEPS, "the settler keeps asking"
        asked.append(step.names)
        settler.receive_headers([answer(name) for name in step.names])
        step = settler.next_step()
    return step, asked


def settler_for(night: Night, tz: tzinfo, how: str, minutes: int = 15) -> DeviceTimeSettler:
    return DeviceTimeSettler(
        night.frames,
        override=tz if how == "override" else None,
        device_zone=tz if how == "device" else None,
        host_zone=UTC,
        block_minutes=minutes,
    )


HOW = st.sampled_from(["override", "device", "headers"])


@given(nights(), HOW, block_minutes(), st.data())
def test_it_settles_asks_each_header_once_and_returns_the_listed_frames(
    scenario: tuple[Night, tzinfo], how: str, minutes: int, data: st.DataObject
) -> None:
    night, tz = scenario
    absent = data.draw(st.sets(st.sampled_from(sorted(night.truth))))

    def answer(name: str) -> HeaderResult:
        if name in absent:
            return HeaderRead(name=name, date_obs=None)
        return night.read(name)

    step, asked = run(settler_for(night, tz, how, minutes), answer)
    assert isinstance(step, Settled)
    every = [name for names in asked for name in names]
    assert len(every) == len(set(every)), "a header was asked for twice"
    assert set(every) <= set(night.truth)
    assert [f.name for f in step.frames] == [f.name for f in night.frames]
    for frame in step.frames:
        read = frame.name in every and frame.name not in absent
        assert frame.date_obs == (night.truth[frame.name] if read else None)


@given(nights(), HOW, st.data())
def test_a_header_that_could_not_be_read_means_it_never_settles(
    scenario: tuple[Night, tzinfo], how: str, data: st.DataObject
) -> None:
    night, tz = scenario
    settler = settler_for(night, tz, how)
    step = settler.next_step()
    if not isinstance(step, NeedHeaders):
        return  # nothing to read (an override far from every boundary): nothing can fail
    broken = data.draw(st.sampled_from(step.names))
    settler.receive_headers(
        [
            HeaderUnreadable(name=n, reason="HTTP 500") if n == broken else night.read(n)
            for n in step.names
        ]
    )
    for _ in range(2):
        after = settler.next_step()
        assert after == CannotSettle(unreadable=(HeaderUnreadable(name=broken, reason="HTTP 500"),))


@given(nights(), st.sampled_from(["override", "device"]), block_minutes())
def test_with_the_true_zone_each_frame_lands_in_its_true_block(
    scenario: tuple[Night, tzinfo], how: str, minutes: int
) -> None:
    """The reads it asks for settle every frame (from headers alone a session that starts in a
    repeated hour can hide its clock change; see test_clock_change)."""
    night, tz = scenario
    step, _ = run(settler_for(night, tz, how, minutes), night.read)
    assert isinstance(step, Settled)
    blocks = plan_blocks(step.frames, block_minutes=minutes, now=FAR_FUTURE, device_tz=step.zone.tz)
    assert sum(b.frame_count for b in blocks) == len(night.frames)
    for block in blocks:
        for frame in block.frames:
            assert block.start <= night.truth[frame.name] < block.end


# --- examples ------------------------------------------------------------------------------------

FEB = night_in(
    VIENNA,
    [datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC) + timedelta(seconds=67 * i) for i in range(40)],
    10.0,
)


def test_headers_without_date_obs_fall_back_to_the_host_zone_with_a_warning() -> None:
    step, asked = run(
        settler_for(FEB, VIENNA, "headers"), lambda n: HeaderRead(name=n, date_obs=None)
    )
    assert isinstance(step, Settled)
    assert step.zone.source == ZoneSource.HOST == "host"
    assert "no DATE-OBS in the headers read" in step.warnings[0]
    assert asked[0] == (FEB.frames[0].name, FEB.frames[-1].name)


def test_unreadable_samples_are_no_missing_date_obs() -> None:
    step, _ = run(
        settler_for(FEB, VIENNA, "headers"), lambda n: HeaderUnreadable(name=n, reason="cut short")
    )
    assert isinstance(step, CannotSettle)
    assert step.unreadable[0].reason == "cut short"


def test_a_device_zone_that_agrees_needs_only_the_night_samples() -> None:
    step, asked = run(settler_for(FEB, VIENNA, "device"), FEB.read)
    assert isinstance(step, Settled)
    assert (step.zone.source, step.warnings) == (ZoneSource.DEVICE, ())
    assert asked[0] == (FEB.frames[0].name, FEB.frames[-1].name)


def test_an_override_the_headers_contradict_is_warned_of() -> None:
    # Frames 60 s apart from a boundary: a few are near one and get read, and contradict UTC.
    settler = settler_for(FEB, UTC, "override")
    step, asked = run(settler, FEB.read)
    assert isinstance(step, Settled)
    assert step.zone.source == ZoneSource.OVERRIDE
    assert step.warnings == (
        "sub-frame headers contradict the override time zone UTC; those nights are placed by "
        "each frame's DATE-OBS instead.",
    )
    assert len(asked[-1]) > 1  # the surprised night is read in full


def test_blocks_already_stacked_need_no_header_near_their_boundary() -> None:
    step, asked = run(settler_for(FEB, VIENNA, "override"), FEB.read)
    assert isinstance(step, Settled)
    near = {name for names in asked for name in names}
    assert len(near) > 1  # frames within 20 s of a boundary
    blocks = plan_blocks(step.frames, now=FAR_FUTURE, device_tz=VIENNA)
    stacked = [
        parse_crowdsky_name(f"CrowdSky_{b.frame_count}_M 42_10.0s_LP_{b.chunk_key}_HP107383.fit")
        for b in blocks
    ]
    settler = DeviceTimeSettler(
        FEB.frames, stacked=[s for s in stacked if s is not None], override=VIENNA
    )
    again, asked_again = run(settler, FEB.read)
    assert isinstance(again, Settled)
    assert len(again.covered) == len(blocks)
    # Only the first frame is still read: 5 s after 20:15 UTC, the block before it is unstacked.
    assert [name for names in asked_again for name in names] == [FEB.frames[0].name]


def test_a_session_starting_in_the_repeated_hour_is_settled_by_a_later_header() -> None:
    """Vienna 2025-10-26, 02:30 CEST to 03:30 CET, zone from headers only: the night's first and
    last frames both show winter time; a header read near a boundary reveals the change."""
    first = [datetime(2025, 10, 26, 0, 30, tzinfo=UTC) + timedelta(minutes=m) for m in range(30)]
    second = [datetime(2025, 10, 26, 1, 0, tzinfo=UTC) + timedelta(minutes=m) for m in range(90)]
    night = night_in(VIENNA, first + second, 10.0)
    step, asked = run(settler_for(night, VIENNA, "headers"), night.read)
    assert isinstance(step, Settled)
    assert len(asked) == 3  # samples, near a boundary, the surprised night
    for block in plan_blocks(step.frames, now=FAR_FUTURE, device_tz=step.zone.tz):
        for frame in block.frames:
            assert block.start <= night.truth[frame.name] < block.end
