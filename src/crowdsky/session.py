"""The one module-level state behind ``crowdsky.list_targets()`` and friends.

The specification's functions act on "the" Seestar and "the" CrowdSky server. Which Seestar is
an explicit choice made with :func:`crowdsky.connect` (a real telescope),
:func:`crowdsky.use_simulator` (the in-memory one) or :func:`use` (any object satisfying
:class:`~crowdsky.app.ports.Seestar`); which server, and as whom, with
:func:`crowdsky.configure_server` and :func:`crowdsky.set_credentials`. Nothing connects at
import time, and this module builds nothing: :mod:`crowdsky.bootstrap` does.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import attrs

from crowdsky.app.ports import Seestar
from crowdsky.errors import NoSeestarError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ServerChoice",
    "ServerSettings",
    "current_seestar",
    "disconnect",
    "server_settings",
    "use",
]

_lock = threading.Lock()
_seestar: Seestar | None = None


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


@attrs.frozen(repr=False)
class ServerChoice:
    """Where the module-level server functions send, and as whom, at one moment.

    ``None`` fields fall back to the environment (``CROWDSKY_URL``, ``CROWDSKY_USERNAME``,
    ``CROWDSKY_PASSWORD``) when the client is built. The ``repr`` never shows the password.
    """

    url: str | None = None
    username: str | None = None
    password: str | None = attrs.field(default=None, eq=False)
    client: httpx.Client | None = attrs.field(default=None, eq=False)
    allow_insecure_http: bool = False

    def __repr__(self) -> str:
        return f"<crowdsky server settings url={self.url!r} username={self.username!r}>"


class ServerSettings:
    """The server choice, changed by the module-level functions (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._choice = ServerChoice()

    def __repr__(self) -> str:
        return repr(self.current())

    def current(self) -> ServerChoice:
        """The settings as they are now."""
        with self._lock:
            return self._choice

    def set_credentials(self, username: str, password: str, url: str | None) -> None:
        """Remember the account (and, when given, the URL)."""
        with self._lock:
            url = url if url is not None else self._choice.url
            self._choice = attrs.evolve(self._choice, username=username, password=password, url=url)

    def configure(
        self, url: str | None, client: httpx.Client | None, allow_insecure_http: bool | None
    ) -> None:
        """Change the server URL, client, or whether plain http is allowed.

        ``None`` keeps the current value, so a later call never silently undoes an earlier one;
        :meth:`reset` forgets everything.
        """
        with self._lock:
            choice = self._choice
            self._choice = attrs.evolve(
                choice,
                url=url if url is not None else choice.url,
                client=client if client is not None else choice.client,
                allow_insecure_http=(
                    allow_insecure_http
                    if allow_insecure_http is not None
                    else choice.allow_insecure_http
                ),
            )

    def reset(self) -> None:
        """Forget every setting (credentials, URL, client)."""
        with self._lock:
            self._choice = ServerChoice()


_server = ServerSettings()


def server_settings() -> ServerSettings:
    """The server settings (``reset()`` them in tests; the ``repr`` hides the password)."""
    return _server
