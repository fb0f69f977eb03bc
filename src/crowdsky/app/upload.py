"""Bulk upload of CrowdSky stacks to the collaboration server, without uploading anything twice.

Three steps:

1. **gather**: the ``CrowdSky_*`` stacks of some Seestar targets (or of a local folder) with their
   headers (read over the network for a file still on the Seestar) and, when the bytes are at
   hand, their SHA-256; the server's list; the upload journal;
2. **decide**: :func:`crowdsky.domain.uploads.plan_uploads` (see there for what counts as
   "already uploaded");
3. **apply**: download what is to be sent (kept in ``dest/<target>/``), hash it, decide that one
   stack again with its content and the journal as it is now, upload, record in the journal.

A stack that cannot be read, downloaded or sent is reported as failed and the others go on; only
refused credentials stop the run. An upload whose answer was lost and that the server's list could
not confirm counts as failed, with a message that it may be on the server: the next run looks for
it there before sending it again.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

from crowdsky.app.ports import ByteProgress, Clock, LocalFits, Progress, Seestar, UploadJournal
from crowdsky.app.server_port import CollabServer
from crowdsky.domain import CrowdskyName, companion_names, parse_crowdsky_name
from crowdsky.domain.device_paths import device_path, is_sub_folder
from crowdsky.domain.uploads import (
    JournalEntry,
    ServerStack,
    UploadAction,
    UploadCandidate,
    UploadDecision,
    UploadReason,
    plan_uploads,
    stack_facts,
)
from crowdsky.errors import (
    CrowdskyError,
    ServerAuthError,
    UnknownTargetError,
    UploadsInterrupted,
    UploadUnconfirmed,
)

__all__ = ["StackUploader", "UploadOutcome", "UploadResult", "stack_uploader", "upload_all_stacks"]


class UploadResult(enum.Enum):
    """What became of one stack."""

    UPLOADED = "uploaded"
    SKIPPED = "skipped"
    FAILED = "failed"
    WOULD_UPLOAD = "would_upload"


@attrs.frozen
class UploadOutcome:
    """What became of one stack, and why it failed when it did."""

    name: str
    result: UploadResult
    error: str | None = None


@attrs.frozen
class _Source:
    """A candidate and where its bytes are (here; on the Seestar too when ``remote`` is set).

    ``thumbnail`` is the device path of its ``_thn.jpg`` when the folder has one.
    """

    candidate: UploadCandidate
    local: Path
    remote: str | None = None
    thumbnail: str | None = None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _failed(name: str, exc: BaseException) -> UploadOutcome:
    return UploadOutcome(name, UploadResult.FAILED, str(exc))


def _local_sources(local_dir: Path, fits: LocalFits) -> tuple[list[_Source], list[UploadOutcome]]:
    sources, failures = [], []
    for path in sorted(local_dir.rglob("CrowdSky_*")):
        parsed = parse_crowdsky_name(path.name)
        if parsed is None or not path.is_file():
            continue
        try:
            facts = stack_facts(fits.read_header(path), parsed)
            size, digest = path.stat().st_size, _sha256(path)
        except (CrowdskyError, OSError) as exc:
            failures.append(_failed(path.name, exc))
            continue
        candidate = UploadCandidate(path.name, parsed.target, parsed, size, digest, facts)
        sources.append(_Source(candidate, path))
    return sources, failures


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


@attrs.frozen
class _SeestarGather:
    seestar: Seestar
    fits: LocalFits
    dest: Path

    def sources(self, targets: Iterable[str]) -> tuple[list[_Source], list[UploadOutcome]]:
        sources, failures = [], []
        for target in targets:
            entries = sorted(self.seestar.list_files(target), key=lambda e: e.name)
            names = {entry.name for entry in entries}
            for entry in entries:
                parsed = parse_crowdsky_name(entry.name)
                if parsed is None:
                    continue
                try:
                    sources.append(self._source(target, parsed, entry.size, names))
                except (CrowdskyError, OSError) as exc:
                    failures.append(_failed(entry.name, exc))
        return sources, failures

    def _source(self, target: str, parsed: CrowdskyName, size: int, names: set[str]) -> _Source:
        name = parsed.name
        local, remote = self.dest / target / name, device_path(target, name)
        thumb = companion_names(name)[1]
        thumbnail = device_path(target, thumb) if thumb in names else None
        if size and local.is_file() and local.stat().st_size == size:
            # Downloaded by an earlier run: its own bytes tell its content.
            header, digest = self.fits.read_header(local), _sha256(local)
        else:
            header, digest = self.seestar.read_header(remote), None
        candidate = UploadCandidate(
            name, target, parsed, size, digest, stack_facts(header, parsed)
        )  # fmt: skip
        return _Source(candidate, local, remote, thumbnail)


@attrs.frozen
class _Apply:
    """Carries out decisions, one stack at a time."""

    server: CollabServer
    seestar: Seestar | None
    journal: UploadJournal
    clock: Clock
    out: Progress
    records: tuple[ServerStack, ...]
    dry_run: bool
    skip_existing: bool
    #: Names uploaded and recorded in the journal, in order (what a Ctrl-C reports as done).
    sent: list[str] = attrs.field(factory=list)

    def __call__(self, source: _Source, decision: UploadDecision) -> UploadOutcome:
        name = source.candidate.name
        if decision.action is UploadAction.SKIP:
            return self._skipped(name, decision.reason)
        if decision.action is UploadAction.REFUSE:
            return self._refused(name, decision.reason)
        if self.dry_run:
            if decision.action is UploadAction.VERIFY:
                return self._skipped(name, decision.reason)
            self.out.line(f"  would upload {name}")
            return UploadOutcome(name, UploadResult.WOULD_UPLOAD)
        try:
            return self._send(source)
        except ServerAuthError:
            raise
        except UploadUnconfirmed as exc:
            self.out.line(f"  FAILED {name}: the answer was lost; it may be on the server.")
            message = (
                f"{exc} It may be on the server all the same; the next run looks for it "
                "there before sending it again."
            )
            return UploadOutcome(name, UploadResult.FAILED, message)
        except (CrowdskyError, OSError) as exc:
            self.out.line(f"  FAILED {name}: {exc}")
            return _failed(name, exc)

    def _refused(self, name: str, reason: UploadReason) -> UploadOutcome:
        self.out.line(f"  REFUSED {name}: {reason.value}")
        return UploadOutcome(name, UploadResult.FAILED, f"Not uploaded: {reason.value}.")

    def _skipped(self, name: str, reason: UploadReason) -> UploadOutcome:
        self.out.line(f"  skip   {name} ({reason.value})")
        return UploadOutcome(name, UploadResult.SKIPPED)

    def _send(self, source: _Source) -> UploadOutcome:
        candidate = self._fetch(source)
        # Decide again with the content hashed and the journal as it is now (an identical file
        # in another folder may have gone up a moment ago).
        (again,) = plan_uploads(
            (candidate,), self.records, self.journal.entries(), skip_existing=self.skip_existing
        )
        if again.action is UploadAction.SKIP:
            return self._skipped(candidate.name, again.reason)
        if again.action is UploadAction.REFUSE:
            return self._refused(candidate.name, again.reason)
        receipt = self.server.upload_stack(source.local, on_bytes=self._bytes_of(candidate.name))
        self.journal.record(
            JournalEntry(
                candidate.name, candidate.size, str(candidate.sha256),
                uploaded_at=self.clock.now(), chunk_key=receipt.chunk_key,
                job_id=receipt.job_id, target=candidate.target,
            )
        )  # fmt: skip
        self.sent.append(candidate.name)
        self.out.line(
            f"  upload {candidate.name} -> {receipt.chunk_key} ({receipt.status or 'stored'})"
        )
        return UploadOutcome(candidate.name, UploadResult.UPLOADED)

    def _bytes_of(self, name: str) -> ByteProgress:
        """Where a transfer of the file ``name`` reports its bytes: the progress display."""

        def moved(done: int, total: int | None) -> None:
            self.out.transfer(name, done, total)

        return moved

    def _fetch(self, source: _Source) -> UploadCandidate:
        """The candidate with its bytes on this computer and hashed."""
        candidate, local = source.candidate, source.local
        if source.remote is not None and self.seestar is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
            if candidate.sha256 is None:
                self.seestar.download(source.remote, local, on_bytes=self._bytes_of(local.name))
            thumb = local.parent / Path(source.thumbnail or "").name
            if source.thumbnail is not None and not thumb.is_file():
                # A thumbnail is a nicety: without it the stack is uploaded all the same.
                with contextlib.suppress(CrowdskyError):
                    self.seestar.download(source.thumbnail, thumb)
        if candidate.sha256 is not None:
            return candidate
        return attrs.evolve(candidate, size=local.stat().st_size, sha256=_sha256(local))


@attrs.frozen
class StackUploader:
    """Uploads the stacks of one Seestar one at a time, as they are made.

    The same gather, decide and apply steps as :func:`upload_all_stacks`, for a single stack whose
    target and name are known (no listing of the Seestar): its header is read, the decision taken
    against the server's list (read once, when the uploader was made) and the journal as it is
    now, and an upload recorded in the journal. Build one with :func:`stack_uploader`.
    """

    gather: _SeestarGather
    apply: _Apply

    def upload(self, target: str, name: str) -> UploadOutcome:
        """Upload ``target/name`` from the Seestar unless it is already on the server.

        Returns
        -------
        UploadOutcome
            Uploaded, skipped (and why in the progress line) or failed with its error.

        Raises
        ------
        ServerAuthError
            When the server refuses the credentials.
        """
        parsed = parse_crowdsky_name(name)
        if parsed is None:
            return UploadOutcome(name, UploadResult.FAILED, f"{name} is not a CrowdSky name")
        thumbnail = companion_names(name)[1]
        try:
            source = self.gather._source(target, parsed, 0, {name, thumbnail})
        except (CrowdskyError, OSError) as exc:
            return _failed(name, exc)
        apply = self.apply
        (decision,) = plan_uploads(
            (source.candidate,), apply.records, apply.journal.entries(), skip_existing=True
        )
        return apply(source, decision)


def stack_uploader(
    server: CollabServer,
    seestar: Seestar,
    *,
    journal: UploadJournal,
    progress: Progress,
    clock: Clock,
    local_fits: LocalFits,
    dest: str | Path = ".",
) -> StackUploader:
    """A :class:`StackUploader` for ``seestar``; asks the server for its list once, now.

    Parameters are those of :func:`upload_all_stacks`.
    """
    records = tuple(record.as_server_stack() for record in server.list_stacks())
    return StackUploader(
        _SeestarGather(seestar, local_fits, Path(dest)),
        _Apply(server, seestar, journal, clock, progress, records, False, True),
    )


def _summary(outcomes: Sequence[UploadOutcome], *, dry_run: bool) -> dict[str, Any]:
    def names(result: UploadResult) -> list[str]:
        return [o.name for o in outcomes if o.result is result]

    failed = [
        {"name": o.name, "error": o.error or ""}
        for o in outcomes if o.result is UploadResult.FAILED
    ]  # fmt: skip
    summary: dict[str, Any] = {
        "uploaded": names(UploadResult.UPLOADED),
        "skipped": names(UploadResult.SKIPPED),
        "failed": failed,
    }
    if dry_run:
        summary["would_upload"] = names(UploadResult.WOULD_UPLOAD)
    for key in ("uploaded", "skipped", "failed"):
        summary[f"files_{key}"] = len(summary[key])
    return summary


def _interrupted(
    rest: Sequence[tuple[_Source, UploadDecision]], apply: _Apply
) -> UploadsInterrupted:
    """What a Ctrl-C during ``rest[0]`` leaves: uploaded, cut short, never started."""
    to_send = [
        source.candidate.name
        for source, decision in rest
        if not apply.dry_run and decision.action in (UploadAction.UPLOAD, UploadAction.VERIFY)
    ]
    current = rest[0][0].candidate.name
    unfinished = [current] if current in to_send and current not in apply.sent else []
    return UploadsInterrupted(
        list(apply.sent), unfinished, [name for name in to_send if name != current]
    )


def upload_all_stacks(
    server: CollabServer,
    *,
    journal: UploadJournal,
    progress: Progress,
    clock: Clock,
    local_fits: LocalFits,
    seestar: Seestar | None = None,
    target: str | Sequence[str] | None = None,
    dest: str | Path = ".",
    local_dir: str | Path | None = None,
    dry_run: bool = False,
    skip_existing: bool = True,
) -> dict[str, Any]:
    """Upload every CrowdSky stack of some targets (or of a local folder) not uploaded yet.

    Parameters
    ----------
    server : CollabServer
        The collaboration server.
    journal : UploadJournal
        Uploads remembered from earlier runs; each upload is recorded as soon as it is confirmed.
    progress : Progress
        Where report lines go.
    clock : Clock
        Time stamps of journal entries.
    local_fits : LocalFits
        Reads the headers of stacks on this computer.
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
        Skip stacks the server or the journal already has
        (:func:`crowdsky.domain.uploads.plan_uploads`).

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
    UploadsInterrupted
        On Ctrl-C (``KeyboardInterrupt``) while stacks are sent: which were uploaded (and
        recorded), which one was cut short (not recorded) and which were not started.
    """
    if local_dir is not None:
        sources, outcomes = _local_sources(Path(local_dir), local_fits)
    elif seestar is None:
        raise CrowdskyError("upload_all_stacks needs a Seestar or local_dir=...")
    else:
        gather = _SeestarGather(seestar, local_fits, Path(dest))
        sources, outcomes = gather.sources(_seestar_targets(seestar, target))
    progress.line(f"{len(sources) + len(outcomes)} CrowdSky stack(s) found.")
    for failure in outcomes:
        progress.line(f"  FAILED {failure.name}: {failure.error}")
    listed = server.list_stacks() if skip_existing and sources else []
    records = tuple(record.as_server_stack() for record in listed)
    decisions = plan_uploads(
        (s.candidate for s in sources), records, journal.entries(), skip_existing=skip_existing
    )
    apply = _Apply(server, seestar, journal, clock, progress, records, dry_run, skip_existing)
    pairs = list(zip(sources, decisions, strict=True))
    for index, (source, decision) in enumerate(pairs):
        try:
            outcomes.append(apply(source, decision))
        except KeyboardInterrupt as exc:
            raise _interrupted(pairs[index:], apply) from exc
    summary = _summary(outcomes, dry_run=dry_run)
    verb, done = ("Would upload", "would_upload") if dry_run else ("Uploaded", "uploaded")
    progress.line(
        f"{verb} {len(summary[done])}, skipped {summary['files_skipped']}, "
        f"failed {summary['files_failed']}."
    )
    return summary
