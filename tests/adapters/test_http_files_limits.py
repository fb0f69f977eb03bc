"""Seestar-side downloads are bounded (size, Content-Length, deadline), FITS-checked and tidy."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io import fits

from crowdsky.adapters.fits_transfer import DEFAULT_TRANSFER_DEADLINE, FITS_BLOCK
from crowdsky.adapters.seestar.http_files import HttpFiles
from crowdsky.adapters.simulator.http_server import FileServer
from crowdsky.errors import SeestarConnectionError, StorageError

STACK = "MyWorks/M 42/CrowdSky_3_M 42_10.0s_LP_20260227.77_HP107383.fit"
HEADER = b"SIMPLE  =                    T".ljust(FITS_BLOCK)
CHUNK = 64 * 1024


class Endless(httpx.SyncByteStream):
    """A body that never ends; ``pulled`` counts the bytes the client asked for."""

    def __init__(self, first: bytes, filler: bytes = b"0" * CHUNK) -> None:
        self.first, self.filler = first, filler
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        self.pulled += len(self.first)
        yield self.first
        while True:
            self.pulled += len(self.filler)
            yield self.filler


class StepClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def mock_files(
    body: httpx.SyncByteStream, headers: dict[str, str] | None = None, **options: object
) -> HttpFiles:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers or {}, stream=body)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    return HttpFiles("http://seestar.local", client=client, **options)  # type: ignore[arg-type]


def test_an_endless_body_stops_at_the_cap(tmp_path: Path) -> None:
    body = Endless(HEADER)
    with pytest.raises(StorageError, match="larger than"):
        mock_files(body, max_bytes=10 * CHUNK).download(STACK, tmp_path / "x.fit")
    assert body.pulled <= 12 * CHUNK
    assert list(tmp_path.iterdir()) == []


def test_more_than_content_length_stops_at_once(tmp_path: Path) -> None:
    body = Endless(HEADER)
    with pytest.raises(StorageError, match="more than the 5760 bytes"):
        mock_files(body, {"Content-Length": "5760"}).download(STACK, tmp_path / "x.fit")
    assert body.pulled <= 5760 + 2 * CHUNK
    assert list(tmp_path.iterdir()) == []


def test_a_trickle_ends_at_the_deadline(tmp_path: Path) -> None:
    body = Endless(HEADER, filler=b"0")
    files = mock_files(body, transfer_deadline=50.0, clock=StepClock())
    with pytest.raises(SeestarConnectionError, match="took longer than 50 s"):
        files.download(STACK, tmp_path / "x.fit")
    assert body.pulled < FITS_BLOCK + 100
    assert list(tmp_path.iterdir()) == []


def test_an_html_page_is_not_saved_as_fit(tmp_path: Path) -> None:
    page = b"<html><body>Not here</body></html>".ljust(FITS_BLOCK)
    with pytest.raises(StorageError, match="not a FITS file"):
        mock_files(httpx.ByteStream(page)).download(STACK, tmp_path / "x.fit")
    assert list(tmp_path.iterdir()) == []


def test_a_body_of_broken_fits_blocks_is_not_saved(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="truncated"):
        mock_files(httpx.ByteStream(HEADER + b"0" * 100)).download(STACK, tmp_path / "x.fit")
    assert list(tmp_path.iterdir()) == []


def test_a_thumbnail_is_not_held_to_fits_rules(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"j" * 1000
    dest = tmp_path / "x_thn.jpg"
    mock_files(httpx.ByteStream(jpeg)).download("MyWorks/M 42/x_thn.jpg", dest)
    assert dest.read_bytes() == jpeg


def test_stale_part_files_are_swept_only_ours(tmp_path: Path) -> None:
    old = time.time() - 2 * DEFAULT_TRANSFER_DEADLINE
    for name in ("killed.fit.part", "fresh.fit.part", "keep.jpg.part", "Light_x.fit"):
        (tmp_path / name).write_bytes(b"x")
        if name != "fresh.fit.part":
            os.utime(tmp_path / name, (old, old))
    mock_files(httpx.ByteStream(HEADER)).download(STACK, tmp_path / "x.fit")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Light_x.fit", "fresh.fit.part", "keep.jpg.part", "x.fit"
    ]  # fmt: skip


# --- the simulator's file server with its body faults --------------------------------------------


@pytest.fixture
def device(tmp_path: Path) -> Iterator[FileServer]:
    local = tmp_path / "device" / STACK
    local.parent.mkdir(parents=True)
    fits.PrimaryHDU(np.zeros((40, 40), dtype=np.uint16)).writeto(local)
    server = FileServer(tmp_path / "device", "127.0.0.1", 0)
    server.start()
    yield server
    server.close()


def test_simulator_endless_body_is_capped(device: FileServer, tmp_path: Path) -> None:
    device.endless_body = True
    with (
        HttpFiles(f"http://127.0.0.1:{device.port}", max_bytes=300_000) as files,
        pytest.raises(StorageError, match="larger than 300000"),
    ):
        files.download(STACK, tmp_path / "x.fit")
    assert not (tmp_path / "x.fit.part").exists()


def test_simulator_trickle_ends_at_the_deadline(device: FileServer, tmp_path: Path) -> None:
    device.trickle_interval = 0.01
    with (
        HttpFiles(f"http://127.0.0.1:{device.port}", transfer_deadline=0.3) as files,
        pytest.raises(SeestarConnectionError, match="took longer"),
    ):
        files.download(STACK, tmp_path / "x.fit")
    assert not (tmp_path / "x.fit.part").exists()
