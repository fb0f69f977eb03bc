"""A hostile or broken CrowdSky server: huge answers, endless and trickling downloads, login pages.

Bodies come from generators that count what the client pulled, so "stops early" is checked
without sending hundreds of megabytes; the deadline tests use a fake clock or a tiny deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crowdsky.adapters.collab.answers import MAX_ERROR_BYTES, MAX_JSON_BYTES
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.fits_transfer import DEFAULT_TRANSFER_DEADLINE, FITS_BLOCK, MAX_FITS_BYTES
from crowdsky.errors import (
    ServerAuthError,
    ServerProtocolError,
    ServerRejected,
    ServerUnavailable,
)

from .helpers import IC434_KEY, PASSWORD, write_stack

URL = "https://crowdsky.test"
CHUNK = 64 * 1024
HEADER = b"SIMPLE  =                    T".ljust(FITS_BLOCK)


class Endless(httpx.SyncByteStream):
    """A body that never ends; ``pulled`` counts the bytes the client asked for."""

    def __init__(self, first: bytes = b"", filler: bytes = b"0" * CHUNK) -> None:
        self.first, self.filler = first, filler
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        if self.first:
            self.pulled += len(self.first)
            yield self.first
        while True:
            self.pulled += len(self.filler)
            yield self.filler


class StepClock:
    """A monotonic clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def client_for(
    body: httpx.SyncByteStream, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, stream=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def collab(http: httpx.Client, **options: object) -> HttpCollabServer:
    return HttpCollabServer(
        URL, username="username", password=PASSWORD, client=http, retries=0, **options
    )  # type: ignore[arg-type]


# --- JSON answers and error bodies ------------------------------------------------------------


def test_a_huge_json_answer_is_refused_at_the_cap() -> None:
    body = Endless(b"[" + b'{"chunk_key": "20260227.81_HP102265"},' * 100)
    with client_for(body) as http, pytest.raises(ServerProtocolError, match="larger than"):
        collab(http).list_stacks()
    assert MAX_JSON_BYTES <= body.pulled <= MAX_JSON_BYTES + 2 * CHUNK


def test_a_json_answer_announcing_too_much_is_not_read() -> None:
    body = Endless(b"[")
    headers = {"Content-Length": str(MAX_JSON_BYTES + 1)}
    with client_for(body, headers=headers) as http, pytest.raises(ServerProtocolError):
        collab(http).list_stacks()
    assert body.pulled == 0


@pytest.mark.parametrize("status", [404, 500])
def test_a_huge_error_body_is_read_only_to_its_cap(status: int) -> None:
    body = Endless(b"Stack not found. ")
    with (
        client_for(body, status=status) as http,
        pytest.raises((ServerRejected, ServerUnavailable)) as info,
    ):
        collab(http).list_stacks()
    assert "Stack not found." in str(info.value)
    assert body.pulled <= MAX_ERROR_BYTES + 2 * CHUNK


def test_a_trickling_json_answer_ends_at_the_deadline() -> None:
    body = Endless(b"[", filler=b" ")
    with client_for(body) as http, pytest.raises(ServerUnavailable, match="took longer"):
        collab(http, transfer_deadline=30.0, clock=StepClock()).list_stacks()
    assert body.pulled < 100


# --- downloads --------------------------------------------------------------------------------


def test_an_endless_download_stops_at_the_cap_and_leaves_nothing(tmp_path: Path) -> None:
    body = Endless(HEADER)
    with client_for(body) as http, pytest.raises(ServerProtocolError, match="larger than"):
        collab(http, max_download_bytes=10 * CHUNK).download_stack(IC434_KEY, tmp_path)
    assert body.pulled <= 12 * CHUNK
    assert list(tmp_path.iterdir()) == []


def test_the_default_download_cap_fits_the_largest_stacks() -> None:
    s30_pro_float_stack = 3840 * 2160 * 3 * 4
    assert s30_pro_float_stack < MAX_FITS_BYTES <= 4 * s30_pro_float_stack
    assert DEFAULT_TRANSFER_DEADLINE >= 600


def test_more_bytes_than_announced_is_an_error(tmp_path: Path) -> None:
    body = Endless(HEADER)
    headers = {"Content-Length": str(4 * FITS_BLOCK)}
    with (
        client_for(body, headers=headers) as http,
        pytest.raises(ServerProtocolError, match="more than the 11520 bytes"),
    ):
        collab(http).download_stack(IC434_KEY, tmp_path)
    assert body.pulled <= 4 * FITS_BLOCK + 2 * CHUNK
    assert list(tmp_path.iterdir()) == []


def test_a_trickling_download_ends_at_the_deadline(tmp_path: Path) -> None:
    body = Endless(HEADER, filler=b"0")
    with client_for(body) as http, pytest.raises(ServerUnavailable, match="took longer"):
        collab(http, transfer_deadline=100.0, clock=StepClock()).download_stack(IC434_KEY, tmp_path)
    assert body.pulled < FITS_BLOCK + 200
    assert list(tmp_path.iterdir()) == []


def test_a_login_page_on_200_says_so(tmp_path: Path) -> None:
    page = b"<!DOCTYPE html><html><title>Login</title><form>password</form></html>"
    with (
        client_for(httpx.ByteStream(page), headers={"Content-Type": "text/html"}) as http,
        pytest.raises(ServerAuthError, match="login page; check your credentials"),
    ):
        collab(http).download_stack(IC434_KEY, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_to_the_login_page_on_download_says_so(tmp_path: Path) -> None:
    empty = httpx.ByteStream(b"")
    with (
        client_for(empty, status=302, headers={"Location": "/login.php"}) as http,
        pytest.raises(ServerAuthError, match="login page; check your credentials"),
    ):
        collab(http).download_stack(IC434_KEY, tmp_path)


# --- against the loopback server ----------------------------------------------------------------


def test_loopback_endless_download_is_capped(
    loopback: LoopbackCrowdskyServer, client: HttpCollabServer, tmp_path: Path
) -> None:
    key = client.upload_stack(write_stack(tmp_path / "src")).chunk_key
    loopback.faults.endless_downloads = True
    with (
        HttpCollabServer(
            loopback.url, username="username", password=PASSWORD, max_download_bytes=200_000
        ) as capped,
        pytest.raises(ServerProtocolError, match="larger than 200000"),
    ):
        capped.download_stack(key, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


def test_loopback_trickle_download_ends_at_the_deadline(
    loopback: LoopbackCrowdskyServer, client: HttpCollabServer, tmp_path: Path
) -> None:
    key = client.upload_stack(write_stack(tmp_path / "src")).chunk_key
    loopback.faults.trickle_downloads = 0.01  # one byte every 10 ms: the stack never arrives
    with (
        HttpCollabServer(
            loopback.url, username="username", password=PASSWORD, transfer_deadline=0.3, retries=0
        ) as hurried,
        pytest.raises(ServerUnavailable, match=r"took longer than 0\.3 s"),
    ):
        hurried.download_stack(key, tmp_path / "dest")
    assert list((tmp_path / "dest").iterdir()) == []


# --- stale .part files ------------------------------------------------------------------------


def test_stale_part_files_of_our_own_are_removed_on_the_next_download(
    loopback: LoopbackCrowdskyServer, client: HttpCollabServer, tmp_path: Path
) -> None:
    key = client.upload_stack(write_stack(tmp_path / "src")).chunk_key
    dest = tmp_path / "dest"
    dest.mkdir()
    old = time.time() - 2 * DEFAULT_TRANSFER_DEADLINE
    names = ["killed.fit.part", "other.FITS.part", "fresh.fit.part", "notes.txt.part",
             "keep.fit", "journal.json.part"]  # fmt: skip
    for name in names:
        (dest / name).write_bytes(b"x")
        if name != "fresh.fit.part":
            os.utime(dest / name, (old, old))
    (dest / "sub.fit.part").mkdir()
    os.utime(dest / "sub.fit.part", (old, old))
    path = client.download_stack(key, dest)
    left = sorted(p.name for p in dest.iterdir())
    assert left == sorted(
        ["fresh.fit.part", "notes.txt.part", "keep.fit", "journal.json.part", "sub.fit.part",
         path.name]
    )  # fmt: skip


def test_a_folder_is_swept_once_per_session(
    loopback: LoopbackCrowdskyServer, client: HttpCollabServer, tmp_path: Path
) -> None:
    """The sweep runs on the first download into a folder, not on every one (a folder of
    thousands of stacks would be listed on each); a new session sweeps again."""
    key = client.upload_stack(write_stack(tmp_path / "src")).chunk_key
    dest = tmp_path / "dest"
    client.download_stack(key, dest)
    old = time.time() - 2 * DEFAULT_TRANSFER_DEADLINE
    (dest / "killed.fit.part").write_bytes(b"x")
    os.utime(dest / "killed.fit.part", (old, old))
    client.download_stack(key, dest)
    assert (dest / "killed.fit.part").exists()
    with HttpCollabServer(loopback.url, username="username", password=PASSWORD) as later:
        later.download_stack(key, dest)
    assert not (dest / "killed.fit.part").exists()
