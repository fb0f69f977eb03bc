"""Bulk upload of CrowdSky stacks to the collaboration server, without uploading anything twice.

Stacks come from the Seestar (each file is first downloaded to ``dest/<target>/`` and kept) or
from a local folder. A file is skipped when

* the server lists a stack with the same chunk key **and** object (and filter, where the server
  reports one): the chunk key alone is not enough, since a second filter or a second Seestar in
  the same block and pixel is a different stack (field notes, item 5); or
* the local upload journal (``.crowdsky-uploads.json``) holds the same file name, size and
  SHA-256: this covers legacy names, which carry no chunk key, and stacks the server has queued
  but does not list yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import attrs

from crowdsky.app.ports import Seestar
from crowdsky.app.server_port import CollabServer, StackRecord
from crowdsky.domain import CrowdskyName, companion_names, parse_crowdsky_name
from crowdsky.domain.device_paths import device_path, is_sub_folder
from crowdsky.errors import CrowdskyError, ServerAuthError, UnknownTargetError

__all__ = ["JOURNAL_NAME", "UploadJournal", "upload_all_stacks"]

#: File name of the upload journal in the download or local folder.
JOURNAL_NAME = ".crowdsky-uploads.json"


class _Lines(Protocol):
    def line(self, text: str) -> None: ...


class _Stdout:
    def line(self, text: str) -> None:
        print(text, flush=True)


@attrs.frozen
class _Candidate:
    name: str
    target: str
    parsed: CrowdskyName | None
    local: Path
    remote: str | None = None  # ``MyWorks/<target>/<name>`` when it comes from the Seestar
    size: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


class UploadJournal:
    """Files uploaded from this folder, keyed by file name + size + SHA-256, kept in JSON.

    Parameters
    ----------
    path : Path
        The journal file; it is created on the first upload and rewritten atomically.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.entries: list[dict[str, Any]] = []
        if self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CrowdskyError(f"The upload journal {self.path} is unreadable: {exc}") from exc
            uploads = data.get("uploads") if isinstance(data, dict) else None
            self.entries = [e for e in uploads or [] if isinstance(e, dict)]

    def holds(self, name: str, size: int, sha256: str | None) -> bool:
        """True when this file (same name, size and, when given, content) was uploaded."""
        return any(
            e.get("name") == name
            and e.get("size") == size
            and (sha256 is None or e.get("sha256") == sha256)
            for e in self.entries
        )

    def record(self, name: str, size: int, sha256: str, **info: Any) -> None:
        """Add an upload and save the journal (temporary file, then ``os.replace``)."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.entries.append({"name": name, "size": size, "sha256": sha256, "at": stamp, **info})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        part = self.path.with_name(self.path.name + ".part")
        part.write_text(json.dumps({"version": 1, "uploads": self.entries}, indent=1), "utf-8")
        os.replace(part, self.path)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def _on_server(candidate: _Candidate, records: Sequence[StackRecord]) -> bool:
    parsed = candidate.parsed
    key = parsed.server_key if parsed is not None else None
    if key is None or parsed is None:
        return False  # legacy name: only the journal can tell
    return any(
        r.chunk_key == key
        and _same(r.object_name, parsed.target)
        and (r.filter_name is None or _same(r.filter_name, parsed.filter))
        for r in records
    )


def _local_candidates(local_dir: Path) -> list[_Candidate]:
    found = []
    for path in sorted(local_dir.rglob("CrowdSky_*")):
        parsed = parse_crowdsky_name(path.name)
        if parsed is None or not path.is_file():
            continue
        found.append(_Candidate(path.name, parsed.target, parsed, path, size=path.stat().st_size))
    return found


def _seestar_targets(seestar: Seestar, target: str | Sequence[str] | None) -> list[str]:
    folders = [f.name for f in seestar.list_folders() if not is_sub_folder(f.name)]
    if target is None:
        return [
            f for f in folders
            if any(parse_crowdsky_name(e.name) for e in seestar.list_files(f))
        ]  # fmt: skip
    wanted = [target] if isinstance(target, str) else list(target)
    for name in wanted:
        if name not in folders:
            raise UnknownTargetError(name, tuple(folders))
    return wanted


def _seestar_candidates(
    seestar: Seestar, targets: list[str], dest: Path
) -> tuple[list[_Candidate], dict[str, set[str]]]:
    found, names_by_target = [], {}
    for target in targets:
        entries = seestar.list_files(target)
        names_by_target[target] = {e.name for e in entries}
        for entry in sorted(entries, key=lambda e: e.name):
            parsed = parse_crowdsky_name(entry.name)
            if parsed is not None:
                local = dest / target / entry.name
                remote = device_path(target, entry.name)
                found.append(_Candidate(entry.name, target, parsed, local, remote, entry.size))
    return found, names_by_target


def _fetch(seestar: Seestar, candidate: _Candidate, names: set[str]) -> None:
    """Download the stack (kept in ``dest``) and its thumbnail unless already there."""
    local = candidate.local
    local.parent.mkdir(parents=True, exist_ok=True)
    if not (local.is_file() and candidate.size and local.stat().st_size == candidate.size):
        seestar.download(str(candidate.remote), local)
    thumb = companion_names(candidate.name)[1]
    if thumb in names and not (local.parent / thumb).is_file():
        # A thumbnail is a nicety: without it the stack is uploaded all the same.
        with contextlib.suppress(CrowdskyError):
            seestar.download(device_path(candidate.target, thumb), local.parent / thumb)


def upload_all_stacks(
    server: CollabServer,
    *,
    seestar: Seestar | None = None,
    target: str | Sequence[str] | None = None,
    dest: str | Path = ".",
    local_dir: str | Path | None = None,
    dry_run: bool = False,
    skip_existing: bool = True,
    journal_path: str | Path | None = None,
    progress: _Lines | None = None,
) -> dict[str, Any]:
    """Upload every CrowdSky stack of some targets (or of a local folder) not uploaded yet.

    Parameters
    ----------
    server : CollabServer
        The collaboration server.
    seestar : Seestar, optional
        Where the stacks are, when ``local_dir`` is not given.
    target : str or sequence of str, optional
        Target folder(s) on the Seestar; every folder holding ``CrowdSky_*`` files by default.
    dest : str or Path
        Where Seestar files are downloaded (``dest/<target>/``) and kept.
    local_dir : str or Path, optional
        Upload the ``CrowdSky_*`` files under this folder (recursively) instead; no Seestar.
    dry_run : bool
        Only report what would be uploaded or skipped; nothing is downloaded, sent or written.
    skip_existing : bool
        Skip stacks the server or the journal already has (see the module docs).
    journal_path : str or Path, optional
        The upload journal; ``<local_dir or dest>/.crowdsky-uploads.json`` by default.
    progress : object with ``line(text)``, optional
        Where report lines go; standard output by default.

    Returns
    -------
    dict
        ``files_uploaded``, ``files_skipped``, ``files_failed`` (counts); ``uploaded``,
        ``skipped`` (names), ``failed`` (``{"name", "error"}``); with ``dry_run`` also
        ``would_upload`` (names), and nothing counts as uploaded.

    Raises
    ------
    ServerAuthError
        When the server refuses the credentials (nothing else could succeed).
    UnknownTargetError
        When a named target has no folder on the Seestar.
    """
    out = progress if progress is not None else _Stdout()
    base = Path(local_dir) if local_dir is not None else Path(dest)
    journal = UploadJournal(Path(journal_path) if journal_path else base / JOURNAL_NAME)
    names_by_target: dict[str, set[str]] = {}
    if local_dir is not None:
        candidates = _local_candidates(Path(local_dir))
    else:
        if seestar is None:
            raise CrowdskyError("upload_all_stacks needs a Seestar or local_dir=...")
        targets = _seestar_targets(seestar, target)
        candidates, names_by_target = _seestar_candidates(seestar, targets, Path(dest))
    records = server.list_stacks() if skip_existing and candidates else []
    summary: dict[str, Any] = {"uploaded": [], "skipped": [], "failed": []}
    if dry_run:
        summary["would_upload"] = []
    out.line(f"{len(candidates)} CrowdSky stack(s) found.")
    for candidate in candidates:
        try:
            _one(server, seestar, candidate, records, journal, names_by_target, summary,
                 out, dry_run=dry_run, skip_existing=skip_existing)  # fmt: skip
        except ServerAuthError:
            raise
        except (CrowdskyError, OSError) as exc:
            summary["failed"].append({"name": candidate.name, "error": str(exc)})
            out.line(f"  FAILED {candidate.name}: {exc}")
    for key in ("uploaded", "skipped", "failed"):
        summary[f"files_{key}"] = len(summary[key])
    verb = "Would upload" if dry_run else "Uploaded"
    count = len(summary["would_upload"]) if dry_run else summary["files_uploaded"]
    out.line(
        f"{verb} {count}, skipped {summary['files_skipped']}, failed {summary['files_failed']}."
    )
    return summary


def _one(
    server: CollabServer,
    seestar: Seestar | None,
    candidate: _Candidate,
    records: Sequence[StackRecord],
    journal: UploadJournal,
    names_by_target: dict[str, set[str]],
    summary: dict[str, Any],
    out: _Lines,
    *,
    dry_run: bool,
    skip_existing: bool,
) -> None:
    name = candidate.name
    if skip_existing and _on_server(candidate, records):
        summary["skipped"].append(name)
        out.line(f"  skip   {name} (already on the server)")
        return
    have_local = candidate.local.is_file()
    if dry_run:
        size = candidate.local.stat().st_size if have_local else candidate.size
        if skip_existing and journal.holds(name, size, None):
            summary["skipped"].append(name)
            out.line(f"  skip   {name} (in the upload journal)")
        else:
            summary["would_upload"].append(name)
            out.line(f"  would upload {name}")
        return
    if candidate.remote is not None and seestar is not None:
        _fetch(seestar, candidate, names_by_target.get(candidate.target, set()))
    size, digest = candidate.local.stat().st_size, _sha256(candidate.local)
    if skip_existing and journal.holds(name, size, digest):
        summary["skipped"].append(name)
        out.line(f"  skip   {name} (in the upload journal)")
        return
    receipt = server.upload_stack(candidate.local)
    journal.record(name, size, digest, chunk_key=receipt.chunk_key, job_id=receipt.job_id,
                   target=candidate.target)  # fmt: skip
    summary["uploaded"].append(name)
    out.line(f"  upload {name} -> {receipt.chunk_key} ({receipt.status or 'stored'})")
