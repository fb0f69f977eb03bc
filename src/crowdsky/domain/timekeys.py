"""UTC chunk keys, clock-aligned block boundaries and the device's time zone.

Theory of operation
-------------------
Sub-frame names carry the Seestar's *local* wall-clock time; ``DATE-OBS`` in the FITS header is
UTC and marks the start of the exposure (protocol reference §3.5). A frame belongs to the block
in which its exposure started (the time the CrowdSky server keys stacks by): its ``DATE-OBS``
when read, else its name time converted to UTC less the exposure and the save delay. Converting
needs the device's UTC offset, which comes, in order of preference, from

1. an explicit override (``tz=``),
2. the device's own IANA zone (``pi_get_time``), when it agrees with a sampled ``DATE-OBS``,
3. sampled headers: name time minus ``DATE-OBS``, rounded to 15 minutes (the name is stamped about
   14 s after ``DATE-OBS``, at save time), one offset per observing night,
4. the host's zone, with a :class:`~crowdsky.errors.DeviceTimeWarning`.

A frame whose own ``DATE-OBS`` is known needs no offset, which settles the repeated hour of a
fall-back night and the skipped hour of a spring-forward night. :func:`decide_zone` returns the
zone together with the frames whose header must be read for that, :func:`near_boundary` the
few frames too close to a block boundary for the estimate to place them, and
:func:`offset_surprises` the nights where one of those headers contradicts the zone.
:class:`~crowdsky.domain.device_time.DeviceTimeSettler` runs them in that order, asking for the
headers each one needs. A header that could not be read is never taken for one without
``DATE-OBS``: these functions only ever see headers that were read.

Blocks are aligned on UTC boundaries (shared README, decision 3). For 15-minute blocks the chunk
key is ``YYYYMMDD.CC`` with ``CC`` = 00–95. Other lengths get ``YYYYMMDD.<index>m<minutes>``
(``20260227.130m10`` is the 131st 10-minute block of 27 Feb 2026 UTC), so two different blocks
never share a key, whatever their length.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from operator import attrgetter, itemgetter

import attrs

from crowdsky.domain.local_hours import (
    EPOCH,
    HourStarts,
    exposure_delay_us,
    night_of_hour,
    to_us,
)
from crowdsky.domain.names import ENDS_FIT, STAMP_OF_FIT, RawFrame, stamp_in_name, times_in_names
from crowdsky.errors import PlanError

__all__ = [
    "BOUNDARY_MARGIN_S",
    "LATER_START_MARGIN_S",
    "MINUTES_PER_DAY",
    "SAVE_DELAY_S",
    "NightlyOffsets",
    "ZoneDecision",
    "ZoneSource",
    "as_utc",
    "block_bounds",
    "check_block_minutes",
    "chunk_key",
    "decide_zone",
    "frame_utc",
    "header_offset",
    "local_to_utc",
    "near_boundary",
    "needs_date_obs",
    "night_of",
    "night_samples",
    "offset_surprises",
]

MINUTES_PER_DAY = 1440
_QUARTER = timedelta(minutes=15)
#: Real UTC offsets run from -12:00 to +14:00. A DATE-OBS implying more (a reset clock, a file
#: from another device) is no reading of the device's zone, and tzinfo refuses a day or more.
_MAX_OFFSET = timedelta(hours=14)
_DAY = timedelta(days=1)
_NAME = attrgetter("name")
_HOUR_OF_STAMP = itemgetter(slice(None, 11))

#: Seconds from the end of an exposure to the file's name stamp (protocol reference §3.5: an
#: S50 10 s sub is named about 14 s after its ``DATE-OBS``).
SAVE_DELAY_S = 4.0

#: How much *earlier* than its estimate (:func:`frame_utc`) a frame's exposure may have started:
#: a save slower than :data:`SAVE_DELAY_S`, up to 24 s, for the delay varies between frames and
#: models. A frame this close after a block boundary has its ``DATE-OBS`` read.
BOUNDARY_MARGIN_S = 20.0

#: How much *later* than its estimate a frame's exposure may have started: at most
#: :data:`SAVE_DELAY_S` plus one second, whatever the device. The name is stamped when the file
#: is saved, which is after the exposure ended (``DATE-OBS`` + exposure; the real S50 pair in
#: the protocol reference §3.5 is named 13.6 s after ``DATE-OBS`` for a 10 s sub), and the
#: name's seconds are truncated (the save happened up to 1 s after the name's time). So
#: ``DATE-OBS`` < name + 1 s - exposure = estimate + :data:`SAVE_DELAY_S` + 1 s: a frame estimated
#: more than this before a boundary started before it, and its header need not be read.
LATER_START_MARGIN_S = SAVE_DELAY_S + 1.0


def check_block_minutes(block_minutes: int) -> int:
    """Return ``block_minutes`` if it makes a whole number of blocks per day, else raise.

    Raises
    ------
    PlanError
        When the value is not a positive whole number dividing 1 440.
    """
    if isinstance(block_minutes, bool) or not isinstance(block_minutes, int):
        raise PlanError(f"block_minutes must be a whole number of minutes, got {block_minutes!r}.")
    if block_minutes <= 0 or MINUTES_PER_DAY % block_minutes:
        raise PlanError(
            f"block_minutes={block_minutes} does not split a day into whole blocks. Use a divisor "
            "of 1440, for example 5, 10, 15, 20, 30 or 60."
        )
    return block_minutes


def as_utc(moment: datetime) -> datetime:
    """An aware moment in UTC; a naive one is refused (its zone would be a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PlanError(f"Expected a time-zone aware datetime, got naive {moment.isoformat()}.")
    return moment.astimezone(UTC)


def block_bounds(moment: datetime, block_minutes: int = 15) -> tuple[datetime, datetime]:
    """The UTC block ``[start, end)`` holding an aware moment.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> start, end = block_bounds(datetime(2026, 2, 27, 20, 22, 5, tzinfo=UTC))
    >>> start.isoformat(), end.isoformat()
    ('2026-02-27T20:15:00+00:00', '2026-02-27T20:30:00+00:00')
    """
    check_block_minutes(block_minutes)
    utc = as_utc(moment)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    index = int((utc - midnight) // timedelta(minutes=block_minutes))
    start = midnight + index * timedelta(minutes=block_minutes)
    return start, start + timedelta(minutes=block_minutes)


def chunk_key(block_start: datetime, block_minutes: int = 15) -> str:
    """The UTC chunk key of the block that holds ``block_start``.

    Parameters
    ----------
    block_start : datetime
        Any aware moment inside the block.
    block_minutes : int
        Block length; a divisor of 1 440.

    Returns
    -------
    str
        ``YYYYMMDD.CC`` for 15-minute blocks, ``YYYYMMDD.<index>m<minutes>`` otherwise.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> chunk_key(datetime(2026, 2, 27, 20, 15, tzinfo=UTC))
    '20260227.81'
    >>> chunk_key(datetime(2026, 2, 27, 21, 40, tzinfo=UTC), block_minutes=10)
    '20260227.130m10'
    """
    start, _ = block_bounds(block_start, block_minutes)
    index = (start.hour * 60 + start.minute) // block_minutes
    if block_minutes == 15:
        return f"{start:%Y%m%d}.{index:02d}"
    width = len(str(MINUTES_PER_DAY // block_minutes - 1))
    return f"{start:%Y%m%d}.{index:0{width}d}m{block_minutes}"


def night_of(local_time: datetime) -> date:
    """The observing night of a local wall-clock time: the date of the evening it started."""
    return (local_time - timedelta(hours=12)).date()


def header_offset(
    local_time: datetime, date_obs: datetime, *, exposure_s: float = 0.0
) -> timedelta:
    """The device's UTC offset from a name time and its header ``DATE-OBS``, to 15 minutes.

    Parameters
    ----------
    local_time : datetime
        Naive device time from the file name (stamped at save time).
    date_obs : datetime
        UTC exposure start from the header (naive means UTC).
    exposure_s : float
        The frame's exposure. The name is stamped after the exposure and its download, so the
        gap between the two times grows with it; half of it is taken off before rounding, which
        keeps the gap well inside the 7.5 minutes that rounding tolerates for exposures up to
        about 14 minutes, whether the stamp comes at the end of the exposure (as the protocol
        notes infer) or near its start.

    Examples
    --------
    >>> from datetime import datetime
    >>> header_offset(datetime(2025, 9, 29, 1, 1, 16), datetime(2025, 9, 29, 6, 1, 2, 382641))
    datetime.timedelta(days=-1, seconds=68400)
    >>> header_offset(datetime(2026, 2, 27, 22, 10, 4), datetime(2026, 2, 27, 21, 0),
    ...               exposure_s=600)
    datetime.timedelta(seconds=3600)
    """
    utc = date_obs.astimezone(UTC).replace(tzinfo=None) if date_obs.tzinfo else date_obs
    gap = local_time - utc - timedelta(seconds=exposure_s / 2)
    return round(gap / _QUARTER) * _QUARTER


def _frame_offset(frame: RawFrame) -> timedelta | None:
    """The UTC offset a frame's own ``DATE-OBS`` shows; ``None`` without a plausible one."""
    if frame.date_obs is None:
        return None
    offset = header_offset(frame.local_time, frame.date_obs, exposure_s=frame.exposure_s)
    return offset if abs(offset) <= _MAX_OFFSET else None


def local_to_utc(local_time: datetime, tz: tzinfo, *, fold: int = 0) -> datetime:
    """Convert a naive device wall-clock time in ``tz`` to aware UTC."""
    return local_time.replace(tzinfo=tz, fold=fold).astimezone(UTC)


def _is_unclear(local_time: datetime, tz: tzinfo) -> bool:
    """True for a wall time that occurs twice (fall back) or never (spring forward) in ``tz``."""
    first = local_time.replace(tzinfo=tz, fold=0)
    second = local_time.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        return True
    return first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local_time


def needs_date_obs(frames: Iterable[RawFrame], tz: tzinfo) -> tuple[RawFrame, ...]:
    """Frames whose UTC time ``tz`` cannot settle without their header's ``DATE-OBS``.

    A frame of a local hour with one clear offset (:class:`~crowdsky.domain.local_hours.HourStarts`)
    is settled without looking at its own time.
    """
    listed = frames if isinstance(frames, Sequence) else tuple(frames)
    stamps = HourStarts(tz).stamps_seconds(listed)
    return tuple(
        f
        for f, stamp in zip(listed, stamps, strict=True)
        if stamp is None and f.date_obs is None and _is_unclear(f.local_time, tz)
    )


def frame_utc(frame: RawFrame, tz: tzinfo) -> datetime:
    """The UTC start of a frame's exposure: a frame belongs to the block its exposure starts in.

    This is ``DATE-OBS`` when it has been read (and implies a plausible offset, at most 14
    hours), the same time the CrowdSky server derives its chunk keys from. Otherwise it is
    estimated from the name stamp, read in ``tz`` (the first of a repeated hour), less the
    exposure and :data:`SAVE_DELAY_S`.
    """
    if frame.date_obs is not None and _frame_offset(frame) is not None:
        return _utc(frame.date_obs)
    stamp = local_to_utc(frame.local_time, tz)
    return stamp - timedelta(seconds=frame.exposure_s + SAVE_DELAY_S)


def _utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already (as ``DATE-OBS`` is)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def near_boundary(
    frames: Iterable[RawFrame],
    tz: tzinfo,
    block_minutes: int,
    *,
    settled: Callable[[RawFrame, datetime], bool] | None = None,
    margin_s: float = BOUNDARY_MARGIN_S,
    later_s: float = LATER_START_MARGIN_S,
) -> tuple[RawFrame, ...]:
    """Frames whose block only their ``DATE-OBS`` can settle.

    Those without ``DATE-OBS`` whose exposure may have started in another block than their
    estimated start (:func:`frame_utc`) says, because the delay between exposure and name stamp
    varies: the start may lie up to ``margin_s`` before the estimate (a slow save,
    :data:`BOUNDARY_MARGIN_S`) and up to ``later_s`` after it (:data:`LATER_START_MARGIN_S`,
    bounded because a file is named after its exposure ended). So a frame estimated within
    ``margin_s`` after a boundary or within ``later_s`` before it is listed.
    ``settled(frame, block_start)`` may say that a candidate block needs no decision (it is
    already stacked); a frame is left out when both candidates are settled. Without it, none is.
    """
    earlier_us, later_us = exposure_delay_us(margin_s), exposure_delay_us(later_s)
    block_us = check_block_minutes(block_minutes) * 60_000_000
    listed = frames if isinstance(frames, Sequence) else tuple(frames)
    stamps = HourStarts(tz).stamps_seconds(listed)
    delays: dict[float, int] = {}
    wanted = []
    for frame, stamp in zip(listed, stamps, strict=True):
        if frame.date_obs is not None:
            continue
        if stamp is None:
            start = to_us(frame_utc(frame, tz))
        else:
            delay = delays.get(frame.exposure_s)
            if delay is None:
                delay = delays[frame.exposure_s] = exposure_delay_us(
                    frame.exposure_s + SAVE_DELAY_S
                )
            start = stamp * 1_000_000 - delay
        early = (start - earlier_us) // block_us
        late = (start + later_us) // block_us
        if early != late and not (
            settled is not None
            and settled(frame, _block_start(early, block_us))
            and settled(frame, _block_start(late, block_us))
        ):
            wanted.append(frame)
    return tuple(wanted)


def _block_start(index: int, block_us: int) -> datetime:
    return EPOCH + timedelta(microseconds=index * block_us)


class NightlyOffsets(tzinfo):
    """A device zone known only as one UTC offset per observing night (from sampled headers).

    Nights that were not sampled take the offset of the nearest sampled night.

    Parameters
    ----------
    offsets : Mapping[date, timedelta]
        Offset (local minus UTC) per night, see :func:`night_of`. Must not be empty.
    """

    def __init__(self, offsets: Mapping[date, timedelta]) -> None:
        if not offsets:
            raise PlanError("NightlyOffsets needs at least one night's offset.")
        wrong = [offset for offset in offsets.values() if abs(offset) >= timedelta(hours=24)]
        if wrong:
            raise PlanError(f"A UTC offset must be less than a day, got {wrong[0]}.")
        self._offsets = dict(sorted(offsets.items()))

    def _offset(self, night: date) -> timedelta:
        if night in self._offsets:
            return self._offsets[night]
        nearest = min(self._offsets, key=lambda known: (abs(known - night), known))
        return self._offsets[nearest]

    def utcoffset(self, dt: datetime | None) -> timedelta:
        """Offset of the night holding the wall time ``dt``."""
        if dt is None:
            return next(iter(self._offsets.values()))
        return self._offset(night_of(dt.replace(tzinfo=None)))

    def dst(self, dt: datetime | None) -> timedelta | None:
        """Unknown: only the total offset is measured."""
        return None

    def tzname(self, dt: datetime | None) -> str:
        """``UTC+hh:mm`` of the night holding ``dt``."""
        return str(timezone(self.utcoffset(dt)))

    def fromutc(self, dt: datetime) -> datetime:
        """Local wall time of the UTC moment ``dt`` (whose ``tzinfo`` is this zone)."""
        naive = dt.replace(tzinfo=None)
        guess = naive + self._offset(night_of(naive))
        return (naive + self._offset(night_of(guess))).replace(tzinfo=self)

    def __repr__(self) -> str:
        nights = ", ".join(f"{n}: {timezone(o)}" for n, o in self._offsets.items())
        return f"NightlyOffsets({{{nights}}})"


def night_samples(frames: Iterable[RawFrame]) -> tuple[RawFrame, ...]:
    """The first and last frame of every night: the headers worth reading to learn the offset."""
    listed = frames if isinstance(frames, Sequence) else tuple(frames)
    if times_in_names(listed):
        return _night_samples_by_name(listed)
    by_night: dict[date, list[RawFrame]] = {}
    for frame in sorted(listed, key=lambda f: (f.local_time, f.name)):
        by_night.setdefault(night_of(frame.local_time), []).append(frame)
    picked = {f.name: f for group in by_night.values() for f in (group[0], group[-1])}
    return tuple(picked.values())


def _night_samples_by_name(frames: Sequence[RawFrame]) -> tuple[RawFrame, ...]:
    """:func:`night_samples` of frames whose times are their names': stamps compare as text."""
    names = list(map(_NAME, frames))
    if not all(map(ENDS_FIT, names)):
        return _night_samples_one_by_one(frames)
    # Sorted by stamp, name and place, each night's frames are one run: night N holds the
    # stamps from N's noon (``YYYYMMDD-120000``) to the next day's; its sample frames are the
    # first and the last of its run (the first and the last listed among equal names).
    order = sorted(zip(map(STAMP_OF_FIT, names), names, range(len(names)), strict=True))
    stamps = [stamp for stamp, _, _ in order]
    nights = sorted({night_of_hour(hour) for hour in set(map(_HOUR_OF_STAMP, stamps))})
    picked: dict[str, RawFrame] = {}
    for night in nights:
        first = bisect_left(stamps, f"{night:%Y%m%d}-120000")
        last = bisect_left(stamps, f"{night + _DAY:%Y%m%d}-120000") - 1
        for _, name, place in (order[first], order[last]):
            picked[name] = frames[place]
    return tuple(picked.values())


def _night_samples_one_by_one(frames: Sequence[RawFrame]) -> tuple[RawFrame, ...]:
    """:func:`_night_samples_by_name`, frame by frame (for names of any raw shape)."""
    bounds: dict[date, tuple[tuple[str, str, RawFrame], tuple[str, str, RawFrame]]] = {}
    nights: dict[str, date] = {}
    for frame in frames:
        stamp = stamp_in_name(frame)
        assert stamp is not None, "times_in_names said so"
        night = nights.get(stamp[:11])
        if night is None:
            night = nights[stamp[:11]] = night_of_hour(stamp[:11])
        key = (stamp, frame.name, frame)
        known = bounds.get(night)
        if known is None:
            bounds[night] = (key, key)
        elif key[:2] < known[0][:2]:
            bounds[night] = (key, known[1])
        elif key[:2] >= known[1][:2]:
            bounds[night] = (known[0], key)
    picked = {
        f.name: f for night in sorted(bounds) for f in (bounds[night][0][2], bounds[night][1][2])
    }
    return tuple(picked.values())


class ZoneSource(StrEnum):
    """Where a :class:`ZoneDecision` took the device's zone from (compares equal to its text)."""

    #: The user's ``tz=``.
    OVERRIDE = "override"
    #: The IANA zone the device reports (``pi_get_time``).
    DEVICE = "device"
    #: UTC offsets measured from sampled ``DATE-OBS`` headers, one per night.
    HEADER = "header"
    #: The computer's zone, the last resort (with a warning).
    HOST = "host"


@attrs.frozen
class ZoneDecision:
    """How the device's local times are turned into UTC.

    Parameters
    ----------
    tz : tzinfo
        The zone to read name times in.
    source : ZoneSource
        Where the zone came from: ``"override"``, ``"device"``, ``"header"`` or ``"host"``.
    read_headers : tuple of str
        Names of frames whose ``DATE-OBS`` must be read before planning.
    warning : str or None
        A message for the user when the zone had to be assumed or disagreed with the data.
    """

    tz: tzinfo
    source: ZoneSource
    read_headers: tuple[str, ...] = ()
    warning: str | None = None


def _contradicts(frame: RawFrame, tz: tzinfo) -> bool:
    """True when a frame's own ``DATE-OBS`` shows an offset ``tz`` never gives its wall time."""
    folds = {frame.local_time.replace(tzinfo=tz, fold=k).utcoffset() for k in (0, 1)}
    return _frame_offset(frame) not in folds


def _agrees(tz: tzinfo, samples: Sequence[RawFrame]) -> bool:
    return not any(_contradicts(frame, tz) for frame in samples)


def offset_surprises(frames: Sequence[RawFrame], tz: tzinfo) -> tuple[RawFrame, ...]:
    """Frames to read because a ``DATE-OBS`` read since contradicts ``tz`` on their night.

    The zone is decided from a night's first and last frame; a header read later (a frame near
    a block boundary, say) with an offset ``tz`` never gives its wall time reveals a clock
    change those samples missed, such as a session that starts inside the repeated hour of a
    fall-back night. Every frame of such a night still without ``DATE-OBS`` is listed.
    """
    read = [f for f in frames if f.date_obs is not None]
    nights = {
        night_of(f.local_time) for f in read if _frame_offset(f) is not None and _contradicts(f, tz)
    }
    if not nights:
        return ()
    return tuple(f for f in frames if f.date_obs is None and night_of(f.local_time) in nights)


def decide_zone(
    frames: Sequence[RawFrame],
    *,
    samples: Sequence[RawFrame] = (),
    override: tzinfo | None = None,
    device_zone: tzinfo | None = None,
    host_zone: tzinfo | None = None,
) -> ZoneDecision:
    """Choose the zone that turns the device's name times into UTC.

    Parameters
    ----------
    frames : sequence of RawFrame
        Every frame of the folder.
    samples : sequence of RawFrame
        Frames whose ``date_obs`` was read (typically :func:`night_samples`).
    override : tzinfo, optional
        The user's explicit zone; wins over everything.
    device_zone : tzinfo, optional
        The zone the device reports; used when it agrees with every sample.
    host_zone : tzinfo, optional
        Last resort, with a warning.

    Returns
    -------
    ZoneDecision
    """
    measured = [f for f in samples if _frame_offset(f) is not None]
    if override is not None:
        return _zone_with_reads(ZoneSource.OVERRIDE, override, frames)
    if device_zone is not None and (not measured or _agrees(device_zone, measured)):
        warning = None if measured else "The device's zone could not be checked against DATE-OBS."
        return attrs.evolve(
            _zone_with_reads(ZoneSource.DEVICE, device_zone, frames), warning=warning
        )
    if measured:
        return _zone_from_samples(frames, measured, device_zone)
    tz = host_zone or UTC
    return attrs.evolve(
        _zone_with_reads(ZoneSource.HOST, tz, frames),
        warning=(
            f"Could not learn the Seestar's time zone (no zone reported, no DATE-OBS in the "
            f"headers read); "
            f"assuming this computer's zone {tz}. Pass tz= with the telescope's zone to be sure."
        ),
    )


def _zone_with_reads(source: ZoneSource, tz: tzinfo, frames: Sequence[RawFrame]) -> ZoneDecision:
    return ZoneDecision(tz, source, tuple(f.name for f in needs_date_obs(frames, tz)))


def _zone_from_samples(
    frames: Sequence[RawFrame], measured: Sequence[RawFrame], device_zone: tzinfo | None
) -> ZoneDecision:
    per_night: dict[date, set[timedelta]] = {}
    for frame in measured:
        offset = _frame_offset(frame)
        if offset is not None:  # always: decide_zone passes only frames with a real offset
            per_night.setdefault(night_of(frame.local_time), set()).add(offset)
    changing = {night for night, offsets in per_night.items() if len(offsets) > 1}
    tz = NightlyOffsets({night: min(offsets) for night, offsets in per_night.items()})
    reads = tuple(
        f.name for f in frames if f.date_obs is None and night_of(f.local_time) in changing
    )
    warning = None
    if device_zone is not None:
        warning = (
            f"The Seestar reports time zone {device_zone}, but its sub-frame headers disagree; "
            "using the offsets measured from DATE-OBS. Set the telescope's clock from the app."
        )
    return ZoneDecision(tz, ZoneSource.HEADER, reads, warning)
