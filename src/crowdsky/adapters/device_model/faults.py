"""Faults the device model can be told to show, to test how clients cope (protocol reference §7)."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Collection
from enum import StrEnum

import attrs

__all__ = ["COMPANION_FILES", "FIT_FILES", "Faults", "ReadFault"]

#: ``rename_fails`` patterns that fail the rename of stacked ``.fit`` files only.
FIT_FILES = frozenset({"*.fit", "*.fits"})
#: ``rename_fails`` patterns that fail the rename of JPEG companions only.
COMPANION_FILES = frozenset({"*.jpg"})


class ReadFault(StrEnum):
    """How a read of a file that :attr:`Faults.read_fails` matches goes wrong."""

    #: The read is refused: ``StorageError`` from the fake, HTTP 500 from the simulator.
    ERROR = "error"
    #: The body stops short: the fake raises ``StorageError`` as the HTTP adapter does for a
    #: header without its ``END`` card; the simulator announces the whole file and hangs up early.
    TRUNCATED = "truncated"


@attrs.define
class Faults:
    """Faults to inject into a :class:`FakeSeestar`; all off by default.

    The batch-stack faults are read when a stack starts; the storage faults on every call.

    Parameters
    ----------
    refuse_start : int or None
        ``start_batch_stack`` raises :class:`~crowdsky.errors.SeestarRpcError` with this code
        (for example 259, as if another client's stack were running).
    fail_stack : tuple of (str, int) or None
        The stack ends in ``fail`` with this error text and code after half its frames
        (for example ``("stack error, too few stars", 263)``).
    reject_frames : int
        The device rejects this many frames (the last ones): the output has
        ``total - reject_frames`` frames, and a stack with none left fails with 263.
    stuck : bool
        The stack stays ``working`` at half way forever (exercises client timeouts).
    rename_fails : callable or collection of str or None
        Renames of files matching fail with :class:`~crowdsky.errors.StorageError`: either a
        predicate on the full path, or ``fnmatch`` patterns on the bare name, e.g.
        :data:`FIT_FILES` or :data:`COMPANION_FILES`.
    drop_companions : bool
        Stack outputs are written without their ``.jpg`` / ``_thn.jpg`` companions.
    missing_radec : bool
        Stack headers are written without ``RA`` / ``DEC``.
    listing_fails : collection of str
        Folders (bare names, ``"IC 434_sub"``) whose listing raises
        :class:`~crowdsky.errors.ListingIncompleteError`, as the network adapter does when
        every attempt came back short.
    read_fails : callable or collection of str or None
        Reads of files matching (``read_header`` on the fake, ``GET`` on the simulator's file
        server) fail as :attr:`read_fault` says; a predicate on the full path or ``fnmatch``
        patterns on the bare name.
    read_fault : ReadFault
        How those reads fail.
    read_fail_times : int or None
        Fail only the first this many reads of each matching file (a passing glitch); ``None``
        fails every read.
    imaging : dict of str to str
        App-state entries another client has running, as ``iscope_get_app_state`` would show
        them (``{"View": "working"}``: live view); pre-flight takes the telescope for busy.
    unreachable : collection of str
        Links (``"control"``, ``"files"``, ``"rename"``) whose pre-flight probe fails.
    """

    refuse_start: int | None = None
    fail_stack: tuple[str, int] | None = None
    reject_frames: int = 0
    stuck: bool = False
    rename_fails: Callable[[str], bool] | Collection[str] | None = None
    drop_companions: bool = False
    missing_radec: bool = False
    listing_fails: Collection[str] = frozenset()
    read_fails: Callable[[str], bool] | Collection[str] | None = None
    read_fault: ReadFault = ReadFault.ERROR
    read_fail_times: int | None = None
    imaging: dict[str, str] = attrs.field(factory=dict)
    unreachable: Collection[str] = frozenset()
    _reads_failed: dict[str, int] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def rename_refused(self, path: str) -> bool:
        """True if the rename of ``path`` must fail."""
        return _matches(self.rename_fails, path)

    def read_refused(self, path: str) -> ReadFault | None:
        """How this read of ``path`` fails, or ``None`` if it succeeds (counts the failures)."""
        if not _matches(self.read_fails, path):
            return None
        with self._lock:
            failed = self._reads_failed.get(path, 0)
            if self.read_fail_times is not None and failed >= self.read_fail_times:
                return None
            self._reads_failed[path] = failed + 1
        return self.read_fault


def _matches(rule: Callable[[str], bool] | Collection[str] | None, path: str) -> bool:
    if rule is None:
        return False
    if callable(rule):
        return bool(rule(path))
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in rule)
