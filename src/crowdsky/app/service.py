"""The application service: the specification's operations over the ports.

Each method loads through the ports, lets the domain decide, and carries the decision out. The
module-level functions in :mod:`crowdsky` are thin wrappers around one :class:`Crowdsky`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import Any

import attrs

from crowdsky.app.inventory import (
    TargetInventory,
    device_zone,
    list_target_folders,
    load_target,
)
from crowdsky.app.orphans import PendingRecords, adopt_orphan, device_identity
from crowdsky.app.ports import (
    BatchStackStatus,
    Clock,
    FirmwareReport,
    HeaderCache,
    Progress,
    Seestar,
    StackJournal,
)
from crowdsky.app.stacking import (
    BlockOutcome,
    CompleteStack,
    StackOptions,
    block_dict,
    finish_stacking,
    stack_block,
)
from crowdsky.domain import (
    Block,
    BlockStatus,
    CoverageKey,
    check_block_minutes,
    check_min_exptime,
    companion_names,
    parse_crowdsky_name,
    parse_raw_names,
    partition_by_exptime,
    plan_blocks,
)
from crowdsky.domain import report as text
from crowdsky.domain.device_paths import device_path, is_sub_folder
from crowdsky.domain.orphans import PendingStack
from crowdsky.errors import (
    ConfigError,
    CrowdskyError,
    SeestarConnectionError,
    StorageError,
    UnknownTargetError,
)

__all__ = ["Crowdsky"]


@attrs.frozen
class Crowdsky:
    """The CrowdSky workflow on one Seestar.

    Parameters
    ----------
    seestar : Seestar
        The telescope (real, simulated or in-memory).
    clock : Clock
        Time source; ``now`` decides which blocks are complete.
    progress : Progress
        Where the report lines and stacking progress go.
    tz : tzinfo, optional
        Override of the device's time zone.
    host_zone : tzinfo, optional
        The computer's zone, the last resort when the device's cannot be learned.
    options : StackOptions
        Timeouts, polling and HEALPix tiling.
    journal : StackJournal, optional
        Where pending batch stacks are recorded, so that a stack the device finished after
        crowdsky was killed is adopted by the next run (:mod:`crowdsky.app.orphans`). Without
        one, or for a Seestar that knows no identity, nothing is recorded or adopted.
    header_cache : HeaderCache, optional
        Header facts of raw sub-frames kept across runs, so that planning does not read the
        same headers again (see :func:`crowdsky.app.inventory.load_target`). Without one, or
        for a Seestar that knows no identity, every header planning needs is read.
    """

    seestar: Seestar
    clock: Clock
    progress: Progress
    tz: tzinfo | None = None
    host_zone: tzinfo | None = None
    options: StackOptions = attrs.field(factory=StackOptions)
    journal: StackJournal | None = None
    header_cache: HeaderCache | None = None

    def list_targets(self) -> list[dict[str, Any]]:
        """Targets that have raw sub-frames, with counts.

        Returns
        -------
        list of dict
            ``target``, ``raw_files`` (raw sub-frame ``.fit`` files), ``raw_exposure_s`` (their
            summed exposure), ``stacked_files`` (stacked ``.fit`` files in the target folder),
            ``crowdsky_files`` and ``folders``.
        """
        targets = []
        for target, folders in list_target_folders(self.seestar).items():
            raw_names = [
                entry.name
                for folder in folders
                for entry in self.seestar.list_files(folder)
                if entry.name.lower().endswith((".fit", ".fits"))
            ]
            frames = parse_raw_names(raw_names)
            names = [e.name for e in self.seestar.list_files(target)]
            crowd = sum(1 for name in names if parse_crowdsky_name(name))
            stacked = sum(1 for name in names if name.lower().endswith((".fit", ".fits")))
            targets.append(
                {
                    "target": target,
                    "raw_files": len(raw_names),
                    "raw_exposure_s": sum(f.exposure_s for f in frames),
                    "stacked_files": stacked,
                    "crowdsky_files": crowd,
                    "folders": list(folders),
                }
            )
        return targets

    def clock_report(self) -> dict[str, Any]:
        """The device's date, time and zone beside the computer's.

        Returns
        -------
        dict
            ``device_time`` (naive device wall clock or ``None``), ``device_zone`` (IANA name or
            ``None``), ``host_time`` (aware), ``host_zone`` and ``drift_s`` (device minus host in
            seconds, when the device reports both its time and zone); ``device_model``,
            ``firmware`` (text) and ``firmware_int`` when the Seestar tells them, else ``None``.
        """
        reported = self.seestar.device_time()
        firmware = (
            self.seestar.firmware_info() if isinstance(self.seestar, FirmwareReport) else None
        )
        host_now = self.clock.now().astimezone(self.host_zone)
        zone = device_zone(self.seestar)
        drift = None
        if reported.local is not None and zone is not None:
            drift = (reported.local.replace(tzinfo=zone) - host_now).total_seconds()
        return {
            "device_time": reported.local,
            "device_zone": reported.zone,
            "host_time": host_now,
            "host_zone": str(host_now.tzinfo),
            "drift_s": drift,
            "device_model": firmware.model if firmware else None,
            "firmware": firmware.text if firmware else None,
            "firmware_int": firmware.ver_int if firmware else None,
        }

    def _inventory(self, target: str, block_minutes: int) -> TargetInventory:
        return load_target(
            self.seestar,
            target,
            block_minutes=block_minutes,
            tz=self.tz,
            host_zone=self.host_zone,
            zone=None if self.tz else device_zone(self.seestar),
            header_cache=self.header_cache,
        )

    def _plan(
        self, target: str, block_minutes: int, min_exptime: float
    ) -> tuple[TargetInventory, tuple[Block, ...], tuple[Block, ...]]:
        check_block_minutes(block_minutes)
        check_min_exptime(min_exptime)
        inventory = self._inventory(target, block_minutes)
        blocks = plan_blocks(
            inventory.frames,
            block_minutes=block_minutes,
            now=self.clock.now(),
            device_tz=inventory.zone.tz,
            covered=inventory.covered,
        )
        keep, skip = partition_by_exptime(blocks, min_exptime)
        return inventory, keep, skip

    def find_unstacked_blocks(
        self, target: str, *, block_minutes: int = 15, min_exptime: float = 240
    ) -> list[dict[str, Any]]:
        """Complete blocks of ``target`` that have no CrowdSky stack yet and are worth stacking.

        Pass ``min_exptime=0`` to see every unstacked block.

        Returns
        -------
        list of dict
            ``block_start``/``block_end`` (device local, aware), ``*_utc``, ``frame_count``,
            ``exposure``, ``filter``, ``total_exposure_s``, ``chunk_key``, ``files``.
        """
        inventory, keep, _ = self._plan(target, block_minutes, min_exptime)
        return [block_dict(b, inventory.zone.tz) for b in keep]

    def stack_blocks(
        self,
        target: str,
        *,
        block_minutes: int = 15,
        min_exptime: float = 240,
        dry_run: bool = False,
        on_block: Callable[[BlockOutcome], None] | None = None,
    ) -> dict[str, Any]:
        """Stack every unstacked block of ``target`` on the device, one at a time.

        ``on_block``, when given, is called with each block's outcome as soon as the block is
        done and its output renamed (for a stacked block, that is just after the next block's
        start), for work that overlaps the next block's stack.

        Returns
        -------
        dict
            ``blocks_stacked``, ``blocks_failed`` (including renames that failed),
            ``blocks_skipped`` (below ``min_exptime``), ``rename_failed``, ``files`` (new CrowdSky
            names) and ``blocks`` (one dict per block with its ``status``).
        """
        plan = _TargetPlan(target, *self._plan(target, block_minutes, min_exptime))
        if not dry_run:
            self._announce([plan])
        return self._carry_out(plan, dry_run, index=1, total=1, on_block=on_block)

    def _announce(self, plans: list[_TargetPlan]) -> None:
        self.progress.run_planned(
            sum(len(p.keep) for p in plans),
            sum(b.frame_count for p in plans for b in p.keep),
            sum(1 for p in plans if p.keep),
        )

    def _carry_out(
        self,
        plan: _TargetPlan,
        dry_run: bool,
        *,
        index: int,
        total: int,
        on_block: Callable[[BlockOutcome], None] | None = None,
    ) -> dict[str, Any]:
        tz = plan.inventory.zone.tz
        outcomes = [BlockOutcome(b, BlockStatus.SKIPPED) for b in plan.skip]
        if dry_run:
            for line in text.dry_run_lines(plan.target, plan.keep, tz):
                self.progress.line(line)
            outcomes += [BlockOutcome(b, BlockStatus.PLANNED) for b in plan.keep]
            return _summary(plan.target, dry_run, outcomes, tz)
        if plan.keep:
            self.progress.target_started(plan.target, index, total)
        several = len({text.night_of(b, tz) for b in plan.keep}) > 1
        records = self._records(plan.inventory.target)
        pending = self._pending(records, plan.inventory)
        # A complete block is renamed while the next one stacks (issue 12): its finish runs
        # once the next block's start returned, or in the ``finally`` after the last block.
        ending = _Ending(self.seestar, self.progress, outcomes, on_block)
        try:
            for block in plan.keep:
                label = text.block_label(block, tz, several_nights=several)
                stacked = self._stack(plan.inventory, block, records, pending, ending, label)
                if isinstance(stacked, CompleteStack):
                    ending.complete = stacked
                    if not stacked.may_overlap:
                        ending(False, None)
                else:
                    ending.report(stacked)
        finally:
            try:
                ending(False, None)
            finally:
                if plan.keep:
                    finish_stacking(self.seestar)
        return _summary(plan.target, dry_run, outcomes, tz)

    def _records(self, folder: str) -> PendingRecords | None:
        device = device_identity(self.seestar)
        if self.journal is None or device is None:
            return None
        return PendingRecords(self.seestar, self.journal, device, folder)

    def _pending(
        self, records: PendingRecords | None, inventory: TargetInventory
    ) -> dict[CoverageKey, PendingStack]:
        """Pending records of the folder, by block; records of blocks now covered are dropped."""
        if records is None:
            return {}
        pending: dict[CoverageKey, PendingStack] = {}
        for record in records.journal.pending(records.device):
            if record.folder != records.folder:
                continue
            if record.key in inventory.covered:
                records.drop(record.key)
            else:
                pending[record.key] = record
        return pending

    def _stack(
        self,
        inventory: TargetInventory,
        block: Block,
        records: PendingRecords | None,
        pending: dict[CoverageKey, PendingStack],
        ending: _Ending,
        label: str,
    ) -> BlockOutcome | CompleteStack:
        paths = [inventory.path_of(frame) for frame in block.frames]
        record = pending.get(block.coverage_key)

        def before_wait(started: bool, status: BatchStackStatus | None) -> None:
            ending(started, status)
            self.progress.block_started(label, block.frame_count)

        if records is not None and record is not None:
            before_wait(False, None)  # the previous block is renamed before the adoption
            adopted = adopt_orphan(
                self.seestar,
                self.clock,
                self.progress,
                block,
                record=record,
                records=records,
                paths=paths,
                tz=inventory.zone.tz,
                options=self.options,
            )
            if adopted is not None:
                return adopted
        return stack_block(
            self.seestar,
            self.clock,
            self.progress,
            block,
            paths=paths,
            tz=inventory.zone.tz,
            options=self.options,
            records=records,
            before_wait=None if record is not None else before_wait,
        )

    def stack_all(
        self, *, block_minutes: int = 15, min_exptime: float = 240, dry_run: bool = False
    ) -> dict[str, Any]:
        """:meth:`stack_blocks` for every target; a target that fails does not stop the rest.

        A telescope that cannot be reached any more does: a
        :class:`~crowdsky.errors.SeestarConnectionError` after which the folder list cannot be
        read either ends the run (the error propagates, reported once); so does a
        :class:`~crowdsky.errors.ConfigError` (a stacker that cannot work as installed).

        Returns
        -------
        dict
            ``total_blocks_stacked``, ``total_blocks_failed``, ``total_blocks_skipped``,
            ``total_rename_failed``, ``targets_processed``, ``targets_failed`` (name → error)
            and ``results`` (target → :meth:`stack_blocks` result).
        """
        check_block_minutes(block_minutes)
        check_min_exptime(min_exptime)
        results: dict[str, dict[str, Any]] = {}
        failed: dict[str, str] = {}
        plans: list[_TargetPlan] = []
        # Every target is planned before the first block stacks, so progress can say
        # "block i of N" over the whole run.
        for target in list_target_folders(self.seestar):
            try:
                plans.append(_TargetPlan(target, *self._plan(target, block_minutes, min_exptime)))
            except CrowdskyError as exc:
                self._target_failed(failed, target, exc)
        if not dry_run:
            self._announce(plans)
        stacking_targets = sum(1 for p in plans if p.keep)
        index = 0
        for plan in plans:
            index += 1 if plan.keep else 0
            try:
                results[plan.target] = self._carry_out(
                    plan, dry_run, index=index, total=stacking_targets
                )
            except CrowdskyError as exc:
                self._target_failed(failed, plan.target, exc)

        def total(key: str) -> int:
            return sum(int(r[key]) for r in results.values())

        return {
            "total_blocks_stacked": total("blocks_stacked"),
            "total_blocks_failed": total("blocks_failed"),
            "total_blocks_skipped": total("blocks_skipped"),
            "total_rename_failed": total("rename_failed"),
            "targets_processed": len(results),
            "targets_failed": failed,
            "dry_run": dry_run,
            "results": results,
        }

    def _target_failed(self, failed: dict[str, str], target: str, exc: CrowdskyError) -> None:
        """Note a target that failed, unless the telescope is gone or the stacker unusable.

        Those two re-raise: every other target would fail the same way.
        """
        if isinstance(exc, ConfigError):
            raise exc
        if isinstance(exc, SeestarConnectionError) and not self._still_reachable():
            raise exc
        failed[target] = str(exc)
        self.progress.line(f"{target}: {exc}")

    def purge_crowdsky_stacks(
        self, target: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Delete ``CrowdSky_*`` stacks and their JPEG companions (one target, or all).

        Nothing in a ``*_sub`` folder is ever touched, and no other file is deleted.

        Returns
        -------
        dict
            ``files_deleted``, ``files_failed`` (path → error) and ``dry_run``.

        Raises
        ------
        UnknownTargetError
            When ``target`` names neither a folder on the Seestar nor a target with raw
            sub-frames.
        """
        if target is not None:
            self._check_purge_target(target)
        folders = [target] if target is not None else self._stack_folders()
        deleted: list[str] = []
        failed: dict[str, str] = {}
        for folder in folders:
            for path in _purgeable(self.seestar, folder):
                if dry_run:
                    self.progress.line(f"Would delete {path}")
                    deleted.append(path)
                    continue
                try:
                    self.seestar.delete(path)
                except StorageError as exc:
                    failed[path] = str(exc)
                    self.progress.line(f"Could not delete {path}: {exc}")
                else:
                    deleted.append(path)
                    self.progress.line(f"Deleted {path}")
        return {"files_deleted": deleted, "files_failed": failed, "dry_run": dry_run}

    def _still_reachable(self) -> bool:
        try:
            self.seestar.list_folders()
        except SeestarConnectionError:
            return False
        return True

    def _check_purge_target(self, target: str) -> None:
        """:class:`UnknownTargetError` unless ``target`` is a folder or has raw sub-frames."""
        known = list_target_folders(self.seestar)
        if target in known or any(e.name == target for e in self.seestar.list_folders()):
            return
        raise UnknownTargetError(target, tuple(known))

    def _stack_folders(self) -> list[str]:
        return [e.name for e in self.seestar.list_folders() if not is_sub_folder(e.name)]


@attrs.define
class _Ending:
    """The finish of the block that completed last, and the report of every block's outcome.

    Called (as a :data:`~crowdsky.app.stacking.BeforeWait`) once the next block's start
    returned, or after the last block: it renames the complete stack, then reports it.
    """

    seestar: Seestar
    progress: Progress
    outcomes: list[BlockOutcome]
    on_block: Callable[[BlockOutcome], None] | None
    complete: CompleteStack | None = None

    def __call__(self, started: bool, status: BatchStackStatus | None) -> None:
        complete, self.complete = self.complete, None
        if complete is not None:
            outcome = complete.finish(
                self.seestar, self.progress, next_started=started, next_status=status
            )
            self.report(outcome)

    def report(self, outcome: BlockOutcome) -> None:
        """Say the block is done, keep its outcome and hand it to ``on_block``."""
        self.progress.block_finished(outcome.status is BlockStatus.STACKED)
        self.outcomes.append(outcome)
        if self.on_block is not None:
            self.on_block(outcome)


@attrs.frozen
class _TargetPlan:
    """What one target's run will do: its inventory, the blocks to stack and those skipped."""

    target: str
    inventory: TargetInventory
    keep: tuple[Block, ...]
    skip: tuple[Block, ...]


def _purgeable(seestar: Seestar, folder: str) -> list[str]:
    if is_sub_folder(folder):
        return []
    names = {entry.name for entry in seestar.list_files(folder)}
    doomed: list[str] = []
    for name in sorted(names):
        if parse_crowdsky_name(name) is None:
            continue
        doomed.append(name)
        doomed += [c for c in companion_names(name) if c in names]
    return [device_path(folder, name) for name in doomed]


def _summary(
    target: str, dry_run: bool, outcomes: list[BlockOutcome], tz: tzinfo
) -> dict[str, Any]:
    def count(status: BlockStatus) -> int:
        return sum(1 for o in outcomes if o.status is status)

    ordered = sorted(outcomes, key=lambda o: (o.block.start, o.block.exposure_s, o.block.filter))
    return {
        "target": target,
        "dry_run": dry_run,
        "blocks_planned": count(BlockStatus.PLANNED),
        "blocks_stacked": count(BlockStatus.STACKED),
        "blocks_failed": sum(1 for o in outcomes if o.status.counts_as_failed),
        "blocks_skipped": count(BlockStatus.SKIPPED),
        "rename_failed": count(BlockStatus.RENAME_FAILED),
        "files": [o.file for o in ordered if o.status is BlockStatus.STACKED],
        "blocks": [o.as_dict(tz) for o in ordered],
    }
