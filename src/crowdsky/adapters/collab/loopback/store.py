"""The state of the loopback CrowdSky server: users' stacks, raw sessions, faults, request bodies.

Everything here is plain Python over a storage folder;
:mod:`crowdsky.adapters.collab.loopback.server` puts HTTP in front of it. Bodies are spooled to
disk and parsed through ``mmap``, so a large upload costs the server no memory either (the
client's streaming test measures the whole process).
"""

from __future__ import annotations

import io
import mmap
import re
import secrets
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import attrs
from astropy.io import fits

from crowdsky.domain import chunk_key, healpix_pixel, parse_crowdsky_name
from crowdsky.domain.headers import header_pointing, parse_date_obs
from crowdsky.errors import PlanError

__all__ = [
    "FITS_SIGNATURE",
    "LoopbackFaults",
    "LoopbackStore",
    "Part",
    "Refusal",
    "parse_multipart",
]

#: The first card the server accepts (a primary HDU that says it conforms).
FITS_SIGNATURE = b"SIMPLE  =                    T"
_COPY = 256 * 1024


class Refusal(Exception):
    """An answer ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@attrs.define
class LoopbackFaults:
    """Faults to inject; change the fields at any time (they are read per request).

    Parameters
    ----------
    fail_next : int
        The next N requests (any endpoint) answer HTTP 500.
    fail_endpoint : dict[str, int]
        Per endpoint (``"my_stacks"``, ``"upload_stack"``, ``"download_stack"``,
        ``"raw_upload"``): that many next requests answer 500.
    fail_after_upload : int
        The next N stack uploads are stored, then answered with 500 (a lost answer).
    delay : float
        Seconds to wait before answering each request.
    truncate_downloads : bool
        Answer downloads 200 with half the file (and a matching ``Content-Length``).
    disposition_name : str or None
        The ``Content-Disposition`` filename to send instead of the real one.
    rfc6266_disposition : bool
        Add the RFC 6266 ``filename*=UTF-8''...`` part to a download's ``Content-Disposition``
        (the real server sends only ``filename="<object>_<chunk_key>.fits"``).
    login_redirect : bool
        Answer everything with ``302 Location: /login.php``.
    bare_text_errors : bool
        Send errors as bare text (``Stack not found.``) instead of JSON.
    legacy_upload_answer : bool
        Answer uploads in the older ``{"ok", "stack_id", "chunk_key", "telescope_id"}`` form.
    endless_downloads : bool
        Answer downloads 200 with a FITS header and then zeros without end (no
        ``Content-Length``), until the client hangs up.
    trickle_downloads : float
        When positive, send downloads one byte every that many seconds.
    login_page_downloads : bool
        Answer downloads 200 with an HTML login page, as a web server in front of the API may.
    on_upload : callable or None
        Called with the file name of each stack upload once it is stored, before the answer
        is sent (a test interrupts the client there, as a Ctrl-C while it waits would).
    """

    fail_next: int = 0
    fail_endpoint: dict[str, int] = attrs.field(factory=dict)
    fail_after_upload: int = 0
    delay: float = 0.0
    truncate_downloads: bool = False
    disposition_name: str | None = None
    rfc6266_disposition: bool = False
    login_redirect: bool = False
    bare_text_errors: bool = False
    legacy_upload_answer: bool = False
    endless_downloads: bool = False
    trickle_downloads: float = 0.0
    login_page_downloads: bool = False
    on_upload: Callable[[str], None] | None = None

    def take_failure(self, endpoint: str) -> bool:
        """Consume one injected 500 for ``endpoint``, if any is pending."""
        if self.fail_next > 0:
            self.fail_next -= 1
            return True
        if self.fail_endpoint.get(endpoint, 0) > 0:
            self.fail_endpoint[endpoint] -= 1
            return True
        return False


@attrs.frozen
class Part:
    """One part of a multipart body: its name, filename and byte range in the spooled body."""

    name: str
    filename: str | None
    start: int
    end: int


def spool(stream: io.BufferedIOBase | BinaryIO, length: int, out: BinaryIO) -> None:
    """Copy exactly ``length`` bytes of a request body to ``out`` in chunks."""
    left = length
    while left > 0:
        chunk = stream.read(min(_COPY, left))
        if not chunk:
            raise Refusal(400, "The request body ended early.")
        out.write(chunk)
        left -= len(chunk)


def parse_multipart(body: mmap.mmap, content_type: str) -> list[Part]:
    """The parts of a spooled ``multipart/form-data`` body (ranges only; nothing is copied)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        raise Refusal(400, "Expected a multipart/form-data body.")
    delimiter = b"--" + match.group(1).encode()
    parts: list[Part] = []
    position = body.find(delimiter)
    while position != -1:
        head_start = position + len(delimiter)
        if body[head_start : head_start + 2] == b"--":
            return parts
        head_end = body.find(b"\r\n\r\n", head_start)
        following = body.find(b"\r\n" + delimiter, head_end)
        if head_end == -1 or following == -1:
            break
        head = body[head_start:head_end].decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', head)
        filename = re.search(r'filename="([^"]*)"', head)
        if name is not None:
            parts.append(
                Part(
                    name.group(1), filename.group(1) if filename else None, head_end + 4, following
                )
            )
        position = following + 2
    raise Refusal(400, "Malformed multipart body.")


def header_key(path: Path) -> tuple[dict[str, Any], str]:
    """The primary header of a stored FITS file and the chunk key derived from it."""
    try:
        header = dict(fits.getheader(path, 0))
    except (OSError, ValueError) as exc:
        raise Refusal(400, f"Unreadable FITS header: {exc}") from exc
    date_obs = parse_date_obs(header.get("DATE-OBS"))
    if date_obs is None:
        raise Refusal(400, "DATE-OBS missing from the FITS header.")
    ra, dec = header_pointing(header)
    try:
        return header, f"{chunk_key(date_obs)}_HP{healpix_pixel(ra, dec):06d}"
    except PlanError as exc:
        raise Refusal(400, str(exc)) from exc


def _safe_name(name: str | None) -> str:
    base = re.sub(r"[^A-Za-z0-9 ._-]", "_", Path(name or "upload.fit").name).lstrip(".")
    return base or "upload.fit"


class LoopbackStore:
    """Users' stacks and raw sessions, kept on disk under ``storage_dir``.

    Parameters
    ----------
    storage_dir : Path
        Where files are stored (created if needed).
    max_file_bytes : int
        Largest accepted file part (50 MB, like the real server).
    """

    def __init__(self, storage_dir: Path, *, max_file_bytes: int = 50 * 1024 * 1024) -> None:
        self.root = Path(storage_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_file_bytes = max_file_bytes
        self.stacks: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self._next_id = 1

    def _new_id(self) -> int:
        with self.lock:
            value, self._next_id = self._next_id, self._next_id + 1
        return value

    def save_part(self, body: mmap.mmap, part: Part, user: str, kind: str) -> Path:
        """Check a file part (size, extension, FITS signature) and store it; return its path."""
        size = part.end - part.start
        if size > self.max_file_bytes:
            raise Refusal(
                413, f"File too large ({size} bytes; the limit is {self.max_file_bytes})."
            )
        name = _safe_name(part.filename)
        if kind != "thumbnail":
            if not name.lower().endswith((".fit", ".fits")):
                raise Refusal(400, "Only .fit/.fits files are accepted.")
            if body[part.start : part.start + len(FITS_SIGNATURE)] != FITS_SIGNATURE:
                raise Refusal(400, "Not a FITS file (the first card must be SIMPLE = T).")
        folder = self.root / user / kind
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self._new_id()}_{name}"
        with path.open("wb") as out:
            for offset in range(part.start, part.end, _COPY):
                out.write(body[offset : min(offset + _COPY, part.end)])
        return path

    def add_stack(
        self, user: str, path: Path, form: dict[str, str], original: str
    ) -> dict[str, Any]:
        """Record an uploaded stack; return its record."""
        header, key = header_key(path)
        if form.get("scrub_location") == "1":
            with fits.open(path, mode="update") as hdul:
                for card in ("SITELONG", "SITELAT"):
                    hdul[0].header.remove(card, ignore_missing=True)
        name = parse_crowdsky_name(original)
        record: dict[str, Any] = {
            "id": self._new_id(),
            "user": user,
            "chunk_key": key,
            "object_name": str(header.get("OBJECT") or (name.target if name else "")) or None,
            "filter_name": header.get("FILTER") or (name.filter if name else None),
            "telescope_id": header.get("TELESCOP"),
            "n_frames_input": _maybe_int(form.get("n_frames_input")),
            "n_frames_aligned": _maybe_int(form.get("n_frames_aligned")),
            "date_obs_start": form.get("date_obs_start") or header.get("DATE-OBS"),
            "date_obs_end": form.get("date_obs_end"),
            "total_exptime": header.get("TOTALEXP"),
            "file_size_bytes": path.stat().st_size,
            "status": "queued",
            "filename": original,
            "path": str(path),
        }
        with self.lock:
            self.stacks.append(record)
        return record

    def stacks_of(self, user: str, object_name: str | None = None) -> list[dict[str, Any]]:
        """The user's stack records (public fields only), optionally of one object."""
        with self.lock:
            mine = [s for s in self.stacks if s["user"] == user]
        if object_name:
            mine = [s for s in mine if s["object_name"] == object_name]
        hidden = ("user", "path", "filename")
        return [{k: v for k, v in s.items() if k not in hidden} for s in mine]

    def find_stack(self, user: str, key: str) -> dict[str, Any] | None:
        """The newest stack of ``user`` with chunk key ``key``."""
        with self.lock:
            found = [s for s in self.stacks if s["user"] == user and s["chunk_key"] == key]
        return found[-1] if found else None

    def start_session(self, user: str) -> str:
        """Open a raw-upload session; return its 32-hex token."""
        token = secrets.token_hex(16)
        with self.lock:
            self.sessions[token] = {"user": user, "files": []}
        return token

    def session(self, user: str, token: str | None) -> dict[str, Any]:
        """The open session ``token`` of ``user``; 400 when missing or unknown."""
        if not token:
            raise Refusal(400, "Missing session token.")
        with self.lock:
            found = self.sessions.get(token)
        if found is None or found["user"] != user:
            raise Refusal(400, "Unknown or expired session token.")
        return found

    def add_raw(self, session: dict[str, Any], path: Path, original: str) -> dict[str, Any]:
        """Add a stored raw frame to a session; return the answer."""
        header, key = header_key(path)
        entry = {"path": path, "filename": original, "chunk_key": key, "header": header}
        with self.lock:
            session["files"].append(entry)
        return {"ok": True, "filename": original, "chunk_key": key, "date_obs": header["DATE-OBS"]}

    def finalize(self, user: str, token: str, *, overwrite: bool) -> dict[str, Any]:
        """Group the session's frames by chunk key + telescope into jobs; skip existing keys."""
        with self.lock:
            session = self.sessions.pop(token)
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for entry in session["files"]:
                telescope = str(entry["header"].get("TELESCOP", ""))
                groups.setdefault((entry["chunk_key"], telescope), []).append(entry)
            job_ids, chunks, skipped = [], [], []
            for (key, telescope), entries in sorted(groups.items()):
                existing = [
                    s for s in self.stacks
                    if s["user"] == user and s["chunk_key"] == key
                    and (s["telescope_id"] or "") == telescope
                ]  # fmt: skip
                if existing and not overwrite:
                    skipped.append(key)
                    continue
                self.stacks = [s for s in self.stacks if s not in existing]
                record = self._stack_from_raw(user, key, entries)
                job_ids.append(record["id"])
                chunks.append(key)
        return {"ok": True, "jobs": len(job_ids), "job_ids": job_ids, "chunks": chunks,
                "skipped": skipped}  # fmt: skip

    def _stack_from_raw(self, user: str, key: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
        # No stacking happens here: the group's first frame stands in for the stack's file.
        first = entries[0]
        header = first["header"]
        path = self.root / user / "stacks" / f"{self._new_id()}_{key}.fits"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first["path"], path)
        record = {
            "id": self._new_id(), "user": user, "chunk_key": key,
            "object_name": header.get("OBJECT"), "filter_name": header.get("FILTER"),
            "telescope_id": header.get("TELESCOP"), "n_frames_input": len(entries),
            "n_frames_aligned": None, "date_obs_start": header.get("DATE-OBS"),
            "date_obs_end": None, "total_exptime": None,
            "file_size_bytes": path.stat().st_size, "status": "queued",
            "filename": f"{key}.fits", "path": str(path),
        }  # fmt: skip
        self.stacks.append(record)
        return record


def _maybe_int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def file_chunks(path: Path, limit: int | None = None) -> Iterator[bytes]:
    """The bytes of ``path`` in chunks, at most ``limit`` bytes in all."""
    left = path.stat().st_size if limit is None else limit
    with path.open("rb") as handle:
        while left > 0:
            chunk = handle.read(min(_COPY, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
