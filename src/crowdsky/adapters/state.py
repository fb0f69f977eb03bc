"""crowdsky's own state on this computer: the pending-stack journal, as JSON and in memory.

This is a module of its own, not part of ``seestar/`` or ``collab/``: the journal adapts neither
the telescope nor the server but the computer's file system, and it must outlive any connection
(a record is read by a later process, possibly after a SIGKILL). Both classes satisfy
:class:`crowdsky.app.ports.StackJournal`.

The file is ``pending-stacks.json`` in :func:`state_dir`::

    {"version": 1, "pending": [{"device": "seestar.local:4700", "folder": "M 81",
        "target": "M 81", "exposure": "20.0s", "filter": "LP", "chunk_key": "20260311.82",
        "start": "2026-03-11T20:30:00+00:00", "end": "...", "frame_count": 40,
        "snapshot": ["DSO_Stacked_..."]}, ...]}

Every change re-reads the file, changes it and replaces it atomically (temporary file,
``fsync``, ``os.replace``), so a record written by another crowdsky process for another device
in between is kept. A file that exists but cannot be read or parsed is an error, never an empty
journal.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from crowdsky.adapters.json_files import replace_json
from crowdsky.domain.blocks import CoverageKey
from crowdsky.domain.orphans import PendingStack
from crowdsky.errors import CrowdskyError

__all__ = [
    "PENDING_STACKS_NAME",
    "STATE_DIR_VARIABLE",
    "JsonStackJournal",
    "MemoryStackJournal",
    "state_dir",
]

#: Environment variable that overrides :func:`state_dir`.
STATE_DIR_VARIABLE = "CROWDSKY_STATE_DIR"
#: File name of the pending-stack journal in the state folder.
PENDING_STACKS_NAME = "pending-stacks.json"
_VERSION = 1


def state_dir(
    environ: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
    home: Path | None = None,
) -> Path:
    r"""The folder for crowdsky's state on this computer.

    ``$CROWDSKY_STATE_DIR`` when set; else ``%LOCALAPPDATA%\crowdsky`` on Windows,
    ``~/Library/Application Support/crowdsky`` on macOS and ``$XDG_STATE_HOME/crowdsky``
    (default ``~/.local/state/crowdsky``) elsewhere.

    Parameters
    ----------
    environ, platform, home
        The environment, ``sys.platform`` and the home folder (tests pass their own).

    Examples
    --------
    >>> state_dir({}, platform="linux", home=Path("/home/ann")).as_posix()
    '/home/ann/.local/state/crowdsky'
    >>> state_dir({"CROWDSKY_STATE_DIR": "/tmp/s"}, platform="linux").as_posix()
    '/tmp/s'
    """
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if env.get(STATE_DIR_VARIABLE):
        return Path(env[STATE_DIR_VARIABLE]).expanduser()
    home = Path.home() if home is None else home
    if platform.startswith("win"):
        base = env.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "crowdsky"
    if platform == "darwin":
        return home / "Library" / "Application Support" / "crowdsky"
    xdg = env.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "state") / (
        "crowdsky"
    )


def _as_json(record: PendingStack) -> dict[str, Any]:
    return {
        "device": record.device,
        "folder": record.folder,
        "target": record.key.target,
        "exposure": record.key.exposure,
        "filter": record.key.filter,
        "chunk_key": record.key.chunk_key,
        "start": record.start.isoformat(),
        "end": record.end.isoformat(),
        "frame_count": record.frame_count,
        "snapshot": sorted(record.snapshot),
    }


def _record(item: Mapping[str, Any]) -> PendingStack:
    """A record from its JSON; ``ValueError``/``KeyError``/``TypeError`` when malformed."""
    texts = ("device", "folder", "target", "exposure", "filter", "chunk_key")
    if not all(isinstance(item[k], str) for k in texts):
        raise ValueError("a text field is not a string")
    count, snapshot = item["frame_count"], item["snapshot"]
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError("frame_count is not an integer")
    if not isinstance(snapshot, list) or not all(isinstance(n, str) for n in snapshot):
        raise ValueError("snapshot is not a list of names")
    start, end = datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("block bounds without a zone")
    key = CoverageKey(item["target"], item["exposure"], item["filter"], item["chunk_key"])
    return PendingStack(item["device"], item["folder"], key, start, end, count, frozenset(snapshot))


class JsonStackJournal:
    """Pending stacks in a JSON file, re-read and atomically rewritten on every change.

    Parameters
    ----------
    path : Path
        The journal file; nothing is created before the first :meth:`begin`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"JsonStackJournal({str(self.path)!r})"

    def _load(self) -> list[PendingStack]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CrowdskyError(
                f"The pending-stack journal {self.path} is unreadable: {exc}"
            ) from exc
        try:
            data = json.loads(text)
            items = data["pending"]
            if not isinstance(items, list):
                raise TypeError("'pending' is not a list")
            return [_record(item) for item in items]
        except (ValueError, KeyError, TypeError) as exc:
            raise CrowdskyError(
                f"The pending-stack journal {self.path} is damaged ({exc!r}); move it away to "
                "start afresh (a stack the telescope finished alone may then stay unrenamed)."
            ) from exc

    def _save(self, records: list[PendingStack]) -> None:
        payload = {"version": _VERSION, "pending": [_as_json(r) for r in records]}
        try:
            replace_json(self.path, payload)
        except OSError as exc:
            raise CrowdskyError(
                f"Cannot write the pending-stack journal {self.path}: {exc}"
            ) from exc

    def pending(self, device: str) -> tuple[PendingStack, ...]:
        """Every record of ``device``, oldest first."""
        return tuple(r for r in self._load() if r.device == device)

    def begin(self, record: PendingStack) -> None:
        """Add ``record`` (replacing the one of the same device and key) and save."""
        kept = [r for r in self._load() if (r.device, r.key) != (record.device, record.key)]
        self._save([*kept, record])

    def done(self, device: str, key: CoverageKey) -> None:
        """Remove the record of ``device`` and ``key``; no write when there is none."""
        records = self._load()
        kept = [r for r in records if (r.device, r.key) != (device, key)]
        if len(kept) != len(records):
            self._save(kept)


class MemoryStackJournal:
    """Pending stacks in a list (tests, the in-memory simulator)."""

    def __init__(self) -> None:
        self._records: list[PendingStack] = []

    def pending(self, device: str) -> tuple[PendingStack, ...]:
        """Every record of ``device``, oldest first."""
        return tuple(r for r in self._records if r.device == device)

    def begin(self, record: PendingStack) -> None:
        """Add ``record``, replacing the one of the same device and key."""
        self.done(record.device, record.key)
        self._records.append(record)

    def done(self, device: str, key: CoverageKey) -> None:
        """Remove the record of ``device`` and ``key``, if any."""
        self._records = [r for r in self._records if (r.device, r.key) != (device, key)]
