"""The specification's server functions: ``set_credentials``, ``upload_stack`` and friends.

Settings (URL, credentials, an optional ``httpx.Client``) live in one small thread-safe object,
never in loose module globals, and its ``repr`` never shows the password::

    import crowdsky
    crowdsky.set_credentials("username", "password")
    crowdsky.upload_stack("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    for s in crowdsky.list_stacks():
        print(s)
    crowdsky.download_stack(["20260227.81_HP102265"], dest="./downloads")
    crowdsky.upload_all_stacks(local_dir="./my_stacks")

Each call opens a connection and closes it when done; nothing is sent at import time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.journal import JOURNAL_NAME, JsonUploadJournal
from crowdsky.adapters.collab.stack_meta import LocalFitsFiles
from crowdsky.adapters.console import PrintProgress
from crowdsky.app import upload as _upload
from crowdsky.app.server_port import StackRecord, UploadReceipt
from crowdsky.session import current_seestar

__all__ = [
    "configure_server",
    "download_stack",
    "list_stacks",
    "server_settings",
    "set_credentials",
    "upload_all_stacks",
    "upload_stack",
]


class _ServerSettings:
    """Where the module-level functions send, and as whom (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._url: str | None = None
        self._username: str | None = None
        self._password: str | None = None
        self._client: httpx.Client | None = None
        self._allow_insecure_http = False

    def __repr__(self) -> str:
        with self._lock:
            url, user = self._url, self._username
        return f"<crowdsky server settings url={url!r} username={user!r}>"

    def set_credentials(self, username: str, password: str, url: str | None) -> None:
        with self._lock:
            self._username, self._password = username, password
            if url is not None:
                self._url = url

    def configure(
        self, url: str | None, client: httpx.Client | None, allow_insecure_http: bool
    ) -> None:
        with self._lock:
            self._url, self._client = url, client
            self._allow_insecure_http = allow_insecure_http

    def reset(self) -> None:
        """Forget every setting (credentials, URL, client)."""
        with self._lock:
            self._url = self._username = self._password = None
            self._client = None
            self._allow_insecure_http = False

    def server(self) -> HttpCollabServer:
        """A client for one call; unset credentials fall back to the environment."""
        with self._lock:
            return HttpCollabServer(
                self._url,
                username=self._username,
                password=self._password,
                client=self._client,
                allow_insecure_http=self._allow_insecure_http,
            )


_settings = _ServerSettings()


def server_settings() -> _ServerSettings:
    """The settings object (for ``reset()`` in tests; its ``repr`` hides the password)."""
    return _settings


def set_credentials(username: str, password: str, *, url: str | None = None) -> None:
    """Set the CrowdSky web-account credentials (and optionally the server URL).

    Without this call, ``CROWDSKY_USERNAME``/``CROWDSKY_PASSWORD`` are used.
    """
    _settings.set_credentials(username, password, url)


def configure_server(
    url: str | None = None, *, client: httpx.Client | None = None, allow_insecure_http: bool = False
) -> None:
    """Choose the server the module-level functions talk to.

    Parameters
    ----------
    url : str, optional
        Server root; else ``CROWDSKY_URL``; else ``https://crowdsky.univie.ac.at``.
    client : httpx.Client, optional
        A client to send with (its transport, proxies, certificates); not closed here.
    allow_insecure_http : bool
        Allow the password over plain ``http://`` to a host that is not loopback.
    """
    _settings.configure(url, client, allow_insecure_http)


def list_stacks(object_name: str | None = None) -> list[StackRecord]:
    """Your stacks on the server, optionally only those of one object."""
    with _settings.server() as server:
        return server.list_stacks(object_name)


def upload_stack(path: str | Path, **meta: Any) -> UploadReceipt:
    """Upload one stacked FITS file; ``meta`` as for :meth:`HttpCollabServer.upload_stack`."""
    with _settings.server() as server:
        return server.upload_stack(Path(path), **meta)


def download_stack(chunk_keys: str | Sequence[str], dest: str | Path = ".") -> list[Path]:
    """Download stacks by chunk key (one key or a list) into ``dest``; return their paths."""
    keys = [chunk_keys] if isinstance(chunk_keys, str) else list(chunk_keys)
    with _settings.server() as server:
        return [server.download_stack(key, Path(dest)) for key in keys]


def upload_all_stacks(
    target: str | Sequence[str] | None = None,
    dest: str | Path = ".",
    local_dir: str | Path | None = None,
    dry_run: bool = False,
    skip_existing: bool = True,
) -> dict[str, Any]:
    """Upload every CrowdSky stack not on the server yet (see :mod:`crowdsky.app.upload`).

    From the current Seestar (downloading to ``dest/<target>/`` first), or from ``local_dir``
    without any Seestar. The upload journal is ``<local_dir or dest>/.crowdsky-uploads.json``;
    report lines go to standard output.
    """
    seestar = current_seestar() if local_dir is None else None
    journal = JsonUploadJournal(Path(local_dir if local_dir is not None else dest) / JOURNAL_NAME)
    with _settings.server() as server:
        return _upload.upload_all_stacks(
            server, journal=journal, progress=PrintProgress(), clock=SystemClock(),
            local_fits=LocalFitsFiles(), seestar=seestar, target=target, dest=dest,
            local_dir=local_dir, dry_run=dry_run, skip_existing=skip_existing,
        )  # fmt: skip
