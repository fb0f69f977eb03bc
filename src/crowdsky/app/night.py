"""The whole night's job: stack every eligible block on every telescope, upload every stack.

:func:`run_night` works on each telescope in its own thread, and on each telescope one block at a
time (the device runs one batch stack at a time). A block that finished stacking is handed to that
telescope's upload thread, which downloads it over HTTP and uploads it through
:class:`~crowdsky.app.upload.StackUploader` while the telescope stacks the next block; the control
link (JSON-RPC) carries nothing of the transfer. When a telescope's blocks are done, one pass of
:func:`~crowdsky.app.upload.upload_all_stacks` sends whatever is still not on the server (stacks of
earlier nights, of interrupted runs, uploads that failed).

Nothing is done twice across runs: a stacked block has its CrowdSky name on the device, so the
planner does not offer it again; an uploaded stack is in the upload journal (per telescope,
``dest/<telescope>/.crowdsky-uploads.json``) and in the server's list. An interrupted run
(Ctrl-C, or ``KeyboardInterrupt`` raised anywhere in it) stops every telescope's batch stack,
drops the uploads not yet started, and re-raises; running again finishes the job.

Each telescope is pre-flighted (:func:`~crowdsky.app.preflight.preflight`) before any work on
it: one that is imaging (live view, stacking, a batch stack started elsewhere) is left alone, or
waited for up to ``wait`` seconds, and its entry says ``busy``; one whose links are not ready (a
key missing, SMB unreachable) fails with the pre-flight's findings before any block is stacked.
Either way it is not ``ok``: its night's job was not done.

One telescope that cannot be reached or fails does not stop the others: its entry in the result
carries the error.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import attrs

from crowdsky.app.inventory import list_target_folders
from crowdsky.app.ports import (
    BatchStackStatus,
    ByteProgress,
    Clock,
    HeaderCache,
    LocalFits,
    Progress,
    Seestar,
    UploadJournal,
)
from crowdsky.app.preflight import preflight
from crowdsky.app.progress import RelayedProgress
from crowdsky.app.server_port import CollabServer, StackRecord, UploadReceipt
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import BlockOutcome, StackOptions
from crowdsky.app.upload import StackUploader, UploadResult, stack_uploader, upload_all_stacks
from crowdsky.domain import BlockStatus
from crowdsky.domain.preflight import Finding, Problem
from crowdsky.errors import CrowdskyError, UploadsInterrupted

__all__ = ["NightPorts", "Telescope", "folder_name", "run_night"]

# How often the waiting thread wakes to let Ctrl-C in, in seconds.
_JOIN_SLICE = 0.2


@attrs.frozen
class Telescope:
    """One telescope of the night.

    Parameters
    ----------
    name : str
        How it is called in progress lines and the result (its host name, say); also the name
        of its folder under ``dest``.
    open : callable
        Connects to it and returns the :class:`~crowdsky.app.ports.Seestar`; called in the
        telescope's own thread. A ``close()`` method of what it returns is called at the end.
    tz : tzinfo, optional
        Override of the telescope's time zone.
    folder : Path, optional
        Where its stacks are kept on this computer and its upload journal lives; by default
        ``dest/<folder_name(name)>``. A local archive names its own output folder, so that
        its stacks are uploaded from where they were written, not copied first.
    """

    name: str
    open: Callable[[], Seestar]
    tz: tzinfo | None = None
    folder: Path | None = None


@attrs.frozen
class NightPorts:
    """What :func:`run_night` needs besides the telescopes and the server.

    Parameters
    ----------
    clock : Clock
        Time source (which blocks are complete; journal time stamps).
    local_fits : LocalFits
        Reads the headers of downloaded stacks.
    journal_for : callable
        The upload journal kept in a given folder.
    progress_for : callable
        The progress display of one telescope, by its name.
    host_zone : tzinfo, optional
        The computer's zone, the last resort for a telescope's zone.
    header_cache_for : callable, optional
        Where a telescope's header facts are kept across runs (see
        :class:`~crowdsky.app.service.Crowdsky`); none kept without it.
    """

    clock: Clock
    local_fits: LocalFits
    journal_for: Callable[[Path], UploadJournal]
    progress_for: Callable[[str], Progress]
    host_zone: tzinfo | None = None
    header_cache_for: Callable[[Seestar], HeaderCache] | None = None

    def header_cache(self, seestar: Seestar) -> HeaderCache | None:
        """The header cache of ``seestar``, if there is one."""
        return None if self.header_cache_for is None else self.header_cache_for(seestar)


class _Cancellable(RelayedProgress):
    """A progress that raises ``KeyboardInterrupt`` in its thread once the night is cancelled.

    Progress is reported often while a block stacks, so a telescope's thread notices a Ctrl-C
    (which only the main thread receives) within one status reading, and the stacking code then
    stops and clears the batch stack as it does for a Ctrl-C of its own.
    """

    def __init__(self, inner: Progress, cancel: threading.Event) -> None:
        super().__init__(inner)
        self._cancel = cancel

    def _check(self) -> None:
        if self._cancel.is_set():
            raise KeyboardInterrupt

    def line(self, text: str) -> None:
        self._check()
        self._inner.line(text)

    def stack_progress(self, status: BatchStackStatus) -> None:
        self._check()
        self._inner.stack_progress(status)


class _CancellableClock:
    """A clock whose ``sleep`` (a pre-flight waiting for a busy telescope) lets Ctrl-C in."""

    def __init__(self, inner: Clock, cancel: threading.Event) -> None:
        self._inner = inner
        self._cancel = cancel

    def now(self) -> datetime:
        return self._inner.now()

    def sleep(self, seconds: float) -> None:
        while seconds > 0:
            if self._cancel.is_set():
                raise KeyboardInterrupt
            step = min(seconds, _JOIN_SLICE)
            self._inner.sleep(step)
            seconds -= step
        if self._cancel.is_set():
            raise KeyboardInterrupt


@attrs.frozen
class _Readiness:
    """How long to wait for a busy telescope, and how often to look again meanwhile."""

    wait: float = 0.0
    poll: float = 5.0


class _WithoutSkips(RelayedProgress):
    """The closing upload pass's lines, less one "skip" line per stack already uploaded."""

    def line(self, text: str) -> None:
        if not text.startswith("  skip "):
            self._inner.line(text)


class _SerialServer:
    """The server client shared by every telescope's thread, one request at a time."""

    def __init__(self, inner: CollabServer) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def list_stacks(self, object_name: str | None = None) -> list[StackRecord]:
        with self._lock:
            return self._inner.list_stacks(object_name)

    def upload_stack(self, path: Path, **options: Any) -> UploadReceipt:
        with self._lock:
            return self._inner.upload_stack(path, **options)

    def download_stack(
        self, chunk_key: str, dest_dir: Path, *, on_bytes: ByteProgress | None = None
    ) -> Path:
        with self._lock:
            return self._inner.download_stack(chunk_key, dest_dir, on_bytes=on_bytes)

    def start_raw_session(self) -> str:
        with self._lock:
            return self._inner.start_raw_session()

    def add_raw_file(self, token: str, path: Path) -> dict[str, Any]:
        with self._lock:
            return self._inner.add_raw_file(token, path)

    def finalize_raw_session(
        self, token: str, *, overwrite: bool = False, scrub_location: bool = False
    ) -> dict[str, Any]:
        with self._lock:
            return self._inner.finalize_raw_session(
                token, overwrite=overwrite, scrub_location=scrub_location
            )


@attrs.define
class _Uploads:
    """One telescope's upload thread: stacks queued as they are made, uploaded in order."""

    uploader: StackUploader
    cancel: threading.Event
    done: dict[str, UploadResult] = attrs.field(factory=dict)
    errors: list[BaseException] = attrs.field(factory=list)
    #: Stacks queued and then left for the next run (cancelled, or an earlier error).
    dropped: list[str] = attrs.field(factory=list)
    #: The stack whose upload a ``KeyboardInterrupt`` cut short before it was recorded.
    cut: list[str] = attrs.field(factory=list)
    _queue: queue.Queue[tuple[str, str] | None] = attrs.field(factory=queue.Queue)
    _thread: threading.Thread | None = None
    _finished: bool = False

    def start(self, name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=f"upload-{name}", daemon=True)
        self._thread.start()

    def put(self, target: str, file: str) -> None:
        self._queue.put((target, file))

    def finish(self) -> None:
        """Wait for the queued uploads (only the one in flight after a cancel); once only."""
        if self._finished:
            return
        self._finished = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.cancel.is_set() or self.errors:
                self.dropped.append(item[1])
                continue  # left for the next run
            try:
                outcome = self.uploader.upload(*item)
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt) and item[1] not in self.sent:
                    self.cut.append(item[1])
                self.errors.append(exc)
                continue
            self.done[outcome.name] = outcome.result

    @property
    def sent(self) -> list[str]:
        """Stacks uploaded and recorded in the journal so far."""
        return self.uploader.apply.sent

    def interrupted(self, later: UploadsInterrupted | None = None) -> UploadsInterrupted:
        """What the uploads got done before a Ctrl-C, with the closing pass's ``later``."""
        if later is None:
            return UploadsInterrupted(self.sent, self.cut, self.dropped)
        return UploadsInterrupted(
            [*self.sent, *later.uploaded], later.unfinished, later.not_started
        )


@attrs.define
class _TelescopeRun:
    """The night on one telescope, in its own thread."""

    telescope: Telescope
    server: CollabServer | None
    ports: NightPorts
    dest: Path
    plan: dict[str, Any]
    options: StackOptions
    cancel: threading.Event
    readiness: _Readiness = _Readiness()
    result: dict[str, Any] = attrs.field(factory=dict)
    interrupted: bool = False
    #: What the uploads got done when interrupted (``None``: no upload had begun).
    uploads_stopped: UploadsInterrupted | None = None
    #: Set when the run has ended, whatever way (waited on instead of ``Thread.join``).
    ended: threading.Event = attrs.field(factory=threading.Event)

    def __call__(self) -> None:
        try:
            self._telescope()
        finally:
            self.ended.set()

    def _telescope(self) -> None:
        name = self.telescope.name
        progress = _Cancellable(self.ports.progress_for(name), self.cancel)
        self.result = _empty_result(name)
        try:
            self._run(progress)
        except KeyboardInterrupt as exc:
            self.interrupted = True
            self.cancel.set()
            self.result["error"] = "interrupted"
            if isinstance(exc, UploadsInterrupted):
                self.uploads_stopped = exc
        except CrowdskyError as exc:
            self.result["error"] = str(exc)
            self.ports.progress_for(name).line(f"{name}: {exc}")
        except Exception as exc:
            self.result["error"] = f"{type(exc).__name__}: {exc}"
            self.ports.progress_for(name).line(f"{name}: {self.result['error']}")

    def _run(self, progress: Progress) -> None:
        seestar = self.telescope.open()
        try:
            if self._ready(seestar, progress):
                self._night(seestar, progress)
        finally:
            close = getattr(seestar, "close", None)
            if callable(close):
                close()

    def _ready(self, seestar: Seestar, progress: Progress) -> bool:
        """Pre-flight; records and reports what stands in the way, ``False`` if anything does."""
        findings = preflight(
            seestar,
            clock=_CancellableClock(self.ports.clock, self.cancel),
            progress=progress,
            wait=self.readiness.wait,
            poll=self.readiness.poll,
        )
        if not findings:
            return True
        name = self.telescope.name
        self.result["preflight"] = [
            {"problem": f.problem.value, "detail": f.detail} for f in findings
        ]
        if all(f.problem is Problem.BUSY for f in findings):
            self.result["busy"] = findings[0].detail
            waited = f" after waiting {self.readiness.wait:g} s" if self.readiness.wait > 0 else ""
            progress.line(
                f"{name}: busy ({findings[0].detail} running){waited}; skipped so as not to "
                "disturb it."
            )
            return False
        self.result["error"] = _not_ready(findings)
        progress.line(f"{name}: {self.result['error']}")
        return False

    def _night(self, seestar: Seestar, progress: Progress) -> None:
        folder = self.telescope.folder or self.dest / folder_name(self.telescope.name)
        journal = self.ports.journal_for(folder)
        uploads = self._uploads(seestar, progress, journal, folder)
        service = Crowdsky(
            seestar,
            self.ports.clock,
            progress,
            tz=self.telescope.tz,
            host_zone=self.ports.host_zone,
            options=self.options,
            header_cache=self.ports.header_cache(seestar),
        )

        def stacked(outcome: BlockOutcome) -> None:
            if uploads is not None and outcome.status is BlockStatus.STACKED and outcome.file:
                uploads.put(outcome.block.target, outcome.file)

        try:
            self._stack(service, seestar, stacked)
        except KeyboardInterrupt:
            self.cancel.set()  # the queued uploads are left for the next run
            if uploads is None:
                raise
            uploads.finish()
            raise uploads.interrupted() from None
        finally:
            if uploads is not None:
                uploads.finish()
        if uploads is None:
            return
        uploads.finish()
        if any(isinstance(error, KeyboardInterrupt) for error in uploads.errors):
            raise uploads.interrupted()
        if uploads.errors:
            raise uploads.errors[0]
        try:
            self._sweep(seestar, progress, journal, folder, uploads.done)
        except KeyboardInterrupt as exc:
            # Before the closing pass sent anything, only the pipeline's uploads are known.
            later = exc if isinstance(exc, UploadsInterrupted) else None
            raise uploads.interrupted(later) from None

    def _uploads(
        self, seestar: Seestar, progress: Progress, journal: UploadJournal, folder: Path
    ) -> _Uploads | None:
        if self.server is None:
            return None
        try:
            uploader = stack_uploader(
                self.server,
                seestar,
                journal=journal,
                progress=progress,
                clock=self.ports.clock,
                local_fits=self.ports.local_fits,
                dest=folder,
            )
        except CrowdskyError as exc:
            self.result["upload_error"] = str(exc)
            progress.line(f"Not uploading from {self.telescope.name}: {exc}")
            self.server = None
            return None
        uploads = _Uploads(uploader, self.cancel)
        uploads.start(self.telescope.name)
        return uploads

    def _stack(
        self, service: Crowdsky, seestar: Seestar, stacked: Callable[[BlockOutcome], None]
    ) -> None:
        for target in list_target_folders(seestar):
            try:
                summary = service.stack_blocks(target, **self.plan, on_block=stacked)
            except CrowdskyError as exc:
                self.result["targets_failed"][target] = str(exc)
                service.progress.line(f"{target}: {exc}")
                continue
            for key in ("blocks_stacked", "blocks_failed", "blocks_skipped"):
                self.result[key] += summary[key]
            self.result["files_stacked"] += summary["files"]

    def _sweep(
        self,
        seestar: Seestar,
        progress: Progress,
        journal: UploadJournal,
        folder: Path,
        early: dict[str, UploadResult],
    ) -> None:
        assert self.server is not None
        try:
            summary = upload_all_stacks(
                self.server,
                journal=journal,
                progress=_WithoutSkips(progress),
                clock=self.ports.clock,
                local_fits=self.ports.local_fits,
                seestar=seestar,
                dest=folder,
            )
        except CrowdskyError as exc:
            self.result["upload_error"] = str(exc)
            progress.line(f"Uploads from {self.telescope.name} stopped: {exc}")
            summary = {"uploaded": [], "skipped": [], "failed": []}
        uploaded = [n for n, r in early.items() if r is UploadResult.UPLOADED]
        uploaded += [n for n in summary["uploaded"] if n not in uploaded]
        failed = [f for f in summary["failed"] if f["name"] not in uploaded]
        skipped = [n for n in summary["skipped"] if n not in uploaded]
        self.result.update(
            uploaded=uploaded,
            skipped=skipped,
            failed=failed,
            files_uploaded=len(uploaded),
            files_skipped=len(skipped),
            files_failed=len(failed),
        )


def folder_name(telescope: str) -> str:
    """The download folder of a telescope: its name with anything but ``A-Za-z0-9._-`` as ``_``.

    Examples
    --------
    >>> folder_name("127.0.0.1:4701:8081"), folder_name("seestar.local")
    ('127.0.0.1_4701_8081', 'seestar.local')
    """
    return re.sub(r"[^A-Za-z0-9._-]", "_", telescope) or "_"


def _not_ready(findings: Sequence[Finding]) -> str:
    """The error of a telescope whose pre-flight found configuration problems.

    Examples
    --------
    >>> from crowdsky.domain.preflight import Finding, Problem
    >>> _not_ready([Finding(Problem.RENAME_UNAVAILABLE, "port 445 closed. More.")])
    'not ready (nothing done): rename unavailable: port 445 closed.'
    """
    problems = "; ".join(f"{f.problem.value}: {_first_sentence(f.detail)}" for f in findings)
    return f"not ready (nothing done): {problems}"


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def _empty_result(name: str) -> dict[str, Any]:
    return {
        "telescope": name,
        "error": None,
        "busy": None,
        "preflight": [],
        "upload_error": None,
        "blocks_stacked": 0,
        "blocks_failed": 0,
        "blocks_skipped": 0,
        "files_stacked": [],
        "targets_failed": {},
        "files_uploaded": 0,
        "files_skipped": 0,
        "files_failed": 0,
        "uploaded": [],
        "skipped": [],
        "failed": [],
    }


def _failed(result: dict[str, Any]) -> bool:
    return bool(
        result["error"]
        or result["busy"]
        or result["upload_error"]
        or result["blocks_failed"]
        or result["targets_failed"]
        or result["files_failed"]
    )


def _interruption(runs: Sequence[_TelescopeRun]) -> KeyboardInterrupt:
    """The telescopes' uploads at a Ctrl-C, all together; a bare interrupt when none began."""
    stopped = [run.uploads_stopped for run in runs if run.uploads_stopped is not None]
    if not stopped:
        return KeyboardInterrupt()
    return UploadsInterrupted(
        [name for s in stopped for name in s.uploaded],
        [name for s in stopped for name in s.unfinished],
        [name for s in stopped for name in s.not_started],
    )


def run_night(
    telescopes: Sequence[Telescope],
    server: CollabServer | None,
    ports: NightPorts,
    *,
    dest: str | Path = ".",
    block_minutes: int = 15,
    min_exptime: float = 240,
    options: StackOptions | None = None,
    wait: float = 0.0,
    wait_poll: float = 5.0,
) -> dict[str, Any]:
    """Stack every eligible block on every telescope, and upload every stack not on the server.

    Each telescope is pre-flighted first (links, and whether it is imaging); one that is not
    ready is left untouched and the others go on.

    Parameters
    ----------
    telescopes : sequence of Telescope
        Worked on concurrently (one thread each), each one block at a time.
    server : CollabServer or None
        Where stacks go; ``None`` to stack only.
    ports : NightPorts
        Clock, FITS reader, journals and progress.
    dest : str or Path
        Downloaded stacks are kept in ``dest/<folder_name(telescope)>/<target>/``, beside each
        telescope's upload journal (or in the telescope's own ``folder``).
    block_minutes, min_exptime
        As for :meth:`~crowdsky.app.service.Crowdsky.stack_blocks`.
    options : StackOptions, optional
        Timeouts, polling and tiling.
    wait : float
        Seconds to wait for a busy telescope to become idle before leaving it alone (0: do not
        wait).
    wait_poll : float
        Seconds between two readings of a busy telescope's state while waiting.

    Returns
    -------
    dict
        ``telescopes``: one dict per telescope, in the order given, with ``telescope``,
        ``error`` (why it stopped, or ``None``; for a pre-flight that found the links not ready,
        ``"not ready (nothing done): ..."``), ``busy`` (the stages running on a telescope left
        alone because it was imaging, e.g. ``"View"``, or ``None``), ``preflight`` (the
        pre-flight's findings, ``{"problem", "detail"}``), ``upload_error``, ``blocks_stacked``,
        ``blocks_failed``, ``blocks_skipped``, ``files_stacked`` (new CrowdSky names),
        ``targets_failed`` (target → error), ``files_uploaded``, ``files_skipped``,
        ``files_failed`` (counts), ``uploaded``, ``skipped`` (names), ``failed``
        (``{"name", "error"}``) and ``ok`` (false for a busy or failed telescope); and ``ok``
        for the night (every telescope ok).

    Raises
    ------
    KeyboardInterrupt
        When interrupted; every telescope's batch stack was stopped first, and running again
        finishes the job. :class:`~crowdsky.errors.UploadsInterrupted` when uploads had begun:
        it says which stacks were uploaded (and recorded), cut short, or left for later.
    """
    names = [t.name for t in telescopes]
    if len(set(names)) != len(names):
        raise CrowdskyError(f"Each telescope needs its own name: {names}")
    cancel = threading.Event()
    shared = _SerialServer(server) if server is not None else None
    plan = {"block_minutes": block_minutes, "min_exptime": min_exptime}
    readiness = _Readiness(wait, wait_poll)
    stacking = options or StackOptions()
    runs = [
        _TelescopeRun(t, shared, ports, Path(dest), plan, stacking, cancel, readiness)
        for t in telescopes
    ]
    threads = [threading.Thread(target=run, name=f"night-{run.telescope.name}") for run in runs]
    for thread in threads:
        thread.start()
    # Each run's own event is waited on, not Thread.join: a Ctrl-C landing inside join() can
    # leave the thread marked as ended while it still runs (CPython 3.11), and the stacks it
    # was uploading would go unreported.
    try:
        for run in runs:
            while not run.ended.wait(_JOIN_SLICE):
                pass
    except KeyboardInterrupt:
        cancel.set()
        for run in runs:
            run.ended.wait()
        raise _interruption(runs) from None
    for thread in threads:
        thread.join()
    if any(run.interrupted for run in runs):
        raise _interruption(runs)
    results = []
    for run in runs:
        run.result["ok"] = not _failed(run.result)
        results.append(run.result)
    return {"telescopes": results, "ok": all(r["ok"] for r in results)}
