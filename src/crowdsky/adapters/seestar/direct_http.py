"""Small ``GET`` requests over kept-alive sockets, without httpx's machinery.

A FITS header read is a 5.6 KB ranged ``GET`` answered in a fraction of a millisecond on a near
link; through httpx (httpcore, h11, its models and URL parsing) the client's own work per read
was about 0.55 ms on the standard machine against 0.2 ms for the whole round trip over a plain
socket (BENCHMARKS.md, "Planning's header reads"). :class:`DirectGets` sends the request line
and headers itself and reads the answer's head and a ``Content-Length`` (or read-to-close) body
straight from the socket; connections are kept for the next request while answers are read to
their end and the server does not ask to close.

It understands only the answers a file server gives to a plain ``GET``. Anything else (an
informational ``1xx`` status, a chunked or otherwise transfer-encoded body, a content-encoded
one) raises :class:`NotPlain` before any body is read, and the caller asks again through httpx.
Socket and protocol failures are raised as httpx's own exceptions (``ConnectError``,
``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``), as :mod:`crowdsky.adapters.http_body`
does, so the callers' translation into :mod:`crowdsky.errors` is the same for both.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterator, Mapping

import httpx

__all__ = ["Answer", "DirectGets", "NotPlain", "parse_head"]

_HEAD_LIMIT = 64 * 1024
_PIECE = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d{3})(?: .*)?")


class NotPlain(Exception):
    """The answer is not one :class:`DirectGets` reads (1xx, transfer- or content-encoded)."""


class Answer:
    """An answer's status and head, and its body as :meth:`pieces`.

    Attributes
    ----------
    status : int
        The HTTP status code.
    headers : Mapping of str to str
        The answer's header fields, names lower-cased (a repeated field keeps its last value).
    """

    def __init__(
        self,
        sock: socket.socket,
        status: int,
        headers: Mapping[str, str],
        early: bytes,
        *,
        keep_alive: bool,
    ) -> None:
        self.status = status
        self.headers = headers
        self._sock = sock
        self._early = early
        length = headers.get("content-length", "")
        self._length = int(length) if length.isdigit() else None
        # Bytes past the body would be read as the next answer's: such a socket is not kept.
        self._reusable = keep_alive and self._length is not None and len(early) <= self._length
        #: True once the whole body has been read and the connection may serve another request.
        self.complete = self._reusable and self._length == 0

    def pieces(self) -> Iterator[bytes]:
        """The body as it arrives; :attr:`complete` once all of it has been read.

        Raises
        ------
        httpx.RemoteProtocolError
            The connection closed before ``Content-Length`` bytes came.
        httpx.ReadTimeout, httpx.ReadError
            The socket timed out or failed.
        """
        left = self._length
        first = self._early if left is None else self._early[:left]
        if left is not None:
            left -= len(first)
        if first:
            yield first
        while left is None or left > 0:
            chunk = _recv(self._sock, _PIECE if left is None else min(_PIECE, left))
            if not chunk:
                if left is None:
                    break  # read to close: the end of the body
                raise httpx.RemoteProtocolError(
                    f"peer closed connection without sending complete message body "
                    f"({left} bytes missing)"
                )
            if left is not None:
                left -= len(chunk)
            yield chunk
        self.complete = self._reusable


class DirectGets:
    """``GET`` requests to one ``host:port`` over a small pool of kept-alive sockets.

    Safe to use from several threads at once: each request takes a socket of its own.

    Parameters
    ----------
    host : str
        The server's address.
    port : int
        Its port.
    timeout : float
        Seconds for connecting and for each read.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._address = (host, port)
        name = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed
        self._host_field = name if port == 80 else f"{name}:{port}"
        self._timeout = timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def get(self, target: str, headers: Mapping[str, str]) -> Iterator[Answer]:
        """Send ``GET target`` and yield the answer once its head has come.

        The connection is kept for the next request when the body was read to its end (iterate
        :meth:`Answer.pieces` through) and the server keeps it open; otherwise it is closed.

        Raises
        ------
        NotPlain
            The answer is one to read through httpx instead (nothing is yielded).
        httpx.ConnectError, httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError
            The server could not be reached, stopped answering, or answered something not HTTP.
        """
        lines = [f"GET {target} HTTP/1.1", f"Host: {self._host_field}", "Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        sock, answer = self._ask(request)
        try:
            yield answer
        except BaseException:
            sock.close()
            raise
        if answer.complete:
            with self._lock:
                self._idle.append(sock)
        else:
            sock.close()

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def _ask(self, request: bytes) -> tuple[socket.socket, Answer]:
        """Send on a kept connection; one that the server closed meanwhile is replaced once."""
        while True:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            reused = sock is not None
            if sock is None:
                sock = self._connect()
            try:
                sock.sendall(request)
                return sock, _read_head(sock)
            except _Stale:
                sock.close()
                if not reused:
                    raise httpx.RemoteProtocolError(
                        "server closed the connection without answering"
                    ) from None
            except (OSError, httpx.HTTPError, NotPlain) as exc:
                sock.close()
                if reused and isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                    continue
                if isinstance(exc, TimeoutError):
                    raise httpx.ReadTimeout(str(exc) or "timed out") from exc
                if isinstance(exc, OSError):
                    raise httpx.ReadError(str(exc)) from exc
                raise

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(self._address, timeout=self._timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


class _Stale(Exception):
    """The connection closed before any byte of the answer."""


def _recv(sock: socket.socket, size: int) -> bytes:
    try:
        return sock.recv(size)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out") from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc)) from exc


def _read_head(sock: socket.socket) -> Answer:
    """Read up to the blank line after the header fields, and parse them (:func:`parse_head`)."""
    buffer = b""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        if len(buffer) > _HEAD_LIMIT:
            raise httpx.RemoteProtocolError("the answer's head is too long")
        chunk = sock.recv(_PIECE)  # OSError handled by the caller (a stale socket is retried)
        if not chunk:
            if not buffer:
                raise _Stale
            raise httpx.RemoteProtocolError("server closed the connection in the answer's head")
        buffer += chunk
    status, headers, keep_alive = parse_head(buffer[:end])
    return Answer(sock, status, headers, buffer[end + 4 :], keep_alive=keep_alive)


def parse_head(head: bytes) -> tuple[int, dict[str, str], bool]:
    """Status, header fields (names lower-cased) and keep-alive of an answer's head.

    ``head`` is the status line and the fields, without the blank line that ends them. No I/O:
    bytes in, the answer's facts out.

    Raises
    ------
    httpx.RemoteProtocolError
        For a head that is not HTTP/1.x.
    NotPlain
        For an answer this reader leaves to httpx (1xx, transfer- or content-encoded).
    """
    status_line, *fields = head.split(b"\r\n")
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise httpx.RemoteProtocolError(f"not an HTTP answer: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    for field in fields:
        name, colon, value = field.partition(b":")
        if not colon or not name or name != name.strip():
            raise httpx.RemoteProtocolError(f"malformed header field {field[:80]!r}")
        headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
    status = int(match[2])
    encoding = headers.get("content-encoding", "identity").lower()
    if status < 200 or "transfer-encoding" in headers or encoding != "identity":
        raise NotPlain(status)
    keep_alive = match[1] == b"1" and "close" not in headers.get("connection", "").lower()
    return status, headers, keep_alive
