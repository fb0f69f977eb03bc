"""The simulator's file server (port 80 style): ``GET /MyWorks/<folder>/<file>`` from a directory.

Like ``zwoair_file_server`` (protocol reference §5.1) it serves percent-encoded paths under
``MyWorks/`` and answers 404 for anything missing. Range support on the device is unknown, so
it is a switch: honoured (206 + ``Content-Range``) or ignored (200 with the whole body).
Nothing outside ``<root>/MyWorks`` is ever served. The device's read faults
(:attr:`~crowdsky.adapters.device_model.faults.Faults.read_fails`) show here as an HTTP 500 or a
body cut short after its headers promised the whole of it. Two body faults test a client's
limits: an endless body (the file, then zeros without end) and a trickle (one byte every so
often).
"""

from __future__ import annotations

import os
import re
import socket
import stat
import threading
import time
import urllib.parse
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from crowdsky.adapters.device_model.faults import Faults, ReadFault
from crowdsky.domain.device_paths import ROOT_FOLDER, check_path
from crowdsky.errors import StorageError

__all__ = ["FileServer", "parse_range"]

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024
#: Bytes of a truncated body that are sent before the server hangs up (less than one card block).
_TRUNCATED_AT = 400


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte positions of a single ``bytes=`` range, clipped to ``size``.

    Returns ``None`` when the header is not one satisfiable range (the caller answers 416).

    Examples
    --------
    >>> parse_range("bytes=0-99", 1000), parse_range("bytes=900-", 1000)
    ((0, 99), (900, 999))
    >>> parse_range("bytes=-10", 1000), parse_range("bytes=2000-", 1000)
    ((990, 999), None)
    """
    match = _RANGE.match(header.strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            return None
        return max(0, size - length), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or end < start:
        return None
    return start, end


def _storage_path(raw_path: str) -> str:
    """``MyWorks/<folder>/<file>`` as the request names it (percent-decoding undone)."""
    return urllib.parse.unquote(urllib.parse.urlsplit(raw_path).path).removeprefix("/")


def _local_path(root: Path, raw_path: str) -> Path | None:
    """The file under ``root/MyWorks`` a request path names, or ``None`` if it names none.

    ``root`` is resolved already (the server does it once). A path whose every step from
    ``MyWorks`` down is a plain directory and the last a regular file is taken as it is (one
    ``lstat`` a step); one with a symbolic link on the way is resolved and must stay below
    ``root/MyWorks``.
    """
    path = urllib.parse.unquote(urllib.parse.urlsplit(raw_path).path)
    if not path.startswith("/"):
        return None
    try:
        parts = check_path(path[1:])
    except StorageError:
        return None
    base = root / ROOT_FOLDER
    local = base.joinpath(*parts[1:])
    try:
        plain = _plain_steps(base, parts[1:])
    except OSError:  # missing, or not readable
        return None
    if plain is None:
        return None
    if plain:
        return local
    base, local = base.resolve(), local.resolve()
    if not local.is_relative_to(base) or not local.is_file():
        return None
    return local


def _plain_steps(base: Path, parts: Sequence[str]) -> bool | None:
    """Whether ``base/<parts>`` is a regular file reached through plain directories.

    True: ``base`` and each folder in ``parts`` are directories and the last part a regular
    file. False: a symbolic link on the way (the caller resolves the path). ``None``: the last
    is no regular file (or a step is no directory). ``parts`` holds at least one part.
    """
    steps = [str(base)]
    for part in parts:
        steps.append(os.path.join(steps[-1], part))
    modes = [os.lstat(step).st_mode for step in steps]
    if any(map(stat.S_ISLNK, modes)):
        return False
    if all(map(stat.S_ISDIR, modes[:-1])) and stat.S_ISREG(modes[-1]):
        return True
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "zwoair_file_server"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a simulator in a test run must not write to stderr per request."""

    def _serve(self, *, body: bool) -> None:
        local = _local_path(self.server.root, self.path)
        if local is None:
            self._empty(HTTPStatus.NOT_FOUND)
            return
        try:
            stream = local.open("rb")
        except OSError:
            self._empty(HTTPStatus.NOT_FOUND)
            return
        fault = self.server.faults.read_refused(_storage_path(self.path))
        if fault == ReadFault.ERROR:
            stream.close()
            self._empty(HTTPStatus.INTERNAL_SERVER_ERROR)
            return
        with stream:
            size = local.stat().st_size
            first, last = 0, size - 1
            status = HTTPStatus.OK
            header = self.headers.get("Range")
            if header is not None and self.server.honour_range:
                wanted = parse_range(header, size)
                if wanted is None:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                (first, last), status = wanted, HTTPStatus.PARTIAL_CONTENT
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            if self.server.endless_body and body:
                self.end_headers()
                self._endless(stream)
                return
            self.send_header("Content-Length", str(last - first + 1))
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if body and fault == ReadFault.TRUNCATED:
                self._copy(stream, first, min(_TRUNCATED_AT, last - first + 1))
                self.close_connection = True
            elif body:
                self._copy(stream, first, last - first + 1)

    def _copy(self, stream: BinaryIO, offset: int, length: int) -> None:
        stream.seek(offset)
        trickle = self.server.trickle_interval
        while length > 0:
            chunk = stream.read(min(1 if trickle > 0 else _CHUNK, length))
            if not chunk:
                break
            try:
                self.wfile.write(chunk)
                if trickle > 0:
                    self.wfile.flush()
                    time.sleep(trickle)
            except OSError:  # the client hung up mid-body
                self.close_connection = True
                return
            length -= len(chunk)

    def _endless(self, stream: BinaryIO) -> None:
        """The file, then zeros, until the client hangs up (no ``Content-Length``)."""
        self.close_connection = True
        zeros = bytes(_CHUNK)
        try:
            self.wfile.write(stream.read())
            while True:
                self.wfile.write(zeros)
        except OSError:
            return

    def _empty(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], root: Path, honour_range: bool, faults: Faults
    ) -> None:
        self.root = root.resolve()  # once: each request then checks only the steps below it
        self.honour_range = honour_range
        self.faults = faults
        self.endless_body = False
        self.trickle_interval = 0.0
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection with Nagle's algorithm off.

        The handler writes the status line and headers, then the body, in separate writes; with
        Nagle on, a keep-alive client's next small answer waits for the delayed ACK (about 40 ms
        on loopback, against 1 ms).
        """
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class FileServer:
    """An HTTP file server for ``root/MyWorks`` on ``(host, port)`` (port 0: any free port).

    Parameters
    ----------
    root : Path
        The directory that plays the eMMC root (it holds ``MyWorks/``).
    host : str
        Address to bind.
    port : int
        Port to bind.
    honour_range : bool
        Answer ``Range`` requests with 206; when False, ignore them (200, whole file).
    faults : Faults, optional
        The device's faults; their read faults apply to the files served (none by default).

    Attributes
    ----------
    endless_body : bool
        Fault: answer GETs with the file and then zeros without end, no ``Content-Length``.
    trickle_interval : float
        Fault: when positive, send bodies one byte every that many seconds.
    """

    def __init__(
        self,
        root: Path,
        host: str,
        port: int,
        *,
        honour_range: bool = True,
        faults: Faults | None = None,
    ) -> None:
        self._server = _Server(
            (host, port), Path(root), honour_range, faults if faults is not None else Faults()
        )
        self.host: str = self._server.server_address[0]  # type: ignore[assignment]
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def endless_body(self) -> bool:
        """Fault: the file, then zeros without end (see the class docstring)."""
        return self._server.endless_body

    @endless_body.setter
    def endless_body(self, value: bool) -> None:
        self._server.endless_body = value

    @property
    def trickle_interval(self) -> float:
        """Fault: seconds between the single bytes of a body; 0 sends at full speed."""
        return self._server.trickle_interval

    @trickle_interval.setter
    def trickle_interval(self, value: float) -> None:
        self._server.trickle_interval = value

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread.ident is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
