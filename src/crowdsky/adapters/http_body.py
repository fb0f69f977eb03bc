"""Large response bodies read at socket speed: ``recv_into`` one reused buffer.

httpx (through httpcore and h11) reads a body in 64 KiB pieces and copies each several times,
which on a fast link costs half the throughput. :func:`body_pieces` reads what h11 holds
already through httpx, then the rest of a ``Content-Length`` body straight from the socket
httpx exposes (the ``network_stream`` response extension) into one preallocated buffer. That
leaves h11 behind the socket, so httpcore closes the connection when the response is closed
instead of reusing it: one new connection per download, nothing else.

An answer read by :class:`~crowdsky.adapters.direct_http.DirectGets` (a response whose stream
is an :class:`~crowdsky.adapters.direct_http.AnswerStream`) is read with ``recv_into`` the same
way, and its connection is kept for the next request.

A body httpx must decode (``Content-Encoding``), one without a ``Content-Length`` (chunked, or
read to the end), and any response without a socket (``httpx.MockTransport``) is read with
``iter_bytes`` as before. Either way the caller checks caps and deadlines per piece
(:func:`crowdsky.adapters.fits_transfer.bounded`). Socket errors become httpx's own
(``ReadTimeout``, ``ReadError``, ``RemoteProtocolError`` for a body that ends early), so the
callers' translation into :mod:`crowdsky.errors` is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx

from crowdsky.adapters.direct_http import AnswerStream

__all__ = ["PIECE", "body_pieces"]

#: Bytes asked of the socket at a time, and the size of the one buffer they land in.
PIECE = 1024 * 1024


def _plain_length(response: httpx.Response) -> int | None:
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return None
    if "transfer-encoding" in response.headers:
        return None
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _socket_of(response: httpx.Response) -> Any:
    stream = response.extensions.get("network_stream")
    get_info = getattr(stream, "get_extra_info", None)
    sock = get_info("socket") if callable(get_info) else None
    return sock if hasattr(sock, "recv_into") else None


def _read_timeout(response: httpx.Response) -> float | None:
    timeouts = response.request.extensions.get("timeout", {})
    value = timeouts.get("read") if isinstance(timeouts, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def body_pieces(response: httpx.Response, *, piece: int = PIECE) -> Iterator[bytes | memoryview]:
    """The body of a streamed (``stream=True``) response, in pieces as they arrive.

    A piece may be a ``memoryview`` of a buffer that the next piece overwrites: use (write,
    count, copy) each piece before asking for the next. Memory stays at ``piece`` bytes
    whatever the body's size.

    Parameters
    ----------
    response : httpx.Response
        A response whose body has not been read yet.
    piece : int
        The buffer's size.

    Raises
    ------
    httpx.ReadTimeout, httpx.ReadError
        The socket timed out or failed.
    httpx.RemoteProtocolError
        The server closed the connection before the announced length.
    """
    if isinstance(response.stream, AnswerStream):
        answer = response.stream.answer
        yield from answer.pieces_into(bytearray(min(piece, max(answer.length or piece, 1))))
        return
    length = _plain_length(response)
    sock = _socket_of(response) if length is not None else None
    if length is None or sock is None:
        yield from response.iter_bytes()
        return
    stream = response.stream
    if not isinstance(stream, Iterable):
        yield from response.iter_bytes()
        return
    # What h11 buffered with the head (or its first read): after it h11's buffer is empty. The
    # iterator is kept until the end: dropping it early would make httpcore close the socket.
    held = iter(stream)
    first = next(held, b"")
    received = len(first)
    if first:
        yield first
    buffer = memoryview(bytearray(min(piece, max(length - received, 1))))
    timeout = _read_timeout(response)
    while received < length:
        try:
            sock.settimeout(timeout)
            count = sock.recv_into(buffer, min(len(buffer), length - received))
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out reading the body") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc
        if count == 0:
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body "
                f"(received {received} bytes, expected {length})"
            )
        received += count
        yield buffer[:count]
    del held
