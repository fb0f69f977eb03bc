"""Bounded, atomic downloads of FITS files: one rule for the Seestar and the CrowdSky server.

Whoever sends the bytes (the Seestar's file server on port 80, the CrowdSky server), a download

* stops as soon as it passes a size cap (:data:`MAX_FITS_BYTES` by default) or sends more than
  its ``Content-Length`` announced;
* stops when it has taken longer than an overall deadline (:data:`DEFAULT_TRANSFER_DEADLINE`),
  checked as each piece arrives, so a trickle of one byte a second cannot keep it alive;
* is written to ``<name>.part`` and moved into place only when it is whole FITS (``SIMPLE  =``
  first, a whole number of 2880-byte blocks), else the ``.part`` file is removed.

``.part`` files a killed run left behind are removed by :func:`remove_stale_parts` on the next
run, and only those: names ending in ``.fit.part`` / ``.fits.part`` that nothing has written to
for longer than any transfer may last.

The problems are raised as :class:`TransferError` (:class:`TransferTimeout` for the deadline);
each adapter translates them into its own :mod:`crowdsky.errors` class.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = [
    "DEFAULT_TRANSFER_DEADLINE",
    "FITS_BLOCK",
    "FITS_SIGNATURE",
    "MAX_FITS_BYTES",
    "NotFits",
    "Piece",
    "TransferError",
    "TransferTimeout",
    "bounded",
    "counted",
    "fits_problem",
    "part_path",
    "read_prefix",
    "remove_stale_parts",
    "save_stream",
]

#: FITS files are whole multiples of this many bytes.
FITS_BLOCK = 2880
#: How every FITS file begins.
FITS_SIGNATURE = b"SIMPLE  ="
#: The largest FITS file downloaded: an S50 stack is about 12 MB, an S30 Pro stack
#: (3840 x 2160, three colours) about 50 MB at 16 bits and 100 MB at 32 bits; this leaves
#: room above the largest and stops an endless body long before it fills a disk.
MAX_FITS_BYTES = 256 * 1024 * 1024
#: Seconds one transfer may take in all: 256 MB at 150 kB/s, or a 12 MB stack at 7 kB/s.
DEFAULT_TRANSFER_DEADLINE = 1800.0
#: Bytes of a body kept for telling what it is when it is not FITS (an HTML page, say).
HEAD_BYTES = 4096

#: A piece of a body: bytes, or a view of a reused buffer valid until the next piece.
Piece = bytes | memoryview

_OUR_PART = re.compile(r".+\.fits?\.part", re.IGNORECASE)


class TransferError(Exception):
    """A body broke a limit or is not what was asked for (adapters translate it)."""


class TransferTimeout(TransferError):
    """A transfer took longer than its overall deadline."""


class NotFits(TransferError):
    """The body is not whole FITS; ``head`` holds its first bytes to tell what it is instead.

    Parameters
    ----------
    message : str
        What is wrong.
    head : bytes
        The first :data:`HEAD_BYTES` bytes of the body.
    """

    def __init__(self, message: str, head: bytes) -> None:
        super().__init__(message)
        self.head = head


def bounded(
    chunks: Iterable[Piece],
    *,
    what: str,
    max_bytes: int,
    deadline: float,
    expected: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Piece]:
    """Pass ``chunks`` on, raising :class:`TransferError` at the first broken limit.

    Parameters
    ----------
    chunks : iterable of bytes or memoryview
        The body as it arrives (see :data:`Piece`).
    what : str
        What is being read, for the messages (``"the download of X"``).
    max_bytes : int
        More bytes than this is an error.
    deadline : float
        Seconds from the first call; a piece arriving later ends the transfer
        (:class:`TransferTimeout`).
    expected : int, optional
        The announced ``Content-Length``: more bytes than that is an error.
    clock : callable
        Monotonic seconds (tests pass a fake).
    """
    if expected is not None and expected > max_bytes:
        raise TransferError(f"{what} announces {expected} bytes, more than the {max_bytes} allowed")
    start = clock()
    received = 0
    for chunk in chunks:
        received += len(chunk)
        if expected is not None and received > expected:
            raise TransferError(f"{what} sent more than the {expected} bytes it announced")
        if received > max_bytes:
            raise TransferError(f"{what} is larger than {max_bytes} bytes; stopped reading")
        if clock() - start > deadline:
            raise TransferTimeout(
                f"{what} took longer than {deadline:g} s; stopped after {received} bytes"
            )
        yield chunk


def counted(
    chunks: Iterable[Piece],
    on_bytes: Callable[[int, int | None], None] | None,
    total: int | None,
) -> Iterator[Piece]:
    """Pass ``chunks`` on, telling ``on_bytes`` the bytes taken so far once each piece is used.

    One call per piece (a piece is up to a megabyte), so the count costs nothing beside the
    transfer; the display decides how often to draw. Nothing is called when ``on_bytes`` is
    ``None``.

    Examples
    --------
    >>> seen = []
    >>> list(counted([b"ab", b"cde"], lambda done, total: seen.append((done, total)), 5))
    [b'ab', b'cde']
    >>> seen
    [(2, 5), (5, 5)]
    """
    if on_bytes is None:
        yield from chunks
        return
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        on_bytes(done, total)


def read_prefix(
    chunks: Iterable[bytes],
    limit: int,
    *,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> bytes:
    """At most ``limit`` bytes of a body, read for at most ``deadline`` seconds; never raises.

    For error bodies: their first bytes say enough, and a bad one must not hide the status.
    """
    buffer = bytearray()
    start = clock()
    for chunk in chunks:
        buffer += chunk[: limit - len(buffer)]
        if len(buffer) >= limit or clock() - start > deadline:
            break
    return bytes(buffer)


def fits_problem(head: bytes, size: int) -> str | None:
    """What keeps a body of ``size`` bytes starting with ``head`` from being whole FITS.

    Examples
    --------
    >>> fits_problem(b"SIMPLE  =                    T", 2 * 2880) is None
    True
    >>> fits_problem(b"<html>", 2880)
    'is not a FITS file'
    >>> fits_problem(b"SIMPLE  =", 4000)
    'is truncated (4000 bytes, not a whole number of 2880-byte FITS blocks)'
    """
    if not head.startswith(FITS_SIGNATURE):
        return "is not a FITS file"
    if size == 0 or size % FITS_BLOCK:
        return f"is truncated ({size} bytes, not a whole number of {FITS_BLOCK}-byte FITS blocks)"
    return None


def part_path(target: Path) -> Path:
    """Where a download of ``target`` is written before it is checked: ``<target>.part``."""
    return target.with_name(target.name + ".part")


def save_stream(chunks: Iterable[Piece], target: Path, *, what: str, check_fits: bool) -> int:
    """Write ``chunks`` to ``target.part``, check the body, move it onto ``target``.

    Returns the number of bytes written. On any failure (a :class:`TransferError` from
    ``chunks`` included) the ``.part`` file is removed and ``target`` is untouched.

    Raises
    ------
    NotFits
        When ``check_fits`` and the body is not whole FITS.
    OSError
        When the local file cannot be written.
    """
    part = part_path(target)
    size, head = 0, bytearray()
    try:
        with part.open("wb") as out:
            for chunk in chunks:
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                size += len(chunk)
                out.write(chunk)
        problem = fits_problem(bytes(head), size) if check_fits else None
        if problem is not None:
            raise NotFits(f"{what} {problem}; nothing was saved", bytes(head))
        os.replace(part, target)
    except BaseException:
        # Ctrl-C included: a half-written file must never be left behind.
        part.unlink(missing_ok=True)
        raise
    return size


def remove_stale_parts(
    folder: Path, older_than: float, *, now: Callable[[], float] = time.time
) -> list[Path]:
    """Remove the ``*.fit.part``/``*.fits.part`` files in ``folder`` a killed download left.

    Only plain files with those names, not written to for ``older_than`` seconds (a transfer in
    progress cannot be older than its deadline), are removed; nothing else is touched, and
    nothing below ``folder``. Returns the removed paths.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    limit = now() - older_than
    for entry in entries:
        if not _OUR_PART.fullmatch(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove: a sweep is best effort
    return removed
