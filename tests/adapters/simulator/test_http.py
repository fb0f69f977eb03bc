"""The simulator's HTTP file server: percent-encoded paths, Range on and off, 404, no escapes."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.adapters.simulator import SimulatorServer, parse_range
from crowdsky.adapters.simulator.http_server import FileServer

Sim = Callable[..., SimulatorServer]
Get = Callable[..., tuple[int, dict[str, str], bytes]]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root" / "MyWorks" / "M 81"
    folder.mkdir(parents=True)
    (folder / "DSO_Stacked_3_M 81_20.0s_20260228_205636.fit").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "root" / "secret.txt").write_text("not for you")
    (tmp_path / "outside.txt").write_text("not for you either")
    return tmp_path / "root"


@pytest.fixture
def get() -> Iterator[Callable[..., tuple[int, dict[str, str], bytes]]]:
    connections: list[http.client.HTTPConnection] = []

    def fetch(
        sim: SimulatorServer, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(sim.host, sim.http_port, timeout=10)
        connections.append(conn)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    yield fetch
    for conn in connections:
        conn.close()


FILE = "/MyWorks/M%2081/DSO_Stacked_3_M%2081_20.0s_20260228_205636.fit"


def test_whole_file_and_ranges(root: Path, make_sim: Sim, get: Get) -> None:
    sim = make_sim(root=root)
    body = (root / "MyWorks" / "M 81" / "DSO_Stacked_3_M 81_20.0s_20260228_205636.fit").read_bytes()
    assert get(sim, FILE)[::2] == (200, body)
    status, headers, part = get(sim, FILE, {"Range": "bytes=0-99"})
    assert (status, part, headers["Content-Range"]) == (206, body[:100], f"bytes 0-99/{len(body)}")
    assert get(sim, FILE, {"Range": "bytes=-10"})[2] == body[-10:]
    assert get(sim, FILE, {"Range": f"bytes={len(body)}-"})[0] == 416


def test_range_can_be_ignored(root: Path, make_sim: Sim, get: Get) -> None:
    sim = make_sim(root=root, honour_range=False)
    status, headers, body = get(sim, FILE, {"Range": "bytes=0-99"})
    assert (status, len(body)) == (200, 10240)
    assert "Content-Range" not in headers


@pytest.mark.parametrize(
    "path",
    [
        "/MyWorks/M%2081/missing.fit",
        "/MyWorks/Nope/x.fit",
        "/MyWorks/M%2081",
        "/secret.txt",
        "/MyWorks/../secret.txt",
        "/MyWorks/%2e%2e/secret.txt",
        "/MyWorks/M%2081/..%2F..%2F..%2Foutside.txt",
        "/MyWorks/M%2081/%2e%2e/%2e%2e/outside.txt",
    ],
)
def test_missing_and_outside_paths_are_404(root: Path, make_sim: Sim, get: Get, path: str) -> None:
    status, _, body = get(make_sim(root=root), path)
    assert (status, body) == (404, b"")


def test_links_are_followed_only_while_they_stay_in_myworks(
    root: Path, tmp_path: Path, make_sim: Sim, get: Get
) -> None:
    """Plain paths are checked step by step; a path with a symbolic link is resolved."""
    folder = root / "MyWorks" / "M 81"
    body = (folder / "DSO_Stacked_3_M 81_20.0s_20260228_205636.fit").read_bytes()
    (folder / "inside.fit").symlink_to(folder / "DSO_Stacked_3_M 81_20.0s_20260228_205636.fit")
    (folder / "outside.fit").symlink_to(tmp_path / "outside.txt")
    (root / "MyWorks" / "Away").symlink_to(tmp_path, target_is_directory=True)
    (root / "MyWorks" / "Alias").symlink_to(folder, target_is_directory=True)
    sim = make_sim(root=root)
    assert get(sim, "/MyWorks/M%2081/inside.fit")[::2] == (200, body)
    assert get(sim, "/MyWorks/Alias/inside.fit")[::2] == (200, body)
    assert get(sim, "/MyWorks/M%2081/outside.fit")[::2] == (404, b"")
    assert get(sim, "/MyWorks/Away/outside.txt")[::2] == (404, b"")


def test_a_myworks_that_is_a_link_out_of_the_root_is_not_served(
    tmp_path: Path, make_sim: Sim, get: Get
) -> None:
    elsewhere = tmp_path / "elsewhere" / "M 81"
    elsewhere.mkdir(parents=True)
    (elsewhere / "a.fit").write_bytes(b"x" * 100)
    (tmp_path / "root2").mkdir()
    (tmp_path / "root2" / "MyWorks").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    sim = make_sim(root=tmp_path / "root2")
    assert get(sim, "/MyWorks/M%2081/a.fit")[0] == 200  # MyWorks itself may be a link
    (elsewhere / "b.fit").symlink_to(tmp_path / "root2")
    assert get(sim, "/MyWorks/M%2081/b.fit")[0] == 404


def test_parse_range_edges() -> None:
    assert parse_range("bytes=5-2", 10) is None
    assert parse_range("bytes=0-99", 10) == (0, 9)
    assert parse_range("bytes=-", 10) is None
    assert parse_range("items=0-1", 10) is None
    assert parse_range("bytes=0-1,3-4", 10) is None


def test_head_sends_headers_only(root: Path, make_sim: Sim) -> None:
    sim = make_sim(root=root)
    conn = http.client.HTTPConnection(sim.host, sim.http_port, timeout=10)
    try:
        conn.request("HEAD", FILE)
        response = conn.getresponse()
        assert (response.status, response.getheader("Content-Length")) == (200, "10240")
        assert response.read() == b""
    finally:
        conn.close()


@given(size=st.integers(0, 5000), first=st.integers(0, 6000), length=st.integers(0, 6000))
def test_parse_range_stays_inside_the_file(size: int, first: int, length: int) -> None:
    for header in (f"bytes={first}-{first + length}", f"bytes={first}-", f"bytes=-{length}"):
        wanted = parse_range(header, size)
        if wanted is not None:
            assert 0 <= wanted[0] <= wanted[1] < size


def test_connections_are_accepted_with_nodelay(tmp_path: Path) -> None:
    # Headers and body go out in separate writes; with Nagle's algorithm on, a keep-alive client
    # waits for the delayed ACK (about 40 ms on loopback) before the body arrives.
    files = FileServer(tmp_path, "127.0.0.1", 0)
    try:
        with socket.create_connection((files.host, files.port), timeout=10):
            accepted, _ = files._server.get_request()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        files.close()
