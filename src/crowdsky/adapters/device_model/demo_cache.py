r"""The demo Seestar that keeps its state between commands: ``crowdsky ... --simulator``.

Each command of the command line is a new process, so an in-memory demo would forget every
stack between ``crowdsky stack --simulator`` and ``crowdsky plan --simulator``. The cached demo
lays down the demo night in memory as usual (it is the same every time, and raw sub-frames are
never changed), but keeps the target folders, where stacks are written, renamed and deleted,
as real files in a cache folder:

* ``$CROWDSKY_CACHE_DIR/simulator`` when that variable is set, else
* the platform's user cache folder: ``$XDG_CACHE_HOME/crowdsky/simulator`` or
  ``~/.cache/crowdsky/simulator`` on Linux, ``~/Library/Caches/crowdsky/simulator`` on macOS,
  ``%LOCALAPPDATA%\crowdsky\Cache\simulator`` on Windows.

The folder is created on first use; ``reset=True`` (``--simulator-reset``) starts over from the
demo night. Only a folder that holds the marker file :data:`MARKER` is ever cleared.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.night import demo_seestar
from crowdsky.adapters.device_model.storage import DirectoryStorage, MemoryStorage, SplitStorage
from crowdsky.domain.device_paths import ROOT_FOLDER, is_sub_folder, split_device_path
from crowdsky.errors import StorageError

__all__ = ["CACHE_ENV_VAR", "MARKER", "cached_demo_seestar", "simulator_cache_dir"]

#: Environment variable naming crowdsky's cache folder.
CACHE_ENV_VAR: Final = "CROWDSKY_CACHE_DIR"
#: The file that marks a folder as the simulator's own (and safe to clear).
MARKER: Final = "crowdsky-simulator.txt"


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
        (folder / MARKER).unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StorageError(f"Cannot reset the simulator's state in {folder}: {exc}") from exc


def cached_demo_seestar(
    folder: Path | None = None, *, reset: bool = False, **options: Any
) -> FakeSeestar:
    """The demo Seestar whose target folders live in ``folder`` and outlive the process.

    Parameters
    ----------
    folder : Path, optional
        The cache folder; :func:`simulator_cache_dir` by default. Created on first use and
        filled with the demo night's target folders.
    reset : bool
        Start over: clear what earlier runs did (only in a folder holding :data:`MARKER`).
    **options
        Passed to :func:`~crowdsky.adapters.device_model.night.demo_seestar`.

    Raises
    ------
    StorageError
        When the cache folder cannot be created, written or cleared.
    """
    where = Path(folder) if folder is not None else simulator_cache_dir()
    if reset:
        _clear(where)
    device = demo_seestar(**options)
    memory = device.storage
    assert isinstance(memory, MemoryStorage)  # demo_seestar builds in memory
    try:
        stacks = DirectoryStorage(where)
    except OSError as exc:
        raise StorageError(f"Cannot create the simulator's cache folder {where}: {exc}") from exc
    if not (where / MARKER).is_file():
        for path, content in memory.items():
            if not is_sub_folder(split_device_path(path)[0]):
                stacks.put(path, content)
        try:
            (where / MARKER).write_text(
                "The state of crowdsky's --simulator; --simulator-reset starts over.\n",
                encoding="utf-8",
            )
        except OSError as exc:
            raise StorageError(f"Cannot write to the simulator's cache {where}: {exc}") from exc
    device.storage = SplitStorage(raw=memory, other=stacks)
    return device
