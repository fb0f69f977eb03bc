"""``crowdsky status``: per telescope and target, the blocks not stacked, stacked, and uploaded.

The facts come from the same places :func:`crowdsky.app.night.run_night` acts on: the planner
(:meth:`~crowdsky.app.service.Crowdsky.find_unstacked_blocks`) for blocks still to stack, the
target folders for ``CrowdSky_*`` stacks, and a dry run of
:func:`~crowdsky.app.upload.upload_all_stacks` (the server's list, the telescope's upload journal)
for which stacks are on the server; :func:`crowdsky.domain.night_status.classify_blocks` sorts
them. Nothing is stacked, downloaded or sent. When the server cannot be asked, the telescope part
is shown all the same and the result says why the server part is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crowdsky.app.inventory import list_target_folders
from crowdsky.app.night import NightPorts, Telescope, folder_name
from crowdsky.app.ports import Seestar
from crowdsky.app.progress import SilentProgress
from crowdsky.app.server_port import CollabServer
from crowdsky.app.service import Crowdsky
from crowdsky.app.upload import upload_all_stacks
from crowdsky.domain import parse_crowdsky_name
from crowdsky.domain.device_paths import is_sub_folder
from crowdsky.domain.night_status import BlockState, TargetStatus, classify_blocks
from crowdsky.errors import CrowdskyError

__all__ = ["night_status"]


def _target_dict(status: TargetStatus) -> dict[str, Any]:
    found: dict[str, Any] = {"target": status.target}
    for state in BlockState:
        found[state.value] = list(status.blocks[state])
        found[f"{state.value}_count"] = status.count(state)
    return found


def _on_server(seestar: Seestar, server: CollabServer, ports: NightPorts, folder: Path) -> set[str]:
    summary = upload_all_stacks(
        server,
        journal=ports.journal_for(folder),
        progress=SilentProgress(),
        clock=ports.clock,
        local_fits=ports.local_fits,
        seestar=seestar,
        dest=folder,
        dry_run=True,
    )
    return set(summary["skipped"])


def _telescope_status(
    telescope: Telescope,
    server: CollabServer | None,
    ports: NightPorts,
    dest: Path,
    plan: dict[str, Any],
) -> dict[str, Any]:
    found: dict[str, Any] = {"telescope": telescope.name, "error": None, "server_error": None}
    seestar = telescope.open()
    try:
        service = Crowdsky(
            seestar,
            ports.clock,
            SilentProgress(),
            tz=telescope.tz,
            host_zone=ports.host_zone,
            header_cache=ports.header_cache(seestar),
        )
        on_server: set[str] | None = None
        if server is None:
            found["server_error"] = "no server asked"
        else:
            try:
                folder = telescope.folder or dest / folder_name(telescope.name)
                on_server = _on_server(seestar, server, ports, folder)
            except CrowdskyError as exc:
                found["server_error"] = str(exc)
        raw_targets = list_target_folders(seestar)
        folders = [e.name for e in seestar.list_folders() if not is_sub_folder(e.name)]
        targets = sorted(set(raw_targets) | set(folders), key=str.casefold)
        found["targets"] = []
        for target in targets:
            unstacked = (
                [b["chunk_key"] for b in service.find_unstacked_blocks(target, **plan)]
                if target in raw_targets
                else []
            )
            stacks = [n for e in seestar.list_files(target) if (n := parse_crowdsky_name(e.name))]
            if not (unstacked or stacks):
                continue
            found["targets"].append(
                _target_dict(classify_blocks(target, unstacked, stacks, on_server))
            )
    finally:
        close = getattr(seestar, "close", None)
        if callable(close):
            close()
    return found


def night_status(
    telescopes: Sequence[Telescope],
    server: CollabServer | None,
    ports: NightPorts,
    *,
    dest: str | Path = ".",
    block_minutes: int = 15,
    min_exptime: float = 240,
) -> dict[str, Any]:
    """Per telescope and target, the blocks in each state.

    Parameters
    ----------
    telescopes : sequence of Telescope
        Asked one after the other; one that cannot be reached does not stop the others.
    server : CollabServer or None
        Asked which stacks it has; ``None`` (or unreachable) leaves the server part out.
    ports : NightPorts
        As for :func:`~crowdsky.app.night.run_night`; progress is not used.
    dest : str or Path
        The ``run`` download folder, where each telescope's upload journal is.
    block_minutes, min_exptime
        As for :func:`~crowdsky.app.night.run_night`.

    Returns
    -------
    dict
        ``telescopes``: per telescope ``telescope``, ``error`` (it could not be asked),
        ``server_error`` (why the server part is missing, or ``None``) and ``targets``: per
        target ``target``, ``not_stacked``, ``on_telescope``, ``on_server`` (block labels
        ``<chunk key>`` for blocks not stacked, ``<chunk key>_HP<pixel>`` for stacks) and the
        same keys with ``_count``.
    """
    plan = {"block_minutes": block_minutes, "min_exptime": min_exptime}
    results = []
    for telescope in telescopes:
        try:
            results.append(_telescope_status(telescope, server, ports, Path(dest), plan))
        except CrowdskyError as exc:
            results.append(
                {"telescope": telescope.name, "error": str(exc), "server_error": None,
                 "targets": []}
            )  # fmt: skip
    return {"telescopes": results}
