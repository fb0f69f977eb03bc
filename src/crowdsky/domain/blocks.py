"""Grouping raw sub-frames into clock-aligned blocks, and deciding which still need stacking.

A block is identified by its *coverage key*: target, exposure, filter and UTC chunk key. A block is
covered when a ``CrowdSky_*`` file with the same coverage key exists in the target folder; frame
count and HEALPix pixel are not part of the key, so a re-run never stacks a block twice even if
the device rejected frames or the pointing moved a pixel.
"""

from __future__ import annotations

import functools
import re
from array import array
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import chain, islice, repeat
from operator import add, and_, attrgetter, eq, itemgetter, le, rshift
from typing import TYPE_CHECKING

import attrs

from crowdsky.domain.local_hours import SECONDS_OF_MMSS
from crowdsky.domain.names import (
    HEAD_OF_FIT,
    MMSS_OF_FIT,
    RAW_SUFFIXES,
    TAIL_OF_FIT,
    CrowdskyName,
    Memo,
    RawFrame,
    RawNameChecks,
    collector_paused,
    format_exposure,
    stamp_in_name,
    times_in_names,
    trusted_raw_frame,
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

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_GROUP = attrgetter("target", "exposure_s", "filter")
_NAME = attrgetter("name")
_DATE_OBS = attrgetter("date_obs")
#: The order of a plan's blocks.
_BLOCK_ORDER = attrgetter("start", "target", "exposure_s", "filter")
# "_YYYYMMDD-HH" and "MMSS" of a name ending in "_YYYYMMDD-HHMMSS.fit"
_HOUR_OF_FIT = itemgetter(slice(-20, -8))
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
    "plan_raw_names",
    "settle_time",
]


@attrs.frozen(order=True)
class CoverageKey:
    """What makes two stacks the same block: target, exposure, filter and UTC chunk key."""

    target: str
    exposure: str
    filter: str
    chunk_key: str


class _NamedFrames:
    """The frames of a block planned from names alone, made when first asked for.

    Every frame the batch parser makes from a name is the name plus its target, exposure and
    filter (its time is read back from the name), so a block planned from names keeps just the
    names and the shared fields: a million frames cost a million pointers until a block's frames
    are wanted, and then exactly the frames :func:`~crowdsky.domain.names.parse_raw_names` makes.
    """

    __slots__ = ("_fields", "_frames", "_names")

    def __init__(self, names: tuple[str, ...], fields: tuple[str, float, str]) -> None:
        self._names = names
        self._fields = fields
        self._frames: tuple[RawFrame, ...] | None = None

    def __len__(self) -> int:
        return len(self._names)

    def names(self) -> Iterable[str]:
        """The names, in time order."""
        return self._names

    @property
    def frames(self) -> tuple[RawFrame, ...]:
        """The frames, made once."""
        if self._frames is None:
            self._frames = tuple(map(trusted_raw_frame, self.names(), repeat(self._fields)))
        return self._frames


class _KeyedFrames(_NamedFrames):
    """The frames of a block planned by :class:`_SteadyNames`: ranges of its sorted places.

    Not even the names are gathered until the frames are asked for: a plan of a million frames
    keeps the listing and one array of places, and a block its ranges in it.
    """

    __slots__ = ("_count", "_listed", "_places", "_ranges")

    def __init__(
        self,
        listed: tuple[str, ...],
        places: NDArray[np.int64],
        ranges: list[tuple[int, int]],
        count: int,
        fields: tuple[str, float, str],
    ) -> None:
        super().__init__((), fields)
        self._listed = listed
        self._places = places
        self._ranges = ranges
        self._count = count

    def __len__(self) -> int:
        return self._count

    def names(self) -> Iterable[str]:
        places = chain.from_iterable(
            self._places[first:end].tolist() for first, end in self._ranges
        )
        return map(self._listed.__getitem__, places)


def _frames_of(value: tuple[RawFrame, ...] | _NamedFrames) -> tuple[RawFrame, ...]:
    return value if isinstance(value, tuple) else value.frames


@attrs.frozen(repr=False)
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
        The frames, in time order. (:func:`plan_raw_names` passes the names instead, and the
        frames are made the first time they are asked for; equality, hash and ``repr`` always
        go by the frames.)
    """

    target: str
    exposure_s: float
    filter: str
    start: datetime
    end: datetime
    block_minutes: int
    _frames: tuple[RawFrame, ...] | _NamedFrames = attrs.field(alias="frames", eq=_frames_of)

    @property
    def frames(self) -> tuple[RawFrame, ...]:
        """The frames, in time order."""
        return _frames_of(self._frames)

    @property
    def exposure(self) -> str:
        """Exposure text such as ``"10.0s"``."""
        return format_exposure(self.exposure_s)

    @property
    def frame_count(self) -> int:
        """Number of sub-frames in the block."""
        return len(self._frames)

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

    def __repr__(self) -> str:
        return (
            f"Block(target={self.target!r}, exposure_s={self.exposure_s!r}, "
            f"filter={self.filter!r}, start={self.start!r}, end={self.end!r}, "
            f"block_minutes={self.block_minutes!r}, frames={self.frames!r})"
        )


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
    length = timedelta(minutes=block_minutes)
    block_us = block_minutes * 60_000_000
    hours = _HourStarts(device_tz)
    blocks = []
    with collector_paused():
        for (target, exp, filt), members in _groups(frames).items():
            late = cutoff - length - settle_time(exp)
            starts = _StartKeys.of(members, exp, hours)
            for index, chunk in _split_blocks(members, starts, block_us):
                start = _EPOCH + index * length
                if start > late:
                    continue
                block = Block(target, exp, filt, start, start + length, block_minutes, chunk)
                if not done or block.coverage_key not in done:
                    blocks.append(block)
    return tuple(sorted(blocks, key=_BLOCK_ORDER))


def _groups(frames: Iterable[RawFrame]) -> dict[tuple[str, float, str], list[RawFrame]]:
    """The frames of each target, exposure and filter, in the order given."""
    groups: defaultdict[tuple[str, float, str], list[RawFrame]] = defaultdict(list)
    for frame in frames:
        groups[_GROUP(frame)].append(frame)
    return groups


def plan_raw_names(
    names: Iterable[str],
    *,
    block_minutes: int = 15,
    now: datetime,
    device_tz: tzinfo,
    covered: Iterable[CoverageKey] = (),
) -> tuple[Block, ...]:
    """Plan straight from a listing: ``plan_blocks(parse_raw_names(names), ...)``, faster.

    The same blocks, compared with ``==``, but planned without making a frame object per name:
    each ``.fit`` name in an hour of one UTC offset becomes one float (the number of its distinct
    ``Light_<target>_<exp>s_<filter>_<YYYYMMDD-HH>`` head, its minutes and seconds, its place in
    the listing), the floats are sorted once and each head's run is cut at the block edges with
    ``bisect``. A block keeps the ranges of keys it spans and reads its names and makes its
    frames the first time they are asked for. Names in an hour of a clock change, and other raw
    shapes (``.fits``), are planned one by one and joined to the blocks they fall in.

    Parameters
    ----------
    names : iterable of str
        Bare file names, as listed (companions, stacks and junk are skipped).
    block_minutes, now, device_tz, covered
        As for :func:`plan_blocks`.

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
    with collector_paused():
        listed = tuple(names)  # the collector stops looking into a tuple of strings once seen
        steady = _SteadyNames(listed, device_tz)
        if steady.keys is None:  # names the steady keys cannot order: the general way
            blocks = _NameKeys(list(listed), device_tz).blocks(block_minutes, cutoff, done)
        else:
            blocks = steady.blocks(block_minutes, cutoff, done)
            if steady.others:
                others = _NameKeys(steady.others, device_tz).blocks(block_minutes, cutoff, done)
                blocks = _merged(blocks, others, device_tz)
        return tuple(sorted(blocks, key=_BLOCK_ORDER))


#: Hour starts are kept in seconds from this moment (mid 2025).
_BASE_S = 1_750_000_000


class _HourStarts(dict[str, int | None]):
    """UTC seconds after ``_BASE_S`` of each local hour ``_YYYYMMDD-HH`` of one offset in ``tz``.

    ``None`` for an hour in which the offset changes (a DST change), for an offset with a
    fraction of a second, and for a text that is no such hour (the key is cut from a name at a
    fixed offset, so the leading ``_`` shows that the name ends in ``.fit``): those frames are
    converted one by one. An offset change that is undone within 15 minutes would go unseen; no
    zone has one.
    """

    def __init__(self, tz: tzinfo) -> None:
        super().__init__()
        self.tz = tz

    def __missing__(self, hour: str) -> int | None:
        self[hour] = start = self._start(hour) if _HOUR_KEY.fullmatch(hour) else None
        return start

    def _start(self, hour: str) -> int | None:
        local = datetime(int(hour[1:5]), int(hour[5:7]), int(hour[7:9]), int(hour[10:12]))
        offset = local.replace(tzinfo=self.tz).utcoffset()
        probes = ((local + step).replace(tzinfo=self.tz).utcoffset() for step in _HOUR_PROBES)
        if offset is None or offset % _SECOND or not all(probe == offset for probe in probes):
            return None
        return (local - offset - _NAIVE_EPOCH) // _SECOND - _BASE_S


_HOUR_KEY = re.compile(r"_\d{8}-\d\d", re.ASCII)
_SECOND = timedelta(seconds=1)
#: Frames whose keys are made together (their names stay in the processor's cache meanwhile).
_KEY_BATCH = 256
#: Bits of a key that hold a stamp: microseconds after ``_MIN_US``, enough for any datetime.
_STAMP_BITS = 59
_MIN_US = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_US_PER_S = 1_000_000


class _PlanKeys:
    """One sorted integer per frame: ``((group << _STAMP_BITS) + stamp) << place_bits | place``.

    ``stamp`` is the frame's exposure start plus the delay from start to name stamp, in
    microseconds after ``_MIN_US``; every frame of a group (target, exposure, filter) has the same
    delay, so sorting the keys sorts the frames by group, then by exposure start, then by place
    (their index in the input). For a frame whose time is its name's, outside an hour of a clock
    change, the stamp is its name stamp in UTC: the sum of what the name's hour and its minutes
    and seconds stand for, each distinct text converted once. Blocks are then cut from the
    sorted keys with ``bisect``. The key arithmetic is here; :class:`_NameKeys` makes the keys
    of a listing and the frames of its blocks.
    """

    def __init__(self, count: int, tz: tzinfo) -> None:
        self.tz = tz
        self.place_bits = max(count, 1).bit_length()
        self.kinds: dict[tuple[str, float, str], int] = {}
        self.group_parts: Memo[tuple[str, float, str], int] = Memo(self._group_part)
        self.hour_starts = _HourStarts(tz)
        self.hour_parts: Memo[str, int | None] = Memo(self._hour_part)
        self.ties_by_name = True

    def _group_part(self, kind: tuple[str, float, str]) -> int:
        group = self.kinds.setdefault(kind, len(self.kinds))
        return group << (_STAMP_BITS + self.place_bits)

    def _hour_part(self, hour: str) -> int | None:
        """What a name's ``_YYYYMMDD-HH`` adds to a key (less a microsecond, see minute_part)."""
        start = self.hour_starts[hour]
        if start is None:
            return None
        return ((start + _BASE_S) * _US_PER_S - _MIN_US - 1) << self.place_bits

    def minute_part(self, mmss: str) -> int:
        """What a name's ``MMSS`` adds to a key (plus a microsecond: the sum is never zero)."""
        return ((int(mmss[:2]) * 60 + int(mmss[2:4])) * _US_PER_S + 1) << self.place_bits

    def key_by_time(self, frame: RawFrame, group_part: int, place: int) -> int:
        """The key of a frame from its exposure start, converted on its own."""
        start_us = (frame_utc(frame, self.tz) - _EPOCH) // _MICROSECOND
        stamp = start_us + _delay_us(frame.exposure_s) - _MIN_US
        return group_part + (stamp << self.place_bits) + place

    def members(self, places: Iterator[int], kind: tuple[str, float, str]) -> _Members:
        """The frames at these places, as a block holds them."""
        raise NotImplementedError

    def member_names(self, places: Iterator[int]) -> list[str]:
        """The names at these places."""
        raise NotImplementedError

    def blocks(
        self, block_minutes: int, cutoff: datetime, done: frozenset[CoverageKey]
    ) -> list[Block]:
        """The complete blocks not in ``done``, in key order."""
        keys = self.sorted_keys()
        length = timedelta(minutes=block_minutes)
        block_us = block_minutes * 60_000_000
        groups = {
            group: (kind, _delay_us(kind[1]), (cutoff - length - settle_time(kind[1])) - _EPOCH)
            for kind, group in self.kinds.items()
        }
        bits, stamp_mask = self.place_bits, (1 << _STAMP_BITS) - 1
        blocks = []
        first = 0
        while first < len(keys):
            group_stamp = keys[first] >> bits
            group, stamp = group_stamp >> _STAMP_BITS, group_stamp & stamp_mask
            kind, delay_us, latest = groups[group]
            index = (stamp + _MIN_US - delay_us) // block_us
            next_stamp = (index + 1) * block_us + delay_us - _MIN_US
            end = bisect_left(keys, ((group << _STAMP_BITS) + next_stamp) << bits, first)
            if index * length <= latest:
                start = _EPOCH + index * length
                members = self.members(self._places(keys[first:end]), kind)
                block = Block(*kind, start, start + length, block_minutes, members)
                if not done or block.coverage_key not in done:
                    blocks.append(block)
            first = end
        return blocks

    def sorted_keys(self) -> list[int]:
        """The keys, sorted."""
        raise NotImplementedError

    def _places(self, chunk: list[int]) -> Iterator[int]:
        """The places of a block's sorted keys, those of equal starts in name order."""
        bits = self.place_bits
        places = map(and_, chunk, repeat((1 << bits) - 1))
        if not self.ties_by_name:
            return places
        stamps = list(map(rshift, chunk, repeat(bits)))
        if not any(map(eq, stamps, islice(stamps, 1, None))):
            return places
        ordered = list(places)
        names = self.member_names(iter(ordered))
        return iter([place for _, _, place in sorted(zip(stamps, names, ordered, strict=True))])


_Members = tuple[RawFrame, ...] | _NamedFrames


def _batched_keys(
    listed: Sequence[str],
    head_parts: Mapping[str, int | None],
    tail_parts: Mapping[str, int | None],
    other: Callable[[list[int], int, str], None],
) -> list[int]:
    """Each name's key, what its head and its tail stand for plus its place, a batch at a time.

    A name whose head or tail stands for nothing (``None``) goes to ``other(keys, place, name)``
    instead. Both passes over a batch find its names still in the processor's cache: a
    shuffled listing touches each name at a scattered address, which costs more than the work.
    """
    keys: list[int] = []
    for first in range(0, len(listed), _KEY_BATCH):
        batch = listed[first : first + _KEY_BATCH]
        heads = list(map(head_parts.__getitem__, map(HEAD_OF_FIT, batch)))
        tails = list(map(tail_parts.__getitem__, map(TAIL_OF_FIT, batch)))
        places = range(first, first + len(batch))
        if all(heads) and all(tails):  # every name a .fit name of a steady hour
            keys += map(add, map(add, heads, tails), places)
            continue
        for place, head, tail, name in zip(places, heads, tails, batch, strict=True):
            if head and tail:
                keys.append(head + tail + place)
            else:
                other(keys, place, name)
    return keys


class _NameKeys(_PlanKeys):
    """The keys of the raw names of a listing (:func:`plan_raw_names`).

    The key of a ``.fit`` name is the sum of what its head (``Light_..._YYYYMMDD-HH``, checked
    and converted once per distinct head) and its tail (``MMSS.fit``, once per distinct tail)
    stand for, and its place; any other name, and any in an hour of a clock change, is parsed
    and converted on its own.
    """

    def __init__(self, listed: list[str], tz: tzinfo) -> None:
        super().__init__(len(listed), tz)
        self.listed = listed
        self.checks = RawNameChecks()
        self.head_parts: Memo[str, int | None] = Memo(self._head_part)
        self.tail_parts: Memo[str, int | None] = Memo(self._tail_part)
        self.other_names = False
        self._keys = self._make_keys()
        self.ties_by_name = self._ties_may_need_names()

    def _head_part(self, head: str) -> int | None:
        """What a head adds to a key: group and hour."""
        kind = self.checks.heads[head]
        hour = self.hour_parts[head[-12:]] if kind is not None else None
        return None if kind is None or hour is None else self.group_parts[kind] + hour

    def _tail_part(self, tail: str) -> int | None:
        """What a tail adds to a key: minutes and seconds."""
        return self.minute_part(tail) if self.checks.tails[tail] else None

    def _make_keys(self) -> list[int]:
        """The keys of the listing's frames (:func:`_batched_keys`)."""
        return _batched_keys(self.listed, self.head_parts, self.tail_parts, self._add_other)

    def _add_other(self, keys: list[int], place: int, name: str) -> None:
        """Add the key of a name of another shape or hour, parsed and converted on its own."""
        self.other_names = True
        if name.endswith(RAW_SUFFIXES) and (frame := self.checks.parse_one(name)):
            group_part = self.group_parts[frame.target, frame.exposure_s, frame.filter]
            keys.append(self.key_by_time(frame, group_part, place))

    def _ties_may_need_names(self) -> bool:
        """False when frames of equal starts are sure to be in name order already.

        They are when the listing is sorted (places go as names do), or when no two names
        have the same start: two ``.fit`` names have equal stamps only if their tails are equal
        and their heads stand for the same group and hour, so distinct heads must stand for
        distinct values (and no name took the other way).
        """
        if self.other_names:
            return not _is_sorted(self.listed)
        parts = [part for part in self.head_parts.values() if part is not None]
        return len(set(parts)) < len(parts) and not _is_sorted(self.listed)

    def sorted_keys(self) -> list[int]:
        self._keys.sort()
        return self._keys

    def members(self, places: Iterator[int], kind: tuple[str, float, str]) -> _Members:
        return _NamedFrames(tuple(map(self.listed.__getitem__, places)), kind)

    def member_names(self, places: Iterator[int]) -> list[str]:
        return list(map(self.listed.__getitem__, places))


#: A steady key holds a name's seconds into its hour, plus one (at most 3 600), in these bits.
_SECOND_BITS = 12
#: Bits of a signed 64-bit integer that a steady key may use.
_KEY_BITS = 63
#: What a head or tail that cannot be keyed steadily adds to a key: any sum with it is negative.
_NOT_STEADY = -(1 << 62)


class _SteadyTailParts(dict[str, int]):
    """What a tail ``MMSS.fit`` adds to a steady key: its seconds into the hour plus one."""

    def __missing__(self, tail: str) -> int:
        return _NOT_STEADY  # not kept: a listing may hold any number of other tails


@functools.cache
def _steady_tail_parts() -> _SteadyTailParts:
    """The 3 600 good tails and what each adds, made once."""
    good = RawNameChecks().tails
    return _SteadyTailParts((tail, SECONDS_OF_MMSS[MMSS_OF_FIT(tail)] + 1) for tail in good)


class _SteadyNames:
    """The keys of a listing's ``.fit`` names in hours of one offset, made and sorted by numpy.

    The key of such a name is ``((head << 12) + seconds + 1) << place_bits | place``: ``head``
    numbers (from 1) the distinct ``Light_<target>_<exp>s_<filter>_<YYYYMMDD-HH>`` texts,
    ``seconds`` are the minutes and seconds of its tail ``MMSS.fit`` and ``place`` its index in
    the listing; each distinct head is checked and converted once. Python looks up each name's
    head and tail, a batch of names at a time (taking a batch touches its names, which then stay
    in the processor's cache); numpy makes the 64-bit keys, sorts them (a million shuffled keys
    in about 50 ms, where Python sorted a list of a million floats in 200 ms) and cuts them.
    Sorted, the keys hold each head's names together in time order; each run of one head in
    one block is a piece, and the pieces taken by group and UTC hour give the blocks, each
    holding the ranges of the sorted places it spans (:class:`_KeyedFrames`).

    Names of another raw shape (``.fits``), and those of an hour with a clock change, are left in
    :attr:`others` for the general planner; companions and other files are dropped. :attr:`keys`
    is ``None`` when the listing cannot be keyed this way: two heads for the same group and hour
    (``10s`` and ``10.0s``: their names tie and interleave), or too many names for 64 bits.
    """

    def __init__(self, listed: tuple[str, ...], tz: tzinfo) -> None:
        import numpy as np  # here, not at the top: `import crowdsky` stays fast without numpy

        self.listed = listed
        self.place_bits = max(len(listed), 1).bit_length()
        self.checks = RawNameChecks()
        self.hour_starts = _HourStarts(tz)
        #: Group and UTC hour start (seconds after ``_BASE_S``) of each head, by number less 1.
        self.heads: list[tuple[tuple[str, float, str], int]] = []
        self.others: list[str] = []
        self.keys: NDArray[np.int64] | None = None
        if 2 * self.place_bits + _SECOND_BITS >= _KEY_BITS:  # a head number is below 2**place_bits
            return
        parts = self._parts()
        steady = parts > 0
        if not steady.all():
            for place in np.flatnonzero(~steady).tolist():
                if listed[place].endswith(RAW_SUFFIXES):
                    self.others.append(listed[place])
            parts = parts[steady]
        if len(set(self.heads)) == len(self.heads):
            self.keys = np.left_shift(parts, self.place_bits) | np.flatnonzero(steady)

    def _parts(self) -> NDArray[np.int64]:
        """What each name's head and tail add to its key; negative for a name not keyed so."""
        import numpy as np

        head_parts: Memo[str, int] = Memo(self._head_part)
        tail_parts = _steady_tail_parts()
        parts = array("q")
        listed = self.listed
        for first in range(0, len(listed), _KEY_BATCH):
            batch = listed[first : first + _KEY_BATCH]  # touches each name, in a C loop
            heads = list(map(head_parts.__getitem__, map(HEAD_OF_FIT, batch)))
            parts.extend(map(add, heads, map(tail_parts.__getitem__, map(TAIL_OF_FIT, batch))))
        return np.frombuffer(parts, dtype=np.int64)

    def _head_part(self, head: str) -> int:
        """What a head adds to a key, :data:`_NOT_STEADY` for a bad head or a clock change."""
        kind = self.checks.heads[head]
        start = self.hour_starts[head[-12:]] if kind is not None else None
        if kind is None or start is None:
            return _NOT_STEADY
        self.heads.append((kind, start))
        return len(self.heads) << _SECOND_BITS

    def blocks(
        self, block_minutes: int, cutoff: datetime, done: frozenset[CoverageKey]
    ) -> list[Block]:
        """The complete blocks of the steady names not in ``done``."""
        assert self.keys is not None
        places, pieces = self._pieces(block_minutes * 60_000_000)
        length = timedelta(minutes=block_minutes)
        latest = {
            kind: cutoff - length - settle_time(kind[1]) - _EPOCH
            for kind in {kind for kind, _ in self.heads}
        }
        blocks: list[Block] = []
        ranges: list[tuple[int, int]] = []
        current: tuple[tuple[str, float, str], int] | None = None
        count = 0

        def close() -> None:
            if current is None or not count:
                return
            kind, index = current
            offset = index * length
            if offset > latest[kind]:
                return
            start = _EPOCH + offset
            members = _KeyedFrames(self.listed, places, ranges, count, kind)
            block = Block(*kind, start, start + length, block_minutes, members)
            if not done or block.coverage_key not in done:
                blocks.append(block)

        for kind, index, first, end in pieces:
            if (kind, index) != current:
                close()
                current, ranges, count = (kind, index), [], 0
            ranges.append((first, end))
            count += end - first
        close()
        return blocks

    def _pieces(
        self, block_us: int
    ) -> tuple[NDArray[np.int64], Iterator[tuple[tuple[str, float, str], int, int, int]]]:
        """The sorted places, and group, block index and range of places of each piece.

        A piece is a run of one head's sorted keys within one block. The pieces come by
        group, then UTC hour (the order of :attr:`heads`), then time, so the pieces of one
        block follow each other.
        """
        import numpy as np

        assert self.keys is not None
        keys = np.sort(self.keys)
        self.keys = None
        if not len(keys):
            return keys, iter(())
        bits = self.place_bits
        numbers = keys >> (bits + _SECOND_BITS)
        seconds = ((keys >> bits) & ((1 << _SECOND_BITS) - 1)) - 1
        places: NDArray[np.int64] = keys & ((1 << bits) - 1)
        del keys
        # each head's hour start less its group's delay from start to stamp, by number
        hour_us = [(start + _BASE_S) * _US_PER_S - _delay_us(kind[1]) for kind, start in self.heads]
        seconds *= _US_PER_S
        seconds += np.array([0, *hour_us], dtype=np.int64)[numbers]
        indices = seconds // block_us
        del seconds
        cuts = np.flatnonzero((numbers[1:] != numbers[:-1]) | (indices[1:] != indices[:-1])) + 1
        firsts, ends = np.concatenate(([0], cuts)), np.concatenate((cuts, [len(places)]))
        rank = np.zeros(len(self.heads) + 1, dtype=np.int64)
        ranked = sorted(range(len(self.heads)), key=self.heads.__getitem__)
        rank[np.array(ranked, dtype=np.int64) + 1] = np.arange(len(ranked))
        piece_numbers = numbers[firsts]
        order = np.argsort(rank[piece_numbers], kind="stable").tolist()
        kinds = [kind for kind, _ in self.heads]
        pieces = zip(
            map(kinds.__getitem__, (piece_numbers[order] - 1).tolist()),
            indices[firsts][order].tolist(),
            firsts[order].tolist(),
            ends[order].tolist(),
            strict=True,
        )
        return places, pieces


def _merged(steady: list[Block], others: list[Block], tz: tzinfo) -> list[Block]:
    """The blocks of both plans, those of the same block joined, frames by start then name."""
    joined = {(b.target, b.exposure_s, b.filter, b.start): b for b in steady}
    for block in others:
        key = (block.target, block.exposure_s, block.filter, block.start)
        mine = joined.get(key)
        if mine is not None:
            frames = sorted((*mine.frames, *block.frames), key=lambda f: (frame_utc(f, tz), f.name))
            block = attrs.evolve(mine, frames=tuple(frames))
        joined[key] = block
    return list(joined.values())


@attrs.frozen
class _StartKeys:
    """Sort keys of frames of one exposure, and how they map to UTC exposure starts.

    A frame's exposure start (:func:`~crowdsky.domain.timekeys.frame_utc`) in microseconds since
    the epoch is ``(key + base) * unit - delay``, with the same ``base``, ``unit`` and ``delay``
    for every frame, so keys sort as starts do.

    The fast way, when every frame's time is its ``.fit`` name's own, no ``DATE-OBS`` is known
    and every hour keeps one offset: keys are the UTC seconds of the name stamps after
    ``_BASE_S`` (an hour's start plus minutes and seconds, each distinct text converted once),
    small integers that sort fast. Otherwise keys are microseconds, frame by frame where needed.
    """

    keys: list[int]
    base: int
    unit: int
    delay: int

    @classmethod
    def of(cls, members: Sequence[RawFrame], exposure_s: float, hours: _HourStarts) -> _StartKeys:
        delay_us = timedelta(seconds=exposure_s + SAVE_DELAY_S) // _MICROSECOND
        names = list(map(_NAME, members))
        starts = list(map(hours.__getitem__, map(_HOUR_OF_FIT, names)))
        by_name = not any(map(_DATE_OBS, members)) and times_in_names(members)
        if by_name and None not in starts:
            seconds = map(SECONDS_OF_MMSS.__getitem__, map(MMSS_OF_FIT, names))
            keys = list(map(add, starts, seconds))
            return cls(keys, _BASE_S, 1_000_000, delay_us)
        keys = [
            _exposure_start_us(frame, hour, hours.tz, delay_us)
            for frame, hour in zip(members, starts, strict=True)
        ]
        return cls(keys, 0, 1, 0)

    def block_of(self, key: int, block_us: int) -> int:
        """The index of the block holding the start of a frame with this key."""
        return ((key + self.base) * self.unit - self.delay) // block_us

    def first_key_of(self, block: int, block_us: int) -> int:
        """The smallest key whose start lies in the given block or after it."""
        return -(-(block * block_us + self.delay) // self.unit) - self.base


def _exposure_start_us(frame: RawFrame, hour: int | None, tz: tzinfo, delay_us: int) -> int:
    """A frame's UTC exposure start in microseconds, from its name's hour if that is known."""
    if hour is None or frame.date_obs is not None or stamp_in_name(frame) is None:
        return (frame_utc(frame, tz) - _EPOCH) // _MICROSECOND
    return (_BASE_S + hour + SECONDS_OF_MMSS[MMSS_OF_FIT(frame.name)]) * 1_000_000 - delay_us


def _split_blocks(
    members: list[RawFrame], starts: _StartKeys, block_us: int
) -> Iterator[tuple[int, tuple[RawFrame, ...]]]:
    """Block index and frames (by start, then name) of each block the frames fall in."""
    keys = starts.keys
    order = sorted(range(len(members)), key=keys.__getitem__)
    ordered_keys = list(map(keys.__getitem__, order))
    if any(map(eq, ordered_keys, islice(ordered_keys, 1, None))):  # equal starts: by name
        order.sort(key=lambda i: (keys[i], members[i].name))
    ordered = list(map(members.__getitem__, order))
    first = 0
    while first < len(ordered_keys):
        index = starts.block_of(ordered_keys[first], block_us)
        end = bisect_left(ordered_keys, starts.first_key_of(index + 1, block_us), first)
        yield index, tuple(ordered[first:end])
        first = end


def _delay_us(exposure_s: float) -> int:
    """Microseconds from a frame's exposure start to its name stamp."""
    return timedelta(seconds=exposure_s + SAVE_DELAY_S) // _MICROSECOND


def _is_sorted(names: list[str]) -> bool:
    return all(map(le, names, islice(names, 1, None)))


def partition_by_exptime(
    blocks: Iterable[Block], min_exptime: float
) -> tuple[tuple[Block, ...], tuple[Block, ...]]:
    """Split blocks into ``(to_stack, skipped)`` by total exposure against ``min_exptime``."""
    threshold = check_min_exptime(min_exptime)
    ordered = tuple(blocks)
    keep = tuple(b for b in ordered if b.total_exposure_s >= threshold)
    skip = tuple(b for b in ordered if b.total_exposure_s < threshold)
    return keep, skip
