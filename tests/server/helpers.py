"""Stacks on disk, a tiny Seestar and a scripted HTTP transport for the server tests."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from astropy.io import fits

from crowdsky.app.ports import FileEntry, FolderEntry

IC434_NAME = "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit"
IC434_KEY = "20260227.81_HP102265"
#: What the real server calls a download of it: `<object>_<chunk_key>.fits`, made safe.
IC434_DOWNLOAD = "IC_434_20260227.81_HP102265.fits"
PASSWORD = "s3cr3t-Pa55word!"


def stack_header(
    *,
    date_obs: str | None = "2026-02-27T20:15:03.5",
    ra: float | None = 85.25,
    dec: float | None = -2.46,
    obj: str = "IC 434",
    filt: str = "LP",
    stackcnt: int = 31,
    telescope: str = "S50_5eed0042",
    exposure: float = 10.0,
) -> fits.Header:
    header = fits.Header()
    if date_obs is not None:
        header["DATE-OBS"] = date_obs
    if ra is not None and dec is not None:
        header["RA"], header["DEC"] = ra, dec
    header["OBJECT"], header["FILTER"] = obj, filt
    header["STACKCNT"], header["TOTALEXP"] = stackcnt, stackcnt * exposure
    header["TELESCOP"] = telescope
    header["SITELONG"], header["SITELAT"] = 16.37, 48.21
    return header


def write_stack(folder: Path, name: str = IC434_NAME, *, thumb: bool = False, **cards: Any) -> Path:
    """A small real FITS stack named ``name`` with a matching header."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = np.full((3, 16, 9), 1200, dtype=np.int16)
    fits.PrimaryHDU(data, header=stack_header(**cards)).writeto(path)
    if thumb:
        (folder / (path.stem + "_thn.jpg")).write_bytes(b"\xff\xd8\xff\xe0 tiny jpeg")
    return path


def write_big_stack(folder: Path, name: str, nbytes: int, **cards: Any) -> Path:
    """A valid FITS file of about ``nbytes`` bytes, written without holding its data in memory."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = max(1, nbytes // (2 * 1080))
    header = stack_header(**cards)
    hdu = fits.PrimaryHDU(header=header)
    hdu.header["BITPIX"] = 16
    hdu.header["NAXIS"] = 2
    hdu.header.insert("NAXIS", ("NAXIS1", 1080), after=True)
    hdu.header.insert("NAXIS1", ("NAXIS2", rows), after=True)
    head = hdu.header.tostring().encode("ascii")
    data = 2 * 1080 * rows
    total = len(head) + data + (-data % 2880)
    path = folder / name
    with path.open("wb") as out:
        out.write(head)
        out.truncate(total)  # sparse zeros: a valid data unit at no memory cost
    return path


class TinySeestar:
    """Just enough of the ``Seestar`` port for uploads: folders of files and downloads."""

    def __init__(self, files: dict[str, dict[str, bytes]]) -> None:
        self.files = files
        self.downloads: list[str] = []
        self.header_reads: list[str] = []

    def list_folders(self) -> list[FolderEntry]:
        return [FolderEntry(name, len(files)) for name, files in self.files.items()]

    def list_files(self, folder: str) -> list[FileEntry]:
        return [FileEntry(n, len(b)) for n, b in sorted(self.files.get(folder, {}).items())]

    def read_header(self, path: str) -> dict[str, Any]:
        _, folder, name = path.split("/", 2)
        self.header_reads.append(path)
        header = fits.getheader(io.BytesIO(self.files[folder][name]), 0)
        return dict(header)

    def download(
        self, path: str, dest: Path, *, on_bytes: Callable[[int, int | None], None] | None = None
    ) -> Path:
        _, folder, name = path.split("/", 2)
        self.downloads.append(path)
        part = dest.with_name(dest.name + ".part")
        data = self.files[folder][name]
        part.write_bytes(data)
        part.replace(dest)
        if on_bytes is not None:
            on_bytes(len(data), len(data))
        return dest


Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class ScriptedTransport:
    """An ``httpx.MockTransport`` handler: answers per endpoint from scripts, records requests.

    ``script[path]`` is a list of answers used in order (the last one repeats).
    """

    def __init__(self, script: dict[str, list[Answer]] | None = None) -> None:
        self.script = script or {}
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.read())
        answers = self.script.get(request.url.path)
        if not answers:
            return httpx.Response(404, json={"error": f"unscripted {request.url.path}"})
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]

    def count(self, path: str) -> int:
        return self.paths().count(path)


def ok_json(data: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(data).encode(), headers={"Content-Type": "application/json"}
    )


def no_password_in(texts: Iterable[str], password: str = PASSWORD) -> bool:
    import base64

    encoded = base64.b64encode(f"username:{password}".encode()).decode()
    return not any(password in t or encoded in t for t in texts)
