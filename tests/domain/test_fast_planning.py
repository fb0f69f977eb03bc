"""The batch parser and the fast planner give exactly what the old one-by-one planner gave.

The old planner lives on in ``reference_planner.py``; these properties compare both on mixed
sessions (several targets, filters and exposures), DST nights, 45-minute zones, frames with and
without ``DATE-OBS``, any block length, in the device's listing order and shuffled.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdsky.domain import RawFrame, parse_raw_name, parse_raw_names, plan_blocks
from crowdsky.domain.blocks import plan_raw_names
from reference_planner import reference_parse, reference_plan
from strategies import block_minutes, exposures, filters, local_times, raw_name, targets

# Nights with a clock change, and zones with 45-minute offsets (Kathmandu +5:45, Chatham
# +12:45/+13:45 whose DST starts at 2:45) or a 30-minute DST step (Lord Howe).
_NIGHTS = (  # zone, an evening, the local wall time of its clock change (if any)
    (ZoneInfo("Europe/Vienna"), datetime(2025, 10, 25, 18), datetime(2025, 10, 26, 2)),
    (ZoneInfo("Europe/Vienna"), datetime(2026, 3, 28, 18), datetime(2026, 3, 29, 2)),
    (ZoneInfo("America/New_York"), datetime(2025, 11, 1, 18), datetime(2025, 11, 2, 1)),
    (ZoneInfo("Pacific/Chatham"), datetime(2025, 9, 27, 18), datetime(2025, 9, 28, 2, 45)),
    (ZoneInfo("Pacific/Chatham"), datetime(2026, 4, 4, 18), datetime(2026, 4, 5, 2, 45)),
    (ZoneInfo("Australia/Lord_Howe"), datetime(2025, 10, 4, 18), datetime(2025, 10, 5, 2)),
    (ZoneInfo("Asia/Kathmandu"), datetime(2026, 2, 27, 18), None),
    (timezone(timedelta(hours=12, minutes=45)), datetime(2026, 2, 27, 18), None),
    (timezone(timedelta(hours=5, minutes=45)), datetime(2026, 2, 27, 18), None),
    (UTC, datetime(2026, 2, 27, 18), None),
)


@st.composite
def sessions(draw: st.DrawFn) -> tuple[tzinfo, list[str]]:
    """A zone and the names of one or two nights' sub-frames, with a few odd names mixed in."""
    tz, evening, change = draw(st.sampled_from(_NIGHTS))
    kinds = draw(st.lists(st.tuples(targets(), exposures(), filters()), min_size=1, max_size=4))
    names = []
    for _ in range(draw(st.integers(1, 4))):  # runs of frames, as the device takes them
        target, exposure, filter = draw(st.sampled_from(kinds))
        if change is not None and draw(st.booleans()):  # around the clock change
            moment = change + timedelta(seconds=draw(st.integers(-5400, 5400)))
        else:
            moment = evening + timedelta(seconds=draw(st.integers(0, 36 * 3600)))
        step = draw(st.sampled_from((1, 7, 11, 14, 25, 61)))
        suffix = draw(st.sampled_from((".fit", ".fit", ".fits")))
        for k in range(draw(st.integers(1, 60))):
            stamp = moment + timedelta(seconds=step * k)
            names.append(raw_name(target, exposure, filter, stamp, suffix))
    names += draw(st.lists(st.sampled_from(_ODD_NAMES), max_size=3))
    return tz, names


_ODD_NAMES = (
    "Light_M 42_10.0s_LP_20260227-211503_thn.jpg",
    "Light_M 42_10.0s_LP_20261327-211503.fit",  # month 13
    "Light_M 42_10.0s_LP_20260227-236003.fit",  # minute 60
    "Light_M 42_10.0s_LP_20260227-235960.fit",  # second 60
    "Light_M 42_10.0s_LP_19991231-235959.fit",  # before 2000
    "Light_ M 42_10.0s_LP_20260227-211503.fit",  # padded target
    "Light_M 42_10.0s_LP_20260227-211503.fit\n",  # a line break the single pattern admits
    "Light_M\n42_10.0s_LP_20260227-211503.fit",
    "Light_M 42_0.0s_LP_20260227-211503.fit",
    "Light_M 42_10s_LP_20260227-211503.fit",  # the same frame as 10.0s by its fields
    "DSO_Stacked_3_M 42_10.0s_20260227_211503.fit",
    "",
)


def _with_headers(frames: list[RawFrame], picks: list[int], tz: tzinfo) -> list[RawFrame]:
    """Some frames given a DATE-OBS: the name time in ``tz`` less exposure and a few seconds."""
    out = list(frames)
    for pick in picks:
        if out:
            i = pick % len(out)
            f = out[i]
            start = f.local_time.replace(tzinfo=tz).astimezone(UTC)
            out[i] = attrs.evolve(f, date_obs=start - timedelta(seconds=f.exposure_s + 3.5))
    return out


@given(names=st.lists(st.one_of(st.sampled_from(_ODD_NAMES), st.text(max_size=60)), max_size=20))
def test_batch_parser_takes_what_the_single_parser_took(names: list[str]) -> None:
    expected = tuple(f for f in map(reference_parse, names) if f is not None)
    assert parse_raw_names(names) == expected
    assert tuple(f for f in map(parse_raw_name, names) if f is not None) == expected


# Characters a mutation may put into a name: those the fields are made of, their separators, and
# look-alikes the strict pattern refuses (other scripts' digits, a line break, a full stop).
_MUTANTS = "0123456789_-.s LPfit\n\x00/٢éε"


@st.composite
def near_raw_names(draw: st.DrawFn) -> str:
    """A valid raw name, or one a few edits away from valid (each edit may break one field)."""
    name = raw_name(
        draw(targets()),
        draw(exposures()),
        draw(filters()),
        draw(local_times()),
        draw(st.sampled_from((".fit", ".fit", ".fits", ".jpg", "_thn.jpg", ".fit\n"))),
    )
    for _ in range(draw(st.integers(0, 3))):
        # half the edits in the fields cut at fixed offsets from the end: stamp and suffix
        near_end = draw(st.booleans())
        at = (
            max(0, len(name) - draw(st.integers(0, 24)))
            if near_end
            else draw(st.integers(0, len(name)))
        )
        edit = draw(st.sampled_from(("replace", "insert", "delete")))
        char = draw(st.sampled_from(_MUTANTS))
        if edit == "replace":
            name = name[:at] + char + name[at + 1 :]
        elif edit == "insert":
            name = name[:at] + char + name[at:]
        else:
            name = name[:at] + name[at + 1 :]
    return name


@settings(max_examples=300)
@given(names=st.lists(near_raw_names(), max_size=30))
def test_the_fast_path_takes_exactly_the_names_the_strict_pattern_takes(names: list[str]) -> None:
    """Valid and nearly valid names: each is a frame exactly when the strict parser makes one."""
    expected = tuple(f for f in map(reference_parse, names) if f is not None)
    assert parse_raw_names(names) == expected
    assert parse_raw_names(n for n in names if n.endswith(".fit")) == tuple(
        f for f in expected if f.name.endswith(".fit")
    )


@given(
    session=sessions(),
    minutes=st.one_of(st.sampled_from((5, 10, 15, 20, 30, 60)), block_minutes()),
    shuffled=st.randoms(use_true_random=False),
    order=st.sampled_from(("listed", "sorted", "shuffled")),
    headers=st.lists(st.integers(0, 10_000), max_size=5),
    cutoff_h=st.integers(0, 48),
    covered_picks=st.lists(st.integers(0, 10_000), max_size=3),
)
def test_fast_planner_makes_the_reference_blocks(
    session: tuple[tzinfo, list[str]],
    minutes: int,
    shuffled: st.SearchStrategy[object],
    order: str,
    headers: list[int],
    cutoff_h: int,
    covered_picks: list[int],
) -> None:
    tz, names = session
    if order == "sorted":
        names = sorted(names)
    elif order == "shuffled":
        shuffled.shuffle(names)  # type: ignore[attr-defined]
    frames = _with_headers(list(parse_raw_names(names)), headers, tz)
    reference_frames = _with_headers(
        [f for f in map(reference_parse, names) if f is not None], headers, tz
    )
    assert frames == reference_frames
    now = datetime(2025, 9, 27, 12, tzinfo=UTC) + timedelta(hours=cutoff_h * 200)
    everything = reference_plan(reference_frames, block_minutes=minutes, now=now, device_tz=tz)
    covered = [everything[p % len(everything)].coverage_key for p in covered_picks if everything]
    options = {"block_minutes": minutes, "now": now, "device_tz": tz, "covered": covered}
    assert plan_blocks(frames, **options) == reference_plan(reference_frames, **options)


@given(
    target=targets(),
    exposure=exposures(),
    filter=filters(),
    local_time=local_times(),
    suffix=st.sampled_from((".fit", ".fits")),
)
def test_a_frame_made_by_hand_equals_the_parsed_one(
    target: str, exposure: float, filter: str, local_time: datetime, suffix: str
) -> None:
    name = raw_name(target, exposure, filter, local_time, suffix)
    parsed = parse_raw_name(name)
    by_hand = RawFrame(name, target, exposure, filter, local_time)
    assert parsed == by_hand
    assert hash(parsed) == hash(by_hand)
    assert repr(parsed) == repr(by_hand)
    assert by_hand.local_time == local_time
    assert attrs.evolve(by_hand, date_obs=local_time).local_time == local_time


def test_a_frame_keeps_a_local_time_its_name_does_not_carry() -> None:
    frame = RawFrame("x.fit", "M 42", 10.0, "LP", datetime(2026, 2, 27, 21, 15))
    assert frame.local_time == datetime(2026, 2, 27, 21, 15)
    assert attrs.evolve(frame, date_obs=datetime(2026, 2, 27, 20, 15)).local_time == datetime(
        2026, 2, 27, 21, 15
    )


@given(
    session=sessions(),
    minutes=st.one_of(st.sampled_from((5, 10, 15, 20, 30, 60)), block_minutes()),
    shuffled=st.randoms(use_true_random=False),
    order=st.sampled_from(("listed", "sorted", "shuffled")),
    cutoff_h=st.integers(0, 48),
    covered_picks=st.lists(st.integers(0, 10_000), max_size=3),
)
def test_planning_from_names_makes_the_reference_blocks(
    session: tuple[tzinfo, list[str]],
    minutes: int,
    shuffled: st.SearchStrategy[object],
    order: str,
    cutoff_h: int,
    covered_picks: list[int],
) -> None:
    """Names straight to blocks: the reference blocks, equal, hashed and shown alike."""
    tz, names = session
    if order == "sorted":
        names = sorted(names)
    elif order == "shuffled":
        shuffled.shuffle(names)  # type: ignore[attr-defined]
    frames = [f for f in map(reference_parse, names) if f is not None]
    now = datetime(2025, 9, 27, 12, tzinfo=UTC) + timedelta(hours=cutoff_h * 200)
    everything = reference_plan(frames, block_minutes=minutes, now=now, device_tz=tz)
    covered = [everything[p % len(everything)].coverage_key for p in covered_picks if everything]
    options = {"block_minutes": minutes, "now": now, "device_tz": tz, "covered": covered}
    expected = reference_plan(frames, **options)
    planned = plan_raw_names(iter(names), **options)
    assert [b.frame_count for b in planned] == [b.frame_count for b in expected]
    assert planned == expected
    assert list(map(hash, planned)) == list(map(hash, expected))
    assert repr(planned) == repr(expected)
    assert planned == plan_blocks(parse_raw_names(names), **options)


@given(
    names=st.lists(near_raw_names(), max_size=30),
    order=st.sampled_from(("listed", "sorted")),
)
def test_planning_from_names_takes_exactly_the_names_the_strict_pattern_takes(
    names: list[str], order: str
) -> None:
    """Nearly valid names (and ties of equal starts: 10s and 10.0s, .fit and .fits)."""
    if order == "sorted":
        names = sorted(names)
    doubled = [
        *names,
        *(re.sub(r"_(\d+)\.0s_", r"_\1s_", n, count=1) for n in names),  # 10.0s as 10s
        *(n + "s" for n in names if n.endswith(".fit")),  # .fit as .fits
    ]
    frames = [f for f in map(reference_parse, doubled) if f is not None]
    options = {"now": datetime(2300, 1, 1, tzinfo=UTC), "device_tz": UTC}
    assert plan_raw_names(doubled, **options) == reference_plan(frames, **options)


def test_a_zone_offset_with_a_fraction_of_a_second_still_plans_from_names() -> None:
    """Stamps on no whole UTC second cannot be keyed in seconds: the general planner plans them."""
    tz = timezone(timedelta(hours=1, microseconds=500_000))
    start = datetime(2026, 2, 27, 21, 0)
    names = [raw_name("M 42", 10.0, "LP", start + timedelta(seconds=13 * k)) for k in range(200)]
    frames = [f for f in map(reference_parse, names) if f is not None]
    options = {"now": datetime(2027, 1, 1, tzinfo=UTC), "device_tz": tz}
    planned = plan_raw_names(names, **options)
    assert len(planned) > 1
    assert planned == reference_plan(frames, **options)


def test_a_block_planned_from_names_makes_its_frames_once() -> None:
    names = [raw_name("M 42", 10.0, "LP", datetime(2026, 2, 27, 21, 5, 13 * k)) for k in range(4)]
    (block,) = plan_raw_names(names, now=datetime(2027, 1, 1, tzinfo=UTC), device_tz=UTC)
    assert block.frame_count == 4
    assert block.frames is block.frames
    assert block.frames == parse_raw_names(names)
    assert attrs.evolve(block, target="M 43").frames == block.frames
