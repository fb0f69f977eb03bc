"""The settler's per-frame time checks as they were before the integer path, frame by frame.

A straightforward copy of ``needs_date_obs``, ``near_boundary`` and ``night_samples`` with the
datetime arithmetic they used (``frame_utc``, ``block_bounds`` twice a frame, ``local_time``
sorts), kept so the faster versions in :mod:`crowdsky.domain.timekeys` can be checked against
them on random inputs (``tests/domain/test_fast_device_time.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo

from crowdsky.domain import RawFrame
from crowdsky.domain.timekeys import (
    BOUNDARY_MARGIN_S,
    LATER_START_MARGIN_S,
    block_bounds,
    frame_utc,
    night_of,
)

__all__ = ["reference_near_boundary", "reference_needs_date_obs", "reference_night_samples"]


def _is_unclear(local_time: datetime, tz: tzinfo) -> bool:
    first = local_time.replace(tzinfo=tz, fold=0)
    second = local_time.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        return True
    return first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local_time


def reference_needs_date_obs(frames: Iterable[RawFrame], tz: tzinfo) -> tuple[RawFrame, ...]:
    """Frames without ``DATE-OBS`` whose wall time is repeated or skipped in ``tz``."""
    return tuple(f for f in frames if f.date_obs is None and _is_unclear(f.local_time, tz))


def reference_near_boundary(
    frames: Iterable[RawFrame],
    tz: tzinfo,
    block_minutes: int,
    *,
    settled: Callable[[RawFrame, datetime], bool] = lambda frame, block_start: False,
    margin_s: float = BOUNDARY_MARGIN_S,
    later_s: float = LATER_START_MARGIN_S,
) -> tuple[RawFrame, ...]:
    """Frames whose estimate lies within the margins of a block boundary."""
    earlier, later = timedelta(seconds=margin_s), timedelta(seconds=later_s)
    wanted = []
    for frame in frames:
        if frame.date_obs is not None:
            continue
        start = frame_utc(frame, tz)
        early, _ = block_bounds(start - earlier, block_minutes)
        late, _ = block_bounds(start + later, block_minutes)
        if early != late and not (settled(frame, early) and settled(frame, late)):
            wanted.append(frame)
    return tuple(wanted)


def reference_night_samples(frames: Iterable[RawFrame]) -> tuple[RawFrame, ...]:
    """The first and last frame (by local time, then name) of every night."""
    by_night: dict[date, list[RawFrame]] = {}
    for frame in sorted(frames, key=lambda f: (f.local_time, f.name)):
        by_night.setdefault(night_of(frame.local_time), []).append(frame)
    picked = {f.name: f for group in by_night.values() for f in (group[0], group[-1])}
    return tuple(picked.values())
