"""Gathering what is on the Seestar: targets, raw frames, coverage, and the device's zone.

The shell half of planning: everything here reads through the :class:`~crowdsky.app.ports.Seestar`
port and hands plain data to the domain, which decides.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crowdsky.app.ports import Seestar
from crowdsky.domain import (
    CoverageKey,
    RawFrame,
    ZoneDecision,
    chunk_key,
    coverage_key_of,
    decide_zone,
    near_boundary,
    night_samples,
    offset_surprises,
    parse_crowdsky_name,
    parse_raw_name,
)
from crowdsky.domain.device_paths import device_path, target_of_sub_folder
from crowdsky.domain.headers import parse_date_obs
from crowdsky.errors import DeviceTimeWarning, StorageError, UnknownTargetError

__all__ = [
    "TargetInventory",
    "device_zone",
    "find_target",
    "list_target_folders",
    "load_target",
]


@attrs.frozen
class TargetInventory:
    """Everything planning needs about one target.

    Parameters
    ----------
    target : str
        Target name.
    sub_folders : tuple of str
        Folders holding its raw sub-frames (``"IC 434_sub"``).
    frames : tuple of RawFrame
        Raw sub-frames, with ``date_obs`` where it was read.
    zone : ZoneDecision
        How local name times become UTC.
    covered : frozenset of CoverageKey
        Blocks that already have a CrowdSky stack.
    frame_folders : dict of str to str
        The sub folder each frame (by name) was listed in.
    """

    target: str
    sub_folders: tuple[str, ...]
    frames: tuple[RawFrame, ...]
    zone: ZoneDecision
    covered: frozenset[CoverageKey]
    frame_folders: dict[str, str] = attrs.field(factory=dict, eq=False, repr=False)

    def path_of(self, frame: RawFrame) -> str:
        """The full ``MyWorks/<folder>/<name>`` path of a frame."""
        return device_path(self.frame_folders[frame.name], frame.name)


def list_target_folders(seestar: Seestar) -> dict[str, tuple[str, ...]]:
    """Targets with raw sub-frame folders, mapped to those folders, sorted by target name."""
    found: dict[str, list[str]] = {}
    for entry in seestar.list_folders():
        target = target_of_sub_folder(entry.name)
        if target is not None:
            found.setdefault(target, []).append(entry.name)
    return {t: tuple(sorted(found[t])) for t in sorted(found, key=str.casefold)}


def find_target(seestar: Seestar, target: str) -> tuple[str, ...]:
    """The sub folders of ``target``; :class:`UnknownTargetError` if it has none."""
    folders = list_target_folders(seestar)
    if target not in folders:
        raise UnknownTargetError(target, tuple(folders))
    return folders[target]


def device_zone(seestar: Seestar) -> tzinfo | None:
    """The IANA zone the device reports (``pi_get_time``), or ``None`` if absent or unknown."""
    name = seestar.device_time().zone
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _raw_frames(seestar: Seestar, folders: Iterable[str]) -> list[tuple[str, RawFrame]]:
    frames = []
    for folder in folders:
        for entry in seestar.list_files(folder):
            frame = parse_raw_name(entry.name)
            if frame is not None:
                frames.append((folder, frame))
    return frames


def _with_date_obs(
    seestar: Seestar, frames: Sequence[RawFrame], wanted: Iterable[str], folder_of: dict[str, str]
) -> tuple[RawFrame, ...]:
    """Frames with ``date_obs`` read from the headers of the ``wanted`` names."""
    wanted_set = set(wanted)
    out = []
    for frame in frames:
        if frame.name in wanted_set and frame.date_obs is None:
            frame = attrs.evolve(frame, date_obs=_read_date_obs(seestar, folder_of, frame))
        out.append(frame)
    return tuple(out)


def _read_date_obs(seestar: Seestar, folder_of: dict[str, str], frame: RawFrame) -> datetime | None:
    try:
        header = seestar.read_header(device_path(folder_of[frame.name], frame.name))
    except StorageError:
        return None
    return parse_date_obs(header.get("DATE-OBS"))


def _coverage(seestar: Seestar, target: str, tz: tzinfo) -> frozenset[CoverageKey]:
    names = (parse_crowdsky_name(entry.name) for entry in seestar.list_files(target))
    return frozenset(coverage_key_of(crowd, tz) for crowd in names if crowd is not None)


def load_target(
    seestar: Seestar,
    target: str,
    *,
    block_minutes: int = 15,
    tz: tzinfo | None = None,
    host_zone: tzinfo | None = None,
    zone: tzinfo | None = None,
) -> TargetInventory:
    """Read one target's frames and coverage and settle the device's zone for it.

    Parameters
    ----------
    seestar : Seestar
        The telescope.
    target : str
        Target name (see :func:`list_target_folders`).
    block_minutes : int
        Block length: frames near its boundaries have their ``DATE-OBS`` read (unless both
        candidate blocks are already stacked).
    tz : tzinfo, optional
        The user's override of the device zone.
    host_zone : tzinfo, optional
        Last-resort zone (the computer's), used with a :class:`DeviceTimeWarning`.
    zone : tzinfo, optional
        The device's reported zone, if already asked (see :func:`device_zone`).
    """
    folders = find_target(seestar, target)
    listed = _raw_frames(seestar, folders)
    folder_of = {frame.name: folder for folder, frame in listed}
    frames = tuple(frame for _, frame in listed)
    samples: tuple[RawFrame, ...] = ()
    if tz is None:
        picked = night_samples(frames)
        frames = _with_date_obs(seestar, frames, (f.name for f in picked), folder_of)
        samples = tuple(f for f in frames if f.date_obs is not None)
    decision = decide_zone(
        frames, samples=samples, override=tz, device_zone=zone, host_zone=host_zone
    )
    if decision.warning:
        warnings.warn(f"{target}: {decision.warning}", DeviceTimeWarning, stacklevel=3)
    frames = _with_date_obs(seestar, frames, decision.read_headers, folder_of)
    covered = _coverage(seestar, target, decision.tz)

    def stacked_already(frame: RawFrame, block_start: datetime) -> bool:
        key = chunk_key(block_start, block_minutes)
        return CoverageKey(frame.target, frame.exposure, frame.filter, key) in covered

    unsure = near_boundary(frames, decision.tz, block_minutes, settled=stacked_already)
    frames = _with_date_obs(seestar, frames, (f.name for f in unsure), folder_of)
    surprised = offset_surprises(frames, decision.tz)
    if surprised and decision.source in ("override", "device"):
        warnings.warn(
            f"{target}: sub-frame headers contradict the {decision.source} time zone "
            f"{decision.tz}; those nights are placed by each frame's DATE-OBS instead.",
            DeviceTimeWarning,
            stacklevel=2,
        )
    frames = _with_date_obs(seestar, frames, (f.name for f in surprised), folder_of)
    return TargetInventory(
        target,
        folders,
        frames,
        decision,
        covered,
        folder_of,
    )
