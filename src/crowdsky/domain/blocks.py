"""Grouping raw sub-frames into clock-aligned blocks, and deciding which still need stacking.

A block is identified by its *coverage key*: target, exposure, filter and UTC chunk key. A block is
covered when a ``CrowdSky_*`` file with the same coverage key exists in the target folder; frame
count and HEALPix pixel are not part of the key, so a re-run never stacks a block twice even if
the device rejected frames or the pointing moved a pixel.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from operator import add, attrgetter, itemgetter

import attrs

from crowdsky.domain.names import (
    CrowdskyName,
    RawFrame,
    format_exposure,
    stamp_in_name,
    times_in_names,
)
from crowdsky.domain.timekeys import (
    BOUNDARY_MARGIN_S,
    SAVE_DELAY_S,
    as_utc,
    check_block_minutes,
    chunk_key,
    frame_utc,
    local_to_utc,
)
from crowdsky.errors import PlanError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_GROUP = attrgetter("target", "exposure_s", "filter")
_NAME = attrgetter("name")
_DATE_OBS = attrgetter("date_obs")
# "YYYYMMDD-HH" and "MMSS" of a name ending in "_YYYYMMDD-HHMMSS.fit"
_HOUR_OF_FIT = itemgetter(slice(-19, -8))
_MINUTE_OF_FIT = itemgetter(slice(-8, -4))
#: Moments within the hour at which the zone's offset is compared with the hour's start; an
#: hour whose offset differs at any of them is converted frame by frame.
_HOUR_PROBES = (*(timedelta(minutes=m) for m in (15, 30, 45)), timedelta(seconds=3599))

__all__ = [
    "Block",
    "CoverageKey",
    "check_min_exptime",
    "coverage_key_of",
    "partition_by_exptime",
    "plan_blocks",
    "settle_time",
]


@attrs.frozen(order=True)
class CoverageKey:
    """What makes two stacks the same block: target, exposure, filter and UTC chunk key."""

    target: str
    exposure: str
    filter: str
    chunk_key: str


@attrs.frozen
class Block:
    """A clock-aligned block of raw sub-frames with one exposure and filter.

    Parameters
    ----------
    target : str
        Target name.
    exposure_s : float
        Sub-frame exposure in seconds.
    filter : str
        Filter name.
    start, end : datetime
        UTC bounds ``[start, end)``.
    block_minutes : int
        Block length.
    frames : tuple of RawFrame
        The frames, in time order.
    """

    target: str
    exposure_s: float
    filter: str
    start: datetime
    end: datetime
    block_minutes: int
    frames: tuple[RawFrame, ...]

    @property
    def exposure(self) -> str:
        """Exposure text such as ``"10.0s"``."""
        return format_exposure(self.exposure_s)

    @property
    def frame_count(self) -> int:
        """Number of sub-frames in the block."""
        return len(self.frames)

    @property
    def total_exposure_s(self) -> float:
        """Effective exposure: frame count times sub-frame exposure, in seconds."""
        return self.frame_count * self.exposure_s

    @property
    def chunk_key(self) -> str:
        """UTC chunk key, ``YYYYMMDD.CC`` for 15-minute blocks."""
        return chunk_key(self.start, self.block_minutes)

    @property
    def coverage_key(self) -> CoverageKey:
        """The key a ``CrowdSky_*`` file must carry for this block to count as stacked."""
        return CoverageKey(self.target, self.exposure, self.filter, self.chunk_key)

    def local_bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """Start and end as aware datetimes in the device's zone ``tz``."""
        return self.start.astimezone(tz), self.end.astimezone(tz)


def check_min_exptime(min_exptime: float) -> float:
    """Return ``min_exptime`` if it is a non-negative number of seconds, else raise."""
    if isinstance(min_exptime, bool) or not isinstance(min_exptime, int | float):
        raise PlanError(f"min_exptime must be a number of seconds, got {min_exptime!r}.")
    if not min_exptime >= 0:
        raise PlanError(f"min_exptime must be zero or more seconds, got {min_exptime!r}.")
    return float(min_exptime)


def coverage_key_of(name: CrowdskyName, device_tz: tzinfo) -> CoverageKey:
    """The coverage key a CrowdSky file stands for.

    The legacy form carries the device-local block start of a 15-minute block; it is read in
    ``device_tz``.
    """
    key = name.chunk_key
    if key is None:
        assert name.legacy_local_start is not None
        key = chunk_key(local_to_utc(name.legacy_local_start, device_tz), 15)
    return CoverageKey(name.target, name.exposure, name.filter, key)


def settle_time(exposure_s: float) -> timedelta:
    """How long after a block ends its last frame may still be written to the device.

    The exposure, the save delay and the margin within which a frame's block is read from its
    header (:data:`~crowdsky.domain.timekeys.BOUNDARY_MARGIN_S`).
    """
    return timedelta(seconds=exposure_s + SAVE_DELAY_S + BOUNDARY_MARGIN_S)


def plan_blocks(
    frames: Iterable[RawFrame],
    *,
    block_minutes: int = 15,
    now: datetime,
    device_tz: tzinfo,
    covered: Iterable[CoverageKey] = (),
) -> tuple[Block, ...]:
    """Group frames into complete, not yet stacked, clock-aligned blocks.

    Parameters
    ----------
    frames : iterable of RawFrame
        Raw sub-frames (any targets, exposures and filters).
    block_minutes : int
        Block length in minutes; must divide 1 440.
    now : datetime
        Aware current time. A block is complete only once its last exposure can have been saved:
        :func:`settle_time` after its end. Until then it is left out, so a frame whose exposure
        started just before the end but whose file appears just after is never missed.
    device_tz : tzinfo
        The device's zone, used to read the frames' local name times.
    covered : iterable of CoverageKey
        Keys of blocks that already have a CrowdSky stack; those blocks are left out.

    Returns
    -------
    tuple of Block
        Sorted by start, then target, exposure and filter.

    Raises
    ------
    PlanError
        For a bad ``block_minutes`` or a naive ``now``.
    """
    check_block_minutes(block_minutes)
    cutoff = as_utc(now)
    done = frozenset(covered)
    groups: defaultdict[tuple[str, float, str], list[RawFrame]] = defaultdict(list)
    for frame in frames:
        groups[_GROUP(frame)].append(frame)
    hours = _HourStarts(device_tz)
    length = timedelta(minutes=block_minutes)
    blocks = []
    for (target, exp, filt), members in groups.items():
        starts = _exposure_starts_us(members, exp, hours)
        late = cutoff - length - settle_time(exp)
        for index, chunk in _split_blocks(members, starts, block_minutes * 60_000_000):
            start = _EPOCH + index * length
            if start > late:
                continue
            block = Block(target, exp, filt, start, start + length, block_minutes, chunk)
            if not done or block.coverage_key not in done:
                blocks.append(block)
    return tuple(sorted(blocks, key=lambda b: (b.start, b.target, b.exposure_s, b.filter)))


class _HourStarts(dict[str, int | None]):
    """UTC microseconds of each local hour ``YYYYMMDD-HH`` that ``tz`` gives one offset over.

    ``None`` for an hour in which the offset changes (a DST change): its frames are converted
    one by one. An offset change that is undone within 15 minutes would go unseen; no zone has
    one.
    """

    def __init__(self, tz: tzinfo) -> None:
        super().__init__()
        self._tz = tz

    def __missing__(self, hour: str) -> int | None:
        local = datetime(int(hour[:4]), int(hour[4:6]), int(hour[6:8]), int(hour[9:11]))
        offset = local.replace(tzinfo=self._tz).utcoffset()
        probes = ((local + step).replace(tzinfo=self._tz).utcoffset() for step in _HOUR_PROBES)
        start = None
        if offset is not None and all(probe == offset for probe in probes):
            start = (local - offset - _NAIVE_EPOCH) // _MICROSECOND
        self[hour] = start
        return start


def _minute_us(text: str, *, delay_us: int) -> int:
    """Microseconds of ``MMSS`` into the hour, less the delay from exposure start to stamp."""
    return (int(text[:2]) * 60 + int(text[2:])) * 1_000_000 - delay_us


def _exposure_starts_us(
    members: Sequence[RawFrame], exposure_s: float, hours: _HourStarts
) -> list[int]:
    """UTC exposure starts (:func:`frame_utc`) of frames of one exposure, in microseconds.

    The fast way when every time is the name's own, no ``DATE-OBS`` is known and every hour
    keeps one offset: an hour's start plus minutes and seconds, each distinct text converted
    once. Otherwise frame by frame.
    """
    delay_us = timedelta(seconds=exposure_s + SAVE_DELAY_S) // _MICROSECOND
    minutes = _Minutes(partial(_minute_us, delay_us=delay_us))
    names = list(map(_NAME, members))
    fast = (
        not any(map(_DATE_OBS, members))
        and times_in_names(members)
        and all(name.endswith(".fit") for name in names)
    )
    if fast:
        starts = list(map(hours.__getitem__, map(_HOUR_OF_FIT, names)))
        if None not in starts:
            return list(map(add, starts, map(minutes.__getitem__, map(_MINUTE_OF_FIT, names))))
    return [_exposure_start_us(frame, hours, minutes) for frame in members]


class _Minutes(dict[str, int]):
    def __init__(self, compute: partial[int]) -> None:
        super().__init__()
        self._compute = compute

    def __missing__(self, text: str) -> int:
        value = self[text] = self._compute(text)
        return value


def _exposure_start_us(frame: RawFrame, hours: _HourStarts, minutes: _Minutes) -> int:
    stamp = stamp_in_name(frame) if frame.date_obs is None else None
    hour = None if stamp is None else hours[stamp[:11]]
    if stamp is None or hour is None:
        return (frame_utc(frame, hours._tz) - _EPOCH) // _MICROSECOND
    return hour + minutes[stamp[11:]]


def _split_blocks(
    members: list[RawFrame], starts: list[int], block_us: int
) -> Iterator[tuple[int, tuple[RawFrame, ...]]]:
    """Block index and frames (by start, then name) of each block the frames fall in."""
    order = sorted(range(len(members)), key=starts.__getitem__)
    if len(set(starts)) != len(starts):  # equal starts: the name decides
        order.sort(key=lambda i: (starts[i], members[i].name))
    keys = list(map(starts.__getitem__, order))
    ordered = list(map(members.__getitem__, order))
    first = 0
    while first < len(keys):
        index = keys[first] // block_us
        end = bisect_left(keys, (index + 1) * block_us, first)
        yield index, tuple(ordered[first:end])
        first = end


def partition_by_exptime(
    blocks: Iterable[Block], min_exptime: float
) -> tuple[tuple[Block, ...], tuple[Block, ...]]:
    """Split blocks into ``(to_stack, skipped)`` by total exposure against ``min_exptime``."""
    threshold = check_min_exptime(min_exptime)
    ordered = tuple(blocks)
    keep = tuple(b for b in ordered if b.total_exposure_s >= threshold)
    skip = tuple(b for b in ordered if b.total_exposure_s < threshold)
    return keep, skip
