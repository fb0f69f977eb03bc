"""Header facts of raw sub-frames remembered across runs: as JSON in the state folder, in memory.

Both classes satisfy :class:`crowdsky.app.ports.HeaderCache`. The file is
``header-cache.json`` in :func:`crowdsky.adapters.state.state_dir`::

    {"version": 1, "devices": {"seestar.local:4700": {"IC 434_sub": {
        "Light_IC 434_10.0s_LP_20260227-211503.fit": [4147200, "2026-02-27T20:15:03.1"]}}}}

Each name maps to its listed size in bytes and its ``DATE-OBS`` card (``null``: none). It only
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

#: device -> folder -> name -> (size, DATE-OBS card); dicts keep the order folders were written.
_Facts = dict[str, dict[str, dict[str, tuple[int, str | None]]]]


def _folder_facts(item: Any) -> dict[str, tuple[int, str | None]]:
    """One folder's facts from JSON; ``ValueError`` when malformed."""
    if not isinstance(item, dict):
        raise ValueError("a folder is not an object")
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
    devices = data["devices"]
    if not isinstance(devices, dict) or not all(isinstance(v, dict) for v in devices.values()):
        raise ValueError("'devices' is not an object of objects")
    return {
        device: {folder: _folder_facts(item) for folder, item in folders.items()}
        for device, folders in devices.items()
    }


def _facts_in(facts: _Facts, device: str, folders: Sequence[str]) -> list[HeaderFact]:
    kept = facts.get(device, {})
    return [
        HeaderFact(device_path(folder, name), size, card)
        for folder in folders
        for name, (size, card) in kept.get(folder, {}).items()
    ]


def _replace(facts: _Facts, device: str, folders: Sequence[str], new: Sequence[HeaderFact]) -> None:
    """Put ``new`` in place of the facts of ``device`` in ``folders``, written last."""
    kept = facts.setdefault(device, {})
    for folder in folders:
        kept.pop(folder, None)
    for fact in new:
        folder, _, name = fact.path.removeprefix("MyWorks/").rpartition("/")
        kept.setdefault(folder, {})[name] = (fact.size, fact.date_obs)
    _bound(facts, {(device, folder) for folder in kept if folder in folders})


def _bound(facts: _Facts, fresh: set[tuple[str, str]], limit: int | None = None) -> None:
    """Drop the folders written longest ago (never ``fresh`` ones) while over ``limit`` facts."""
    limit = MAX_FACTS if limit is None else limit
    total = sum(len(names) for folders in facts.values() for names in folders.values())
    order = [(d, f) for d, folders in facts.items() for f in folders if (d, f) not in fresh]
    for device, folder in order:
        if total <= limit:
            break
        total -= len(facts[device].pop(folder))
    for device in [d for d, folders in facts.items() if not folders]:
        del facts[device]


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
        payload = {
            "version": _VERSION,
            "devices": {
                device: {
                    folder: {name: list(fact) for name, fact in names.items()}
                    for folder, names in folders_.items()
                }
                for device, folders_ in kept.items()
            },
        }
        try:
            replace_json(self.path, payload)
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
