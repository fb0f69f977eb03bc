"""A raw-socket HTTP/1.1 client: the yardstick the transfer benchmarks compare against.

It does no more than a transfer must: one ``GET`` read with ``recv_into`` into a preallocated
buffer and written to a file, or one ``POST`` whose file part goes with ``socket.sendfile``. No
checks, no retries, no limits: the fastest Python can move the bytes through the same server.
"""

from __future__ import annotations

import base64
import socket
from pathlib import Path

PIECE = 1 << 20


def _read_head(sock: socket.socket) -> tuple[int, bytes, dict[str, str]]:
    head = b""
    while b"\r\n\r\n" not in head:
        more = sock.recv(65536)
        if not more:
            raise OSError("connection closed before the answer's head")
        head += more
    text, _, rest = head.partition(b"\r\n\r\n")
    lines = text.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), rest, fields


def _read_body(sock: socket.socket, rest: bytes, length: int, out: object) -> int:
    write = out.write  # type: ignore[attr-defined]
    write(rest)
    received = len(rest)
    buffer = memoryview(bytearray(PIECE))
    while received < length:
        n = sock.recv_into(buffer, min(PIECE, length - received))
        if not n:
            break
        write(buffer[:n])
        received += n
    return received


def get_to_file(host: str, port: int, target: str, dest: Path, auth: str | None = None) -> int:
    """``GET target`` and write its body to ``dest``; return the number of body bytes."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if auth is not None:
        lines.append(f"Authorization: Basic {auth}")
    with socket.create_connection((host, port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status, rest, fields = _read_head(sock)
        if status != 200:
            raise OSError(f"HTTP {status}")
        with dest.open("wb") as out:
            return _read_body(sock, rest, int(fields["content-length"]), out)


def post_file(
    host: str,
    port: int,
    target: str,
    head: bytes,
    path: Path,
    tail: bytes,
    content_type: str,
    auth: str,
) -> bytes:
    """``POST`` ``head + file + tail`` (the file by ``sendfile``); return the answer's body."""
    length = len(head) + path.stat().st_size + len(tail)
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host}:{port}",
        "Connection: close",
        f"Authorization: Basic {auth}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
    ]
    with socket.create_connection((host, port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + head)
        with path.open("rb") as handle:
            sock.sendfile(handle)
        sock.sendall(tail)
        status, rest, fields = _read_head(sock)
        body = rest
        while len(body) < int(fields.get("content-length", "0")):
            body += sock.recv(65536)
        if status != 200:
            raise OSError(f"HTTP {status}: {body[:200]!r}")
        return body


def basic(username: str, password: str) -> str:
    """The value after ``Basic`` for these credentials."""
    return base64.b64encode(f"{username}:{password}".encode()).decode()
