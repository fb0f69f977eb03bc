"""Header facts of raw sub-frames remembered across runs: as JSON in the state folder, in memory.

Both classes satisfy :class:`crowdsky.app.ports.HeaderCache`. The file is
``header-cache.json`` in :func:`crowdsky.adapters.state.state_dir`, written on one line (shown
here broken)::

    {"version": 1, "folders": [{"device": "seestar.local:4700", "folder": "IC 434_sub",
        "facts": {"Light_IC 434_10.0s_LP_20260227-211503.fit": [4147200, "2026-02-27T20:15:03.1"]}},
        ...]}

Each name maps to its listed size in bytes and its ``DATE-OBS`` card (``null``: none); the
folders are in the order they were written, the newest last. It only
saves reading headers again: deleting it is safe. A file that cannot be read or parsed is an
empty cache and a warning in the log, never an error; one that cannot be written is a warning.
Every change re-reads the file, replaces the facts of the folders it is about and moves the
file over atomically, so two crowdsky processes never tear it (the last one to write wins,
and a fact lost that way is only read again). Folders not written for the longest time are
dropped once the file holds more than :data:`MAX_FACTS` facts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crowdsky.adapters.json_files import replace_json
from crowdsky.app.ports import HeaderFact
from crowdsky.domain.device_paths import device_path

__all__ = ["HEADER_CACHE_NAME", "MAX_FACTS", "JsonHeaderCache", "MemoryHeaderCache"]

#: File name of the header cache in the state folder.
HEADER_CACHE_NAME = "header-cache.json"
#: Facts kept at most (a few MB of JSON); the folders written longest ago go first.
MAX_FACTS = 100_000
_VERSION = 1

log = logging.getLogger(__name__)

#: (device, folder) -> name -> (size, DATE-OBS card), in the order the folders were written.
_Facts = dict[tuple[str, str], dict[str, tuple[int, str | None]]]


def _folder_facts(item: Any) -> dict[str, tuple[int, str | None]]:
    """One folder's facts from JSON; ``ValueError`` when malformed."""
    if not isinstance(item, dict):
        raise ValueError("the facts of a folder are not an object")
    facts: dict[str, tuple[int, str | None]] = {}
    for name, fact in item.items():
        if not (isinstance(fact, list) and len(fact) == 2):
            raise ValueError(f"the fact of {name!r} is not [size, DATE-OBS]")
        size, card = fact
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ValueError(f"the size of {name!r} is not a positive integer")
        if card is not None and not isinstance(card, str):
            raise ValueError(f"the DATE-OBS of {name!r} is not text")
        facts[name] = (size, card)
    return facts


def _parse(text: str) -> _Facts:
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("version") != _VERSION:
        raise ValueError("not a version 1 header cache")
    folders = data["folders"]
    if not isinstance(folders, list):
        raise ValueError("'folders' is not a list")
    facts: _Facts = {}
    for item in folders:
        device, folder = item["device"], item["folder"]
        if not (isinstance(device, str) and isinstance(folder, str)):
            raise ValueError("a device or folder is not text")
        facts[device, folder] = _folder_facts(item["facts"])
    return facts


def _as_json(facts: _Facts) -> dict[str, Any]:
    folders = [
        {"device": device, "folder": folder, "facts": {n: list(f) for n, f in names.items()}}
        for (device, folder), names in facts.items()
    ]
    return {"version": _VERSION, "folders": folders}


def _facts_in(facts: _Facts, device: str, folders: Sequence[str]) -> list[HeaderFact]:
    return [
        HeaderFact(device_path(folder, name), size, card)
        for folder in folders
        for name, (size, card) in facts.get((device, folder), {}).items()
    ]


def _replace(facts: _Facts, device: str, folders: Sequence[str], new: Sequence[HeaderFact]) -> None:
    """Put ``new`` in place of the facts of ``device`` in ``folders``, as the newest written."""
    for folder in folders:
        facts.pop((device, folder), None)
    fresh: set[tuple[str, str]] = set()
    for fact in new:
        folder, _, name = fact.path.removeprefix("MyWorks/").rpartition("/")
        facts.setdefault((device, folder), {})[name] = (fact.size, fact.date_obs)
        fresh.add((device, folder))
    _bound(facts, fresh)


def _bound(facts: _Facts, fresh: set[tuple[str, str]]) -> None:
    """Drop the folders written longest ago (never ``fresh`` ones) while over :data:`MAX_FACTS`."""
    total = sum(len(names) for names in facts.values())
    for key in [key for key in facts if key not in fresh]:
        if total <= MAX_FACTS:
            break
        total -= len(facts.pop(key))


class JsonHeaderCache:
    """Header facts in a JSON file, re-read and atomically rewritten on every change.

    Parameters
    ----------
    path : Path
        The cache file; nothing is created before the first :meth:`keep`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"JsonHeaderCache({str(self.path)!r})"

    def _load(self) -> _Facts:
        try:
            return _parse(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "The header cache %s is unusable (%s); headers are read again instead.",
                self.path,
                exc,
            )
            return {}

    def recall(self, device: str, folders: Sequence[str]) -> list[HeaderFact]:
        """Every fact kept for ``device`` in ``folders``; none when the file is unusable."""
        return _facts_in(self._load(), device, folders)

    def keep(self, device: str, folders: Sequence[str], facts: Sequence[HeaderFact]) -> None:
        """Make ``facts`` those of ``device`` in ``folders`` and save; a failed write is logged."""
        kept = self._load()
        _replace(kept, device, folders, facts)
        payload = _as_json(kept)
        try:
            # lost, it is read again; on one line, as nobody reads it by eye
            replace_json(self.path, payload, durable=False, readable=False)
        except OSError as exc:
            log.warning("Cannot write the header cache %s: %s", self.path, exc)


class MemoryHeaderCache:
    """Header facts in a dict (tests, the library's default without a state folder)."""

    def __init__(self) -> None:
        self._facts: _Facts = {}

    def recall(self, device: str, folders: Sequence[str]) -> list[HeaderFact]:
        """Every fact kept for ``device`` in ``folders``."""
        return _facts_in(self._facts, device, folders)

    def keep(self, device: str, folders: Sequence[str], facts: Sequence[HeaderFact]) -> None:
        """Make ``facts`` those of ``device`` in ``folders``."""
        _replace(self._facts, device, folders, facts)
