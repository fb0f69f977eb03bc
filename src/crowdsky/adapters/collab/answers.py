"""Reading the CrowdSky server's answers: JSON, errors, download names and FITS bodies.

Each answer becomes a value or one of :mod:`crowdsky.errors`; a download's name can only ever
be a plain file in the destination folder, and its body is kept only when it is whole FITS.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from crowdsky.adapters.collab.urls import CREDENTIALS_HINT
from crowdsky.errors import (
    ServerAuthError,
    ServerError,
    ServerProtocolError,
    ServerRejected,
    ServerUnavailable,
)

__all__ = ["FITS_BLOCK", "error_for", "json_answer", "safe_filename", "save_fits"]

#: FITS files are whole multiples of this many bytes.
FITS_BLOCK = 2880


def _server_message(response: httpx.Response) -> str:
    """The server's own words: ``{"error": ...}``, else the body text, shortened."""
    text = response.text.strip()
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
    return text[:200] or response.reason_phrase or "no message"


def _is_login(location: str) -> bool:
    return "login" in urlsplit(location).path.lower()


def error_for(response: httpx.Response) -> ServerError:
    """The error for a non-success answer (3xx, 4xx, 5xx); the body must already be read."""
    status = response.status_code
    if response.is_redirect or 300 <= status < 400:
        location = response.headers.get("Location", "")
        if _is_login(location):
            return ServerAuthError(
                status, f"redirected to the login page; check your credentials. {CREDENTIALS_HINT}"
            )
        return ServerProtocolError(f"The server answered with a redirect (HTTP {status}).")
    message = _server_message(response)
    if status == 401:
        return ServerAuthError(status, f"{message}. Check your credentials. {CREDENTIALS_HINT}")
    if 400 <= status < 500:
        return ServerRejected(status, message)
    return ServerUnavailable(f"The CrowdSky server failed (HTTP {status}): {message}")


def json_answer(response: httpx.Response, what: str) -> Any:
    """The JSON of a successful answer; ``{"error": ...}`` (even on 200) becomes an error."""
    if response.status_code != 200:
        raise error_for(response)
    try:
        data = json.loads(response.text)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to be an answer
        raise ServerProtocolError(
            f"The server's answer to {what} is not JSON but {_server_message(response)!r}; "
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


def save_fits(response: httpx.Response, target: Path, key: str) -> Path:
    """Stream the body to ``target.part``, check it is whole FITS, then move it into place."""
    part = target.with_name(target.name + ".part")
    size, head = 0, b""
    try:
        with part.open("wb") as out:
            for chunk in response.iter_bytes():
                if len(head) < 9:
                    head += chunk[: 9 - len(head)]
                size += len(chunk)
                out.write(chunk)
        if not head.startswith(b"SIMPLE  ="):
            raise ServerProtocolError(f"The download of {key} is not a FITS file.")
        if size == 0 or size % FITS_BLOCK:
            raise ServerProtocolError(
                f"The download of {key} is truncated ({size} bytes, not a whole number of "
                "2880-byte FITS blocks); nothing was saved."
            )
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target
