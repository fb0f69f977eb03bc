"""Settling the device's time for one target: which headers to read, then the zone and frames.

Theory of operation
-------------------
The h11 way: the settler does no I/O. Ask it :meth:`DeviceTimeSettler.next_step`; it answers
:class:`NeedHeaders` (read these frames' headers and feed the results to
:meth:`~DeviceTimeSettler.receive_headers`), :class:`Settled` (the zone, the frames with every
``DATE-OBS`` that was needed, the blocks already stacked, the warnings) or :class:`CannotSettle`
(a header could not be read). The rounds, in order (each skipped when it needs nothing):

=============  ==========================================================================
round          headers asked for
=============  ==========================================================================
``samples``    the first and last frame of each night (:func:`night_samples`), unless the
               user gave a zone; then the zone is decided (:func:`decide_zone`)
``zone``       what the zone cannot place: a repeated or skipped hour, a night whose
               samples disagree (``ZoneDecision.read_headers``)
``boundary``   frames too close to a block boundary (:func:`near_boundary`), unless both
               candidate blocks are already stacked
``surprises``  every frame of a night where a header read since contradicts the zone
               (:func:`offset_surprises`); a contradicted override or device zone is warned of
=============  ==========================================================================

A header is never asked for twice. A header that was read but has no usable ``DATE-OBS``
(:class:`HeaderRead` with ``date_obs=None``) leaves its frame to the zone; a header that could
not be read (:class:`HeaderUnreadable`) is no such thing: nothing is settled from a guess, the
answer is :class:`CannotSettle` from then on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from enum import Enum
from operator import attrgetter

import attrs

from crowdsky.domain.blocks import CoverageKey, coverage_key_of
from crowdsky.domain.names import CrowdskyName, RawFrame
from crowdsky.domain.timekeys import (
    ZoneDecision,
    ZoneSource,
    check_block_minutes,
    chunk_key,
    decide_zone,
    near_boundary,
    needs_date_obs,
    night_samples,
    offset_surprises,
)

_NAME = attrgetter("name")

__all__ = [
    "CannotSettle",
    "DeviceTimeSettler",
    "HeaderRead",
    "HeaderResult",
    "HeaderUnreadable",
    "NeedHeaders",
    "SettleStep",
    "Settled",
    "likely_headers",
]


@attrs.frozen(kw_only=True)
class HeaderRead:
    """A header that was read; ``date_obs`` is ``None`` when it has no usable ``DATE-OBS``."""

    name: str
    date_obs: datetime | None


@attrs.frozen(kw_only=True)
class HeaderUnreadable:
    """A header that could not be read (the read failed, even when retried)."""

    name: str
    reason: str


HeaderResult = HeaderRead | HeaderUnreadable


@attrs.frozen(kw_only=True)
class NeedHeaders:
    """Read the headers of these frames (by name) and feed the results back."""

    names: tuple[str, ...]


@attrs.frozen(kw_only=True)
class Settled:
    """The device's time is settled for this target.

    Parameters
    ----------
    frames : tuple of RawFrame
        The listed frames, in their order, with ``date_obs`` where it was read.
    zone : ZoneDecision
        How name times become UTC.
    covered : frozenset of CoverageKey
        Blocks that already have a CrowdSky stack.
    warnings : tuple of str
        Messages for the user (a zone assumed or contradicted).
    """

    frames: tuple[RawFrame, ...]
    zone: ZoneDecision
    covered: frozenset[CoverageKey]
    warnings: tuple[str, ...]


@attrs.frozen(kw_only=True)
class CannotSettle:
    """Some header could not be read: the zone and the blocks would be a guess."""

    unreadable: tuple[HeaderUnreadable, ...]


SettleStep = NeedHeaders | Settled | CannotSettle


class _Round(Enum):
    SAMPLES = "samples"
    ZONE = "zone"
    BOUNDARY = "boundary"
    SURPRISES = "surprises"
    DONE = "done"


class DeviceTimeSettler:
    """Asks for the headers that settle the device's time of one target, then settles it.

    Parameters
    ----------
    frames : sequence of RawFrame
        Every listed raw frame of the target.
    stacked : sequence of CrowdskyName
        The CrowdSky stacks already in the target folder (their blocks need no header read).
    override : tzinfo, optional
        The user's zone; no night samples are read then.
    device_zone : tzinfo, optional
        The zone the device reports.
    host_zone : tzinfo, optional
        The computer's zone, the last resort.
    block_minutes : int
        Block length, for the frames near a boundary.
    """

    def __init__(
        self,
        frames: Sequence[RawFrame],
        *,
        stacked: Sequence[CrowdskyName] = (),
        override: tzinfo | None = None,
        device_zone: tzinfo | None = None,
        host_zone: tzinfo | None = None,
        block_minutes: int = 15,
    ) -> None:
        self._listed = tuple(frames)
        self._stacked = tuple(stacked)
        self._override, self._device_zone, self._host_zone = override, device_zone, host_zone
        self._block_minutes = check_block_minutes(block_minutes)
        self._read: dict[str, datetime | None] = {}
        self._current = list(self._listed)  # the listed frames with what was read so far
        self._where: Mapping[str, Sequence[int]] | None = None  # their places by name, when needed
        self._unreadable: dict[str, HeaderUnreadable] = {}
        self._asked: tuple[str, ...] = ()
        self._round = _Round.SAMPLES if override is None else _Round.ZONE
        self._zone: ZoneDecision | None = None
        self._covered: frozenset[CoverageKey] = frozenset()
        self._warnings: list[str] = []

    def next_step(self) -> SettleStep:
        """What the caller must do next: read headers, or take the settled result."""
        while True:
            if self._unreadable:
                return CannotSettle(unreadable=tuple(self._unreadable.values()))
            missing = tuple(name for name in self._asked if name not in self._read)
            if missing:
                return NeedHeaders(names=missing)
            if self._round is _Round.DONE:
                return self._settled()
            wanted, self._round = _ROUNDS[self._round](self)
            self._asked = tuple(dict.fromkeys(n for n in wanted if n not in self._read))

    def receive_headers(self, results: Iterable[HeaderResult]) -> None:
        """Take the results of header reads (any subset of the names asked for)."""
        for result in results:
            if isinstance(result, HeaderUnreadable):
                self._unreadable.setdefault(result.name, result)
            elif result.name not in self._read:
                self._read[result.name] = result.date_obs
                self._note_read(result.name, result.date_obs)

    # --- the rounds: each returns the names to read and the round that follows ------------------

    def _samples(self) -> tuple[Iterable[str], _Round]:
        return (f.name for f in night_samples(self._listed)), _Round.ZONE

    def _decide(self) -> tuple[Iterable[str], _Round]:
        frames = self._frames()
        samples = [f for f in frames if f.date_obs is not None] if self._override is None else []
        zone = decide_zone(
            frames,
            samples=samples,
            override=self._override,
            device_zone=self._device_zone,
            host_zone=self._host_zone,
        )
        self._zone = zone
        self._covered = frozenset(coverage_key_of(name, zone.tz) for name in self._stacked)
        if zone.warning:
            self._warnings.append(zone.warning)
        return zone.read_headers, _Round.BOUNDARY

    def _near_boundary(self) -> tuple[Iterable[str], _Round]:
        settled = self._stacked_already if self._covered else None
        near = near_boundary(self._frames(), self._tz(), self._block_minutes, settled=settled)
        return (f.name for f in near), _Round.SURPRISES

    def _surprises(self) -> tuple[Iterable[str], _Round]:
        zone = self._decided()
        surprised = offset_surprises(self._frames(), zone.tz)
        if surprised and zone.source in (ZoneSource.OVERRIDE, ZoneSource.DEVICE):
            self._warnings.append(
                f"sub-frame headers contradict the {zone.source} time zone {zone.tz}; those "
                "nights are placed by each frame's DATE-OBS instead."
            )
        return (f.name for f in surprised), _Round.DONE

    # --- helpers ---------------------------------------------------------------------------------

    def _note_read(self, name: str, date_obs: datetime | None) -> None:
        """Give the listed frames called ``name`` (without a ``DATE-OBS`` yet) the one read."""
        if self._where is None:
            self._where = _places_by_name(self._listed)
        for index in self._where.get(name, ()):
            frame = self._listed[index]
            if frame.date_obs is None:
                self._current[index] = attrs.evolve(frame, date_obs=date_obs)

    def _frames(self) -> tuple[RawFrame, ...]:
        """The listed frames with every ``DATE-OBS`` read so far."""
        return tuple(self._current)

    def _decided(self) -> ZoneDecision:
        assert self._zone is not None, "the zone is decided in the round before"
        return self._zone

    def _tz(self) -> tzinfo:
        return self._decided().tz

    def _stacked_already(self, frame: RawFrame, block_start: datetime) -> bool:
        return _is_covered(self._covered, frame, block_start, self._block_minutes)

    def _settled(self) -> Settled:
        return Settled(
            frames=self._frames(),
            zone=self._decided(),
            covered=self._covered,
            warnings=tuple(self._warnings),
        )


#: The rounds in one table: what each one runs (it returns the names and the next round).
_ROUNDS: dict[_Round, Callable[[DeviceTimeSettler], tuple[Iterable[str], _Round]]] = {
    _Round.SAMPLES: DeviceTimeSettler._samples,
    _Round.ZONE: DeviceTimeSettler._decide,
    _Round.BOUNDARY: DeviceTimeSettler._near_boundary,
    _Round.SURPRISES: DeviceTimeSettler._surprises,
}


def _places_by_name(frames: Sequence[RawFrame]) -> Mapping[str, Sequence[int]]:
    """The places of the frames of each name (a name is listed twice only in two folders)."""
    names = list(map(_NAME, frames))
    places: dict[str, Sequence[int]] = dict(zip(names, zip(range(len(names))), strict=True))
    if len(places) == len(names):
        return places
    repeated: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        repeated.setdefault(name, []).append(index)
    return repeated


def _is_covered(
    covered: frozenset[CoverageKey], frame: RawFrame, block_start: datetime, block_minutes: int
) -> bool:
    """True when the block of ``frame``'s kind starting at ``block_start`` is already stacked."""
    key = chunk_key(block_start, block_minutes)
    return CoverageKey(frame.target, frame.exposure, frame.filter, key) in covered


def likely_headers(
    frames: Sequence[RawFrame],
    zone: tzinfo,
    *,
    stacked: Sequence[CrowdskyName] = (),
    block_minutes: int = 15,
) -> tuple[str, ...]:
    """Names among ``frames`` whose headers the settler will ask for if ``zone`` holds.

    For reading ahead while a listing is still coming in: a settler given ``zone`` as override,
    or as device zone that the night samples confirm, asks for the frames of a repeated or
    skipped hour (:func:`~crowdsky.domain.timekeys.needs_date_obs`) and those near a block
    boundary whose candidate blocks are not both stacked
    (:func:`~crowdsky.domain.timekeys.near_boundary`), and each of these depends on the frame
    alone. This is only a forecast: what the settler asks for is what must be read, and a
    header read ahead that it never asks for is simply not used.
    """
    check_block_minutes(block_minutes)
    covered = frozenset(coverage_key_of(name, zone) for name in stacked)
    unclear = needs_date_obs(frames, zone)
    near = near_boundary(
        frames,
        zone,
        block_minutes,
        settled=(lambda frame, start: _is_covered(covered, frame, start, block_minutes))
        if covered
        else None,
    )
    return tuple(dict.fromkeys(f.name for f in (*unclear, *near)))
