"""Grouping raw sub-frames into clock-aligned blocks, and deciding which still need stacking.

A block is identified by its *coverage key*: target, exposure, filter and UTC chunk key. A block is
covered when a ``CrowdSky_*`` file with the same coverage key exists in the target folder; frame
count and HEALPix pixel are not part of the key, so a re-run never stacks a block twice even if
the device rejected frames or the pointing moved a pixel.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

import attrs

from crowdsky.domain.names import CrowdskyName, RawFrame, format_exposure
from crowdsky.domain.timekeys import (
    BOUNDARY_MARGIN_S,
    SAVE_DELAY_S,
    as_utc,
    block_bounds,
    check_block_minutes,
    chunk_key,
    frame_utc,
    local_to_utc,
)
from crowdsky.errors import PlanError

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
    groups: dict[tuple[str, float, str, datetime], list[tuple[datetime, RawFrame]]] = {}
    for frame in frames:
        utc = frame_utc(frame, device_tz)
        start, _ = block_bounds(utc, block_minutes)
        key = (frame.target, frame.exposure_s, frame.filter, start)
        groups.setdefault(key, []).append((utc, frame))
    length = timedelta(minutes=block_minutes)
    blocks = (
        Block(target, exp, filt, start, start + length, block_minutes, _in_order(members))
        for (target, exp, filt, start), members in groups.items()
        if start + length + settle_time(exp) <= cutoff
    )
    wanted = (b for b in blocks if b.coverage_key not in done)
    return tuple(sorted(wanted, key=lambda b: (b.start, b.target, b.exposure_s, b.filter)))


def _in_order(members: list[tuple[datetime, RawFrame]]) -> tuple[RawFrame, ...]:
    return tuple(frame for _, frame in sorted(members, key=lambda m: (m[0], m[1].name)))


def partition_by_exptime(
    blocks: Iterable[Block], min_exptime: float
) -> tuple[tuple[Block, ...], tuple[Block, ...]]:
    """Split blocks into ``(to_stack, skipped)`` by total exposure against ``min_exptime``."""
    threshold = check_min_exptime(min_exptime)
    ordered = tuple(blocks)
    keep = tuple(b for b in ordered if b.total_exposure_s >= threshold)
    skip = tuple(b for b in ordered if b.total_exposure_s < threshold)
    return keep, skip
