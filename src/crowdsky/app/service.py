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
from crowdsky.app.ports import Clock, FirmwareReport, Progress, Seestar
from crowdsky.app.stacking import (
    BlockOutcome,
    StackOptions,
    block_dict,
    finish_stacking,
    run_block,
)
from crowdsky.domain import (
    Block,
    BlockStatus,
    check_block_minutes,
    check_min_exptime,
    companion_names,
    parse_crowdsky_name,
    parse_raw_name,
    partition_by_exptime,
    plan_blocks,
)
from crowdsky.domain import report as text
from crowdsky.domain.device_paths import device_path, is_sub_folder
from crowdsky.errors import CrowdskyError, StorageError

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
    """

    seestar: Seestar
    clock: Clock
    progress: Progress
    tz: tzinfo | None = None
    host_zone: tzinfo | None = None
    options: StackOptions = attrs.field(factory=StackOptions)

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
            frames = [f for f in map(parse_raw_name, raw_names) if f is not None]
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

        ``on_block``, when given, is called with each stacked block's outcome as soon as the block
        is done (before the next one starts), for work that overlaps the next block's stack.

        Returns
        -------
        dict
            ``blocks_stacked``, ``blocks_failed`` (including renames that failed),
            ``blocks_skipped`` (below ``min_exptime``), ``rename_failed``, ``files`` (new CrowdSky
            names) and ``blocks`` (one dict per block with its ``status``).
        """
        inventory, keep, skip = self._plan(target, block_minutes, min_exptime)
        tz = inventory.zone.tz
        outcomes = [BlockOutcome(b, BlockStatus.SKIPPED) for b in skip]
        if dry_run:
            for line in text.dry_run_lines(target, keep, tz):
                self.progress.line(line)
            outcomes += [BlockOutcome(b, BlockStatus.PLANNED) for b in keep]
        else:
            try:
                for block in keep:
                    outcome = self._stack(inventory, block)
                    outcomes.append(outcome)
                    if on_block is not None:
                        on_block(outcome)
            finally:
                if keep:
                    finish_stacking(self.seestar)
        return _summary(target, dry_run, outcomes, tz)

    def _stack(self, inventory: TargetInventory, block: Block) -> BlockOutcome:
        paths = [inventory.path_of(frame) for frame in block.frames]
        return run_block(
            self.seestar,
            self.clock,
            self.progress,
            block,
            paths=paths,
            tz=inventory.zone.tz,
            options=self.options,
        )

    def stack_all(
        self, *, block_minutes: int = 15, min_exptime: float = 240, dry_run: bool = False
    ) -> dict[str, Any]:
        """:meth:`stack_blocks` for every target; a target that fails does not stop the rest.

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
        for target in list_target_folders(self.seestar):
            try:
                results[target] = self.stack_blocks(
                    target, block_minutes=block_minutes, min_exptime=min_exptime, dry_run=dry_run
                )
            except CrowdskyError as exc:
                failed[target] = str(exc)
                self.progress.line(f"{target}: {exc}")

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

    def purge_crowdsky_stacks(
        self, target: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Delete ``CrowdSky_*`` stacks and their JPEG companions (one target, or all).

        Nothing in a ``*_sub`` folder is ever touched, and no other file is deleted.

        Returns
        -------
        dict
            ``files_deleted``, ``files_failed`` (path → error) and ``dry_run``.
        """
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

    def _stack_folders(self) -> list[str]:
        return [e.name for e in self.seestar.list_folders() if not is_sub_folder(e.name)]


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
