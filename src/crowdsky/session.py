"""The module-level session behind ``crowdsky.list_targets()`` and friends.

The specification's functions act on "the" Seestar. Which one is an explicit choice made with
:func:`crowdsky.connect` (a real telescope), :func:`crowdsky.use_simulator` (the in-memory one)
or :func:`use` (any object satisfying :class:`~crowdsky.app.ports.Seestar`). Nothing connects at
import time.
"""

from __future__ import annotations

import threading

from crowdsky.app.ports import Seestar
from crowdsky.errors import CrowdskyError

__all__ = ["NoSeestarError", "current_seestar", "disconnect", "use"]

_lock = threading.Lock()
_seestar: Seestar | None = None


class NoSeestarError(CrowdskyError):
    """No Seestar has been chosen for the module-level functions."""


def use(seestar: Seestar | None) -> Seestar | None:
    """Make ``seestar`` the telescope the module-level functions act on; return the previous one.

    ``None`` forgets the current choice.
    """
    global _seestar
    with _lock:
        previous, _seestar = _seestar, seestar
    return previous


def current_seestar() -> Seestar:
    """The chosen Seestar.

    Raises
    ------
    NoSeestarError
        When none was chosen yet.
    """
    with _lock:
        seestar = _seestar
    if seestar is None:
        raise NoSeestarError(
            "No Seestar chosen. Call crowdsky.connect('192.168.1.83') for a telescope on your "
            "network, or crowdsky.use_simulator() for the built-in simulator."
        )
    return seestar


def disconnect() -> None:
    """Forget the chosen Seestar and close its connections, if it has any."""
    previous = use(None)
    close = getattr(previous, "close", None)
    if callable(close):
        close()
