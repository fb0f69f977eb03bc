"""Reading the CrowdSky server's answers: JSON, errors, download names and FITS bodies.

Each answer becomes a value or one of :mod:`crowdsky.errors`; a download's name can only ever
be a plain file in the destination folder, and its body is kept only when it is whole FITS.
Nothing is read whole: a JSON answer larger than :data:`MAX_JSON_BYTES` is refused, only the
first :data:`MAX_ERROR_BYTES` of an error body are read, a download stops at its size cap or
``Content-Length``, and every read ends at the transfer deadline
(:mod:`crowdsky.adapters.fits_transfer`).
"""

from __future__ import annotations

import codecs
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import httpx

from crowdsky.adapters.collab.urls import CREDENTIALS_HINT
from crowdsky.adapters.fits_transfer import (
    DEFAULT_TRANSFER_DEADLINE,
    FITS_BLOCK,
    MAX_FITS_BYTES,
    NotFits,
    TransferError,
    TransferTimeout,
    bounded,
    counted,
    read_prefix,
    save_stream,
)
from crowdsky.adapters.http_body import body_pieces
from crowdsky.app.ports import ByteProgress
from crowdsky.errors import (
    ServerAuthError,
    ServerError,
    ServerProtocolError,
    ServerRejected,
    ServerUnavailable,
)

__all__ = [
    "FITS_BLOCK",
    "MAX_ERROR_BYTES",
    "MAX_JSON_BYTES",
    "ReadLimits",
    "error_for",
    "json_answer",
    "safe_filename",
    "save_fits",
]

#: The largest JSON answer read: a stack list of ~40 000 entries; more is refused.
MAX_JSON_BYTES = 16 * 1024 * 1024
#: How much of an error body is read: its first bytes hold the message.
MAX_ERROR_BYTES = 64 * 1024


@attrs.frozen
class ReadLimits:
    """How much of an answer is read, and for how long.

    Parameters
    ----------
    deadline : float
        Seconds one answer's body may take to arrive in all.
    max_download_bytes : int
        The largest download kept.
    clock : callable
        Monotonic seconds (tests pass a fake).
    """

    deadline: float = DEFAULT_TRANSFER_DEADLINE
    max_download_bytes: int = MAX_FITS_BYTES
    clock: Callable[[], float] = time.monotonic


_DEFAULT_LIMITS = ReadLimits()


def _announced(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _error_text(response: httpx.Response, limits: ReadLimits) -> str:
    """The first :data:`MAX_ERROR_BYTES` of the body as text; the rest is never read."""
    head = read_prefix(
        response.iter_bytes(), MAX_ERROR_BYTES, deadline=limits.deadline, clock=limits.clock
    )
    return head.decode(response.encoding or "utf-8", errors="replace")


def _server_message(text: str, reason: str = "") -> str:
    """The server's own words: ``{"error": ...}``, else the body text, shortened."""
    text = text.strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict):
        for field in ("error", "message"):
            if isinstance(data.get(field), str) and data[field]:
                return str(data[field])
    if text.lower().startswith(("<!doctype", "<html")) or "<body" in text.lower()[:500]:
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        return "an HTML page" + (f" ({title.group(1).strip()[:80]})" if title else "")
    return text[:200] or reason or "no message"


def _is_login(location: str) -> bool:
    return "login" in urlsplit(location).path.lower()


def error_for(response: httpx.Response, limits: ReadLimits = _DEFAULT_LIMITS) -> ServerError:
    """The error for a non-success answer (3xx, 4xx, 5xx), from the first bytes of its body."""
    status = response.status_code
    if response.is_redirect or 300 <= status < 400:
        location = response.headers.get("Location", "")
        if _is_login(location):
            return ServerAuthError(
                status,
                f"redirected to the login page; check your credentials. {CREDENTIALS_HINT}",
            )
        return ServerProtocolError(f"The server answered with a redirect (HTTP {status}).")
    message = _server_message(_error_text(response, limits), response.reason_phrase)
    if status == 401:
        return ServerAuthError(status, f"{message}. Check your credentials. {CREDENTIALS_HINT}")
    if 400 <= status < 500:
        return ServerRejected(status, message)
    return ServerUnavailable(f"The CrowdSky server failed (HTTP {status}): {message}")


def _read_json_body(response: httpx.Response, what: str, limits: ReadLimits) -> bytes:
    """The whole body, but never more than :data:`MAX_JSON_BYTES` nor for longer than allowed."""
    chunks = bounded(
        response.iter_bytes(),
        what=f"The server's answer to {what}",
        max_bytes=MAX_JSON_BYTES,
        deadline=limits.deadline,
        expected=_announced(response) if not response.headers.get("Content-Encoding") else None,
        clock=limits.clock,
    )
    try:
        return b"".join(chunks)
    except TransferTimeout as exc:
        raise ServerUnavailable(str(exc)) from None
    except TransferError as exc:
        raise ServerProtocolError(str(exc)) from None


def json_answer(response: httpx.Response, what: str, limits: ReadLimits = _DEFAULT_LIMITS) -> Any:
    """The JSON of a successful answer; ``{"error": ...}`` (even on 200) becomes an error.

    The body is streamed and refused beyond :data:`MAX_JSON_BYTES` or ``limits.deadline``.
    """
    if response.status_code != 200:
        raise error_for(response, limits)
    body = _read_json_body(response, what, limits)
    text = body.decode(response.encoding or "utf-8", errors="replace")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to be an answer
        raise ServerProtocolError(
            f"The server's answer to {what} is not JSON but {_server_message(text)!r}; "
            "is the server URL right?"
        ) from None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise ServerRejected(response.status_code, data["error"])
    return data


_DISPOSITION_STAR = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", re.IGNORECASE)
_DISPOSITION = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.IGNORECASE)


def _disposition_name(header: str | None) -> str | None:
    if not header:
        return None
    star = _DISPOSITION_STAR.search(header)
    if star:
        charset = star.group(1).strip() or "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:
            return None  # a charset nobody knows: no name can be trusted from it
        return unquote(star.group(2).strip(), encoding=charset, errors="replace")
    plain = _DISPOSITION.search(header)
    if plain:
        return plain.group(1) if plain.group(1) is not None else plain.group(2)
    return None


def safe_filename(header: str | None, key: str) -> str:
    """A download name that can only ever be a plain file in the destination folder.

    Any name with a directory part, ``..``, a drive, control characters, a leading dot, a lone
    surrogate, an unknown ``filename*`` charset, or not ending in ``.fit``/``.fits`` is replaced
    by ``<key>.fits`` (itself cleaned of separators and ``..``).

    Examples
    --------
    >>> safe_filename('attachment; filename="CrowdSky_3_M 42_10.0s_LP_20260227.81_HP107383.fit"',
    ...               "20260227.81_HP107383")
    'CrowdSky_3_M 42_10.0s_LP_20260227.81_HP107383.fit'
    >>> safe_filename('attachment; filename="../../etc/x.fits"', "20260227.81_HP107383")
    '20260227.81_HP107383.fits'
    >>> safe_filename('attachment; filename="/etc/passwd"', "k")
    'k.fits'
    """
    fallback = re.sub(r"\.{2,}", "_", re.sub(r"[^A-Za-z0-9._-]", "_", key)).strip(".")
    fallback = (fallback or "stack") + ".fits"
    name = _disposition_name(header)
    if name is None:
        return fallback
    bad = (
        not name
        or name.startswith(".")
        or ".." in name
        or any(0xD800 <= ord(ch) <= 0xDFFF for ch in name)  # no UTF-8 form, no file name
        or any(ch in name for ch in "/\\:")
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
        or not name.lower().endswith((".fit", ".fits"))
        or len(name.encode("utf-8")) > 200
    )
    return fallback if bad else name


def _login_page(head: bytes) -> bool:
    text = head.decode("utf-8", errors="replace").lower()
    html = text.lstrip().startswith(("<!doctype", "<html")) or "<body" in text[:500]
    return html and ("login" in text or "password" in text or "sign in" in text)


def save_fits(
    response: httpx.Response,
    target: Path,
    key: str,
    limits: ReadLimits = _DEFAULT_LIMITS,
    *,
    on_bytes: ByteProgress | None = None,
) -> Path:
    """Stream the body to ``target.part``, check it is whole FITS, then move it into place.

    The body may not be larger than ``limits.max_download_bytes`` nor than its
    ``Content-Length``, and must arrive within ``limits.deadline`` seconds. ``on_bytes`` is
    told the bytes written so far, once per piece.

    Raises
    ------
    ServerAuthError
        The server sent its HTML login page instead of the file.
    ServerProtocolError
        The body is not whole FITS, too large, or longer than announced.
    ServerUnavailable
        The transfer took longer than the deadline.
    """
    what = f"The download of {key}"
    encoded = bool(response.headers.get("Content-Encoding"))
    expected = None if encoded else _announced(response)
    chunks = bounded(
        body_pieces(response),
        what=what,
        max_bytes=limits.max_download_bytes,
        deadline=limits.deadline,
        expected=expected,
        clock=limits.clock,
    )
    chunks = counted(chunks, on_bytes, expected)
    try:
        save_stream(chunks, target, what=what, check_fits=True)
    except NotFits as exc:
        if _login_page(exc.head):
            error = ServerAuthError(
                response.status_code,
                f"the server sent a login page; check your credentials. {CREDENTIALS_HINT}",
            )
            raise error from None
        raise ServerProtocolError(str(exc)) from None
    except TransferTimeout as exc:
        raise ServerUnavailable(str(exc)) from None
    except TransferError as exc:
        raise ServerProtocolError(str(exc)) from None
    return target
