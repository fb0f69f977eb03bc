"""Sub-frames copied to this computer, worked on as if they were still on a Seestar (issue 13).

:class:`LocalArchive` satisfies the :class:`~crowdsky.app.ports.Seestar` port over a folder on
this computer, so planning, :func:`~crowdsky.app.stacking.run_block`, the renames, the pending
journal and the uploads work on it unchanged; the batch stack runs on this computer instead of
the telescope.

Theory of operation
-------------------
**The archive** (``root``) is read only. Every ``Light_*.fit`` under it is a raw sub-frame,
whatever the layout: the tree as copied from the telescope (``<root>/MyWorks/<target>_sub/`` or
``<root>/<target>_sub/``), a single ``<target>_sub`` folder, or any folder of ``Light_*.fit``
(nested folders too). A file in a raw sub-frame folder (``_sub``, ``-sub``, ``_mosaic_sub``)
is listed under that folder's name; any other is listed under ``<target>_sub``, its target taken
from its name. So the port's paths stay ``MyWorks/<folder>/<name>``. Two files with the same
folder and name (the same night copied twice) are one frame: the first path in sorted order is
used, with a :class:`~crowdsky.errors.CrowdskyWarning`.

**The output folder** (``output``) holds everything crowdsky writes: ``<output>/<target>/``
plays the telescope's ``MyWorks/<target>/``. Its ``CrowdSky_*`` stacks are the coverage (a block
with one is not stacked again), and only files there are ever renamed or deleted
(:func:`~crowdsky.domain.device_paths.check_mutable_path`, plus a check that the file is under
``output`` and is no raw sub-frame). The output folder may lie inside the archive (the default of
the command line is ``<root>/CrowdSky``) but never inside a raw sub-frame folder, and it may not
contain the archive.

**The clock**: an archive has none. :meth:`LocalArchive.device_time` reports neither a time nor
a zone, so planning takes the UTC offset from the sub-frames' ``DATE-OBS``
(:class:`~crowdsky.domain.timekeys.ZoneSource` ``HEADER``), exactly as for a Seestar that does not
report its zone; a frame near a block boundary has its own ``DATE-OBS`` read.

**The batch stack** runs the stacking function (``crowdsky.adapters.local_stack.stack_block``,
given as ``load_stacker`` so that its dependencies load only when a block is stacked) in a worker
thread. Progress comes from its ``on_frame(done, total)`` callback (``total`` counts the stacker's
steps, two per frame: reading and registering, then combining), turned into the device's
frames and percent, as polls (:meth:`batch_stack_status`) and as pushed events
(:class:`~crowdsky.app.ports.BatchStackEvents`); the completed status names the frames the
stacker left out and why (``left_out``). The stack is written under a
hidden temporary name in ``<output>/<target>/`` and, once complete, renamed (with its
companions) to the firmware's form ``DSO_Stacked_<kept>_<target>_<exp>_<YYYYMMDD>_<HHMMSS>.fit``
(this computer's local time), which the application then renames to its CrowdSky name, as it
does a device's output. :meth:`stop_batch_stack` asks the stacker to stop between frames and waits
for it: no partial output is left.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import attrs

from crowdsky.adapters.local_files import rename_no_clobber
from crowdsky.app.ports import (
    BatchStackState,
    BatchStackStatus,
    ByteProgress,
    DeviceTime,
    FileEntry,
    FolderEntry,
)
from crowdsky.domain import format_exposure, parse_raw_name
from crowdsky.domain.device_paths import (
    ROOT_FOLDER,
    check_folder,
    check_mutable_path,
    check_new_name,
    folder_name,
    is_sub_folder,
    split_device_path,
    sub_folder_of,
    target_of_sub_folder,
)
from crowdsky.errors import (
    BatchStackError,
    ConfigError,
    CrowdskyError,
    CrowdskyWarning,
    MissingExtraError,
    StorageError,
)

__all__ = [
    "STACK_EXTRA_MODULES",
    "LocalArchive",
    "StackBlock",
    "StackResult",
    "load_stacker_checked",
]

#: Top-level modules of the ``crowdsky[stack]`` extra: an import failure of one of these means
#: the extra is missing (any other import failure is a broken install and is not hidden).
STACK_EXTRA_MODULES = frozenset({"numpy", "cv2", "sep", "astroalign", "scipy", "skimage"})

#: Seconds :meth:`LocalArchive.stop_batch_stack` waits for the stacker to stop between frames.
STOP_WAIT_S = 120.0

# Prefix of the stacker's output while it works; hidden, so no listing shows it.
_WORKING_PREFIX = ".crowdsky-stacking-"


class StackResult(Protocol):
    """What the stacking function returns (``LocalStackResult``)."""

    @property
    def output(self) -> Path:
        """The stack written."""
        ...

    @property
    def kept(self) -> tuple[str, ...]:
        """Names of the sub-frames combined."""
        ...

    @property
    def left_out(self) -> tuple[tuple[str, str], ...]:
        """``(name, reason)`` of the sub-frames left out."""
        ...


class StackBlock(Protocol):
    """The stacking function: ``crowdsky.adapters.local_stack.stack_block``.

    It writes the device's stack format to ``output`` atomically, reports ``on_frame(done,
    total)``, polls ``cancelled()`` between frames, and raises a
    :class:`~crowdsky.errors.CrowdskyError` on failure or when cancelled.
    """

    def __call__(
        self,
        paths: Sequence[Path],
        output: Path,
        *,
        on_frame: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> StackResult:
        """Stack the sub-frames at ``paths`` into ``output``."""
        ...


def load_stacker_checked(load: Callable[[], StackBlock]) -> StackBlock:
    """``load()``, with an import failure of the ``[stack]`` extra as a one-line error.

    Raises
    ------
    MissingExtraError
        When ``load`` fails to import one of :data:`STACK_EXTRA_MODULES`; the message names
        ``pip install "crowdsky[stack]"``. Other import failures propagate unchanged.
    """
    try:
        return load()
    except ImportError as exc:
        missing = (exc.name or "").split(".", 1)[0]
        if missing not in STACK_EXTRA_MODULES:
            raise
        raise MissingExtraError(
            f"Stacking on this computer needs the [stack] extra ({missing} is not installed): "
            'pip install "crowdsky[stack]"'
        ) from exc


@attrs.frozen
class _RawFile:
    path: Path
    size: int


@attrs.define
class _Job:
    """One batch stack: its frames, where it writes, and its worker thread."""

    generation: int
    target: str
    exposure_s: float
    paths: tuple[Path, ...]
    cancel: threading.Event = attrs.field(factory=threading.Event)
    thread: threading.Thread | None = None
    started: float = attrs.field(factory=time.monotonic)


class LocalArchive:
    """A folder of raw sub-frames on this computer as a :class:`~crowdsky.app.ports.Seestar`.

    Parameters
    ----------
    root : Path
        The archive: the folder the telescope's sub-frames were copied to. Read only.
    output : Path
        Where stacks are written, ``<output>/<target>/``; created when the first one is.
    load_stacker : callable
        Returns the stacking function (see :class:`StackBlock`); called once, when the first
        batch stack starts, so planning needs none of its dependencies. An import failure of the
        ``[stack]`` extra becomes :class:`~crowdsky.errors.MissingExtraError`.

    Raises
    ------
    ConfigError
        When ``root`` is not a folder, holds no ``Light_*.fit``, or ``output`` lies inside a raw
        sub-frame folder or contains ``root``.
    """

    def __init__(self, root: Path, output: Path, *, load_stacker: Callable[[], StackBlock]) -> None:
        self.root = Path(root).absolute()
        self.output = Path(output).absolute()
        self._load_stacker = load_stacker
        self._stacker: StackBlock | None = None
        self._check_folders()
        self._raw = self._scan()
        if not self._raw:
            raise ConfigError(
                f"{self.root} holds no raw sub-frames (Light_*.fit). Point local_dir= at the "
                "folder the Seestar's MyWorks (or a <target>_sub folder) was copied to."
            )
        self._lock = threading.Lock()
        self._events: queue.Queue[tuple[int, BatchStackStatus]] = queue.Queue()
        self._generation = 0
        self._configured: tuple[str, tuple[str, ...]] | None = None
        self._job: _Job | None = None
        self._status: BatchStackStatus | None = None

    # --- the archive -----------------------------------------------------------------------

    def _check_folders(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(
                f"{self.root}: no such folder. Point local_dir= at the folder the Seestar's "
                "sub-frames were copied to."
            )
        resolved_out, resolved_root = self.output.resolve(), self.root.resolve()
        if resolved_root == resolved_out or resolved_out in resolved_root.parents:
            raise ConfigError(
                f"The output folder {self.output} contains the archive {self.root}; choose an "
                "output folder inside it or elsewhere (output=)."
            )
        if any(is_sub_folder(part) for part in resolved_out.parts):
            raise ConfigError(
                f"The output folder {self.output} is inside a raw sub-frame folder; crowdsky "
                "never writes there. Choose another (output=)."
            )

    def _scan(self) -> dict[str, dict[str, _RawFile]]:
        """Raw sub-frames by listed folder and name (the output folder is not searched)."""
        found: dict[str, dict[str, _RawFile]] = {}
        duplicates = 0
        output = self.output.resolve()
        for directory, subdirs, files in os.walk(self.root):
            here = Path(directory)
            subdirs[:] = sorted(
                d for d in subdirs if not d.startswith(".") and (here / d).resolve() != output
            )
            for name in sorted(files):
                frame = parse_raw_name(name)
                if frame is None:
                    continue
                folder = here.name if target_of_sub_folder(here.name) else None
                listed = found.setdefault(folder or sub_folder_of(frame.target), {})
                if name in listed:
                    duplicates += 1
                    continue
                path = here / name
                try:
                    listed[name] = _RawFile(path, path.stat().st_size)
                except OSError as exc:
                    raise StorageError(f"Cannot read {path}: {exc.strerror}") from exc
        if duplicates:
            warnings.warn(
                f"{duplicates} sub-frame(s) in {self.root} are copies of others with the same "
                "folder and name; each is used once.",
                CrowdskyWarning,
                stacklevel=3,
            )
        return found

    @property
    def identity(self) -> str:
        """``local:<output folder>``: pending stacks are kept per output folder."""
        return f"local:{self.output.resolve()}"

    def list_folders(self) -> list[FolderEntry]:
        """The raw sub-frame folders and the target folders of the output, sorted."""
        entries = {folder: len(files) for folder, files in self._raw.items()}
        if self.output.is_dir():
            for child in self.output.iterdir():
                if child.is_dir() and not child.name.startswith(".") and child.name not in entries:
                    entries[child.name] = sum(1 for _ in self._visible(child))
        return [FolderEntry(name, count) for name, count in sorted(entries.items())]

    def list_files(self, folder: str) -> list[FileEntry]:
        """Files of a raw folder, or of ``<output>/<folder>``; empty for an unknown folder."""
        folder = check_folder(folder_name(folder))
        if folder in self._raw:
            return [FileEntry(name, raw.size) for name, raw in sorted(self._raw[folder].items())]
        if is_sub_folder(folder):
            return []
        directory = self.output / folder
        try:
            return [FileEntry(p.name, p.stat().st_size) for p in sorted(self._visible(directory))]
        except OSError as exc:
            raise StorageError(f"Cannot list {directory}: {exc.strerror}") from exc

    @staticmethod
    def _visible(directory: Path) -> Iterator[Path]:
        if not directory.is_dir():
            return
        for child in directory.iterdir():
            if child.is_file() and not child.name.startswith("."):
                yield child

    def _real(self, path: str) -> Path:
        """The file on this computer behind a ``MyWorks/<folder>/<name>`` path."""
        folder, name = split_device_path(path)
        if folder in self._raw:
            raw = self._raw[folder].get(name)
            if raw is None:
                raise StorageError(f"No such sub-frame in {self.root}: {folder}/{name}")
            return raw.path
        if is_sub_folder(folder):
            raise StorageError(f"No such sub-frame folder in {self.root}: {folder}")
        return self.output / check_folder(folder) / check_new_name(name)

    def _output_file(self, path: str) -> Path:
        """The output-folder file behind ``path``; refused for anything that could be raw."""
        _, folder, name = check_mutable_path(path)
        real = self.output / folder / name
        if real.resolve().parent.parent != self.output.resolve() or self._is_raw(real):
            raise StorageError(f"Refusing to change {real}: only files in {self.output} change")
        return real

    def _is_raw(self, path: Path) -> bool:
        resolved = path.resolve()
        return any(
            raw.path.resolve() == resolved
            for files in self._raw.values()
            for raw in files.values()
            if raw.path.name == path.name
        )

    def read_header(self, path: str) -> dict[str, Any]:
        """The primary header of a sub-frame or stack, read (only) with astropy.

        Raises
        ------
        StorageError
            When the file is missing or not FITS.
        """
        real = self._real(path)
        from astropy.io import fits  # 0.25 s to import; listing and planning need none

        try:
            header = fits.getheader(real, 0)
        except FileNotFoundError as exc:
            raise StorageError(f"No such file: {real}") from exc
        except (OSError, ValueError, TypeError, IndexError) as exc:
            raise StorageError(f"{real} is not a readable FITS file: {exc}") from exc
        return {
            key: (value.rstrip() if isinstance(value, str) else value)
            for key, value in header.items()
            if key not in ("COMMENT", "HISTORY", "")
        }

    def device_time(self) -> DeviceTime:
        """Nothing: an archive has no clock and no zone (planning uses ``DATE-OBS``)."""
        return DeviceTime()

    def rename(self, path: str, new_name: str) -> None:
        """Rename a file in the output folder; never a raw sub-frame, never over another file."""
        source = self._output_file(path)
        target = source.with_name(check_new_name(new_name))
        try:
            rename_no_clobber(source, target)
        except FileExistsError:
            raise StorageError(f"Cannot rename {source.name}: {target.name} exists") from None
        except FileNotFoundError:
            raise StorageError(f"No such file: {source}") from None
        except OSError as exc:
            raise StorageError(f"Cannot rename {source}: {exc.strerror}") from exc

    def delete(self, path: str) -> None:
        """Delete a file in the output folder; never a raw sub-frame."""
        real = self._output_file(path)
        try:
            real.unlink()
        except FileNotFoundError:
            raise StorageError(f"No such file: {real}") from None
        except OSError as exc:
            raise StorageError(f"Cannot delete {real}: {exc.strerror}") from exc

    def download(self, path: str, dest: Path, *, on_bytes: ByteProgress | None = None) -> Path:
        """Copy the file at ``path`` to ``dest`` atomically; nothing to do when it is ``dest``.

        The copy is local, so ``on_bytes`` is told once, with the whole size, when it is done.
        """
        source, dest = self._real(path), Path(dest)
        with contextlib.suppress(OSError):
            if dest.samefile(source):
                self._copied(dest, on_bytes)
                return dest
        part = dest.with_name(dest.name + ".part")
        try:
            shutil.copyfile(source, part)
            os.replace(part, dest)
        except OSError as exc:
            with contextlib.suppress(OSError):
                part.unlink()
            raise StorageError(f"Cannot copy {source} to {dest}: {exc.strerror}") from exc
        self._copied(dest, on_bytes)
        return dest

    @staticmethod
    def _copied(dest: Path, on_bytes: ByteProgress | None) -> None:
        if on_bytes is not None:
            size = dest.stat().st_size
            on_bytes(size, size)

    # --- the batch stack -------------------------------------------------------------------

    def _stacker_function(self) -> StackBlock:
        if self._stacker is None:
            self._stacker = load_stacker_checked(self._load_stacker)
        return self._stacker

    def clear_batch_stack(self) -> None:
        """Forget the last result (a running stack goes on)."""
        with self._lock:
            if self._running():
                return
            self._status = None
            self._generation += 1

    def configure_batch_stack(self, folder: str, paths: Sequence[str]) -> None:
        """Select the frames (``MyWorks/<folder>/<name>`` paths) of the next stack."""
        name = folder_name(folder)
        if name not in self._raw:
            raise BatchStackError(f"{name} is no sub-frame folder of {self.root}")
        for path in paths:
            self._real(path)  # a StorageError for a frame that is not in the archive
        if not paths:
            raise BatchStackError("No frames to stack.")
        self._configured = (name, tuple(paths))

    def start_batch_stack(self) -> None:
        """Start stacking the configured frames in a worker thread.

        Raises
        ------
        BatchStackError
            When nothing is configured or a stack is already running.
        MissingExtraError
            When the ``[stack]`` extra is not installed.
        """
        stacker = self._stacker_function()
        with self._lock:
            if self._running():
                raise BatchStackError("A stack is already running on this computer.")
            if self._configured is None:
                raise BatchStackError("No frames configured for the batch stack.")
            folder, paths = self._configured
            self._generation += 1
            job = self._new_job(folder, paths)
            self._job = job
            self._status = BatchStackStatus(BatchStackState.STARTING, total_img=len(paths))
            job.thread = threading.Thread(
                target=self._work, args=(job, stacker), name="local-stack", daemon=True
            )
            job.thread.start()

    def _new_job(self, folder: str, paths: Sequence[str]) -> _Job:
        first = parse_raw_name(paths[0].rsplit("/", 1)[-1])
        target = first.target if first else (target_of_sub_folder(folder) or folder)
        exposure = first.exposure_s if first else 0.0
        return _Job(self._generation, target, exposure, tuple(self._real(p) for p in paths))

    def _running(self) -> bool:
        job = self._job
        return job is not None and job.thread is not None and job.thread.is_alive()

    def batch_stack_status(self) -> BatchStackStatus | None:
        """The current state; ``None`` before the first stack and after a clear."""
        with self._lock:
            return self._status

    def next_batch_stack_status(self, timeout: float) -> BatchStackStatus | None:
        """Wait up to ``timeout`` seconds for the running stack's next state."""
        deadline = time.monotonic() + max(0.0, timeout)
        while (left := deadline - time.monotonic()) > 0:
            try:
                generation, status = self._events.get(timeout=left)
            except queue.Empty:
                return None
            if generation == self._generation:
                return status
        return None

    def stop_batch_stack(self) -> None:
        """Ask the running stack to stop between frames and wait for it; harmless when idle."""
        job = self._job
        if job is None or job.thread is None:
            return
        job.cancel.set()
        job.thread.join(STOP_WAIT_S)

    def close(self) -> None:
        """Stop a running stack (no partial output is left)."""
        self.stop_batch_stack()

    def _publish(self, job: _Job, status: BatchStackStatus) -> None:
        with self._lock:
            if job.generation != self._generation:
                return
            self._status = status
        self._events.put((job.generation, status))

    def _work(self, job: _Job, stacker: StackBlock) -> None:
        folder = self.output / job.target
        working = folder / f"{_WORKING_PREFIX}{job.generation}-{os.getpid()}.fit"
        total = len(job.paths)

        def on_frame(done: int, of: int) -> None:
            # The stacker counts steps (``of`` is twice the frames: each frame is read and
            # registered, then combined); the status counts frames, as the device's does.
            share = min(1.0, done / of) if of > 0 else 0.0
            elapsed = time.monotonic() - job.started
            left = elapsed / share * (1.0 - share) if share > 0 else None
            self._publish(
                job,
                BatchStackStatus(
                    BatchStackState.WORKING,
                    percent=100.0 * share,
                    stacked_img=int(total * share),
                    total_img=total,
                    remaining_sec=left,
                ),
            )

        self._publish(job, BatchStackStatus(BatchStackState.WORKING, total_img=total))
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _remove_leftovers(folder)
            result = stacker(job.paths, working, on_frame=on_frame, cancelled=job.cancel.is_set)
            names = self._name_output(job, folder, working, len(result.kept))
        except Exception as exc:  # the worker reports every failure as the stack's state
            _remove_leftovers(folder, working.name.rsplit(".", 1)[0])
            self._publish(job, _ended(job, exc, total))
            return
        self._publish(
            job,
            BatchStackStatus(
                BatchStackState.COMPLETE,
                percent=100.0,
                stacked_img=len(result.kept),
                total_img=total,
                remaining_sec=0.0,
                output_folder=f"{ROOT_FOLDER}/{job.target}",
                output_files=names,
                left_out=tuple(result.left_out),
            ),
        )

    def _name_output(self, job: _Job, folder: Path, working: Path, kept: int) -> tuple[str, ...]:
        """Rename the stack (and companions) from its working name to the firmware's form."""
        stamp = datetime.now()
        while True:
            name = _firmware_name(kept, job.target, job.exposure_s, stamp)
            if not (folder / name).exists():
                break
            stamp += timedelta(seconds=1)
        stem, new_stem = working.name.rsplit(".", 1)[0], name.rsplit(".", 1)[0]
        renamed = [name]
        rename_no_clobber(working, folder / name)
        for extra in sorted(folder.glob(f"{stem}*")):
            new = new_stem + extra.name[len(stem) :]
            rename_no_clobber(extra, folder / new)
            renamed.append(new)
        return tuple(renamed)


def _ended(job: _Job, exc: Exception, total: int) -> BatchStackStatus:
    if job.cancel.is_set():
        return BatchStackStatus(BatchStackState.CANCEL, total_img=total)
    detail = str(exc) if isinstance(exc, CrowdskyError) else f"{type(exc).__name__}: {exc}"
    return BatchStackStatus(BatchStackState.FAIL, total_img=total, error=detail, code=1)


def _firmware_name(frames: int, target: str, exposure_s: float, stamp: datetime) -> str:
    """``DSO_Stacked_<N>_<target>_<exp>s_<YYYYMMDD>_<HHMMSS>.fit``, as the firmware names it."""
    exposure = format_exposure(exposure_s)
    return f"DSO_Stacked_{frames}_{target}_{exposure}_{stamp:%Y%m%d_%H%M%S}.fit"


def _remove_leftovers(folder: Path, stem: str = _WORKING_PREFIX) -> None:
    """Working files of a stack that did not finish (crowdsky killed): only our own names."""
    for leftover in folder.glob(f"{stem}*"):
        with contextlib.suppress(OSError):
            leftover.unlink()
