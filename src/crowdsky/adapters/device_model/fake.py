"""The in-memory Seestar: a device model true to the protocol reference, the simulator's engine.

:class:`FakeSeestar` satisfies :class:`crowdsky.app.ports.Seestar` and behaves like the firmware
where the protocol reference (§3, §4, §6, §7) says how it behaves: album counts are entries, not
files; file names carry the device's local time while ``DATE-OBS`` is UTC; a batch stack runs on
clock time, keeps its last terminal state until cleared, refuses a second start with 259, and on
firmware 7.75 resolves bare file names to nothing (``fail``, ``"no image"``, 267), earlier firmware
full paths. Every change of
the stacker's state goes through the transition table of
:mod:`~crowdsky.adapters.device_model.batch_stack`.

It never starts threads or sleeps: the batch stack's state is computed from the clock whenever it
is read, so a :class:`~crowdsky.adapters.clock.FakeClock` makes hour-long stacks instant. A lock
guards the state so the network simulator may call it from its server threads.

Faults are injected by changing :attr:`FakeSeestar.faults` (see :class:`Faults`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.device_model.batch_stack import (
    NO_IMAGE,
    StackDateObs,
    StackerState,
    StackEvent,
    StackRun,
    output_name,
    stack_image,
    stack_target,
    transition,
    wire_entry,
)
from crowdsky.adapters.device_model.faults import COMPANION_FILES, FIT_FILES, Faults, ReadFault
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER
from crowdsky.adapters.device_model.storage import DeviceStorage, MemoryStorage
from crowdsky.app.ports import (
    BatchStackState,
    BatchStackStatus,
    ByteProgress,
    Clock,
    DeviceTime,
    FileEntry,
    FolderEntry,
)
from crowdsky.domain.device_paths import (
    as_folder_path,
    check_mutable_path,
    check_new_name,
    device_path,
    folder_path,
)
from crowdsky.domain.firmware import (
    Firmware,
    PathForm,
    batch_path_form,
    needs_verify_marker,
    version_int,
)
from crowdsky.domain.preflight import Link
from crowdsky.errors import (
    ListingIncompleteError,
    PlanError,
    SeestarConnectionError,
    SeestarRpcError,
    StorageError,
)

__all__ = ["COMPANION_FILES", "FIT_FILES", "FakeSeestar", "Faults"]

_RPC_TEXT = {
    103: "method not found",
    207: "fail to operate",
    259: "stack is already running",
    267: "no image",
}

Event = dict[str, Any]


def _firmware_tuple(firmware: str) -> tuple[int, int]:
    major, _, minor = firmware.partition(".")
    return int(major), int(minor or 0)


def _zone_info(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PlanError(f"{zone!r} is not an IANA time zone such as 'Europe/Vienna'.") from exc


def _stem(name: str) -> str:
    for suffix in ("_thn.jpg", ".jpg", ".fits", ".fit"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


class FakeSeestar:
    """A Seestar in memory (or over a directory): files, clock and the batch stacker.

    Parameters
    ----------
    clock : Clock
        Time source; the device's clock is this clock in ``zone``. Tests pass a ``FakeClock``.
    zone : str
        The device's IANA zone; file names are stamped in its local time.
    report_zone : bool
        False models firmware whose ``pi_get_time`` does not report the zone.
    storage : DeviceStorage
        Where the files live; a fresh :class:`MemoryStorage` by default.
    seconds_per_frame, setup_seconds : float
        Batch-stack timing: a stack of ``n`` frames takes ``setup + per_frame * n`` seconds
        of clock time (0 by default: done at the first status read).
    firmware : str
        ``"7.75"`` by default; from 7.75 on, only full ``MyWorks/<folder>/<file>`` paths select
        frames for a batch stack, before it only bare file names.
    start_blank_polls : int
        That many status reads right after a start report state ``""`` (still starting).
    faults : Faults
        Injected faults; may be changed at any time.
    instrument, telescope : str
        ``INSTRUME`` and ``TELESCOP`` of the frames laid down on this device.
    stack_date_obs : StackDateObs
        Whether a stack's ``DATE-OBS`` is its first frame's (default) or the time it was
        stacked; which one real devices write is unknown.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        zone: str = "Europe/Vienna",
        report_zone: bool = True,
        storage: DeviceStorage | None = None,
        seconds_per_frame: float = 0.0,
        setup_seconds: float = 0.0,
        firmware: str = "7.75",
        start_blank_polls: int = 0,
        faults: Faults | None = None,
        instrument: str = "Seestar S50",
        telescope: str = "S50_5eed0042",
        stack_date_obs: StackDateObs = StackDateObs.FIRST_FRAME,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.zone = zone
        self._tz = _zone_info(zone)
        self.report_zone = report_zone
        self.storage: DeviceStorage = storage if storage is not None else MemoryStorage()
        self.seconds_per_frame = seconds_per_frame
        self.setup_seconds = setup_seconds
        self.firmware = firmware
        self.start_blank_polls = start_blank_polls
        self.faults = faults if faults is not None else Faults()
        self.instrument = instrument
        self.telescope = telescope
        self.stack_date_obs = stack_date_obs
        self._identity = f"in-memory:{telescope}:{uuid.uuid4().hex[:12]}"
        self._skew = timedelta(0)
        self._lock = threading.RLock()
        self._config: tuple[str, tuple[str, ...]] = ("", ())
        self._state = StackerState.IDLE
        self._run: StackRun | None = None  # None exactly while IDLE
        self._last_event: tuple[str, int] | None = None
        self._pending: list[Event] = []
        self._subscribers: list[Callable[[Event], None]] = []

    @property
    def identity(self) -> str:
        """The id of this device object (no two in-memory devices share one, even across runs)."""
        return self._identity

    # --- clock -------------------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        """The device's zone as a ``ZoneInfo``."""
        return self._tz

    @property
    def firmware_ver_int(self) -> int:
        """``2000 + 100 * major + minor``, as the ``Version`` event reports it."""
        return version_int(*_firmware_tuple(self.firmware))

    def firmware_info(self) -> Firmware:
        """Model and firmware, as ``get_device_state`` reports them."""
        ver_int = self.firmware_ver_int
        return Firmware(ver_int, self.firmware, self.instrument, needs_verify_marker(ver_int))

    def local_time(self, moment: datetime) -> datetime:
        """The device's naive wall-clock time at the aware ``moment`` (no clock skew)."""
        return moment.astimezone(self._tz).replace(tzinfo=None)

    def local_now(self) -> datetime:
        """The device's naive wall-clock time now, including any skew set by ``set_device_time``."""
        return self.local_time(self.clock.now() + self._skew)

    def device_time(self) -> DeviceTime:
        """The device's clock and, unless ``report_zone`` is off, its IANA zone."""
        return DeviceTime(local=self.local_now(), zone=self.zone if self.report_zone else None)

    def set_device_time(self, local: datetime, zone: str) -> None:
        """Set the clock as ``pi_set_time`` does: naive local wall time in IANA ``zone``."""
        tz = _zone_info(zone)
        with self._lock:
            self.zone, self._tz = zone, tz
            self._skew = local.replace(tzinfo=tz).astimezone(UTC) - self.clock.now()

    # --- files -------------------------------------------------------------------------------

    def list_folders(self) -> list[FolderEntry]:
        """Folders under ``MyWorks`` with album counts (entries: a ``.fit`` and its JPEGs = 1)."""
        return [
            FolderEntry(folder, len({_stem(f.name) for f in self.storage.files(folder)}))
            for folder in self.storage.folders()
        ]

    def list_albums(self) -> list[tuple[FolderEntry, list[FileEntry]]]:
        """Each folder with its album count and its files, from one listing of each.

        The files are listed as :meth:`list_files` does (its faults apply).
        """
        albums = []
        for folder in self.storage.folders():
            files = self.list_files(folder)
            albums.append((FolderEntry(folder, len({_stem(f.name) for f in files})), files))
        return albums

    def list_files(self, folder: str) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>``; empty for a folder that does not exist."""
        if folder in self.faults.listing_fails:
            raise ListingIncompleteError(folder_path(folder), 1, "injected fault")
        return self.storage.files(folder)

    def read_header(self, path: str) -> dict[str, Any]:
        """The primary FITS header; :class:`StorageError` when missing, not FITS or faulted."""
        fault = self.faults.read_refused(path)
        if fault == ReadFault.TRUNCATED:
            raise StorageError(f"{path} is not a FITS file: no END card before end of file")
        if fault is not None:
            raise StorageError(f"Seestar file server answered HTTP 500 for {path} (injected fault)")
        return self.storage.read_header(path)

    def rename(self, path: str, new_name: str) -> None:
        """Rename in the same folder, refusing what every Seestar adapter refuses.

        Raw sub-frame folders, paths that are not a file in a ``MyWorks`` folder and names
        with separators or wildcards are refused (:class:`StorageError`) by the rules of
        :mod:`crowdsky.domain.device_paths`, before anything is touched.
        """
        check_mutable_path(path)
        check_new_name(new_name)
        if self.faults.rename_refused(path):
            raise StorageError(f"Cannot rename {path}: the share refused (injected fault)")
        self.storage.rename(path, new_name)

    def delete(self, path: str) -> None:
        """Delete a file, refusing what every Seestar adapter refuses (see :meth:`rename`)."""
        check_mutable_path(path)
        self.storage.delete(path)

    def download(self, path: str, dest: Path, *, on_bytes: ByteProgress | None = None) -> Path:
        """Copy the file to ``dest`` atomically (written to ``dest.part``, then replaced).

        The copy is local and quick, so ``on_bytes`` is told once, with the whole size, when
        the file is in place.
        """
        copied = self.storage.download(path, Path(dest))
        if on_bytes is not None:
            size = copied.stat().st_size
            on_bytes(size, size)
        return copied

    # --- batch stacking ----------------------------------------------------------------------

    def configure_batch_stack(self, folder: str, paths: Sequence[str]) -> None:
        """Select frames as ``set_batch_stack_setting`` does (§4.1).

        Paths that do not name an existing ``.fit`` are dropped, as the device resolves them to
        nothing. Firmware 7.75 and later resolves only full ``MyWorks/<folder>/<file>`` paths,
        earlier firmware only bare names (in ``folder``): the other form is dropped too, so a
        stack of it fails with 267 "no image".
        """
        base = as_folder_path(folder)
        form = batch_path_form(self.firmware_ver_int)
        resolved = []
        for path in paths:
            bare = "/" not in path
            if bare != (form is PathForm.BARE):
                continue
            if bare:
                path = f"{base}/{path}"
            if path.lower().endswith((".fit", ".fits")) and self._exists(path):
                resolved.append(path)
        with self._lock:
            self._fire(StackEvent.CONFIGURE)
            self._config = (base, tuple(resolved))

    def _exists(self, path: str) -> bool:
        try:
            return self.storage.exists(path)
        except StorageError:
            return False

    def batch_stack_setting(self) -> dict[str, Any]:
        """What ``get_batch_stack_setting`` reports: ``{"path": ..., "files": [{"name": ...}]}``."""
        with self._lock:
            base, paths = self._config
        return {"path": base, "files": [{"name": p} for p in paths]}

    def start_batch_stack(self) -> None:
        """Start the configured stack; :class:`SeestarRpcError` 259 while one is working."""
        with self._lock:
            code = self.faults.refuse_start
            if code is not None:
                raise SeestarRpcError("start_batch_stack", code, _RPC_TEXT.get(code, "fail"))
            self._advance()
            self._fire(StackEvent.START)  # refused (259) while a stack works
            base, paths = self._config
            self._run = StackRun(
                base,
                paths,
                self.clock.now(),
                self.setup_seconds,
                self.seconds_per_frame,
                rejected=max(0, self.faults.reject_frames),
                fail=self.faults.fail_stack,
                stuck=self.faults.stuck,
                drop_companions=self.faults.drop_companions,
                missing_radec=self.faults.missing_radec,
                blank_polls=self.start_blank_polls,
            )
            self._last_event = None
            self._advance()
        self._deliver()

    def batch_stack_status(self) -> BatchStackStatus | None:
        """The ``BatchStack`` state now; ``None`` before the first stack and after a clear."""
        with self._lock:
            status = self._read()
        self._deliver()
        return status

    def batch_stack_app_state(self) -> dict[str, Any] | None:
        """The ``BatchStack`` entry of ``iscope_get_app_state`` (§4.2), ``None`` when absent."""
        with self._lock:
            status = self._read()
            entry = None if status is None else self._wire(status)
        self._deliver()
        return entry

    def check_link(self, link: Link) -> None:
        """Pre-flight probe: fails as the network adapter would for ``faults.unreachable``."""
        if link.value in self.faults.unreachable:
            if link is Link.RENAME:
                raise StorageError("Cannot open the 'EMMC Images' share (injected fault)")
            raise SeestarConnectionError(f"The {link.value} link did not answer (injected fault)")

    def app_state(self) -> dict[str, str]:
        """Each app-state entry → its state: ``BatchStack`` and ``faults.imaging``."""
        state = dict(self.faults.imaging)
        entry = self.batch_stack_app_state()
        if entry is not None:
            state["BatchStack"] = str(entry.get("state", ""))
        return state

    def poll_events(self) -> None:
        """Work on the stack as the device does in the background, and push any state change.

        Reads the frames of a working stack once (outside the lock, so status reads are not held
        up; the finish then only writes its output, as a device finishes when its last frame is
        done rather than when it is asked), brings the stack up to the clock and pushes any
        state change to subscribers. Unlike a status read, this does not use up the blank reads
        after a start.
        """
        self._read_frames()
        with self._lock:
            self._advance()
        self._deliver()

    def seconds_to_next_change(self) -> float | None:
        """Clock seconds until the working stack's next frame is done or it ends.

        ``None`` when nothing is due: no stack works, or it is stuck.
        """
        with self._lock:
            run = self._run
            if run is None or self._state is not StackerState.WORKING:
                return None
            return run.next_change((self.clock.now() - run.started).total_seconds())

    def _read_frames(self) -> None:
        with self._lock:
            run = self._run
            if run is None or self._state is not StackerState.WORKING or run.headers is not None:
                return
            kept = run.kept
        try:
            headers = [self.storage.read_header(path) for path in kept]
        except StorageError:
            return  # the finish reads them again and fails the stack with the error
        with self._lock:
            if self._run is run:
                run.headers = headers

    def stop_batch_stack(self) -> None:
        """Cancel a working stack (state ``cancel``, no output); harmless otherwise."""
        with self._lock:
            self._advance()
            before = self._state
            if self._fire(StackEvent.STOP) is not before:  # working -> cancel: record it
                run = self._run
                assert run is not None
                now = self.clock.now()
                working = run.working((now - run.started).total_seconds())
                run.finish(attrs.evolve(working, state=BatchStackState.CANCEL), now)
                self._note_change()
        self._deliver()

    def clear_batch_stack(self) -> None:
        """Forget the last terminal state; a stack still working keeps reporting itself."""
        with self._lock:
            self._advance()
            if self._fire(StackEvent.CLEAR) is StackerState.IDLE:
                self._run = None
                self._last_event = None
        self._deliver()

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` with ``{"Event": "BatchStack", ...}`` on each state change.

        Events are delivered synchronously, outside the lock, by the call that noticed the
        change. Returns a function that unsubscribes.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # --- internals (call with the lock held) -------------------------------------------------

    def _fire(self, event: StackEvent) -> StackerState:
        """Move the stacker by the transition table; a refused event raises and changes nothing."""
        self._state = transition(self._state, event)
        return self._state

    def _read(self) -> BatchStackStatus | None:
        run = self._run
        if run is None:
            return None
        self._advance()
        if run.blank_polls > 0:
            run.blank_polls -= 1
            return BatchStackStatus(BatchStackState.STARTING)
        return self._status()

    def _status(self) -> BatchStackStatus:
        run = self._run
        assert run is not None
        if run.final is not None:
            return run.final
        return run.working((self.clock.now() - run.started).total_seconds())

    def _advance(self) -> None:
        """Bring a working run up to the clock: a progress tick, or its finish or failure."""
        run = self._run
        if run is None:
            return
        if self._state is StackerState.WORKING:
            ending = run.ending()
            if ending is None or self.clock.now() < run.started + timedelta(seconds=ending[0]):
                self._fire(StackEvent.TICK)
            else:
                at = run.started + timedelta(seconds=ending[0])
                failure = ending[1]
                if failure is None:
                    final = self._complete(run, at)
                else:
                    final = self._failed(run, failure, ending[0])
                complete = final.state is BatchStackState.COMPLETE
                self._fire(StackEvent.FINISH if complete else StackEvent.FAIL)
                run.finish(final, at)
        self._note_change()

    def _failed(self, run: StackRun, failure: tuple[str, int], at_s: float) -> BatchStackStatus:
        working = run.working(at_s)
        if failure == NO_IMAGE:
            working = BatchStackStatus(BatchStackState.STARTING, total_img=run.total)
        return attrs.evolve(working, state=BatchStackState.FAIL, error=failure[0], code=failure[1])

    def _complete(self, run: StackRun, at: datetime) -> BatchStackStatus:
        kept = run.kept
        try:
            headers = run.headers or [self.storage.read_header(path) for path in kept]
        except StorageError as exc:
            return BatchStackStatus(
                BatchStackState.FAIL, total_img=run.total, error=str(exc), code=-1
            )
        target = stack_target(run.folder, kept[0], headers[0])
        stacked_at = at + self._skew if self.stack_date_obs is StackDateObs.STACKING_TIME else None
        image = stack_image(
            headers, target=target, missing_radec=run.missing_radec, stacked_at=stacked_at
        )
        exposure = float(image.cards.get("EXPTIME", 0.0))
        name = output_name(len(kept), target, exposure, self.local_time(at + self._skew))
        folder = folder_path(target)
        self.storage.put(device_path(target, name), image)
        names = [name]
        if not run.drop_companions:
            stem = name.rsplit(".", 1)[0]
            for companion in (f"{stem}.jpg", f"{stem}_thn.jpg"):
                self.storage.put(device_path(target, companion), JPEG_PLACEHOLDER)
            names.append(f"{stem}_thn.jpg")
        return BatchStackStatus(
            BatchStackState.COMPLETE,
            percent=100.0,
            stacked_img=len(kept),
            total_img=run.total,
            remaining_sec=0.0,
            output_folder=folder,
            output_files=tuple(names),
        )

    def _note_change(self) -> None:
        run = self._run
        if run is None:
            return
        status = self._status()
        key = (status.state, status.stacked_img)
        if key != self._last_event:
            self._last_event = key
            self._pending.append({"Event": "BatchStack", **self._wire(status)})

    def _wire(self, status: BatchStackStatus) -> dict[str, Any]:
        run = self._run
        assert run is not None
        now = self.clock.now()
        date = ""
        if run.final_at is not None:
            date = f"{self.local_time(run.final_at + self._skew):%Y-%m-%d %H:%M:%S}"
        return wire_entry(status, run.lapse_ms(now), date)

    def _deliver(self) -> None:
        with self._lock:
            events, self._pending = self._pending, []
            subscribers = list(self._subscribers)
        for event in events:
            for callback in subscribers:
                callback(event)
