"""The specification's module-level functions: ``crowdsky.list_targets()``, ``stack_blocks()``, ...

Each call builds a :class:`~crowdsky.app.service.Crowdsky` around the Seestar chosen with
:func:`crowdsky.connect`, :func:`use_simulator` or :func:`crowdsky.session.use`, the system clock,
and progress printed to standard output. For anything more (your own clock, quiet progress,
several telescopes) build a :class:`~crowdsky.app.service.Crowdsky` yourself.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.console import PrintProgress
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import StackOptions
from crowdsky.domain import DEFAULT_TILING, SkyTiling
from crowdsky.errors import PlanError
from crowdsky.session import current_seestar

__all__ = [
    "find_unstacked_blocks",
    "list_targets",
    "purge_crowdsky_stacks",
    "service",
    "stack_all",
    "stack_blocks",
]


def _zone(tz: tzinfo | str | None) -> tzinfo | None:
    if tz is None or isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PlanError(
            f"Unknown time zone {tz!r}; use an IANA name such as 'Europe/Vienna'."
        ) from None


def service(
    *,
    tz: tzinfo | str | None = None,
    tiling: SkyTiling | None = None,
    block_timeout: float | None = None,
) -> Crowdsky:
    """The service the module-level functions use, for the currently chosen Seestar.

    Parameters
    ----------
    tz : tzinfo or str, optional
        The telescope's time zone, overriding what crowdsky learns from the device.
    tiling : SkyTiling, optional
        HEALPix tiling for file names (RING / NSIDE 128 by default).
    block_timeout : float, optional
        Seconds one block may stack before it is stopped (default 120 s + 10 s per frame).
    """
    options = StackOptions(tiling=tiling or DEFAULT_TILING, block_timeout=block_timeout)
    return Crowdsky(
        current_seestar(),
        SystemClock(),
        PrintProgress(),
        tz=_zone(tz),
        host_zone=datetime.now().astimezone().tzinfo,
        options=options,
    )


def list_targets() -> list[dict[str, Any]]:
    """Targets with raw sub-frames on the Seestar.

    Returns
    -------
    list of dict
        One dict per target: ``target``, ``raw_files``, ``stacked_files``, ``crowdsky_files``,
        ``folders``.

    Examples
    --------
    >>> import crowdsky
    >>> _ = crowdsky.use_simulator()
    >>> [t["target"] for t in crowdsky.list_targets()]
    ['IC 434', 'M 42', 'M 81']
    """
    return service().list_targets()


def find_unstacked_blocks(
    target: str,
    *,
    block_minutes: int = 15,
    min_exptime: float = 240,
    tz: tzinfo | str | None = None,
) -> list[dict[str, Any]]:
    """Complete blocks of ``target`` without a CrowdSky stack, worth stacking.

    Parameters
    ----------
    target : str
        Target name as :func:`list_targets` shows it.
    block_minutes : int
        Block length in minutes; must divide 1 440 (default 15).
    min_exptime : float
        Minimum total exposure (frames x exposure) in seconds; ``0`` lists every block.
    tz : tzinfo or str, optional
        Override of the telescope's time zone.

    Returns
    -------
    list of dict
        ``block_start``, ``block_end`` (device local time), ``frame_count``, ``exposure``,
        ``filter``, ``chunk_key``, ``files`` and more.
    """
    return service(tz=tz).find_unstacked_blocks(
        target, block_minutes=block_minutes, min_exptime=min_exptime
    )


def stack_blocks(
    target: str,
    block_minutes: int = 15,
    min_exptime: float = 240,
    dry_run: bool = False,
    *,
    tz: tzinfo | str | None = None,
    tiling: SkyTiling | None = None,
    block_timeout: float | None = None,
) -> dict[str, Any]:
    """Batch-stack every unstacked block of ``target`` on the Seestar, one at a time.

    Already stacked blocks (a ``CrowdSky_*`` file with the same target, exposure, filter and
    UTC chunk key exists) are skipped, so re-running is safe.

    Parameters
    ----------
    target : str
        Target name.
    block_minutes : int
        Block length in minutes; must divide 1 440 (default 15).
    min_exptime : float
        Blocks with less total exposure, in seconds, are skipped (default 240).
    dry_run : bool
        Print the plan and change nothing.
    tz, tiling, block_timeout
        See :func:`service`.

    Returns
    -------
    dict
        ``blocks_stacked``, ``blocks_failed``, ``blocks_skipped``, ``rename_failed``, ``files``,
        ``blocks``.
    """
    return service(tz=tz, tiling=tiling, block_timeout=block_timeout).stack_blocks(
        target, block_minutes=block_minutes, min_exptime=min_exptime, dry_run=dry_run
    )


def stack_all(
    block_minutes: int = 15,
    min_exptime: float = 240,
    dry_run: bool = False,
    *,
    tz: tzinfo | str | None = None,
    tiling: SkyTiling | None = None,
    block_timeout: float | None = None,
) -> dict[str, Any]:
    """:func:`stack_blocks` for every target with raw sub-frames.

    Returns
    -------
    dict
        ``total_blocks_stacked``, ``total_blocks_failed``, ``total_blocks_skipped``,
        ``targets_processed``, ``targets_failed`` and per-target ``results``.
    """
    return service(tz=tz, tiling=tiling, block_timeout=block_timeout).stack_all(
        block_minutes=block_minutes, min_exptime=min_exptime, dry_run=dry_run
    )


def purge_crowdsky_stacks(target: str | None = None, *, dry_run: bool = False) -> dict[str, Any]:
    """Delete the ``CrowdSky_*`` stacks (and their JPEGs) of one target, or of all targets.

    Raw sub-frames and firmware stacks are never touched.

    Returns
    -------
    dict
        ``files_deleted``, ``files_failed``, ``dry_run``.
    """
    return service().purge_crowdsky_stacks(target, dry_run=dry_run)
