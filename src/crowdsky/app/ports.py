"""Ports: what the application needs from the outside world, as ``typing.Protocol`` classes.

Adapters satisfy these structurally (no inheritance): the in-memory
:class:`~crowdsky.adapters.device_model.fake.FakeSeestar`, the network Seestar, the CrowdSky HTTP
client.
The contract tests in ``tests/adapters`` check the behaviour each docstring promises.

Paths on the Seestar are strings relative to the storage root, always starting with
``MyWorks/``: ``"MyWorks/IC 434_sub/Light_IC 434_10.0s_LP_20260227-211503.fit"``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:  # in annotations only: a port's user loads what it needs
    from crowdsky.domain.blocks import CoverageKey
    from crowdsky.domain.firmware import Firmware
    from crowdsky.domain.orphans import PendingStack
    from crowdsky.domain.preflight import Link
    from crowdsky.domain.uploads import JournalEntry

__all__ = [
    "BatchStackEvents",
    "BatchStackState",
    "BatchStackStatus",
    "ByteProgress",
    "Clock",
    "ConcurrentHeaderReads",
    "DeviceChecks",
    "DeviceIdentity",
    "DeviceTime",
    "FileEntry",
    "FirmwareReport",
    "FolderEntry",
    "HeaderCache",
    "HeaderFact",
    "LocalFits",
    "PagedListing",
    "Progress",
    "Seestar",
    "StackJournal",
    "UploadJournal",
]

#: Header cards as read from a FITS file: keyword -> value (strings right-stripped).
Header = Mapping[str, Any]

#: Called as a transfer's bytes move: ``(done, total)``, ``total`` ``None`` when unknown. Called
#: once per piece of the body (not per byte), with ``done`` growing, the last time with all
#: of it; a retried request starts again from 0.
ByteProgress = Callable[[int, int | None], None]


@attrs.frozen
class FolderEntry:
    """A folder under ``MyWorks`` with the device's album count (entries, not files)."""

    name: str
    count: int = 0


@attrs.frozen
class FileEntry:
    """A file in a folder on the Seestar.

    Parameters
    ----------
    name : str
        Bare file name.
    size : int
        Size in bytes (the device reports KiB; adapters convert), 0 when unknown.
    """

    name: str
    size: int = 0


@attrs.frozen
class HeaderFact:
    """What planning took from one raw sub-frame's header, kept for later runs.

    A raw sub-frame is never rewritten, so what its header said stays true while a file of the
    same path and size is listed.

    Parameters
    ----------
    path : str
        ``MyWorks/<folder>/<name>`` of the sub-frame.
    size : int
        Its size in bytes as listed when the header was read (never 0: an unknown size is no
        key).
    date_obs : str or None
        The ``DATE-OBS`` card as read (``None``: the header was read and has no text card).
    """

    path: str
    size: int
    date_obs: str | None


@attrs.frozen
class DeviceTime:
    """The device's clock as ``pi_get_time`` reports it.

    Parameters
    ----------
    local : datetime or None
        Naive device wall-clock time, when reported.
    zone : str or None
        IANA zone name (``"Europe/Vienna"``), when reported.
    """

    local: datetime | None = None
    zone: str | None = None


class BatchStackState(enum.StrEnum):
    """The values of ``BatchStack.state`` (protocol reference §4.2); the value is the wire text.

    A state this version does not know is :attr:`UNKNOWN` (not terminal, so a poll keeps
    waiting); :attr:`BatchStackStatus.device_state` keeps the device's own text.
    """

    #: ``""``: the device has not filled in the state yet, right after a start.
    STARTING = ""
    WORKING = "working"
    COMPLETE = "complete"
    FAIL = "fail"
    CANCEL = "cancel"
    #: A state text the device sent that is none of the above.
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, text: str) -> BatchStackState:
        """The member whose wire text is ``text``; :attr:`UNKNOWN` for any other text.

        Examples
        --------
        >>> BatchStackState.parse("complete"), BatchStackState.parse("paused")
        (<BatchStackState.COMPLETE: 'complete'>, <BatchStackState.UNKNOWN: 'unknown'>)
        """
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN

    @property
    def terminal(self) -> bool:
        """True for ``complete``, ``fail`` and ``cancel``: the stack will not change any more."""
        return self in (BatchStackState.COMPLETE, BatchStackState.FAIL, BatchStackState.CANCEL)


@attrs.frozen
class BatchStackStatus:
    """One reading of the device's ``BatchStack`` app state.

    Parameters
    ----------
    state : BatchStackState
        ``working``, ``complete``, ``fail``, ``cancel``, ``""`` while starting, or
        :attr:`~BatchStackState.UNKNOWN`.
    percent : float
        0-100.
    stacked_img, total_img : int
        Frames stacked so far, frames configured.
    remaining_sec : float or None
        The device's estimate of the time left.
    output_folder : str or None
        ``MyWorks/<target>`` where the output was written (``complete`` only).
    output_files : tuple of str
        Bare names the device reports for the output (``complete`` only).
    error : str or None
        The device's error text (``fail``).
    code : int
        The device's error code, 0 when none.
    device_state : str or None
        The device's own state text when ``state`` is :attr:`~BatchStackState.UNKNOWN`.
    left_out : tuple of (str, str)
        ``(sub-frame name, reason)`` of each frame the stacker could not use (``complete``
        only). A Seestar does not say which frames it dropped: empty for a device; a stack on
        this computer names them (``"too few stars (0)"``).
    """

    state: BatchStackState
    percent: float = 0.0
    stacked_img: int = 0
    total_img: int = 0
    remaining_sec: float | None = None
    output_folder: str | None = None
    output_files: tuple[str, ...] = ()
    error: str | None = None
    code: int = 0
    device_state: str | None = None
    left_out: tuple[tuple[str, str], ...] = ()

    @property
    def terminal(self) -> bool:
        """True once the stack has completed, failed or been cancelled."""
        return self.state.terminal

    @property
    def state_text(self) -> str:
        """The state as the device wrote it (its own text for an unknown state)."""
        if self.state is BatchStackState.UNKNOWN and self.device_state is not None:
            return self.device_state
        return self.state.value

    @property
    def output_fit(self) -> str | None:
        """Path of the stacked ``.fit`` (``MyWorks/<target>/DSO_Stacked_...fit``), if any."""
        for name in self.output_files:
            if name.lower().endswith((".fit", ".fits")) and self.output_folder:
                return f"{self.output_folder}/{name}"
        return None


class Seestar(Protocol):
    """A Seestar telescope: its files, its clock and its on-device batch stacker."""

    def list_folders(self) -> Sequence[FolderEntry]:
        """Folders directly under ``MyWorks`` (targets, ``*_sub`` folders, ...)."""
        ...

    def list_files(self, folder: str) -> Sequence[FileEntry]:
        """Files in ``MyWorks/<folder>``; an empty sequence for a folder that does not exist."""
        ...

    def read_header(self, path: str) -> Header:
        """The primary FITS header of the file at ``path``.

        Raises :class:`~crowdsky.errors.StorageError` when the file is missing or not FITS.
        """
        ...

    def device_time(self) -> DeviceTime:
        """The device's clock and zone; fields it does not report are ``None``."""
        ...

    def clear_batch_stack(self) -> None:
        """Forget the last batch-stack result, so the next status read is not stale."""
        ...

    def configure_batch_stack(self, folder: str, paths: Sequence[str]) -> None:
        """Select the frames (full ``MyWorks/...`` paths) of the next batch stack in ``folder``."""
        ...

    def start_batch_stack(self) -> None:
        """Start the configured batch stack.

        Raises :class:`~crowdsky.errors.SeestarRpcError` when the device refuses (for example
        259 while another stack runs).
        """
        ...

    def batch_stack_status(self) -> BatchStackStatus | None:
        """The current ``BatchStack`` state; ``None`` before the first stack or after a clear."""
        ...

    def stop_batch_stack(self) -> None:
        """Cancel the running batch stack (state becomes ``cancel``); harmless when idle."""
        ...

    def rename(self, path: str, new_name: str) -> None:
        """Rename the file at ``path`` to ``new_name`` in the same folder.

        Raises :class:`~crowdsky.errors.StorageError` when the file is missing, the target name
        exists, or the storage refuses. Never called on a ``*_sub`` folder.
        """
        ...

    def delete(self, path: str) -> None:
        """Delete the file at ``path``; :class:`~crowdsky.errors.StorageError` if that fails."""
        ...

    def download(self, path: str, dest: Path, *, on_bytes: ByteProgress | None = None) -> Path:
        """Copy the file at ``path`` to the local file ``dest``, atomically; return ``dest``.

        ``on_bytes`` is told the bytes copied so far as pieces arrive (see
        :data:`ByteProgress`); its last call, before this returns, has ``done`` equal to the
        file's size.
        """
        ...


@runtime_checkable
class ConcurrentHeaderReads(Protocol):
    """Optional: a Seestar whose ``read_header`` may run in several threads at once.

    The network adapter reads headers over a pool of HTTP connections: planning asks for this
    many at a time instead of one after another.
    """

    @property
    def concurrent_header_reads(self) -> int:
        """How many header reads may be in flight at once (1: one after another)."""
        ...


@runtime_checkable
class PagedListing(Protocol):
    """Optional: a Seestar whose listings come in pages, handed over as they arrive.

    The network adapter pages a folder 20 entries at a time over JSON-RPC; planning starts
    reading the headers of frames already seen while later pages are still on their way.
    """

    def list_files_paged(
        self, folder: str, on_page: Callable[[Sequence[FileEntry]], None]
    ) -> Sequence[FileEntry]:
        """:meth:`Seestar.list_files`, telling ``on_page`` each page's entries as they arrive.

        Only the returned listing is complete and checked: pages seen before a failure, or
        seen again when the listing is retried, are a preview and nothing more. The call
        raises as ``list_files`` does (a listing that stays incomplete raises
        :class:`~crowdsky.errors.ListingIncompleteError`), and what ``on_page`` raises ends it.
        """
        ...


@runtime_checkable
class FirmwareReport(Protocol):
    """Optional: a Seestar that can tell its model and firmware (``crowdsky time`` shows them)."""

    def firmware_info(self) -> Firmware | None:
        """The model and firmware; ``None`` when the device did not tell."""
        ...


@runtime_checkable
class BatchStackEvents(Protocol):
    """Optional: a Seestar that pushes ``BatchStack`` events (the network adapter).

    The stacking loop takes the state an event carries instead of polling for it, and still
    polls when no event comes, because no capture shows the firmware pushing them (protocol
    reference §4.2).
    """

    def next_batch_stack_status(self, timeout: float) -> BatchStackStatus | None:
        """Wait up to ``timeout`` seconds for a pushed ``BatchStack`` event.

        Returns the status its payload carries, or ``None`` when none came in time or its
        payload could not be read (the caller then polls as usual).
        """
        ...


@runtime_checkable
class DeviceChecks(Protocol):
    """Optional: a Seestar that can be checked before any work starts (pre-flight).

    Both the network adapter and the device model answer it; a Seestar without it is taken
    as ready.
    """

    def check_link(self, link: Link) -> None:
        """Probe ``link`` harmlessly (no file is changed); return when it works.

        Raises :class:`~crowdsky.errors.SeestarAuthError` when the key is missing, unreadable
        or rejected, and another :class:`~crowdsky.errors.CrowdskyError` when the link does not
        work, with a message that says why.
        """
        ...

    def app_state(self) -> Mapping[str, str]:
        """Each entry of the device's app state (``View``, ``BatchStack``, ...) → its state text."""
        ...


@runtime_checkable
class DeviceIdentity(Protocol):
    """Optional: a Seestar that knows a stable name for itself (for :class:`StackJournal`).

    The network adapter answers with its host and JSON-RPC port, the in-memory device with an
    id of its own. A Seestar without one keeps no pending stacks.
    """

    @property
    def identity(self) -> str:
        """The same text for the same telescope across runs of crowdsky; never empty."""
        ...


class HeaderCache(Protocol):
    """Header facts of raw sub-frames remembered across runs, per telescope and sub folder.

    Only headers that were read are remembered; a read that failed is never one. Losing facts
    is harmless (the headers are read again), so an unreadable store is an empty one.
    """

    def recall(self, device: str, folders: Sequence[str]) -> Sequence[HeaderFact]:
        """Every fact kept for ``device`` in the sub ``folders`` (bare folder names).

        The caller checks each fact's size against its listing. Never raises for a store that
        cannot be read: it is taken as empty (and the adapter says so in the log).
        """
        ...

    def keep(self, device: str, folders: Sequence[str], facts: Sequence[HeaderFact]) -> None:
        """Make ``facts`` the facts of ``device`` in ``folders``, replacing the ones kept there.

        Facts of other devices and folders are kept. Never raises for a store that cannot be
        written (the facts are then only read again next time); another process writing at the
        same time may win, never tear the store.
        """
        ...


class Clock(Protocol):
    """Wall-clock time and waiting; the fake clock in tests advances on ``sleep``."""

    def now(self) -> datetime:
        """The current time, time-zone aware."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class Progress(Protocol):
    """Where the user-facing lines and stacking progress go."""

    def line(self, text: str) -> None:
        """One line of the report (the lines the specification prints)."""
        ...

    def stack_progress(self, status: BatchStackStatus) -> None:
        """A status reading while a block stacks (percent, frames, time left)."""
        ...

    def run_planned(self, blocks: int, frames: int, targets: int) -> None:
        """Stacking is about to start: ``blocks`` blocks of ``frames`` frames in ``targets``."""
        ...

    def target_started(self, target: str, index: int, total: int) -> None:
        """Stacking moves on to ``target``, the ``index``-th (from 1) of ``total``."""
        ...

    def block_started(self, label: str, frames: int) -> None:
        """A block of ``frames`` frames starts; ``label`` is its span (dated if several nights)."""
        ...

    def block_finished(self, stacked: bool) -> None:
        """The block that started last is done: stacked and renamed, or not."""
        ...

    def transfer(self, name: str, done: int, total: int | None) -> None:
        """``done`` of ``total`` bytes (``None``: unknown) of the file ``name`` moved so far."""
        ...


class LocalFits(Protocol):
    """FITS files on this computer (the stacks to upload)."""

    def read_header(self, path: Path) -> Header:
        """The primary header of the local file ``path``.

        Raises :class:`~crowdsky.errors.StorageError` when the file cannot be read or is not
        FITS; never returns an empty header in place of one it could not read.
        """
        ...


class UploadJournal(Protocol):
    """What was uploaded from one folder: the bytes sent (name, size, SHA-256) and the receipt."""

    def entries(self) -> tuple[JournalEntry, ...]:
        """Every upload recorded so far, oldest first.

        Raises :class:`~crowdsky.errors.CrowdskyError` when the journal exists but cannot be
        read (an unreadable journal is never taken for an empty one).
        """
        ...

    def holds(self, name: str, size: int, sha256: str) -> bool:
        """True when an upload of exactly these bytes (same name, size and SHA-256) is recorded."""
        ...

    def record(self, entry: JournalEntry) -> None:
        """Add an upload and persist it before returning.

        The write is atomic: after a crash the journal holds every earlier entry, with or
        without this one, never a torn file.
        """
        ...


class StackJournal(Protocol):
    """Batch stacks crowdsky started and has not seen end, kept across runs of crowdsky.

    A record is written before a block's batch stack starts and removed once nothing more can
    come of that stack. One left behind (crowdsky was killed) lets the next run adopt the output
    the telescope finished alone (:func:`crowdsky.domain.orphans.decide_orphan`).
    """

    def pending(self, device: str) -> tuple[PendingStack, ...]:
        """Every record of ``device``, oldest first.

        Raises :class:`~crowdsky.errors.CrowdskyError` when the records exist but cannot be
        read (an unreadable journal is never taken for an empty one).
        """
        ...

    def begin(self, record: PendingStack) -> None:
        """Record ``record`` (replacing one of the same device and key) before returning.

        The write is atomic: after a crash the journal holds the earlier records, with or
        without this one, never a torn file. Raises :class:`~crowdsky.errors.CrowdskyError`
        when it cannot be written.
        """
        ...

    def done(self, device: str, key: CoverageKey) -> None:
        """Remove the record of ``device`` and ``key``, atomically; nothing when there is none.

        Raises :class:`~crowdsky.errors.CrowdskyError` when the change cannot be written.
        """
        ...
