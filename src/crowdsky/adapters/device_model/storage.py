"""Where the device model keeps its files: in memory, or in a real ``MyWorks/`` tree on disk.

Both stores hold the same things: FITS images
(:class:`~crowdsky.adapters.device_model.fits_files.FitsImage`) and JPEG companions, addressed
by ``MyWorks/<folder>/<file>`` paths as on the Seestar's eMMC (protocol reference §3.1).
:class:`MemoryStorage` keeps header cards only and reports the size of the full S50 file it
would write; :class:`DirectoryStorage` writes real files (small frames by default) that an HTTP
or SMB server can share as they are.

Paths are split, and new names checked, by :mod:`crowdsky.domain.device_paths`, the same rules
the real adapters apply. The stores do not protect raw sub-frames: that rule belongs to the
device model (:class:`~crowdsky.adapters.device_model.fake.FakeSeestar`), which the laying-down
of a night bypasses.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from crowdsky.adapters.device_model.fits_files import (
    S50_SHAPE,
    SMALL_SHAPE,
    FitsImage,
    header_of,
    read_fits_header,
    write_fits,
)
from crowdsky.adapters.local_files import rename_no_clobber
from crowdsky.app.ports import FileEntry
from crowdsky.domain.device_paths import (
    ROOT_FOLDER,
    check_folder,
    check_new_name,
    device_path,
    is_sub_folder,
    split_device_path,
)
from crowdsky.errors import StorageError

__all__ = ["DeviceStorage", "DirectoryStorage", "MemoryStorage", "SplitStorage"]

#: What a stored file is: a FITS image or the bytes of a JPEG companion.
Content = FitsImage | bytes


class DeviceStorage(Protocol):
    """The files of a Seestar, by ``MyWorks/<folder>/<file>`` path."""

    def folders(self) -> list[str]:
        """Folder names directly under ``MyWorks``, sorted."""
        ...

    def files(self, folder: str) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>`` sorted by name; empty for a missing folder."""
        ...

    def exists(self, path: str) -> bool:
        """True if a file is stored at ``path``."""
        ...

    def read_header(self, path: str) -> dict[str, Any]:
        """Primary FITS header; :class:`StorageError` if missing or not FITS."""
        ...

    def put(self, path: str, content: Content) -> None:
        """Store ``content`` at ``path`` (creating the folder, replacing any file)."""
        ...

    def rename(self, path: str, new_name: str) -> None:
        """Rename within the folder; :class:`StorageError` if missing or the target exists."""
        ...

    def delete(self, path: str) -> None:
        """Delete the file; :class:`StorageError` if it is missing."""
        ...

    def download(self, path: str, dest: Path) -> Path:
        """Write the file to ``dest`` atomically (via ``dest.part``); return ``dest``."""
        ...


@contextlib.contextmanager
def _atomic_target(dest: Path) -> Iterator[Path]:
    """Yield ``dest.part`` to write to; replace ``dest`` with it only if the write succeeds."""
    part = dest.with_name(dest.name + ".part")
    try:
        yield part
        os.replace(part, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            part.unlink()
        raise StorageError(f"Could not write {dest}: {exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise


class MemoryStorage:
    """Files in memory: header cards and companions, sized like the real S50 files.

    Parameters
    ----------
    shape : tuple of int
        Rows and columns of a frame; the S50's 1920 x 1080 by default, so a sub is listed at
        4 150 080 bytes (≈4050 KiB, protocol reference §3.3) and downloads at that size.
    """

    def __init__(self, shape: tuple[int, int] = S50_SHAPE) -> None:
        self.shape = shape
        self._folders: dict[str, dict[str, Content]] = {}
        self._lock = threading.RLock()

    def folders(self) -> list[str]:
        """Folder names directly under ``MyWorks``, sorted."""
        with self._lock:
            return sorted(self._folders)

    def files(self, folder: str) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>`` sorted by name; empty for a missing folder."""
        with self._lock:
            stored = dict(self._folders.get(folder, {}))
        return [FileEntry(name, self._size(stored[name])) for name in sorted(stored)]

    def _size(self, content: Content) -> int:
        return len(content) if isinstance(content, bytes) else content.size(self.shape)

    def _get(self, path: str) -> Content:
        folder, name = split_device_path(path)
        with self._lock:
            content = self._folders.get(folder, {}).get(name)
        if content is None:
            raise StorageError(f"No such file on the Seestar: {path}")
        return content

    def exists(self, path: str) -> bool:
        """True if a file is stored at ``path``."""
        folder, name = split_device_path(path)
        with self._lock:
            return name in self._folders.get(folder, {})

    def read_header(self, path: str) -> dict[str, Any]:
        """Primary FITS header; :class:`StorageError` if missing or not FITS."""
        content = self._get(path)
        if isinstance(content, bytes):
            raise StorageError(f"Not a FITS file: {path}")
        return header_of(content, self.shape)

    def put(self, path: str, content: Content) -> None:
        """Store ``content`` at ``path`` (creating the folder, replacing any file)."""
        folder, name = split_device_path(path)
        with self._lock:
            self._folders.setdefault(folder, {})[name] = content

    def put_folder(self, folder: str, contents: dict[str, Content]) -> None:
        """Store many files of one folder at once (names not checked: they come from a store).

        Files of ``folder`` already stored and not in ``contents`` stay.
        """
        check_folder(folder)
        with self._lock:
            self._folders.setdefault(folder, {}).update(contents)

    def rename(self, path: str, new_name: str) -> None:
        """Rename within the folder; :class:`StorageError` if missing or the target exists."""
        folder, name = split_device_path(path)
        check_new_name(new_name)
        with self._lock:
            stored = self._folders.get(folder, {})
            if name not in stored:
                raise StorageError(f"No such file on the Seestar: {path}")
            if new_name in stored:
                raise StorageError(f"Cannot rename {name!r}: {new_name!r} already exists")
            stored[new_name] = stored.pop(name)

    def delete(self, path: str) -> None:
        """Delete the file (its folder stays, as on the device); :class:`StorageError` if gone."""
        folder, name = split_device_path(path)
        with self._lock:
            if self._folders.get(folder, {}).pop(name, None) is None:
                raise StorageError(f"No such file on the Seestar: {path}")

    def items(self) -> list[tuple[str, Content]]:
        """Every stored file as ``(path, content)``, sorted by path (to copy a tree elsewhere)."""
        with self._lock:
            return sorted(
                (device_path(folder, name), content)
                for folder, stored in self._folders.items()
                for name, content in stored.items()
            )

    def download(self, path: str, dest: Path) -> Path:
        """Write the file (a full-size FITS file or the JPEG bytes) to ``dest`` atomically."""
        content = self._get(path)
        with _atomic_target(dest) as part, part.open("wb") as out:
            if isinstance(content, bytes):
                out.write(content)
            else:
                write_fits(content, self.shape, out)
        return dest


class DirectoryStorage:
    """A real ``MyWorks/`` tree under ``root``: valid FITS files and JPEG placeholders.

    Listings report the true on-disk sizes. Frames are small by default (:data:`SMALL_SHAPE`)
    so that a night of thousands of subs stays a few megabytes; pass ``shape=S50_SHAPE`` for
    full-size files.

    Parameters
    ----------
    root : Path
        The directory that plays the eMMC root (it will hold ``MyWorks/``); created if missing.
    shape : tuple of int
        Rows and columns of every frame written.
    """

    def __init__(self, root: Path, shape: tuple[int, int] = SMALL_SHAPE) -> None:
        self.root = Path(root)
        self.shape = shape
        (self.root / ROOT_FOLDER).mkdir(parents=True, exist_ok=True)

    def _local(self, path: str) -> Path:
        folder, name = split_device_path(path)
        return self.root / ROOT_FOLDER / folder / name

    def folders(self) -> list[str]:
        """Folder names directly under ``MyWorks``, sorted."""
        try:
            return sorted(p.name for p in (self.root / ROOT_FOLDER).iterdir() if p.is_dir())
        except OSError as exc:
            raise StorageError(f"Cannot list {self.root / ROOT_FOLDER}: {exc}") from exc

    def files(self, folder: str) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>`` sorted by name; empty for a missing folder."""
        try:
            directory = self.root / ROOT_FOLDER / check_folder(folder)
        except StorageError:
            return []  # no folder of that name can exist
        if not directory.is_dir():
            return []
        entries = []
        for entry in os.scandir(directory):
            # ".part" files are downloads or writes in flight, not device files.
            if entry.is_file() and not entry.name.endswith(".part"):
                entries.append(FileEntry(entry.name, entry.stat().st_size))
        return sorted(entries, key=lambda e: e.name)

    def exists(self, path: str) -> bool:
        """True if a file is stored at ``path``."""
        return self._local(path).is_file()

    def read_header(self, path: str) -> dict[str, Any]:
        """Primary FITS header read from disk; :class:`StorageError` if missing or not FITS."""
        return read_fits_header(self._local(path))

    def put(self, path: str, content: Content) -> None:
        """Write ``content`` at ``path`` atomically (creating the folder, replacing any file)."""
        local = self._local(path)
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"Cannot create {local.parent}: {exc}") from exc
        data = content if isinstance(content, bytes) else self._fits_bytes(content)
        with _atomic_target(local) as part:
            part.write_bytes(data)

    def _fits_bytes(self, image: FitsImage) -> bytes:
        buffer = io.BytesIO()
        write_fits(image, self.shape, buffer)
        return buffer.getvalue()

    def rename(self, path: str, new_name: str) -> None:
        """Rename within the folder; :class:`StorageError` if missing or the target exists."""
        source = self._local(path)
        target = source.with_name(check_new_name(new_name))
        try:
            rename_no_clobber(source, target)
        except FileNotFoundError as exc:
            raise StorageError(f"No such file on the Seestar: {path}") from exc
        except FileExistsError as exc:
            raise StorageError(f"Cannot rename {source.name!r}: {new_name!r} exists") from exc
        except OSError as exc:
            raise StorageError(f"Cannot rename {path}: {exc}") from exc

    def delete(self, path: str) -> None:
        """Delete the file; :class:`StorageError` if it is missing."""
        try:
            self._local(path).unlink()
        except OSError as exc:
            raise StorageError(f"Cannot delete {path}: {exc}") from exc

    def download(self, path: str, dest: Path) -> Path:
        """Copy the file to ``dest`` atomically (via ``dest.part``); return ``dest``."""
        source = self._local(path)
        if not source.is_file():
            raise StorageError(f"No such file on the Seestar: {path}")
        with _atomic_target(dest) as part:
            shutil.copyfile(source, part)
        return dest


class SplitStorage:
    """Raw sub-frame folders in one store, every other folder in another.

    The persistent ``--simulator`` keeps the demo night's raw sub-frames in memory (they are
    laid down the same way every time and nothing may change them) and the target folders,
    where stacks are written, renamed and deleted, in a :class:`DirectoryStorage` that outlives
    the process.

    Parameters
    ----------
    raw : DeviceStorage
        Holds the ``*_sub`` folders.
    other : DeviceStorage
        Holds every other folder.
    """

    def __init__(self, raw: DeviceStorage, other: DeviceStorage) -> None:
        self.raw = raw
        self.other = other

    def _store(self, folder: str) -> DeviceStorage:
        return self.raw if is_sub_folder(folder) else self.other

    def _for_path(self, path: str) -> DeviceStorage:
        return self._store(split_device_path(path)[0])

    def folders(self) -> list[str]:
        """Folder names of both stores, sorted."""
        raw = [f for f in self.raw.folders() if is_sub_folder(f)]
        other = [f for f in self.other.folders() if not is_sub_folder(f)]
        return sorted(raw + other)

    def files(self, folder: str) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>`` from the store that holds it."""
        return self._store(folder).files(folder)

    def exists(self, path: str) -> bool:
        """True if a file is stored at ``path``."""
        return self._for_path(path).exists(path)

    def read_header(self, path: str) -> dict[str, Any]:
        """Primary FITS header; :class:`StorageError` if missing or not FITS."""
        return self._for_path(path).read_header(path)

    def put(self, path: str, content: Content) -> None:
        """Store ``content`` at ``path`` in the store that holds its folder."""
        self._for_path(path).put(path, content)

    def rename(self, path: str, new_name: str) -> None:
        """Rename within the folder; :class:`StorageError` if missing or the target exists."""
        self._for_path(path).rename(path, new_name)

    def delete(self, path: str) -> None:
        """Delete the file; :class:`StorageError` if it is missing."""
        self._for_path(path).delete(path)

    def download(self, path: str, dest: Path) -> Path:
        """Copy the file to ``dest`` atomically; return ``dest``."""
        return self._for_path(path).download(path, dest)
