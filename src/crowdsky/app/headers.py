"""Reading FITS headers through the Seestar port: retried, and never mistaken for absent cards.

A read that fails (an HTTP 500, a body cut short, a file the share will not give) is tried again
up to :data:`HEADER_READ_ATTEMPTS` times in all, at once: the failures seen on the device are
single glitches. If it still fails, :class:`~crowdsky.errors.HeaderReadError` says so, so that
nothing is planned or named as if the header simply lacked ``DATE-OBS`` or ``RA``/``DEC``. A
lost link (:class:`~crowdsky.errors.SeestarConnectionError`) is not retried here; it propagates.
"""

from __future__ import annotations

from crowdsky.app.ports import Header, Seestar
from crowdsky.errors import HeaderReadError, StorageError

__all__ = ["HEADER_READ_ATTEMPTS", "read_header"]

#: Tries of one header read before it counts as failed.
HEADER_READ_ATTEMPTS = 3


def read_header(seestar: Seestar, path: str, *, attempts: int = HEADER_READ_ATTEMPTS) -> Header:
    """The header of ``path``, tried up to ``attempts`` times.

    Raises
    ------
    HeaderReadError
        When every try failed with a :class:`~crowdsky.errors.StorageError` (the last one is
        the ``__cause__``).
    """
    failure: StorageError | None = None
    for _ in range(max(1, attempts)):
        try:
            return seestar.read_header(path)
        except StorageError as exc:
            failure = exc
    assert failure is not None
    raise HeaderReadError(path, max(1, attempts), str(failure)) from failure
