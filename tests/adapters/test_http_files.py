"""HttpFiles against a real loopback file server (Range honoured or ignored) and MockTransport."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import httpx
import numpy as np
import pytest
from astropy.io import fits

from crowdsky.adapters.seestar.http_files import BLOCK, HttpFiles
from crowdsky.errors import SeestarConnectionError, StorageError

SUB = "MyWorks/NGC 281_sub/Light_NGC 281_10.0s_LP_20250929-010116.fit"
GREEK = "MyWorks/ε Cnc/DSO_Stacked_12_ε Cnc_10.0s_20260301_010203.fit"
#: Seestar headers fit in one or two blocks: the first request asks for two, no more.
FIRST_RANGE = 2 * BLOCK


# --- a loopback stand-in for the device's zwoair_file_server ------------------------------------


class FileServer:
    """Serves ``root`` on 127.0.0.1; knobs for Range, aborts and stalls; records what it saw."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.honour_range = True
        self.abort_after: int | None = None  # bytes of body, then drop the connection
        self.stall_after: int | None = None  # bytes of body, then wait for `release`
        self.release = threading.Event()
        self.requests: list[tuple[str, str | None]] = []  # (raw path, Range header)
        self.peers: list[object] = []  # the client address each request came from
        self.statuses: list[int] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "zwoair_file_server"
            timeout = 10  # a forgotten keep-alive connection must not hang the teardown

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append((self.path, self.headers.get("Range")))
                server.peers.append(self.client_address)
                local = server.root / unquote(self.path.lstrip("/"))
                if not local.is_file():
                    self._head(404, 0)
                    return
                data = local.read_bytes()
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
                if match and server.honour_range:
                    start = int(match[1])
                    if start >= len(data):
                        self._head(416, 0, {"Content-Range": f"bytes */{len(data)}"})
                        return
                    end = min(int(match[2] or len(data) - 1), len(data) - 1)
                    content_range = f"bytes {start}-{end}/{len(data)}"
                    self._head(206, end + 1 - start, {"Content-Range": content_range})
                    self._body(data[start : end + 1])
                else:
                    self._head(200, len(data))
                    self._body(data)

            def _head(self, status: int, length: int, extra: dict[str, str] | None = None) -> None:
                server.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()

            def _body(self, data: bytes) -> None:
                limit = server.abort_after if server.abort_after is not None else len(data)
                stall = server.stall_after
                try:
                    if stall is not None:
                        self.wfile.write(data[:stall])
                        self.wfile.flush()
                        server.release.wait(10)
                        data = data[stall:]
                    self.wfile.write(data[:limit])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: that is the point of some tests
                if limit < len(data):
                    self.close_connection = True

        return Handler


class CountingTransport(httpx.BaseTransport):
    """A real HTTP transport that counts the body bytes httpx pulled off the network."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.received = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        inner_stream = response.stream
        counter = self

        class Counted(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                for chunk in inner_stream:  # type: ignore[union-attr]
                    counter.received += len(chunk)
                    yield chunk

            def close(self) -> None:
                inner_stream.close()  # type: ignore[union-attr]

        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=Counted(),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


# --- fixtures -----------------------------------------------------------------------------------


def s50_sub(path: Path, extra_cards: int = 0) -> Path:
    """A realistic S50 raw sub: 2-D uint16 1080×1920 with the header cards of a real one."""
    hdu = fits.PrimaryHDU(np.zeros((1920, 1080), dtype=np.uint16))
    cards = {
        "CREATOR": "ZWO Seestar S50",
        "PRODUCER": "ZWO",
        "TELESCOP": "S50_40d24ed8",
        "INSTRUME": "Seestar S50",
        "OBJECT": "NGC 281",
        "IMAGETYP": "Light",
        "EXPTIME": 10.0,
        "EXPOSURE": 10.0,
        "GAIN": 80,
        "FILTER": "LP",
        "CCD-TEMP": 27.9375,
        "RA": 13.633335,
        "DEC": 56.775833,
        "BAYERPAT": "GRBG",
        "SITELAT": 30.5038,
        "SITELONG": -97.7429,
        "DATE-OBS": "2025-09-29T06:01:02.382641",
        "PROGRAM": "4.70",
        "EQMODE": 0,
    }
    for key, value in cards.items():
        hdu.header[key] = value
    for i in range(extra_cards):
        hdu.header[f"X{i:07d}"] = i
    path.parent.mkdir(parents=True, exist_ok=True)
    hdu.writeto(path)
    return path


@pytest.fixture(scope="module")
def device_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("device")
    s50_sub(root / SUB)
    s50_sub(root / GREEK)
    s50_sub(root / "MyWorks/Long/long_header.fit", extra_cards=700)  # ~20 blocks of header
    small = fits.PrimaryHDU(np.zeros((4, 4), dtype=np.uint16))
    small.header["FILTER"] = "IRCUT   "
    (root / "MyWorks/Small").mkdir(parents=True)
    small.writeto(root / "MyWorks/Small/small.fit")
    (root / "MyWorks/Small/empty.fit").write_bytes(b"")
    (root / "MyWorks/Small/page.fit").write_bytes(b"<html>" + b" " * 5000 + b"</html>")
    return root


@pytest.fixture
def server(device_root: Path) -> Iterator[FileServer]:
    with FileServer(device_root) as running:
        yield running


@pytest.fixture
def counting() -> CountingTransport:
    return CountingTransport()


@pytest.fixture
def counted_files(server: FileServer, counting: CountingTransport) -> Iterator[HttpFiles]:
    """Through httpx with a transport that counts the body bytes taken off the network."""
    with httpx.Client(transport=counting, timeout=10) as client:
        yield HttpFiles(server.url, client=client)


@pytest.fixture(params=["httpx", "direct"])
def files(request: pytest.FixtureRequest, server: FileServer) -> Iterator[HttpFiles]:
    """Both ways of reading: a client passed in (httpx), and header reads on own sockets."""
    if request.param == "direct":
        with HttpFiles(server.url, timeout=10) as own:
            yield own
        return
    with httpx.Client(timeout=10) as client:
        yield HttpFiles(server.url, client=client)


# --- headers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("honour_range", [True, False], ids=["206", "200-range-ignored"])
def test_header_of_a_real_s50_sub(
    server: FileServer, counted_files: HttpFiles, counting: CountingTransport, honour_range: bool
) -> None:
    server.honour_range = honour_range
    header = counted_files.read_header(SUB)
    assert header["NAXIS1"] == 1080
    assert header["NAXIS2"] == 1920
    assert header["BZERO"] == 32768
    assert header["FILTER"] == "LP"
    assert header["DATE-OBS"] == "2025-09-29T06:01:02.382641"
    assert header["RA"] == pytest.approx(13.633335)
    assert "COMMENT" not in header
    assert server.requests == [("/" + SUB.replace(" ", "%20"), f"bytes=0-{FIRST_RANGE - 1}")]
    assert server.statuses == [206 if honour_range else 200]
    file_size = (server.root / SUB).stat().st_size
    assert counting.received <= FIRST_RANGE if honour_range else counting.received < file_size / 10


@pytest.mark.parametrize("honour_range", [True, False], ids=["206", "200-range-ignored"])
def test_header_longer_than_the_first_range(
    server: FileServer, files: HttpFiles, honour_range: bool
) -> None:
    server.honour_range = honour_range
    header = files.read_header("MyWorks/Long/long_header.fit")
    assert header["X0000699"] == 699
    assert header["OBJECT"] == "NGC 281"
    if honour_range:
        ranges = [re.fullmatch(r"bytes=(\d+)-(\d+)", r or "") for _, r in server.requests]
        spans = [(int(m[1]), int(m[2]) + 1) for m in ranges if m is not None]
        assert len(spans) == len(server.requests) > 1
        assert spans[0] == (0, FIRST_RANGE)
        # Each range continues where the last ended and is longer than it: a 20-block header
        # takes 2 + 4 + 8 + 16 blocks, four requests, not ten.
        for (first, end), (start, stop) in itertools.pairwise(spans):
            assert start == end
            assert stop - start > end - first
        assert len(spans) <= 4
        assert set(server.statuses) == {206}
    else:
        assert len(server.requests) == 1


@pytest.mark.parametrize("path", [SUB, "MyWorks/Long/long_header.fit", "MyWorks/Small/small.fit"])
def test_header_reads_keep_one_connection(server: FileServer, files: HttpFiles, path: str) -> None:
    """A range read to the end of its answer leaves the connection for the next read."""
    for _ in range(3):
        assert files.read_header(path)["NAXIS"] == 2
    assert len(server.requests) >= 3
    assert len(set(server.peers)) == 1


def test_direct_read_of_a_whole_file_answer_stops_at_the_end_card(server: FileServer) -> None:
    """Range ignored: the direct read takes the header and hangs up; the next read reconnects."""
    server.honour_range = False
    with HttpFiles(server.url, timeout=10) as files:
        for _ in range(2):
            header = files.read_header(SUB)
            assert (header["NAXIS1"], header["DATE-OBS"]) == (1080, "2025-09-29T06:01:02.382641")
    assert server.statuses == [200, 200]
    assert len(set(server.peers)) == 2


def test_small_file_and_padded_strings(server: FileServer, files: HttpFiles) -> None:
    assert files.read_header("MyWorks/Small/small.fit")["FILTER"] == "IRCUT"


def test_spaces_and_greek_letters_are_percent_encoded(server: FileServer, files: HttpFiles) -> None:
    assert files.read_header(GREEK)["OBJECT"] == "NGC 281"
    raw_path = server.requests[0][0]
    assert raw_path == "/MyWorks/%CE%B5%20Cnc/DSO_Stacked_12_%CE%B5%20Cnc_10.0s_20260301_010203.fit"


def test_missing_file_is_a_storage_error_naming_it(files: HttpFiles) -> None:
    with pytest.raises(StorageError, match=r"No such file.*M 81/nothing\.fit.*404"):
        files.read_header("MyWorks/M 81/nothing.fit")


@pytest.mark.parametrize("honour_range", [True, False])
def test_not_a_fits_file(server: FileServer, files: HttpFiles, honour_range: bool) -> None:
    server.honour_range = honour_range
    with pytest.raises(StorageError, match="not a FITS file"):
        files.read_header("MyWorks/Small/page.fit")
    with pytest.raises(StorageError, match="not a FITS file"):
        files.read_header("MyWorks/Small/empty.fit")


def test_body_cut_before_the_end_card(server: FileServer, files: HttpFiles) -> None:
    server.honour_range = False
    server.abort_after = 1000
    with pytest.raises(StorageError):
        files.read_header(SUB)


def test_refused_connection_is_a_connection_error() -> None:
    with FileServer(Path()) as stopped:
        url = stopped.url
    with HttpFiles(url, timeout=5) as files, pytest.raises(SeestarConnectionError, match=url):
        files.read_header(SUB)


def test_stalled_server_times_out_as_a_connection_error(server: FileServer) -> None:
    server.stall_after = 100
    with HttpFiles(server.url, timeout=0.2) as files, pytest.raises(SeestarConnectionError):
        files.read_header(SUB)


@pytest.mark.parametrize("path", ["MyWorks/../etc/passwd", "/MyWorks/a.fit", "", "etc/a.fit"])
def test_paths_outside_myworks_are_refused_before_any_request(
    server: FileServer, files: HttpFiles, path: str
) -> None:
    with pytest.raises(StorageError):
        files.read_header(path)
    assert server.requests == []


def test_range_ignored_reads_only_until_end_card_with_mock_transport() -> None:
    """200 with a 4 MB body: the body iterator is left after the chunk holding END, then closed."""
    sub = fits.PrimaryHDU(np.zeros((1920, 1080), dtype=np.uint16))
    sub.header["FILTER"] = "LP"
    body = sub.header.tostring().encode() + b"\0" * (1920 * 1080 * 2)
    pulled: list[int] = []
    closed: list[bool] = []

    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for offset in range(0, len(body), 4096):
                pulled.append(4096)
                yield body[offset : offset + 4096]

        def close(self) -> None:
            closed.append(True)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Range"] == f"bytes=0-{FIRST_RANGE - 1}"
        return httpx.Response(200, stream=Body())

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        header = HttpFiles("http://seestar.local", client=client).read_header(SUB)
    assert header["FILTER"] == "LP"
    assert sum(pulled) <= 64 * 1024 + 4096
    assert closed == [True]


# --- downloads ----------------------------------------------------------------------------------


def test_download_is_complete_and_leaves_no_part_file(
    server: FileServer, files: HttpFiles, tmp_path: Path
) -> None:
    dest = tmp_path / "sub.fit"
    assert files.download(SUB, dest) == dest
    assert dest.read_bytes() == (server.root / SUB).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub.fit"]
    assert server.requests[0][1] is None  # a download asks for the whole file


def test_aborted_download_never_shows_a_partial_file(
    server: FileServer, files: HttpFiles, tmp_path: Path
) -> None:
    dest = tmp_path / "stack.fit"
    dest.write_bytes(b"previous copy")
    server.abort_after = 100_000
    with pytest.raises((StorageError, SeestarConnectionError)):
        files.download(SUB, dest)
    assert dest.read_bytes() == b"previous copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stack.fit"]


def test_download_of_a_missing_file(files: HttpFiles, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="404"):
        files.download("MyWorks/M 81/nothing.fit", tmp_path / "x.fit")
    assert list(tmp_path.iterdir()) == []


def test_download_into_a_missing_folder(files: HttpFiles, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="Local file error") as caught:
        files.download(SUB, tmp_path / "no" / "x.fit")
    assert isinstance(caught.value.__cause__, OSError)


def test_short_body_against_content_length_is_refused(tmp_path: Path) -> None:
    """A server that promises more than it sends (checked by us, not only by h11)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"Content-Length": "100"}, stream=httpx.ByteStream(b"x" * 60)
        )

    dest = tmp_path / "x.fit"
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        files = HttpFiles("http://seestar.local", client=client)
        with pytest.raises(StorageError, match="60 of 100"):
            files.download(SUB, dest)
    assert list(tmp_path.iterdir()) == []


def test_download_streams_in_chunks(tmp_path: Path) -> None:
    """The body is written as it arrives, not gathered in memory first."""
    sizes: list[int] = []

    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"SIMPLE  =                    T".ljust(BLOCK)
            for _ in range(40):
                yield b"z" * 100 * BLOCK
                sizes.append((tmp_path / "x.fit.part").stat().st_size)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Body())

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        HttpFiles("http://seestar.local", client=client).download(SUB, tmp_path / "x.fit")
    assert (tmp_path / "x.fit").stat().st_size == 4001 * BLOCK
    assert sizes[-1] > 0  # data reached the .part file before the body ended


class RangeServer:
    """A MockTransport handler that honours Range but sends at most ``cap`` bytes per answer."""

    def __init__(self, data: bytes, cap: int, shift: int = 0) -> None:
        self.data, self.cap, self.shift = data, cap, shift
        self.ranges: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.ranges.append(request.headers["Range"])
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers["Range"])
        assert match is not None
        start = int(match[1]) + self.shift
        end = min(int(match[2]), start + self.cap - 1, len(self.data) - 1)
        content_range = f"bytes {start}-{end}/{len(self.data)}"
        return httpx.Response(
            206, headers={"Content-Range": content_range}, content=self.data[start : end + 1]
        )


def test_server_sending_shorter_ranges_than_asked(device_root: Path) -> None:
    data = (device_root / "MyWorks/Long/long_header.fit").read_bytes()
    fake = RangeServer(data, cap=5000)
    with httpx.Client(transport=httpx.MockTransport(fake)) as client:
        header = HttpFiles("http://seestar.local", client=client).read_header(SUB)
    assert header["X0000699"] == 699
    starts = [int(r.split("=")[1].split("-")[0]) for r in fake.ranges]
    assert starts == [5000 * i for i in range(len(starts))]


def test_range_from_the_wrong_offset_is_refused(device_root: Path) -> None:
    data = (device_root / "MyWorks/Long/long_header.fit").read_bytes()
    fake = RangeServer(data, cap=10**9, shift=80)
    with httpx.Client(transport=httpx.MockTransport(fake)) as client:
        files = HttpFiles("http://seestar.local", client=client)
        with pytest.raises(StorageError, match="not 0"):
            files.read_header(SUB)


def test_the_preflight_check_needs_only_an_answer(files: HttpFiles) -> None:
    files.check()  # the root may be 404: the server answered


def test_the_preflight_check_fails_when_nothing_listens(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        HttpFiles(f"http://127.0.0.1:{port}", timeout=5) as files,
        pytest.raises(SeestarConnectionError),
    ):
        files.check()
