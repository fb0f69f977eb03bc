"""Pending stacks: record them while a block stacks, adopt what a killed run left behind.

Gather, decide, apply. :class:`PendingRecords` writes a
:class:`~crowdsky.domain.orphans.PendingStack` through the
:class:`~crowdsky.app.ports.StackJournal` just before a block's batch stack starts and settles it
when the block ends. A record is dropped only when nothing more can come of the stack: the output
was renamed, or the device is idle and holds no output of it under its firmware name. So a record
outlives a SIGKILL, a lost link (the device goes on stacking) and an output whose rename or header
read failed.

On the next run, :func:`adopt_orphan` handles a block that still has a record: it waits for a
batch stack still running on the device (it may be this block's), lists the target folder, reads
the headers of the new ``DSO_Stacked_*`` files whose names fit the block, lets
:func:`~crowdsky.domain.orphans.decide_orphan` decide, and either renames the one orphan through
:func:`~crowdsky.app.stacking.rename_output` (the same rename and pixel code as a fresh stack),
or, when there is none or more than one, drops the record and lets the block stack as usual. A
header that could not be read adopts nothing and stacks nothing now: the block fails with the
reason and the record stays for the next run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import attrs

from crowdsky.app.headers import read_header
from crowdsky.app.ports import (
    BatchStackState,
    Clock,
    DeviceIdentity,
    Progress,
    Seestar,
    StackJournal,
)
from crowdsky.app.stacking import (
    BlockOutcome,
    StackOptions,
    device_idle,
    rename_output,
    wait_for_batch_stack,
)
from crowdsky.domain import Block, BlockStatus, CoverageKey, parse_stacked_name
from crowdsky.domain import report as text
from crowdsky.domain.device_paths import device_path
from crowdsky.domain.orphans import (
    OrphanDecision,
    OrphanVerdict,
    PendingStack,
    decide_orphan,
    orphan_candidates,
    pending_stack,
)
from crowdsky.errors import CrowdskyError, HeaderReadError

__all__ = ["PendingRecords", "adopt_orphan", "device_identity"]


def device_identity(seestar: Seestar) -> str | None:
    """The telescope's stable identity, or ``None`` when the adapter knows none."""
    if isinstance(seestar, DeviceIdentity):
        return seestar.identity or None
    return None


@attrs.frozen
class PendingRecords:
    """The pending-stack records of one target folder on one device.

    Parameters
    ----------
    seestar : Seestar
        The telescope (for the snapshot listing and the idle check).
    journal : StackJournal
        Where the records are kept.
    device : str
        The telescope's identity.
    folder : str
        The target folder the device writes its stacks to.
    """

    seestar: Seestar
    journal: StackJournal
    device: str
    folder: str

    def begin(self, block: Block) -> None:
        """List the folder and record ``block`` as pending with that snapshot.

        Raises :class:`~crowdsky.errors.CrowdskyError` when the listing or the write fails.
        """
        listing = [entry.name for entry in self.seestar.list_files(self.folder)]
        self.journal.begin(pending_stack(self.device, self.folder, block, listing))

    def settle(self, block: Block, outcome: BlockOutcome | None) -> None:
        """Drop the record unless something may still come of the stack.

        Dropped when the output was renamed, or when the device holds no output of the block:
        its batch stack is cleared (a clean stop), failed or was cancelled, and no new firmware
        stack fitting the block is in the folder. Kept when the output
        keeps its firmware name (rename or header read failed), when the device still stacks or
        cannot be asked (a lost link), and when an exception (Ctrl-C) came after a ``complete``
        whose output was not renamed. Never raises.
        """
        stacked = outcome is not None and outcome.status is BlockStatus.STACKED
        if stacked or (
            not _left_output(outcome)
            and _no_output_to_come(self.seestar)
            and not self._output_in_folder(block)
        ):
            self.drop(block.coverage_key)

    def _output_in_folder(self, block: Block) -> bool:
        """A new firmware stack fitting ``block`` is in the folder (or the folder is unknown).

        A stack can complete between two polls and then be stopped and cleared by a Ctrl-C that
        came before crowdsky saw it: the device holds no "complete" state any more, but the
        output is on its storage all the same.
        """
        records = [r for r in self.journal.pending(self.device) if r.key == block.coverage_key]
        try:
            listing = [entry.name for entry in self.seestar.list_files(self.folder)]
        except CrowdskyError:
            return True  # cannot tell: keep the record
        return any(orphan_candidates(record, listing) for record in records)

    def drop(self, key: CoverageKey) -> None:
        """Remove the record of ``key``; a failed write leaves it for the next run."""
        with contextlib.suppress(CrowdskyError):
            self.journal.done(self.device, key)


def _no_output_to_come(seestar: Seestar) -> bool:
    """The device's batch stack is cleared, failed or cancelled (not running, not complete)."""
    try:
        status = seestar.batch_stack_status()
    except CrowdskyError:
        return False
    return status is None or (status.terminal and status.state is not BatchStackState.COMPLETE)


def _left_output(outcome: BlockOutcome | None) -> bool:
    """The device made an output of the block that still has its firmware name."""
    if outcome is None:
        return False
    if outcome.status is BlockStatus.RENAME_FAILED:
        return True
    return outcome.status is BlockStatus.FAILED and outcome.frames_stacked > 0


def adopt_orphan(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    block: Block,
    *,
    record: PendingStack,
    records: PendingRecords,
    paths: list[str],
    tz: tzinfo,
    options: StackOptions,
) -> BlockOutcome | None:
    """Rename the stack a killed run left of ``block``; ``None`` when the block is to be stacked.

    Parameters
    ----------
    seestar, clock, progress
        The ports.
    block : Block
        The block, still without a CrowdSky stack.
    record : PendingStack
        Its pending record from an earlier run.
    records : PendingRecords
        The records of the block's target folder (the record is dropped through it).
    paths : list of str
        The block's frame paths (a sub-frame's pointing names the pixel if the stack has none).
    tz : tzinfo
        The device's zone, for the printed lines.
    options : StackOptions
        Timeouts, polling and tiling.

    Returns
    -------
    BlockOutcome or None
        The rename's outcome, a failure that keeps the record (header unreadable, the device
        busy past the timeout, the listing failed), or ``None``: nothing to adopt, stack it.
    """
    progress.line(
        f"Block {text.block_span(block, tz)} ({block.frame_count} frames, {block.exposure} "
        f"{block.filter}) was being stacked when an earlier run stopped; looking for its stack..."
    )
    try:
        decision = _decide(seestar, clock, progress, block, record, options)
    except CrowdskyError as exc:
        reason = f"{exc} The earlier run's stack of this block is looked for again next run."
        progress.line(text.failed_line(reason))
        return BlockOutcome(block, BlockStatus.FAILED, error=reason)
    if decision.verdict is OrphanVerdict.UNREADABLE:
        reason = (
            f"cannot tell whether {', '.join(decision.names)} is this block's stack from an "
            "earlier run: its header could not be read. Nothing is renamed or stacked; the "
            "block is tried again next run."
        )
        progress.line(text.failed_line(reason))
        return BlockOutcome(block, BlockStatus.FAILED, error=reason)
    adopted = decision.adopted
    if adopted is None:
        if decision.verdict is OrphanVerdict.AMBIGUOUS:
            progress.line(
                f"  {len(decision.names)} stacks could be this block's from an earlier run "
                f"({', '.join(decision.names)}); they are left alone."
            )
        records.drop(
            block.coverage_key
        )  # the device is idle (see _decide): nothing more will come of it
        return None
    return _adopt(seestar, progress, block, device_path(record.folder, adopted), records, paths,
                  options)  # fmt: skip


def _decide(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    block: Block,
    record: PendingStack,
    options: StackOptions,
) -> OrphanDecision:
    """Gather (wait until idle, list, read candidate headers) and decide."""
    if not device_idle(seestar):
        progress.line("  The device is still stacking; waiting for it to finish.")
        wait_for_batch_stack(seestar, clock, progress, block, options)
    listing = [entry.name for entry in seestar.list_files(record.folder)]
    headers: dict[str, Mapping[str, Any]] = {}
    unreadable: list[str] = []
    for name in orphan_candidates(record, listing):
        try:
            headers[name] = read_header(seestar, device_path(record.folder, name))
        except HeaderReadError:
            unreadable.append(name)
    return decide_orphan(record, listing, headers, unreadable)


def _adopt(
    seestar: Seestar,
    progress: Progress,
    block: Block,
    output: str,
    records: PendingRecords,
    paths: list[str],
    options: StackOptions,
) -> BlockOutcome:
    name = output.rsplit("/", 1)[-1]
    parsed = parse_stacked_name(name)
    assert parsed is not None  # a candidate is a firmware stack name
    progress.line(f"  Found this block's stack from an earlier run: {name}")
    outcome = rename_output(seestar, progress, block, output, parsed.frames, paths, options)
    if outcome.status is BlockStatus.STACKED:
        records.drop(block.coverage_key)
    return outcome
