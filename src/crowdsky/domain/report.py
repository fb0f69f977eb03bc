"""The lines crowdsky prints, exactly as the specification shows them.

Pure text: the application layer hands these to the progress port, which prints or collects them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta, tzinfo

from crowdsky.domain.blocks import Block

__all__ = [
    "block_label",
    "block_span",
    "complete_line",
    "dry_run_lines",
    "failed_line",
    "night_of",
    "rename_failed_line",
    "renamed_line",
    "seconds_text",
    "skipped_line",
    "stacking_line",
]


def seconds_text(seconds: float) -> str:
    """Seconds without a needless decimal: ``330s``, ``337.5s``."""
    return f"{seconds:.0f}s" if float(seconds).is_integer() else f"{seconds:g}s"


def block_span(block: Block, tz: tzinfo) -> str:
    """``HH:MM-HH:MM`` in the device's local time, as the specification prints blocks."""
    start, end = block.local_bounds(tz)
    return f"{start:%H:%M}-{end:%H:%M}"


def night_of(block: Block, tz: tzinfo) -> str:
    """The night a block belongs to, as the local date on which it began (``YYYY-MM-DD``).

    A night runs from local noon to local noon, so 23:45 and 00:15 are the same night.
    """
    start, _ = block.local_bounds(tz)
    return f"{(start - timedelta(hours=12)).date():%Y-%m-%d}"


def block_label(block: Block, tz: tzinfo, *, several_nights: bool) -> str:
    """``21:15-21:30``, or ``2026-02-27 21:15-21:30`` when the plan spans several nights.

    The date is the block's own local date (not its night's), as a clock would show it.
    """
    if not several_nights:
        return block_span(block, tz)
    start, _ = block.local_bounds(tz)
    return f"{start:%Y-%m-%d} {block_span(block, tz)}"


def dry_run_lines(target: str, blocks: Sequence[Block], tz: tzinfo) -> tuple[str, ...]:
    """The dry-run report of :func:`crowdsky.stack_blocks`.

    Examples
    --------
    ``Dry run: 3 blocks to stack for IC 434`` followed by one line per block such as
    ``  21:15-21:30  33 frames x 10.0s (LP) = 330s``.
    """
    noun = "block" if len(blocks) == 1 else "blocks"
    head = f"Dry run: {len(blocks)} {noun} to stack for {target}"
    return (head, *(_dry_run_line(b, tz) for b in blocks))


def _dry_run_line(block: Block, tz: tzinfo) -> str:
    return (
        f"  {block_span(block, tz)}  {block.frame_count} frames x {block.exposure} "
        f"({block.filter}) = {seconds_text(block.total_exposure_s)}"
    )


def stacking_line(block: Block, tz: tzinfo) -> str:
    """``Stacking block 21:15-21:30 (33 frames, 10.0s LP)...``."""
    return (
        f"Stacking block {block_span(block, tz)} "
        f"({block.frame_count} frames, {block.exposure} {block.filter})..."
    )


def complete_line(frames: int) -> str:
    """``  Complete: 33 frames stacked``."""
    return f"  Complete: {frames} frames stacked"


def renamed_line(name: str) -> str:
    """``  Renamed -> CrowdSky_...fit``."""
    return f"  Renamed -> {name}"


def failed_line(reason: str) -> str:
    """``  Failed: <reason>`` for a block the device did not stack."""
    return f"  Failed: {reason}"


def rename_failed_line(old: str, new: str, reason: str) -> str:
    """Loud report of a ``.fit`` rename that failed (the block is stacked again next run)."""
    return (
        f"  RENAME FAILED: {old} -> {new}: {reason}. The block stays unstacked and will be "
        "stacked again on the next run."
    )


def skipped_line(block: Block, tz: tzinfo, min_exptime: float) -> str:
    """A block below ``min_exptime``."""
    return (
        f"  Skipping {block_span(block, tz)}: {block.frame_count} frames x {block.exposure} "
        f"= {seconds_text(block.total_exposure_s)} < min_exptime {seconds_text(min_exptime)}"
    )
