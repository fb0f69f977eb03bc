"""HttpFiles' own header-read sockets against scripted answers: framing, reuse, fallbacks."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from astropy.io import fits

from crowdsky.adapters.seestar.http_files import HttpFiles
from crowdsky.errors import SeestarConnectionError, StorageError

PATH = "MyWorks/M 81_sub/Light_M 81_10.0s_LP_20260227-201505.fit"


def _fits_bytes() -> bytes:
    hdu = fits.PrimaryHDU(np.zeros((4, 4), dtype=np.uint16))
    hdu.header["DATE-OBS"] = "2026-02-27T19:15:05.123"
    return hdu.header.tostring().encode() + bytes(2880)


DATA = _fits_bytes()
HEAD = DATA[:2880]

#: One answer: the bytes sent, and whether the server hangs up after them.
Script = Callable[[int, bytes], tuple[bytes, bool]]


def partial(body: bytes, extra: str = "", version: str = "1.1") -> bytes:
    head = (
        f"HTTP/{version} 206 Partial Content\r\nContent-Length: {len(body)}\r\n"
        f"Content-Range: bytes 0-{len(body) - 1}/{len(DATA)}\r\n{extra}\r\n"
    )
    return head.encode() + body


class Scripted:
    """A loopback server that answers each request with ``script(n, request)``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                request, _, buffer = buffer.partition(b"\r\n\r\n")
                self.requests.append(request)
                answer, hang_up = self.script(len(self.requests), request)
                conn.sendall(answer)
                if hang_up:
                    return

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Script], Scripted]]:
    servers: list[Scripted] = []

    def start(script: Script) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_the_request_is_a_plain_ranged_get(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda n, request: (partial(DATA[:5760]), False))
    with HttpFiles(server.url, timeout=5) as files:
        assert files.read_header(PATH)["DATE-OBS"] == "2026-02-27T19:15:05.123"
    lines = server.requests[0].decode().split("\r\n")
    assert lines[0] == "GET /MyWorks/M%2081_sub/Light_M%2081_10.0s_LP_20260227-201505.fit HTTP/1.1"
    assert f"Host: {server.url.removeprefix('http://')}" in lines
    assert "Range: bytes=0-5759" in lines


def test_a_connection_closed_while_idle_is_replaced_once(
    serve: Callable[[Script], Scripted],
) -> None:
    # The server hangs up after every answer without saying so (no "Connection: close").
    server = serve(lambda n, request: (partial(DATA[:5760]), True))
    with HttpFiles(server.url, timeout=5) as files:
        for _ in range(3):
            assert files.read_header(PATH)["NAXIS"] == 2
    assert server.connections == 3


@pytest.mark.parametrize(
    ("extra", "version"), [("Connection: close\r\n", "1.1"), ("", "1.0")], ids=["close", "1.0"]
)
def test_an_answer_that_ends_the_connection_is_not_reused(
    serve: Callable[[Script], Scripted], extra: str, version: str
) -> None:
    server = serve(lambda n, request: (partial(DATA[:5760], extra, version), False))
    with HttpFiles(server.url, timeout=5) as files:
        for _ in range(2):
            assert files.read_header(PATH)["NAXIS"] == 2
    assert server.connections == 2


def test_kept_alive_answers_share_one_connection(serve: Callable[[Script], Scripted]) -> None:
    server = serve(lambda n, request: (partial(DATA[:5760]), False))
    with HttpFiles(server.url, timeout=5) as files:
        for _ in range(3):
            files.read_header(PATH)
    assert server.connections == 1


def test_a_chunked_answer_is_read_again_through_httpx(serve: Callable[[Script], Scripted]) -> None:
    body = DATA[:5760]
    chunked = (
        b"HTTP/1.1 206 Partial Content\r\nTransfer-Encoding: chunked\r\n"
        + f"Content-Range: bytes 0-5759/{len(DATA)}\r\n\r\n".encode()
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    server = serve(lambda n, request: (chunked, False))
    with HttpFiles(server.url, timeout=5) as files:
        assert files.read_header(PATH)["DATE-OBS"] == "2026-02-27T19:15:05.123"
    assert len(server.requests) == 2  # once directly, once through httpx


def test_a_body_shorter_than_its_length_is_a_storage_error(
    serve: Callable[[Script], Scripted],
) -> None:
    cut = partial(DATA[:5760])[:-3000]
    server = serve(lambda n, request: (cut, True))
    with HttpFiles(server.url, timeout=5) as files, pytest.raises(StorageError):
        files.read_header(PATH)


def test_an_answer_that_is_not_http_is_a_storage_error(
    serve: Callable[[Script], Scripted],
) -> None:
    server = serve(lambda n, request: (b"SSH-2.0-OpenSSH\r\n\r\n", True))
    files = HttpFiles(server.url, timeout=5)
    with files, pytest.raises(StorageError, match="not an HTTP"):
        files.read_header(PATH)


def test_a_server_that_hangs_up_at_once_is_not_asked_forever(
    serve: Callable[[Script], Scripted],
) -> None:
    server = serve(lambda n, request: (b"", True))
    with HttpFiles(server.url, timeout=5) as files, pytest.raises(StorageError):
        files.read_header(PATH)
    assert server.connections == 1


def test_an_error_status_is_reported_and_the_next_read_reconnects(
    serve: Callable[[Script], Scripted],
) -> None:
    answers = {1: b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found"}
    server = serve(lambda n, request: (answers.get(n, partial(DATA[:5760])), False))
    with HttpFiles(server.url, timeout=5) as files:
        with pytest.raises(StorageError, match="HTTP 404"):
            files.read_header(PATH)
        assert files.read_header(PATH)["NAXIS"] == 2
    assert server.connections == 2  # an answer left unread is never taken for the next one


def test_a_silent_server_times_out_as_a_connection_error(
    serve: Callable[[Script], Scripted],
) -> None:
    release = threading.Event()

    def silent(n: int, request: bytes) -> tuple[bytes, bool]:
        release.wait(10)
        return b"", True

    server = serve(silent)
    try:
        with HttpFiles(server.url, timeout=0.2) as files, pytest.raises(SeestarConnectionError):
            files.read_header(PATH)
    finally:
        release.set()
