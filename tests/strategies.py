"""Hypothesis strategies for the domain: target names, exposures, filters, zones, frames.

Frames are built through their *file names* (``Light_<target>_<exp>_<filter>_<stamp>.fit``) and
the parser, so every property over frames also exercises :func:`parse_raw_name`. The device stamps
a name when it saves the file, after the exposure; :func:`frame_started_at` builds a frame from the
time its exposure started, the time that decides its block.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from crowdsky.domain import (
    MINUTES_PER_DAY,
    SAVE_DELAY_S,
    RawFrame,
    format_exposure,
    parse_raw_name,
)

__all__ = [
    "ALLOWED_BLOCK_MINUTES",
    "NAMED_ZONES",
    "aware_datetimes",
    "block_minutes",
    "device_zones",
    "exposures",
    "filters",
    "frame_started_at",
    "local_times",
    "name_stamp",
    "raw_frames",
    "raw_name",
    "targets",
]

#: Every block length that makes a whole number of blocks per day.
ALLOWED_BLOCK_MINUTES = tuple(d for d in range(1, MINUTES_PER_DAY + 1) if MINUTES_PER_DAY % d == 0)

#: Zones chosen for their awkward offsets: 45-minute (Kathmandu), a 30-minute DST step
#: (Lord Howe), +12:45/+13:45 (Chatham), negative offsets with DST, and none at all.
NAMED_ZONES = (
    "Europe/Vienna",
    "America/New_York",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "UTC",
)

# Letters the device may put in a target name, beyond ASCII: Greek (Bayer designations),
# accented Latin (names typed on a phone), and a few from other scripts.
_LETTERS = "abcxyzABCMNGIS" + "εαβγδΩéèöüñçøåł" + "星雲"
_INNER = _LETTERS + "0123456789 _-+.()'"
_EDGE = _LETTERS + "0123456789_-("

#: Names real observers use, each a shape the parser must cope with.
_KNOWN_TARGETS = ("IC 434", "M 42", "M 81", "ε Cnc", "Sh2_101", "NGC 7000", "C 2023_A3", "Algol")


@st.composite
def targets(draw: st.DrawFn) -> str:
    """Target names: spaces, underscores, digits and non-ASCII letters, never padded."""
    if draw(st.booleans()):
        return draw(st.sampled_from(_KNOWN_TARGETS))
    first = draw(st.sampled_from(_EDGE))
    middle = draw(st.text(alphabet=_INNER, max_size=12))
    last = draw(st.sampled_from(_EDGE)) if middle or draw(st.booleans()) else ""
    return first + middle + last


def exposures() -> st.SearchStrategy[float]:
    """Sub-frame exposures in seconds: the usual 10/20/30 s, or 0.5–600 s with <= 2 decimals."""
    # Hundredths divided by 100 is the double nearest the two-decimal number, as float() of
    # the device's text gives.
    return st.one_of(
        st.sampled_from((10.0, 20.0, 30.0)),
        st.integers(min_value=50, max_value=60_000).map(lambda hundredths: hundredths / 100),
    )


def filters() -> st.SearchStrategy[str]:
    """Filter names as the device writes them (``LP``, ``IRCUT``) or any ``[A-Za-z0-9-]+``."""
    return st.one_of(
        st.sampled_from(("LP", "IRCUT")),
        st.from_regex(r"[A-Za-z0-9-]{1,8}", fullmatch=True),
    )


def block_minutes() -> st.SearchStrategy[int]:
    """Allowed block lengths (divisors of 1 440), favouring the common ones."""
    return st.one_of(
        st.sampled_from((5, 10, 15, 20, 30, 60)), st.sampled_from(ALLOWED_BLOCK_MINUTES)
    )


def device_zones() -> st.SearchStrategy[tzinfo]:
    """Device zones: IANA zones with awkward rules, UTC, and fixed offsets from -12:00 to +14:00."""
    fixed = st.integers(min_value=-48, max_value=56).map(
        lambda quarters: timezone(timedelta(minutes=15 * quarters))
    )
    named: st.SearchStrategy[tzinfo] = st.sampled_from(NAMED_ZONES).map(ZoneInfo)
    return st.one_of(named, fixed, st.just(UTC))


def local_times(
    min_value: datetime = datetime(2020, 1, 1), max_value: datetime = datetime(2035, 12, 31)
) -> st.SearchStrategy[datetime]:
    """Naive device wall-clock times to the second, as file names carry them."""
    return st.datetimes(min_value=min_value, max_value=max_value).map(
        lambda moment: moment.replace(microsecond=0)
    )


def aware_datetimes(
    min_value: datetime = datetime(2020, 1, 1), max_value: datetime = datetime(2035, 12, 31)
) -> st.SearchStrategy[datetime]:
    """Aware moments in any of :func:`device_zones` (real ones only: no skipped wall times)."""
    return st.datetimes(
        min_value=min_value, max_value=max_value, timezones=device_zones(), allow_imaginary=False
    )


def raw_name(
    target: str, exposure_s: float, filter: str, local_time: datetime, suffix: str = ".fit"
) -> str:
    """The device's name of a raw sub-frame."""
    stamp = f"{local_time:%Y%m%d-%H%M%S}"
    return f"Light_{target}_{format_exposure(exposure_s)}_{filter}_{stamp}{suffix}"


def name_stamp(
    start: datetime,
    exposure_s: float,
    *,
    tz: tzinfo | None = None,
    delay_s: float = SAVE_DELAY_S,
) -> datetime:
    """The name stamp of a sub whose exposure started at ``start``: when it was saved.

    The device names a file at save time, ``exposure_s + delay_s`` after the exposure started
    (protocol reference §3.5), to the whole second below. A naive ``start`` is device wall time
    and the stamp is too; an aware one is moved in true time and the stamp is read in ``tz``.
    """
    lag = timedelta(seconds=exposure_s + delay_s)
    if start.tzinfo is None:
        saved = start + lag
    else:
        saved = (start.astimezone(UTC) + lag).astimezone(tz or UTC).replace(tzinfo=None)
    return saved.replace(microsecond=0)


def frame_started_at(
    start: datetime,
    exposure_s: float = 10.0,
    filter: str = "LP",
    target: str = "IC 434",
    *,
    tz: tzinfo | None = None,
    delay_s: float = SAVE_DELAY_S,
) -> RawFrame:
    """The frame the device names for an exposure started at ``start`` (see :func:`name_stamp`)."""
    stamp = name_stamp(start, exposure_s, tz=tz, delay_s=delay_s)
    frame = parse_raw_name(raw_name(target, exposure_s, filter, stamp))
    assert frame is not None
    return frame


@st.composite
def raw_frames(
    draw: st.DrawFn,
    *,
    target: st.SearchStrategy[str] | None = None,
    exposure: st.SearchStrategy[float] | None = None,
    filter: st.SearchStrategy[str] | None = None,
    local_time: st.SearchStrategy[datetime] | None = None,
) -> RawFrame:
    """A raw sub-frame, made by parsing the name the device would give it."""
    name = raw_name(
        draw(target if target is not None else targets()),
        draw(exposure if exposure is not None else exposures()),
        draw(filter if filter is not None else filters()),
        draw(local_time if local_time is not None else local_times()),
        draw(st.sampled_from((".fit", ".fit", ".fits"))),
    )
    frame = parse_raw_name(name)
    assert frame is not None, f"the parser rejected a well-formed name {name!r}"
    return frame
