"""The planner as it was before the fast path: parse one name at a time, group frame by frame.

A straightforward copy of ``parse_raw_name`` and ``plan_blocks`` (with the time arithmetic they
used: ``frame_utc``, ``block_bounds``) from before batch planning, kept here so the fast path in
:mod:`crowdsky.domain.blocks` can be checked against it on random inputs
(``tests/domain/test_fast_planning.py``) and timed against it (``bench/bench_planning.py``).
It builds the project's own result types, so results compare with ``==``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo

from crowdsky.domain import Block, CoverageKey, RawFrame
from crowdsky.errors import PlanError

__all__ = ["reference_parse", "reference_plan", "reference_plan_names"]

_RAW_RE = re.compile(
    r"^Light_(?P<target>.+)_(?P<exp>\d+(?:\.\d+)?)s_(?P<filter>[A-Za-z0-9-]+)_"
    r"(?P<stamp>\d{8}-\d{6})\.fits?$",
    re.ASCII,
)
_SAVE_DELAY_S = 4.0
_BOUNDARY_MARGIN_S = 20.0
_QUARTER = timedelta(minutes=15)
_MAX_OFFSET = timedelta(hours=14)


def _stamp(text: str, fmt: str) -> datetime | None:
    try:
        stamp = datetime.strptime(text, fmt)
    except ValueError:
        return None
    return stamp if 2000 <= stamp.year < 2200 else None


def reference_parse(name: str) -> RawFrame | None:
    """``parse_raw_name`` as it was: one regex match and ``strptime`` per name."""
    match = _RAW_RE.match(name)
    if match is None:
        return None
    stamp = _stamp(match["stamp"], "%Y%m%d-%H%M%S")
    exposure = float(match["exp"])
    if stamp is None or not 0 < exposure <= 86400.0:
        return None
    try:
        return RawFrame(name, match["target"], exposure, match["filter"], stamp)
    except PlanError:
        return None


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise PlanError(f"Expected a time-zone aware datetime, got naive {moment.isoformat()}.")
    return moment.astimezone(UTC)


def _block_bounds(moment: datetime, block_minutes: int) -> tuple[datetime, datetime]:
    utc = _as_utc(moment)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    index = int((utc - midnight) // timedelta(minutes=block_minutes))
    start = midnight + index * timedelta(minutes=block_minutes)
    return start, start + timedelta(minutes=block_minutes)


def _header_offset(local_time: datetime, date_obs: datetime, exposure_s: float) -> timedelta:
    utc = date_obs.astimezone(UTC).replace(tzinfo=None) if date_obs.tzinfo else date_obs
    gap = local_time - utc - timedelta(seconds=exposure_s / 2)
    return round(gap / _QUARTER) * _QUARTER


def _frame_utc(frame: RawFrame, tz: tzinfo) -> datetime:
    if frame.date_obs is not None:
        offset = _header_offset(frame.local_time, frame.date_obs, frame.exposure_s)
        if abs(offset) <= _MAX_OFFSET:
            moment = frame.date_obs
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    stamp = frame.local_time.replace(tzinfo=tz, fold=0).astimezone(UTC)
    return stamp - timedelta(seconds=frame.exposure_s + _SAVE_DELAY_S)


def _settle_time(exposure_s: float) -> timedelta:
    return timedelta(seconds=exposure_s + _SAVE_DELAY_S + _BOUNDARY_MARGIN_S)


def reference_plan(
    frames: Iterable[RawFrame],
    *,
    block_minutes: int = 15,
    now: datetime,
    device_tz: tzinfo,
    covered: Iterable[CoverageKey] = (),
) -> tuple[Block, ...]:
    """``plan_blocks`` as it was: ``frame_utc`` and ``block_bounds`` per frame, a dict of lists."""
    cutoff = _as_utc(now)
    done = frozenset(covered)
    groups: dict[tuple[str, float, str, datetime], list[tuple[datetime, RawFrame]]] = {}
    for frame in frames:
        utc = _frame_utc(frame, device_tz)
        start, _ = _block_bounds(utc, block_minutes)
        key = (frame.target, frame.exposure_s, frame.filter, start)
        groups.setdefault(key, []).append((utc, frame))
    length = timedelta(minutes=block_minutes)
    blocks = (
        Block(target, exp, filt, start, start + length, block_minutes, _in_order(members))
        for (target, exp, filt, start), members in groups.items()
        if start + length + _settle_time(exp) <= cutoff
    )
    wanted = (b for b in blocks if b.coverage_key not in done)
    return tuple(sorted(wanted, key=lambda b: (b.start, b.target, b.exposure_s, b.filter)))


def _in_order(members: list[tuple[datetime, RawFrame]]) -> tuple[RawFrame, ...]:
    return tuple(frame for _, frame in sorted(members, key=lambda m: (m[0], m[1].name)))


def reference_plan_names(
    names: Iterable[str],
    *,
    block_minutes: int = 15,
    now: datetime,
    device_tz: tzinfo,
    covered: Iterable[CoverageKey] = (),
) -> tuple[Block, ...]:
    """Names to blocks the old way: :func:`reference_parse` each name, then plan."""
    frames = [f for f in map(reference_parse, names) if f is not None]
    return reference_plan(
        frames, block_minutes=block_minutes, now=now, device_tz=device_tz, covered=covered
    )
