"""Stacks the telescope finished after crowdsky stopped watching: which one, if any, is a block's.

Before a block's batch stack starts, crowdsky records a :class:`PendingStack`: the device, the
target folder, the block, and the ``DSO_Stacked_*`` names already in that folder (the snapshot).
If crowdsky is killed while the device stacks, the device finishes alone and writes
``DSO_Stacked_<n>_<target>_<exp>_<date>_<time>.fit``, which is no coverage. On the next run
:func:`decide_orphan` says whether exactly one new output is that block's stack (then it is
renamed instead of stacked again), or whether nothing can be said.

The rules, all of which must hold for a file to be the block's orphan:

* a firmware stack name (``DSO_Stacked_*``) that was not in the snapshot (the user's own stacks
  are never touched);
* the same target and exposure as the block;
* a frame count above 0 and no larger than the block's (the device may reject frames);
* its header's ``DATE-OBS``, when the header has a readable one, inside the block's UTC bounds.
  A header that could not be read is never taken for one without ``DATE-OBS``: the decision is
  then :attr:`OrphanVerdict.UNREADABLE` (adopt nothing now, ask again next run).

Exactly one such file is adopted; two or more are :attr:`OrphanVerdict.AMBIGUOUS`, none is
:attr:`OrphanVerdict.NONE`, and both leave every file alone.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from crowdsky.domain.blocks import Block, CoverageKey
from crowdsky.domain.headers import parse_date_obs
from crowdsky.domain.names import StackedName, format_exposure, parse_stacked_name

__all__ = [
    "OrphanDecision",
    "OrphanVerdict",
    "PendingStack",
    "decide_orphan",
    "orphan_candidates",
    "pending_stack",
    "stacked_names",
]


@attrs.frozen
class PendingStack:
    """A batch stack crowdsky started and has not yet seen end.

    Parameters
    ----------
    device : str
        The telescope's identity (host and port, or the in-memory device's own id).
    folder : str
        The target folder under ``MyWorks`` where the device writes the output.
    key : CoverageKey
        The block's coverage key (target, exposure, filter, chunk key).
    start, end : datetime
        The block's UTC bounds ``[start, end)``.
    frame_count : int
        Frames configured for the stack.
    snapshot : frozenset of str
        ``DSO_Stacked_*`` names in ``folder`` just before the stack was started.
    """

    device: str
    folder: str
    key: CoverageKey
    start: datetime
    end: datetime
    frame_count: int
    snapshot: frozenset[str] = frozenset()


class OrphanVerdict(enum.Enum):
    """What :func:`decide_orphan` found."""

    #: Exactly one new output fits the block: rename it.
    ADOPT = "adopt"
    #: No new output fits: stack as usual.
    NONE = "none"
    #: Two or more fit: leave them all alone and stack as usual.
    AMBIGUOUS = "ambiguous"
    #: A candidate's header could not be read: adopt nothing now, try again next run.
    UNREADABLE = "unreadable"


@attrs.frozen
class OrphanDecision:
    """The verdict and the file names it concerns.

    Parameters
    ----------
    verdict : OrphanVerdict
        What was found.
    names : tuple of str
        The adopted file (``ADOPT``), the fitting files (``AMBIGUOUS``) or the files whose
        header could not be read (``UNREADABLE``); empty for ``NONE``.
    """

    verdict: OrphanVerdict
    names: tuple[str, ...] = ()

    @property
    def adopted(self) -> str | None:
        """The file to rename, for ``ADOPT``; else ``None``."""
        return self.names[0] if self.verdict is OrphanVerdict.ADOPT else None


def stacked_names(listing: Iterable[str]) -> frozenset[str]:
    """The firmware stack names (``DSO_Stacked_*.fit``) in a folder listing."""
    return frozenset(name for name in listing if parse_stacked_name(name) is not None)


def pending_stack(device: str, folder: str, block: Block, listing: Iterable[str]) -> PendingStack:
    """The record of ``block`` about to be stacked, with the snapshot of ``listing``."""
    return PendingStack(
        device=device,
        folder=folder,
        key=block.coverage_key,
        start=block.start,
        end=block.end,
        frame_count=block.frame_count,
        snapshot=stacked_names(listing),
    )


def orphan_candidates(record: PendingStack, listing: Iterable[str]) -> tuple[str, ...]:
    """New firmware stacks in ``listing`` whose name fits the record's block, sorted.

    New: not in the snapshot. Fits: same target and exposure, 0 < frames <= the block's.
    """
    found = []
    for name in sorted(set(listing) - record.snapshot):
        parsed = parse_stacked_name(name)
        if parsed is not None and _name_fits(record, parsed):
            found.append(name)
    return tuple(found)


def _name_fits(record: PendingStack, parsed: StackedName) -> bool:
    return (
        parsed.target == record.key.target
        and format_exposure(parsed.exposure_s) == record.key.exposure
        and 0 < parsed.frames <= record.frame_count
    )


def decide_orphan(
    record: PendingStack,
    listing: Iterable[str],
    headers: Mapping[str, Mapping[str, Any]],
    unreadable: Iterable[str] = (),
) -> OrphanDecision:
    """Whether exactly one new output in the target folder is the record's block's stack.

    Parameters
    ----------
    record : PendingStack
        The pending stack of the block.
    listing : iterable of str
        File names in the target folder now.
    headers : mapping of str to header
        Headers read of the candidates (:func:`orphan_candidates`), by name.
    unreadable : iterable of str
        Candidates whose header could not be read.

    Returns
    -------
    OrphanDecision

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> key = CoverageKey("M 81", "20.0s", "LP", "20260311.82")
    >>> start = datetime(2026, 3, 11, 20, 30, tzinfo=UTC)
    >>> end = datetime(2026, 3, 11, 20, 45, tzinfo=UTC)
    >>> record = PendingStack("seestar:4700", "M 81", key, start, end, 40)
    >>> new = "DSO_Stacked_38_M 81_20.0s_20260311_214802.fit"
    >>> decide_orphan(record, [new], {new: {"DATE-OBS": "2026-03-11T20:30:04"}}).adopted
    'DSO_Stacked_38_M 81_20.0s_20260311_214802.fit'
    >>> decide_orphan(record, [new], {}, unreadable=[new]).verdict
    <OrphanVerdict.UNREADABLE: 'unreadable'>
    """
    candidates = orphan_candidates(record, listing)
    failed = tuple(name for name in candidates if name in set(unreadable) or name not in headers)
    if failed:
        return OrphanDecision(OrphanVerdict.UNREADABLE, failed)
    fitting = tuple(name for name in candidates if _inside_block(record, headers[name]))
    if not fitting:
        return OrphanDecision(OrphanVerdict.NONE)
    if len(fitting) > 1:
        return OrphanDecision(OrphanVerdict.AMBIGUOUS, fitting)
    return OrphanDecision(OrphanVerdict.ADOPT, fitting)


def _inside_block(record: PendingStack, header: Mapping[str, Any]) -> bool:
    """``DATE-OBS`` inside the block; a header without a readable one does not rule it out."""
    date_obs = parse_date_obs(header.get("DATE-OBS"))
    return date_obs is None or record.start <= date_obs < record.end
