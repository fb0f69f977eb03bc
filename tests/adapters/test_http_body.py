"""Large bodies read straight from the socket: whole, bounded and with httpx's own errors."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crowdsky.adapters.fits_transfer import FITS_BLOCK
from crowdsky.adapters.http_body import body_pieces
from crowdsky.adapters.seestar.http_files import HttpFiles
from crowdsky.adapters.simulator.http_server import FileServer
from crowdsky.errors import StorageError

NAME = "MyWorks/M 42/CrowdSky_3_M 42_10.0s_LP_20260227.77_HP107383.fit"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[FileServer, bytes]]:
    body = b"SIMPLE  =" + os.urandom(700 * FITS_BLOCK - 9)
    local = tmp_path / "root" / NAME
    local.parent.mkdir(parents=True)
    local.write_bytes(body)
    server = FileServer(tmp_path / "root", "127.0.0.1", 0)
    server.start()
    try:
        yield server, body
    finally:
        server.close()


def test_a_socket_body_arrives_whole_through_one_reused_buffer(
    served: tuple[FileServer, bytes],
) -> None:
    server, body = served
    url = f"http://127.0.0.1:{server.port}/{NAME.replace(' ', '%20')}"
    with httpx.Client() as client, client.stream("GET", url) as reply:
        pieces = [(type(piece), bytes(piece)) for piece in body_pieces(reply, piece=4096)]
    assert b"".join(data for _, data in pieces) == body
    # After what httpx had buffered, the rest came from the socket, at most a buffer at a time.
    assert memoryview in {kind for kind, _ in pieces[1:]}
    assert max(len(data) for _, data in pieces[1:]) <= 4096


def test_a_client_reads_on_after_a_socket_download(
    served: tuple[FileServer, bytes], tmp_path: Path
) -> None:
    server, body = served
    with HttpFiles(f"http://127.0.0.1:{server.port}") as files:
        first = files.download(NAME, tmp_path / "a.fit")
        second = files.download(NAME, tmp_path / "b.fit")
        third = files.download(NAME, tmp_path / "c.fit")
    assert first.read_bytes() == second.read_bytes() == third.read_bytes() == body


def test_without_a_socket_the_body_is_read_through_httpx() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * 5000))
    with httpx.Client(transport=transport) as client, client.stream("GET", "http://t/") as reply:
        pieces = list(body_pieces(reply))
    assert b"".join(pieces) == b"x" * 5000
    assert all(isinstance(piece, bytes) for piece in pieces)


def _one_answer(head: bytes, body: bytes) -> tuple[int, threading.Thread]:
    """A server on 127.0.0.1 that answers one request with ``head + body`` and hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with listener, listener.accept()[0] as conn:
            conn.recv(65536)
            conn.sendall(head + body)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_a_body_shorter_than_announced_is_httpx_remote_protocol_error() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 500000\r\n\r\n"
    port, thread = _one_answer(head, b"SIMPLE  =" + b"x" * 200_000)
    with (
        httpx.Client() as client,
        client.stream("GET", f"http://127.0.0.1:{port}/") as reply,
        pytest.raises(httpx.RemoteProtocolError, match="complete message body"),
    ):
        for _ in body_pieces(reply, piece=8192):
            pass
    thread.join(5)


def test_a_short_download_leaves_nothing_behind(tmp_path: Path) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 500000\r\n\r\n"
    port, thread = _one_answer(head, b"SIMPLE  =" + b"x" * 200_000)
    with (
        HttpFiles(f"http://127.0.0.1:{port}") as files,
        pytest.raises(StorageError, match="complete message body"),
    ):
        files.download(NAME, tmp_path / "a.fit")
    thread.join(5)
    assert list(tmp_path.iterdir()) == []


def test_the_size_cap_holds_on_the_socket_path(
    served: tuple[FileServer, bytes], tmp_path: Path
) -> None:
    server, _ = served
    out = tmp_path / "out"
    out.mkdir()
    with (
        HttpFiles(f"http://127.0.0.1:{server.port}", max_bytes=100 * FITS_BLOCK) as files,
        pytest.raises(StorageError, match="more than the"),
    ):
        files.download(NAME, out / "a.fit")
    assert list(out.iterdir()) == []
