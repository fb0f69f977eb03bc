"""Stack downloads over the client's own sockets: keep-alive, fallbacks, path prefix, HTTPS.

The server here is HTTP/1.1 with keep-alive (the loopback CrowdSky server closes after every
answer), optionally over TLS with a certificate made in the test, and counts its connections.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.errors import ServerUnavailable

from .helpers import PASSWORD, no_password_in

KEY = "20260227.81_HP102265"
ODD_KEY = "a b/c&d+é?#%"
STACK = b"SIMPLE  =                    T" + b" " * 50 + b"END" + b" " * 77 + bytes(2880 * 2 - 160)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def setup(self) -> None:
        with self.server.lock:
            self.server.connections += 1
        super().setup()

    def do_GET(self) -> None:
        """Serve a stack by ``chunk_key``; how is set on the server."""
        server = self.server
        url = urlsplit(self.path)
        server.seen.append((self.path, dict(self.headers.items())))
        key = parse_qs(url.query).get("chunk_key", [""])[0]
        if url.path != server.prefix + "/api/download_stack.php" or key not in server.stacks:
            self._answer(404, b'{"error": "Stack not found."}')
            return
        if server.busy:
            server.busy -= 1
            self._answer(503, b'{"error": "busy"}', ("Retry-After", "7"))
            return
        body = server.stacks[key]
        disposition = ("Content-Disposition", f'attachment; filename="S_{KEY}.fits"')
        if server.chunked:
            self._chunked(body, disposition)
        else:
            self._answer(200, body, disposition)
        if server.hang_up_silently:
            self.close_connection = True  # and no "Connection: close": the client learns later

    def _answer(self, status: int, body: bytes, *fields: tuple[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for name, value in fields:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _chunked(self, body: bytes, *fields: tuple[str, str]) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in fields:
            self.send_header(name, value)
        self.end_headers()
        for start in range(0, len(body), 1000):
            piece = body[start : start + 1000]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None, prefix: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        if tls is not None:  # the handshake in the handler's thread, not in accept()
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self.prefix = prefix
        self.lock = threading.Lock()
        self.connections = 0
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stacks = {KEY: STACK, ODD_KEY: STACK}
        self.chunked = False
        self.hang_up_silently = False
        self.busy = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client refusing our certificate is what one test wants: no traceback."""


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crowdsky test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _serve(tls: ssl.SSLContext | None = None, prefix: str = "") -> Iterator[_Server]:
    server = _Server(tls, prefix)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def plain() -> Iterator[_Server]:
    yield from _serve()


@pytest.fixture
def prefixed() -> Iterator[_Server]:
    yield from _serve(prefix="/crowdsky")


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[_Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    yield from _serve(tls=context)


def _url(server: _Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{server.server_address[1]}{server.prefix}"


def _client(url: str, **options: Any) -> HttpCollabServer:
    options.setdefault("sleep", lambda seconds: None)
    return HttpCollabServer(url, username="username", password=PASSWORD, **options)


def test_two_downloads_share_one_kept_alive_connection(plain: _Server, tmp_path: Path) -> None:
    with _client(_url(plain)) as client:
        first = client.download_stack(KEY, tmp_path / "a")
        second = client.download_stack(KEY, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes() == STACK
    assert first.name == f"S_{KEY}.fits"
    assert plain.connections == 1


def test_the_request_carries_what_httpx_would_send(prefixed: _Server, tmp_path: Path) -> None:
    """Path prefix, query encoding, Basic auth, Accept and User-Agent: as through httpx."""
    with _client(_url(prefixed)) as ours:
        ours.download_stack(ODD_KEY, tmp_path / "ours")
    with httpx.Client() as given, _client(_url(prefixed), client=given) as through_httpx:
        through_httpx.download_stack(ODD_KEY, tmp_path / "httpx")
    (path, direct), (httpx_path, by_httpx) = prefixed.seen
    assert path == httpx_path
    assert path.startswith("/crowdsky/api/download_stack.php?chunk_key=")
    for field in ("Authorization", "Accept", "User-Agent"):
        assert direct[field] == by_httpx[field]
    assert base64.b64decode(direct["Authorization"][6:]).decode() == f"username:{PASSWORD}"
    assert direct["Accept-Encoding"] == "identity"  # httpx's own asks for gzip: not ours
    assert by_httpx["Accept-Encoding"] != "identity"


def test_a_chunked_answer_is_read_through_httpx(plain: _Server, tmp_path: Path) -> None:
    plain.chunked = True
    with _client(_url(plain)) as client:
        saved = client.download_stack(KEY, tmp_path)
    assert saved.read_bytes() == STACK
    assert len(plain.seen) == 2  # asked directly, then again through httpx


def test_a_connection_the_server_dropped_is_replaced_without_a_retry(
    plain: _Server, tmp_path: Path
) -> None:
    plain.hang_up_silently = True
    sleeps: list[float] = []
    with _client(_url(plain), sleep=sleeps.append) as client:
        for folder in ("a", "b", "c"):
            assert client.download_stack(KEY, tmp_path / folder).read_bytes() == STACK
    assert plain.connections == 3
    assert sleeps == []


def test_a_busy_answer_is_retried_after_retry_after(plain: _Server, tmp_path: Path) -> None:
    plain.busy = 1
    sleeps: list[float] = []
    with _client(_url(plain), sleep=sleeps.append) as client:
        assert client.download_stack(KEY, tmp_path).read_bytes() == STACK
    assert sleeps == [7.0]


def test_an_injected_client_sends_every_download(plain: _Server, tmp_path: Path) -> None:
    requests: list[httpx.Request] = []
    with (
        httpx.Client(event_hooks={"request": [requests.append]}) as given,
        _client(_url(plain), client=given) as client,
    ):
        client.download_stack(KEY, tmp_path)
    assert len(requests) == 1


def test_a_proxy_in_the_environment_is_used(
    plain: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """httpx would go through the proxy: so does every download (here the server is both)."""
    monkeypatch.setenv("HTTP_PROXY", _url(plain))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with _client("http://127.0.0.1:9") as client:  # nothing listens on port 9 here
        assert client.download_stack(KEY, tmp_path).read_bytes() == STACK
    assert plain.seen[0][0].startswith("http://127.0.0.1:9/api/download_stack.php?")


def test_https_downloads_verify_and_keep_the_connection(
    tls_server: _Server,
    certificate: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # as httpx trusts it
    with _client(_url(tls_server, "https")) as client:
        first = client.download_stack(KEY, tmp_path / "a")
        second = client.download_stack(KEY, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes() == STACK
    assert tls_server.connections == 1
    assert tls_server.seen[0][1]["Host"] == f"127.0.0.1:{tls_server.server_address[1]}"


def test_https_to_an_untrusted_certificate_is_refused(
    tls_server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with (
        _client(_url(tls_server, "https"), retries=0) as client,
        pytest.raises(ServerUnavailable) as caught,
    ):
        client.download_stack(KEY, tmp_path)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert no_password_in([str(caught.value), repr(caught.value.__cause__)])
    assert tls_server.seen == []
    assert list(tmp_path.iterdir()) == []
