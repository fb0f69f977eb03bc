"""Name times as integers: one zone lookup per local hour instead of datetime work per frame.

A raw frame's name carries its local wall time to the second (``YYYYMMDD-HHMMSS``). Within one
local hour a zone almost always keeps one UTC offset, so the UTC second of every frame of that
hour is the hour's UTC start plus the name's minutes and seconds: :class:`HourStarts` converts
each distinct hour once and gives a frame's name stamp as UTC seconds
(:meth:`HourStarts.stamp_seconds`; :meth:`HourStarts.stamps_seconds` for many frames at once).
An hour in which the offset changes, or whose wall times do not all exist once, is ``None``
and its frames take the datetime way (:func:`~crowdsky.domain.timekeys.frame_utc`), frame by
frame, as do frames whose local time is not their name's.

The hour is probed at its start, at 15, 30 and 45 minutes and at its last second, in both folds
and through a round trip to UTC; a change undone between two probes would go unseen (no zone
has one; the planner in :mod:`crowdsky.domain.blocks` makes the same assumption).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from operator import add, attrgetter

from crowdsky.domain.names import (
    ENDS_FIT,
    HOUR_OF_FIT,
    MMSS_OF_FIT,
    Memo,
    RawFrame,
    given_local_time,
    stamp_in_name,
)

__all__ = [
    "EPOCH",
    "SECONDS_OF_MMSS",
    "HourStarts",
    "exposure_delay_us",
    "night_of_hour",
    "to_us",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAME = attrgetter("name")
_NAIVE_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_MICROSECOND = timedelta(microseconds=1)
_PROBES = (*(timedelta(minutes=m) for m in (0, 15, 30, 45)), timedelta(seconds=3599))


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware moment."""
    return (moment - EPOCH) // _MICROSECOND


def exposure_delay_us(seconds: float) -> int:
    """``timedelta(seconds=seconds)`` in whole microseconds, rounded as ``timedelta`` rounds."""
    return timedelta(seconds=seconds) // _MICROSECOND


def night_of_hour(hour: str) -> date:
    """The observing night (see :func:`~crowdsky.domain.timekeys.night_of`) of ``YYYYMMDD-HH``."""
    local = datetime(int(hour[:4]), int(hour[4:6]), int(hour[6:8]), int(hour[9:11]))
    return (local - timedelta(hours=12)).date()


class HourStarts(dict[str, int | None]):
    """UTC seconds since the epoch of each local hour ``YYYYMMDD-HH`` with one clear offset.

    Parameters
    ----------
    tz : tzinfo
        The zone the names' wall times are read in.
    """

    def __init__(self, tz: tzinfo) -> None:
        super().__init__()
        self.tz = tz

    def __missing__(self, hour: str) -> int | None:
        self[hour] = start = self._start(hour)
        return start

    def _start(self, hour: str) -> int | None:
        local = datetime(int(hour[:4]), int(hour[4:6]), int(hour[6:8]), int(hour[9:11]))
        offset = local.replace(tzinfo=self.tz).utcoffset()
        if offset is None or offset % _SECOND:
            return None
        for step in _PROBES:
            probe = local + step
            for fold in (0, 1):
                if probe.replace(tzinfo=self.tz, fold=fold).utcoffset() != offset:
                    return None
            back = probe.replace(tzinfo=self.tz).astimezone(UTC).astimezone(self.tz)
            if back.replace(tzinfo=None) != probe:
                return None
        return (local - offset - _NAIVE_EPOCH) // _SECOND

    def stamp_seconds(self, frame: RawFrame) -> int | None:
        """UTC seconds of a frame's name stamp; ``None`` when it must take the datetime way."""
        stamp = stamp_in_name(frame)
        if stamp is None:
            return None
        start = self[stamp[:11]]
        if start is None:
            return None
        return start + SECONDS_OF_MMSS[stamp[11:]]

    def stamps_seconds(self, frames: Sequence[RawFrame]) -> list[int | None]:
        """:meth:`stamp_seconds` of each frame, in order: the same values, made in bulk.

        When every frame is a ``.fit`` name carrying its time, in hours of one offset, each name
        is cut at fixed places from its end (``YYYYMMDD-HH`` and ``MMSS``, as the raw-name
        pattern it was parsed by guarantees) and the pieces are looked up, all in C loops;
        otherwise each frame is asked on its own.
        """
        names = list(map(_NAME, frames))
        if not any(map(given_local_time, frames)) and all(map(ENDS_FIT, names)):
            starts = list(map(self.__getitem__, map(HOUR_OF_FIT, names)))
            if None not in starts:
                seconds = map(SECONDS_OF_MMSS.__getitem__, map(MMSS_OF_FIT, names))
                return list(map(add, starts, seconds))
        return list(map(self.stamp_seconds, frames))


def _mmss_seconds(mmss: str) -> int:
    """Seconds of a name's ``MMSS`` (checked digits)."""
    return int(mmss[:2]) * 60 + int(mmss[2:])


#: Seconds into the hour of each ``MMSS`` met so far (at most 3 600 texts: the names' checks keep
#: minutes and seconds below 60), shared by every user, as the value depends on nothing else.
SECONDS_OF_MMSS: Memo[str, int] = Memo(_mmss_seconds)
