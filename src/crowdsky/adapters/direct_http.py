"""``GET`` requests over kept-alive sockets, without httpx's machinery.

For a small or fast answer httpx's own work dominates: a FITS header read (5.6 KB ranged
``GET``) cost about 0.55 ms of client CPU through httpx (httpcore, h11, its models and URL
parsing) against 0.2 ms for the whole round trip over a plain socket, and a 12.6 MB stack
download from the CrowdSky server about 1 ms more than a raw socket's 4.5 ms (BENCHMARKS.md,
"Planning's header reads" and "Where a server download's time goes"). :class:`DirectGets`
sends the request line and headers itself and reads the answer's head and a
``Content-Length`` (or read-to-close) body straight from the socket, over TLS when given an
:class:`ssl.SSLContext`; connections are kept for the next request while answers are read to
their end and the server does not ask to close. Used by
:class:`~crowdsky.adapters.seestar.http_files.HttpFiles` for header reads and by
:class:`~crowdsky.adapters.collab.http_client.HttpCollabServer` for stack downloads.

It understands only the answers a file server gives to a plain ``GET``. Anything else (an
informational ``1xx`` status, a chunked or otherwise transfer-encoded body, a content-encoded
one) raises :class:`NotPlain` before any body is read, and the caller asks again through httpx.
Socket, TLS and protocol failures are raised as httpx's own exceptions (``ConnectError``,
``ConnectTimeout``, ``ReadTimeout``, ``ReadError``, ``RemoteProtocolError``), as
:mod:`crowdsky.adapters.http_body` does, so the callers' translation into
:mod:`crowdsky.errors` is the same for both. Nothing here logs, and no error message holds a
request header (where the credentials are).
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import httpx

__all__ = ["Answer", "AnswerStream", "DirectGets", "NotPlain", "parse_head", "response_of"]

_HEAD_LIMIT = 64 * 1024
_PIECE = 64 * 1024
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d{3})(?: .*)?")
# What a kept connection the server closed meanwhile looks like when the request is sent.
_GONE = (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError)

P = TypeVar("P", bytes, memoryview)


class NotPlain(Exception):
    """The answer is not one :class:`DirectGets` reads (1xx, transfer- or content-encoded)."""


class Answer:
    """An answer's status and head, and its body as :meth:`pieces` or :meth:`pieces_into`.

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
        release: Callable[[socket.socket, bool], None] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self._sock = sock
        self._early = early
        self._release = release
        length = headers.get("content-length", "")
        self._length = int(length) if length.isdigit() else None
        # Bytes past the body would be read as the next answer's: such a socket is not kept.
        self._reusable = keep_alive and self._length is not None and len(early) <= self._length
        #: True once the whole body has been read and the connection may serve another request.
        self.complete = self._reusable and self._length == 0

    @property
    def length(self) -> int | None:
        """The body's ``Content-Length``, or ``None`` when it is read to the close."""
        return self._length

    def pieces(self) -> Iterator[bytes]:
        """The body as it arrives, in new ``bytes``; :attr:`complete` once all of it is read.

        Raises
        ------
        httpx.RemoteProtocolError
            The connection closed before ``Content-Length`` bytes came.
        httpx.ReadTimeout, httpx.ReadError
            The socket timed out or failed.
        """
        return self._body(lambda size: _recv(self._sock, size), _PIECE)

    def pieces_into(self, buffer: bytearray) -> Iterator[bytes | memoryview]:
        """The body as :meth:`pieces` does, but read into ``buffer`` with ``recv_into``.

        Each piece after the first (the bytes that came with the head) is a ``memoryview`` of
        ``buffer``, overwritten by the next one: use (write, count, copy) a piece before asking
        for the next. Memory stays at ``len(buffer)`` whatever the body's size.
        """
        view = memoryview(buffer)
        return self._body(lambda size: view[: _recv_into(self._sock, view, size)], len(view))

    def _body(self, read: Callable[[int], P], piece: int) -> Iterator[bytes | P]:
        left = self._length
        first = self._early if left is None else self._early[:left]
        if left is not None:
            left -= len(first)
        if first:
            yield first
        while left is None or left > 0:
            chunk = read(piece if left is None else min(piece, left))
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

    def close(self) -> None:
        """Done with the answer: its connection is kept when :attr:`complete`, else closed.

        Only an answer from :meth:`DirectGets.open` has a pool to go back to; closing twice
        does nothing.
        """
        release, self._release = self._release, None
        if release is not None:
            release(self._sock, self.complete)


class AnswerStream(httpx.SyncByteStream):
    """An :class:`Answer`'s body as an httpx stream: what an ``httpx.Response`` reads.

    Iterating gives new ``bytes`` (:meth:`Answer.pieces`), as httpx's own streams do;
    :func:`crowdsky.adapters.http_body.body_pieces` reads :attr:`answer` with ``recv_into``
    instead. Closing it closes the answer (its connection is kept when read to the end).
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer

    def __iter__(self) -> Iterator[bytes]:
        yield from self.answer.pieces()

    def close(self) -> None:
        """Close the answer."""
        self.answer.close()


def response_of(answer: Answer) -> httpx.Response:
    """A streamed ``httpx.Response`` of ``answer``, for code written for httpx's answers.

    It has no ``request``: read its status, headers and body, and close it.
    """
    return httpx.Response(answer.status, headers=answer.headers, stream=AnswerStream(answer))


class DirectGets:
    """``GET`` requests to one ``host:port`` over a small pool of kept-alive sockets.

    Safe to use from several threads at once: each request takes a socket of its own.

    Parameters
    ----------
    host : str
        The server's address (an IDNA host in its ASCII form).
    port : int
        Its port.
    timeout : float, None or httpx.Timeout
        Seconds for connecting (with the TLS handshake) and for each read or write; ``None``
        waits for ever; an ``httpx.Timeout`` gives its ``connect`` and ``read`` values.
    ssl_context : ssl.SSLContext, optional
        Speak TLS with this context (it verifies the server's certificate as configured, for
        the name ``host``); plain HTTP without it.
    """

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float | httpx.Timeout | None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._address = (host, port)
        name = f"[{host}]" if ":" in host else host  # an IPv6 address is bracketed
        default_port = 443 if ssl_context is not None else 80
        self._host_field = name if port == default_port else f"{name}:{port}"
        if isinstance(timeout, httpx.Timeout):
            self._timeout, self._connect_timeout = timeout.read, timeout.connect
        else:
            self._timeout = self._connect_timeout = timeout
        self._ssl = ssl_context
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def get(self, target: str, headers: Mapping[str, str]) -> Iterator[Answer]:
        """Send ``GET target`` and yield the answer once its head has come.

        The connection is kept for the next request when the body was read to its end (iterate
        :meth:`Answer.pieces` through) and the server keeps it open; otherwise it is closed, as
        it is when the ``with`` block raises.

        Raises
        ------
        NotPlain
            The answer is one to read through httpx instead (nothing is yielded).
        httpx.ConnectError, httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError
            The server could not be reached, stopped answering, or answered something not HTTP.
        """
        answer = self.open(target, headers)
        try:
            yield answer
        except BaseException:
            answer.complete = False
            raise
        finally:
            answer.close()

    def open(self, target: str, headers: Mapping[str, str]) -> Answer:
        """Send ``GET target`` and return the answer once its head has come.

        The caller reads the body and must :meth:`Answer.close` the answer: its connection is
        then kept if the body was read to its end and the server keeps it open.

        Raises
        ------
        NotPlain
            The answer is one to read through httpx instead.
        httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout, httpx.ReadError
            The server could not be reached or stopped answering.
        httpx.RemoteProtocolError
            The server answered something not HTTP.
        """
        lines = [f"GET {target} HTTP/1.1", f"Host: {self._host_field}", "Accept-Encoding: identity"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        return self._ask(request)

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    def _release(self, sock: socket.socket, reusable: bool) -> None:
        if reusable:
            with self._lock:
                self._idle.append(sock)
        else:
            sock.close()

    def _ask(self, request: bytes) -> Answer:
        """Send on a kept connection; one that the server closed meanwhile is replaced once."""
        while True:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            reused = sock is not None
            if sock is None:
                sock = self._connect()
            try:
                sock.sendall(request)
                return _read_head(sock, self._release)
            except _Stale:
                sock.close()
                if not reused:
                    raise httpx.RemoteProtocolError(
                        "server closed the connection without answering"
                    ) from None
            except (OSError, httpx.HTTPError, NotPlain) as exc:
                sock.close()
                if reused and isinstance(exc, _GONE):
                    continue
                if isinstance(exc, TimeoutError):
                    raise httpx.ReadTimeout(str(exc) or "timed out") from exc
                if isinstance(exc, OSError):
                    raise httpx.ReadError(str(exc)) from exc
                raise

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc)) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self._address[0])
        except TimeoutError as exc:
            sock.close()
            raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
        except OSError as exc:  # ssl.SSLError (a certificate not trusted, say) is an OSError
            sock.close()
            raise httpx.ConnectError(str(exc)) from exc
        sock.settimeout(self._timeout)
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


def _recv_into(sock: socket.socket, buffer: memoryview, size: int) -> int:
    try:
        return sock.recv_into(buffer, size)
    except TimeoutError as exc:
        raise httpx.ReadTimeout(str(exc) or "timed out") from exc
    except OSError as exc:
        raise httpx.ReadError(str(exc)) from exc


def _read_head(sock: socket.socket, release: Callable[[socket.socket, bool], None]) -> Answer:
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
    return Answer(sock, status, headers, buffer[end + 4 :], keep_alive=keep_alive, release=release)


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
