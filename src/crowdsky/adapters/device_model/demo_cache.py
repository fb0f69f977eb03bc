r"""The demo Seestar that keeps its state between commands: ``crowdsky ... --simulator``.

Each command of the command line is a new process, so an in-memory demo would forget every
stack between ``crowdsky stack --simulator`` and ``crowdsky plan --simulator``. The cached demo
keeps the target folders, where stacks are written, renamed and deleted, as real files in a
cache folder. The raw sub-frames stay in memory (nothing may change them): the first command
lays down the demo night and writes a compact description of its ``*_sub`` folders,
:data:`NIGHT_INDEX` (names and sizes, and per folder the header cards its frames share plus each
frame's own values). Later commands list a folder from it and fill the folder in memory only
when one of its files is first read, instead of laying down all 2 427 subs again. The cache
folder is

* ``$CROWDSKY_CACHE_DIR/simulator`` when that variable is set, else
* the platform's user cache folder: ``$XDG_CACHE_HOME/crowdsky/simulator`` or
  ``~/.cache/crowdsky/simulator`` on Linux, ``~/Library/Caches/crowdsky/simulator`` on macOS,
  ``%LOCALAPPDATA%\crowdsky\Cache\simulator`` on Windows.

The folder is created on first use; ``reset=True`` (``--simulator-reset``) starts over from the
demo night. Only a folder that holds the marker file :data:`MARKER` is ever cleared. An index
written by another version of the demo night, or one that cannot be read, is written anew from
the demo night (never taken as an empty night).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import zlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.fits_files import JPEG_PLACEHOLDER, FitsImage
from crowdsky.adapters.device_model.night import DEMO_NIGHT, DEMO_TARGETS, demo_seestar
from crowdsky.adapters.device_model.storage import (
    Content,
    DirectoryStorage,
    MemoryStorage,
    SplitStorage,
)
from crowdsky.app.ports import FileEntry
from crowdsky.domain.device_paths import (
    ROOT_FOLDER,
    is_sub_folder,
    split_device_path,
)
from crowdsky.errors import StorageError

__all__ = [
    "CACHE_ENV_VAR",
    "MARKER",
    "NIGHT_INDEX",
    "IndexedNightStorage",
    "cached_demo_seestar",
    "simulator_cache_dir",
]

#: Environment variable naming crowdsky's cache folder.
CACHE_ENV_VAR: Final = "CROWDSKY_CACHE_DIR"
#: The file that marks a folder as the simulator's own (and safe to clear).
MARKER: Final = "crowdsky-simulator.txt"
#: The demo night's raw sub-frame folders, one line each (name, tab, JSON) after a first line
#: naming the demo night it describes, its device settings, its clock and the CRC-32 of the rest.
NIGHT_INDEX: Final = "demo-night.jsonl"

_INDEX_FORMAT = 1
#: The device settings the index keeps, so that the rebuilt device is the one laid down.
_DEVICE_SETTINGS = (
    "zone",
    "report_zone",
    "firmware",
    "instrument",
    "telescope",
    "seconds_per_frame",
    "setup_seconds",
    "start_blank_polls",
)


def _user_cache_dir(env: Mapping[str, str]) -> Path:
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "crowdsky" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "crowdsky"
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crowdsky"


def simulator_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the cached demo Seestar keeps its target folders (see the module notes).

    Parameters
    ----------
    env : Mapping, optional
        The environment to consult (default ``os.environ``).
    """
    environ = os.environ if env is None else env
    base = environ.get(CACHE_ENV_VAR)
    root = Path(base).expanduser() if base else _user_cache_dir(environ)
    return root / "simulator"


def _clear(folder: Path) -> None:
    if not (folder / MARKER).is_file():
        return  # not ours (or never made): nothing to clear
    try:
        shutil.rmtree(folder / ROOT_FOLDER, ignore_errors=False)
        (folder / NIGHT_INDEX).unlink(missing_ok=True)
        (folder / MARKER).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"Cannot reset the simulator's state in {folder}: {exc}") from exc


def _demo_fingerprint() -> str:
    """Names the demo night the code lays down: an index of another one is written anew."""
    from crowdsky import __version__

    described = repr((DEMO_NIGHT, DEMO_TARGETS)).encode("utf-8")
    return f"{__version__}:{zlib.crc32(described):08x}"


def cached_demo_seestar(
    folder: Path | None = None, *, reset: bool = False, **options: Any
) -> FakeSeestar:
    """The demo Seestar whose target folders live in ``folder`` and outlive the process.

    Parameters
    ----------
    folder : Path, optional
        The cache folder; :func:`simulator_cache_dir` by default. Created on first use and
        filled with the demo night's target folders and :data:`NIGHT_INDEX`.
    reset : bool
        Start over: clear what earlier runs did (only in a folder holding :data:`MARKER`).
    **options
        Passed to :func:`~crowdsky.adapters.device_model.night.demo_seestar`. With any option
        the night is laid down again in memory (the index describes the default demo only).

    Raises
    ------
    StorageError
        When the cache folder cannot be created, written or cleared.
    """
    where = Path(folder) if folder is not None else simulator_cache_dir()
    if reset:
        _clear(where)
    try:
        stacks = DirectoryStorage(where)
    except OSError as exc:
        raise StorageError(f"Cannot create the simulator's cache folder {where}: {exc}") from exc
    made = (where / MARKER).is_file()
    index = None if options or not made else _read_index(where / NIGHT_INDEX)
    if index is not None:
        return _device_from_index(index, stacks)
    device = demo_seestar(**options)
    memory = device.storage
    assert isinstance(memory, MemoryStorage)  # demo_seestar builds in memory
    if not made:
        for path, content in memory.items():
            if not is_sub_folder(split_device_path(path)[0]):
                stacks.put(path, content)
    if not options:
        _write_index(where / NIGHT_INDEX, device, memory)
    if not made:
        try:
            (where / MARKER).write_text(
                "The state of crowdsky's --simulator; --simulator-reset starts over.\n",
                encoding="utf-8",
            )
        except OSError as exc:
            raise StorageError(f"Cannot write to the simulator's cache {where}: {exc}") from exc
    device.storage = SplitStorage(raw=memory, other=stacks)
    return device


def _device_from_index(index: _NightIndex, stacks: DirectoryStorage) -> FakeSeestar:
    raw = IndexedNightStorage(index.folders, index.shape)
    return FakeSeestar(
        clock=FakeClock(index.now),
        storage=SplitStorage(raw=raw, other=stacks),
        **index.device,
    )


class _NightIndex:
    """What :data:`NIGHT_INDEX` holds: device settings, the clock, and one line per folder."""

    def __init__(
        self,
        device: dict[str, Any],
        now: datetime,
        shape: tuple[int, int],
        folders: dict[str, str],
    ) -> None:
        self.device = device
        self.now = now
        self.shape = shape
        self.folders = folders


def _read_index(path: Path) -> _NightIndex | None:
    """The index at ``path``; ``None`` when it is missing, unreadable or of another demo night.

    ``None`` makes the caller lay the night down again and rewrite the index, so a bad index
    costs time, never frames.
    """
    try:
        first, _, body = path.read_text(encoding="utf-8").partition("\n")
        about = json.loads(first)
        if about.get("format") != _INDEX_FORMAT or about.get("demo") != _demo_fingerprint():
            return None
        if zlib.crc32(body.encode("utf-8")) != about["crc32"]:
            return None  # cut short or damaged
        folders = {line[: line.index("\t")]: line for line in body.splitlines()}
        now, shape = datetime.fromisoformat(about["now"]), tuple(about["shape"])
        return _NightIndex(about["device"], now, (shape[0], shape[1]), folders)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_index(path: Path, device: FakeSeestar, memory: MemoryStorage) -> None:
    by_folder: dict[str, list[tuple[str, Content]]] = {
        folder: [] for folder in memory.folders() if is_sub_folder(folder)
    }
    for device_path_, content in memory.items():
        folder, name = split_device_path(device_path_)
        if is_sub_folder(folder):
            by_folder[folder].append((name, content))
    body = "".join(
        f"{folder}\t{_encode_folder(files, memory.shape)}\n" for folder, files in by_folder.items()
    )
    about = {
        "format": _INDEX_FORMAT,
        "demo": _demo_fingerprint(),
        "device": {name: getattr(device, name) for name in _DEVICE_SETTINGS},
        "now": device.clock.now().isoformat(),
        "shape": memory.shape,
        "crc32": zlib.crc32(body.encode("utf-8")),
    }
    part = path.with_name(f"{path.name}.{os.getpid()}.part")  # two commands at once: two parts
    try:
        part.write_text(f"{json.dumps(about)}\n{body}", encoding="utf-8")
        os.replace(part, path)
    except OSError as exc:
        raise StorageError(f"Cannot write to the simulator's cache {path.parent}: {exc}") from exc


def _encode_folder(files: list[tuple[str, Content]], shape: tuple[int, int]) -> str:
    """One folder: its names (``/`` between them), their sizes, and its contents as JSON.

    The listing needs only the first two, which split fast. The JSON holds the cards all the
    FITS files share and, per file in name order, what it has of its own: ``[values, planes]``
    (the cards that vary, in ``keys`` order), ``[cards, planes]`` for a file whose cards are not
    those of the first FITS file, ``[null]`` for the JPEG placeholder and ``[text]`` for other
    bytes (latin-1).
    """
    files = sorted(files)
    if any(set(name) & set("/\t\n") for name, _ in files):
        raise StorageError("A file name with '/', a tab or a line break cannot be indexed.")
    images = [content for _, content in files if isinstance(content, FitsImage)]
    keys = list(images[0].cards) if images else []
    alike = [image for image in images if list(image.cards) == keys]
    common = {
        key: value
        for key, value in (alike[0].cards.items() if alike else ())
        if all(image.cards[key] == value for image in alike)
    }
    varying = [key for key in keys if key not in common]
    rows: list[list[Any]] = []
    for _, content in files:
        if isinstance(content, bytes):
            rows.append([None if content == JPEG_PLACEHOLDER else content.decode("latin-1")])
        elif list(content.cards) != keys:
            rows.append([dict(content.cards), content.planes])
        else:
            rows.append([[content.cards[key] for key in varying], content.planes])
    names = "/".join(name for name, _ in files)
    sizes = ",".join(
        str(len(content) if isinstance(content, bytes) else content.size(shape))
        for _, content in files
    )
    contents = json.dumps({"keys": keys, "common": common, "files": rows}, separators=(",", ":"))
    return f"{names}\t{sizes}\t{contents}"


def _decode_folder(text: str) -> dict[str, Content]:
    names, _, contents = text.split("\t")
    if not names:
        return {}  # an empty folder
    entry = json.loads(contents)
    common: dict[str, Any] = entry["common"]
    template = [(key, key in common) for key in entry["keys"]]
    decoded: dict[str, Content] = {}
    for name, (own, *planes) in zip(names.split("/"), entry["files"], strict=True):
        if own is None:
            decoded[name] = JPEG_PLACEHOLDER
        elif isinstance(own, str):
            decoded[name] = own.encode("latin-1")
        else:
            decoded[name] = FitsImage(_cards(template, common, own), planes=planes[0])
    return decoded


def _listing(text: str) -> list[FileEntry]:
    """The folder's files and sizes, sorted by name, without making its contents."""
    names, sizes, _ = text.split("\t")
    if not names:
        return []
    return list(map(FileEntry, names.split("/"), map(int, sizes.split(","))))


def _cards(
    template: list[tuple[str, bool]], common: dict[str, Any], own: list[Any] | dict[str, Any]
) -> dict[str, Any]:
    if isinstance(own, dict):
        return own
    values = iter(own)
    return {key: common[key] if shared else next(values) for key, shared in template}


class IndexedNightStorage:
    """The raw sub-frame folders of :data:`NIGHT_INDEX`, each filled in memory on first use.

    A :class:`~crowdsky.adapters.device_model.storage.DeviceStorage`. A folder is listed from
    its line of the index; its files are made (header cards in memory) when one of them is
    first read, checked or changed, and from then on it is a
    :class:`~crowdsky.adapters.device_model.storage.MemoryStorage` folder like any other.

    Parameters
    ----------
    folders : Mapping[str, str]
        Folder name → its line of the index.
    shape : tuple of int
        The frames' rows and columns, as for
        :class:`~crowdsky.adapters.device_model.storage.MemoryStorage` (the sizes in the index
        are those of this shape).
    """

    def __init__(self, folders: Mapping[str, str], shape: tuple[int, int]) -> None:
        self._pending = dict(folders)
        self._listings: dict[str, list[FileEntry]] = {}
        self._memory = MemoryStorage(shape)
        self._lock = threading.Lock()

    @staticmethod
    def _json(line: str) -> str:
        return line[line.index("\t") + 1 :]

    def _fill(self, folder: str) -> None:
        with self._lock:
            line = self._pending.pop(folder, None)
            if line is not None:
                self._listings.pop(folder, None)
                self._memory.put_folder(folder, _decode_folder(self._json(line)))

    def _fill_for(self, path: str) -> None:
        self._fill(split_device_path(path)[0])

    def folders(self) -> list[str]:
        """Folder names, filled or not, sorted."""
        with self._lock:
            return sorted({*self._pending, *self._memory.folders()})

    def files(self, folder: str) -> list[FileEntry]:
        """Files of ``MyWorks/<folder>`` sorted by name; empty for a missing folder."""
        with self._lock:
            line = self._pending.get(folder)
            if line is not None:
                if folder not in self._listings:
                    self._listings[folder] = _listing(self._json(line))
                return list(self._listings[folder])
        return self._memory.files(folder)

    def exists(self, path: str) -> bool:
        """True if a file is stored at ``path``."""
        self._fill_for(path)
        return self._memory.exists(path)

    def read_header(self, path: str) -> dict[str, Any]:
        """Primary FITS header; :class:`StorageError` if missing or not FITS."""
        self._fill_for(path)
        return self._memory.read_header(path)

    def put(self, path: str, content: Content) -> None:
        """Store ``content`` at ``path`` (creating the folder, replacing any file)."""
        self._fill_for(path)
        self._memory.put(path, content)

    def rename(self, path: str, new_name: str) -> None:
        """Rename within the folder; :class:`StorageError` if missing or the target exists."""
        self._fill_for(path)
        self._memory.rename(path, new_name)

    def delete(self, path: str) -> None:
        """Delete the file; :class:`StorageError` if it is missing."""
        self._fill_for(path)
        self._memory.delete(path)

    def download(self, path: str, dest: Path) -> Path:
        """Write the file to ``dest`` atomically (via ``dest.part``); return ``dest``."""
        self._fill_for(path)
        return self._memory.download(path, dest)
