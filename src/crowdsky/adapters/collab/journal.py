"""Upload journals: the JSON file beside the stacks, and an in-memory one for tests.

Both satisfy :class:`crowdsky.app.ports.UploadJournal`. The file is ``.crowdsky-uploads.json``::

    {"version": 1, "uploads": [{"name": ..., "size": ..., "sha256": ..., "at": ...,
                                "chunk_key": ..., "job_id": ..., "target": ...}, ...]}

Entries written by earlier versions (any extra keys, a missing ``at``) are read as they are;
entries without a name, size or SHA-256 cannot prove anything and are kept but not matched.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from crowdsky.adapters.json_files import replace_json
from crowdsky.domain.uploads import JournalEntry
from crowdsky.errors import CrowdskyError

__all__ = ["JOURNAL_NAME", "JsonUploadJournal", "MemoryUploadJournal"]

#: File name of the upload journal in the download or local folder.
JOURNAL_NAME = ".crowdsky-uploads.json"
_VERSION = 1


def _entry(item: dict[str, Any]) -> JournalEntry | None:
    name, size, digest = item.get("name"), item.get("size"), item.get("sha256")
    if not isinstance(name, str) or not isinstance(digest, str):
        return None
    if not isinstance(size, int) or isinstance(size, bool):
        return None
    try:
        at = datetime.fromisoformat(item["at"]) if isinstance(item.get("at"), str) else None
    except ValueError:
        at = None
    job = item.get("job_id")
    return JournalEntry(
        name,
        size,
        digest,
        uploaded_at=at,
        chunk_key=item.get("chunk_key") if isinstance(item.get("chunk_key"), str) else None,
        job_id=job if isinstance(job, int) and not isinstance(job, bool) else None,
        target=item.get("target") if isinstance(item.get("target"), str) else None,
    )


def _as_json(entry: JournalEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"name": entry.name, "size": entry.size, "sha256": entry.sha256}
    if entry.uploaded_at is not None:
        item["at"] = entry.uploaded_at.isoformat(timespec="seconds")
    item.update(chunk_key=entry.chunk_key, job_id=entry.job_id, target=entry.target)
    return item


class JsonUploadJournal:
    """The journal kept in a JSON file; read on first use, rewritten atomically on each record.

    Parameters
    ----------
    path : Path
        The journal file. Nothing is created before the first :meth:`record`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._raw: list[dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"JsonUploadJournal({str(self.path)!r})"

    def _items(self) -> list[dict[str, Any]]:
        if self._raw is None:
            self._raw = self._load()
        return self._raw

    def _load(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CrowdskyError(f"The upload journal {self.path} is unreadable: {exc}") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CrowdskyError(f"The upload journal {self.path} is not JSON: {exc}") from exc
        uploads = data.get("uploads") if isinstance(data, dict) else None
        if not isinstance(uploads, list):
            raise CrowdskyError(f"The upload journal {self.path} has no 'uploads' list.")
        return [item for item in uploads if isinstance(item, dict)]

    def entries(self) -> tuple[JournalEntry, ...]:
        """Every usable entry, oldest first."""
        found = (_entry(item) for item in self._items())
        return tuple(entry for entry in found if entry is not None)

    def holds(self, name: str, size: int, sha256: str) -> bool:
        """True when these exact bytes were recorded."""
        return any(
            (e.name, e.size, e.sha256) == (name, size, sha256) for e in self.entries()
        )  # fmt: skip

    def record(self, entry: JournalEntry) -> None:
        """Append ``entry`` and save (temporary file, ``fsync``, then ``os.replace``).

        Raises
        ------
        CrowdskyError
            When the file cannot be written; the previous journal is left as it was.
        """
        items = [*self._items(), _as_json(entry)]
        try:
            replace_json(self.path, {"version": _VERSION, "uploads": items})
        except OSError as exc:
            raise CrowdskyError(f"Cannot write the upload journal {self.path}: {exc}") from exc
        self._raw = items


class MemoryUploadJournal:
    """A journal in a list (tests, dry runs); ``entries_given`` start it off."""

    def __init__(self, entries_given: tuple[JournalEntry, ...] = ()) -> None:
        self._entries = list(entries_given)

    def entries(self) -> tuple[JournalEntry, ...]:
        """Every entry, oldest first."""
        return tuple(self._entries)

    def holds(self, name: str, size: int, sha256: str) -> bool:
        """True when these exact bytes were recorded."""
        return any((e.name, e.size, e.sha256) == (name, size, sha256) for e in self._entries)

    def record(self, entry: JournalEntry) -> None:
        """Append ``entry``."""
        self._entries.append(entry)
