"""Planning: frames into clock-aligned UTC blocks, minus covered and unfinished ones."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import (
    Block,
    CoverageKey,
    RawFrame,
    check_min_exptime,
    coverage_key_of,
    frame_utc,
    parse_crowdsky_name,
    partition_by_exptime,
    plan_blocks,
    settle_time,
)
from crowdsky.errors import PlanError
from strategies import (
    block_minutes,
    device_zones,
    exposures,
    filters,
    frame_started_at,
    local_times,
    raw_frames,
    targets,
)

VIENNA = ZoneInfo("Europe/Vienna")
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)

# Frames of one session: a few targets, exposures and filters, so that groups really mix.
session_frames = st.lists(
    raw_frames(
        target=st.sampled_from(("IC 434", "M 42", "ε Cnc")),
        exposure=st.sampled_from((10.0, 20.0, 2.5)),
        filter=st.sampled_from(("LP", "IRCUT")),
        local_time=local_times(datetime(2025, 10, 24), datetime(2025, 10, 28)),
    ),
    max_size=40,
)
# Frames of any shape at any time.
any_frames = st.lists(raw_frames(), max_size=30)
frame_lists = st.one_of(session_frames, any_frames)


def frame_at(start: datetime, exposure_s: float = 10.0, filter: str = "LP") -> RawFrame:
    """The frame whose exposure started at device time ``start`` (its name is stamped later)."""
    return frame_started_at(start, exposure_s, filter)


def all_blocks(frames: list[RawFrame], minutes: int, tz: tzinfo) -> tuple[Block, ...]:
    return plan_blocks(frames, block_minutes=minutes, now=FAR_FUTURE, device_tz=tz)


@given(frame_lists, block_minutes(), device_zones())
def test_every_frame_lands_in_exactly_one_block(
    frames: list[RawFrame], minutes: int, tz: tzinfo
) -> None:
    blocks = all_blocks(frames, minutes, tz)
    planned = Counter(f for b in blocks for f in b.frames)
    assert planned == Counter(frames)


@given(frame_lists, block_minutes(), device_zones())
def test_blocks_are_utc_aligned_and_hold_their_frames(
    frames: list[RawFrame], minutes: int, tz: tzinfo
) -> None:
    for block in all_blocks(frames, minutes, tz):
        assert block.start.utcoffset() == timedelta(0)
        assert block.end - block.start == timedelta(minutes=minutes)
        assert (block.start.hour * 60 + block.start.minute) % minutes == 0
        assert (block.start.second, block.start.microsecond) == (0, 0)
        assert block.block_minutes == minutes
        assert block.frame_count == len(block.frames) > 0
        for frame in block.frames:
            assert block.start <= frame_utc(frame, tz) < block.end
            assert (frame.target, frame.exposure_s, frame.filter) == (
                block.target,
                block.exposure_s,
                block.filter,
            )
        times = [frame_utc(f, tz) for f in block.frames]
        assert times == sorted(times)


@given(frame_lists, block_minutes(), device_zones())
def test_one_block_per_target_exposure_filter_and_slot(
    frames: list[RawFrame], minutes: int, tz: tzinfo
) -> None:
    blocks = all_blocks(frames, minutes, tz)
    identities = [(b.target, b.exposure_s, b.filter, b.start) for b in blocks]
    assert len(identities) == len(set(identities))
    keys = [b.coverage_key for b in blocks]
    assert len(keys) == len(set(keys))
    order = [(b.start, b.target, b.exposure_s, b.filter) for b in blocks]
    assert order == sorted(order)


def test_exposure_and_filter_split_a_slot() -> None:
    start = datetime(2026, 2, 27, 21, 15, 3)
    frames = [
        frame_at(start),
        frame_at(start + timedelta(seconds=20)),
        frame_at(start + timedelta(seconds=40), exposure_s=20.0),
        frame_at(start + timedelta(seconds=60), filter="IRCUT"),
    ]
    blocks = all_blocks(frames, 15, VIENNA)
    assert [(b.exposure, b.filter, b.frame_count) for b in blocks] == [
        ("10.0s", "IRCUT", 1),
        ("10.0s", "LP", 2),
        ("20.0s", "LP", 1),
    ]
    assert {b.chunk_key for b in blocks} == {"20260227.81"}


@given(frame_lists, block_minutes(), device_zones(), st.data())
def test_blocks_still_being_observed_are_left_out(
    frames: list[RawFrame], minutes: int, tz: tzinfo, data: st.DataObject
) -> None:
    everything = all_blocks(frames, minutes, tz)
    complete_at = [b.end + settle_time(b.exposure_s) for b in everything]
    candidates = complete_at + [t - timedelta(seconds=1) for t in complete_at]
    now = data.draw(st.sampled_from(candidates) if candidates else st.just(FAR_FUTURE))
    done = plan_blocks(frames, block_minutes=minutes, now=now, device_tz=tz)
    assert done == tuple(b for b in everything if b.end + settle_time(b.exposure_s) <= now)
    assert all(b.end <= now for b in done)  # never a block still being observed


def test_block_is_complete_once_its_last_frame_can_have_been_saved() -> None:
    frames = [frame_at(datetime(2026, 2, 27, 21, 20))]
    end = datetime(2026, 2, 27, 20, 30, tzinfo=UTC)
    # A 10 s exposure started just before the end is saved ~14 s later; 20 s margin on top.
    settled = end + timedelta(seconds=10 + 4 + 20)
    assert settle_time(10.0) == settled - end
    assert plan_blocks(frames, now=end, device_tz=VIENNA) == ()
    assert plan_blocks(frames, now=settled, device_tz=VIENNA)
    assert plan_blocks(frames, now=settled - timedelta(microseconds=1), device_tz=VIENNA) == ()
    assert plan_blocks(frames, now=settled.astimezone(VIENNA), device_tz=VIENNA)


@given(frame_lists, block_minutes(), device_zones(), st.data())
def test_covered_blocks_are_left_out(
    frames: list[RawFrame], minutes: int, tz: tzinfo, data: st.DataObject
) -> None:
    everything = all_blocks(frames, minutes, tz)
    covered = (
        data.draw(st.sets(st.sampled_from([b.coverage_key for b in everything])))
        if (everything)
        else set()
    )
    left = plan_blocks(frames, block_minutes=minutes, now=FAR_FUTURE, device_tz=tz, covered=covered)
    assert left == tuple(b for b in everything if b.coverage_key not in covered)


@given(frame_lists, block_minutes(), device_zones())
def test_planning_after_stacking_is_empty(frames: list[RawFrame], minutes: int, tz: tzinfo) -> None:
    plan = all_blocks(frames, minutes, tz)
    stacked = (b.coverage_key for b in plan)
    again = plan_blocks(
        frames, block_minutes=minutes, now=FAR_FUTURE, device_tz=tz, covered=stacked
    )
    assert again == ()


@given(frame_lists, device_zones())
def test_other_block_lengths_do_not_cover_each_other(frames: list[RawFrame], tz: tzinfo) -> None:
    """Stacks made with 15-minute blocks say nothing about 10-minute blocks (field notes 3)."""
    fifteen = {b.coverage_key for b in all_blocks(frames, 15, tz)}
    ten = all_blocks(frames, 10, tz)
    left = plan_blocks(frames, block_minutes=10, now=FAR_FUTURE, device_tz=tz, covered=fifteen)
    assert left == ten


def test_a_legacy_crowdsky_name_covers_its_block() -> None:
    frames = [
        frame_at(datetime(2026, 2, 27, 21, 15, 3) + timedelta(seconds=13 * i)) for i in range(5)
    ]
    legacy = parse_crowdsky_name("CrowdSky_5_IC 434_10.0s_LP_20260227-211500.fit")
    assert legacy is not None
    key = coverage_key_of(legacy, VIENNA)
    assert key == CoverageKey("IC 434", "10.0s", "LP", "20260227.81")
    assert plan_blocks(frames, now=FAR_FUTURE, device_tz=VIENNA, covered=[key]) == ()


def test_a_current_crowdsky_name_covers_its_block_whatever_its_pixel_and_count() -> None:
    frames = [frame_at(datetime(2026, 2, 27, 21, 15, 3))]
    name = parse_crowdsky_name("CrowdSky_31_IC 434_10.0s_LP_20260227.81_HP000007.fit")
    assert name is not None
    key = coverage_key_of(name, ZoneInfo("America/New_York"))
    assert plan_blocks(frames, now=FAR_FUTURE, device_tz=VIENNA, covered=[key]) == ()


# --- the host's zone is irrelevant ---------------------------------------------------------------


@contextmanager
def host_zone(name: str) -> Iterator[None]:
    """Run with the process's local zone set to ``name``, then put the old one back."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_the_same_night_gives_the_same_keys_on_any_host() -> None:
    night = [
        frame_at(datetime(2026, 2, 27, 21, 15, 3) + timedelta(minutes=2 * i)) for i in range(90)
    ]
    results = {}
    for host in ("Europe/Vienna", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham", "UTC"):
        with host_zone(host):
            # The switch is real: the host's own notion of local time moved.
            results[host] = (
                time.localtime(1_772_222_400).tm_gmtoff,
                [b.chunk_key for b in plan_blocks(night, now=FAR_FUTURE, device_tz=VIENNA)],
            )
    assert len({gmtoff for gmtoff, _ in results.values()}) == len(results)
    assert {tuple(keys) for _, keys in results.values()} == {
        tuple(f"20260227.{slot}" for slot in range(81, 93))
    }


# --- DST ------------------------------------------------------------------------------------------


def test_both_passes_of_the_fall_back_hour_land_in_different_blocks() -> None:
    """Vienna, 2025-10-26: frames at 02:20 local in CEST and again in CET are an hour apart."""
    first = frame_at(datetime(2025, 10, 26, 2, 20, 0))
    second = frame_at(datetime(2025, 10, 26, 2, 20, 30))
    first = attrs.evolve(first, date_obs=datetime(2025, 10, 26, 0, 20, 0, tzinfo=UTC))
    second = attrs.evolve(second, date_obs=datetime(2025, 10, 26, 1, 20, 30, tzinfo=UTC))
    blocks = plan_blocks([first, second], now=FAR_FUTURE, device_tz=VIENNA)
    assert [(b.start, b.frames) for b in blocks] == [
        (datetime(2025, 10, 26, 0, 15, tzinfo=UTC), (first,)),
        (datetime(2025, 10, 26, 1, 15, tzinfo=UTC), (second,)),
    ]
    assert [b.chunk_key for b in blocks] == ["20251026.01", "20251026.05"]


def test_spring_forward_frames_with_date_obs_use_it() -> None:
    """A device that did not jump its clock writes 02:30 on 2025-03-30; DATE-OBS says 01:30 UTC."""
    frame = attrs.evolve(
        frame_at(datetime(2025, 3, 30, 2, 30, 0)),
        date_obs=datetime(2025, 3, 30, 1, 30, 0, tzinfo=UTC),
    )
    (block,) = plan_blocks([frame], now=FAR_FUTURE, device_tz=VIENNA)
    assert block.start == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -15, 7, 25, 1441, True, 15.0, 10.5])
def test_bad_block_minutes_are_a_plan_error(bad: object) -> None:
    with pytest.raises(PlanError) as caught:
        plan_blocks([], block_minutes=bad, now=FAR_FUTURE, device_tz=UTC)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


def test_naive_now_is_a_plan_error() -> None:
    with pytest.raises(PlanError):
        plan_blocks([], now=datetime(2026, 1, 1), device_tz=UTC)


@pytest.mark.parametrize("bad", [-1, -0.001, float("nan"), True, "240", None])
def test_bad_min_exptime(bad: object) -> None:
    with pytest.raises(PlanError):
        check_min_exptime(bad)  # type: ignore[arg-type]
    with pytest.raises(PlanError):
        partition_by_exptime([], bad)  # type: ignore[arg-type]


def _block_of(count: int, exposure_s: float) -> Block:
    start = datetime(2026, 2, 27, 21, 15, 3)
    frames = [frame_at(start + timedelta(seconds=9 * i), exposure_s) for i in range(count)]
    (block,) = all_blocks(frames, 15, VIENNA)
    return block


def test_partition_keeps_a_block_exactly_at_the_threshold() -> None:
    at, below, above = _block_of(24, 10.0), _block_of(23, 10.0), _block_of(25, 10.0)
    assert at.total_exposure_s == 240
    keep, skip = partition_by_exptime([below, at, above], 240)
    assert keep == (at, above)
    assert skip == (below,)
    assert partition_by_exptime([below], 0) == ((below,), ())


@given(
    st.lists(st.tuples(st.integers(1, 90), exposures()), max_size=8),
    st.floats(min_value=0, max_value=5000),
)
def test_partition_splits_by_total_exposure(
    shapes: list[tuple[int, float]], threshold: float
) -> None:
    blocks = [_block_of(count, exposure_s) for count, exposure_s in shapes]
    keep, skip = partition_by_exptime(blocks, threshold)
    assert all(b.total_exposure_s >= threshold for b in keep)
    assert all(b.total_exposure_s < threshold for b in skip)
    assert sorted(map(id, keep + skip)) == sorted(map(id, blocks))


@given(targets(), exposures(), filters())
def test_block_coverage_key_matches_a_crowdsky_name(
    target: str, exposure_s: float, filter: str
) -> None:
    frame = frame_started_at(datetime(2026, 2, 27, 21, 15, 3), exposure_s, filter, target)
    (block,) = all_blocks([frame], 15, VIENNA)
    name = parse_crowdsky_name(
        f"CrowdSky_1_{target}_{block.exposure}_{filter}_{block.chunk_key}_HP000001.fit"
    )
    assert name is not None
    assert coverage_key_of(name, VIENNA) == block.coverage_key
