"""What the CrowdSky HTTP client needs besides sending: URLs, credentials, answers, file names.

Kept apart from :mod:`crowdsky.adapters.crowdsky_http` so each piece stays small and testable
on its own: reading the server's answers into values or :mod:`crowdsky.errors`, choosing a safe
download name, and the metadata sent with an upload.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import httpx
from astropy.io import fits

from crowdsky.domain import block_bounds, chunk_key, healpix_pixel, parse_crowdsky_name
from crowdsky.domain.folders import header_pointing, parse_date_obs
from crowdsky.errors import (
    PlanError,
    ServerAuthError,
    ServerError,
    ServerProtocolError,
    ServerRejected,
    ServerUnavailable,
)

__all__ = [
    "CREDENTIALS_HINT",
    "DEFAULT_URL",
    "FITS_BLOCK",
    "Credentials",
    "StackMeta",
    "check_url",
    "companion_thumbnail",
    "error_for",
    "image_type",
    "json_answer",
    "missing_credentials",
    "resolve_url",
    "safe_filename",
    "save_fits",
    "stack_meta",
]

DEFAULT_URL = "https://crowdsky.univie.ac.at"
#: FITS files are whole multiples of this many bytes.
FITS_BLOCK = 2880
CREDENTIALS_HINT = (
    "Set them with crowdsky.set_credentials('username', 'password') or the environment "
    "variables CROWDSKY_USERNAME and CROWDSKY_PASSWORD."
)


@attrs.frozen(repr=False)
class Credentials:
    """A username and password; the password never appears in ``repr`` or ``str``."""

    username: str
    password: str = attrs.field(eq=False)

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***')"

    __str__ = __repr__

    @classmethod
    def resolve(cls, username: str | None, password: str | None) -> Credentials | None:
        """From the arguments, else ``CROWDSKY_USERNAME``/``CROWDSKY_PASSWORD``; else ``None``."""
        user = username if username is not None else os.environ.get("CROWDSKY_USERNAME")
        secret = password if password is not None else os.environ.get("CROWDSKY_PASSWORD")
        if not user or secret is None or secret == "":
            return None
        return cls(user, secret)


def missing_credentials() -> ServerAuthError:
    """The error for a request that cannot be sent because no credentials are set."""
    message = f"No CrowdSky credentials set; nothing was sent. {CREDENTIALS_HINT}"
    error = ServerAuthError(401, message)
    error.args = (message,)  # nothing reached the server: no "server refused" wording
    return error


def resolve_url(base_url: str | None) -> str:
    """The argument, else ``CROWDSKY_URL``, else the public server; no trailing slash."""
    url = base_url or os.environ.get("CROWDSKY_URL") or DEFAULT_URL
    return url.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, allow_insecure_http: bool) -> None:
    """Refuse URLs that would leak the password: user info in the URL, or plain ``http://``.

    Basic auth sends the password with every request, so ``http://`` is allowed only to a
    loopback host (127.0.0.0/8, ``::1``, ``localhost``) or when explicitly allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlanError("The CrowdSky server URL must look like https://host[:port].")
    if parts.username is not None or parts.password is not None:
        # The URL itself is not echoed: it holds the secret.
        raise PlanError(
            "Do not put credentials in the server URL. " + CREDENTIALS_HINT.replace("Set", "Pass")
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure_http:
        raise PlanError(
            f"Refusing to send the CrowdSky password over plain http:// to {parts.hostname}; "
            "use https://, or pass allow_insecure_http=True if you really mean it."
        )


def _server_message(response: httpx.Response) -> str:
    """The server's own words: ``{"error": ...}``, else the body text, shortened."""
    text = response.text.strip()
    try:
        data = json.loads(text)
    except ValueError:
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
    except ValueError:
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
        return unquote(star.group(2).strip(), encoding=star.group(1) or "utf-8", errors="replace")
    plain = _DISPOSITION.search(header)
    if plain:
        return plain.group(1) if plain.group(1) is not None else plain.group(2)
    return None


def safe_filename(header: str | None, key: str) -> str:
    """A download name that can only ever be a plain file in the destination folder.

    Any name with a directory part, ``..``, a drive, control characters, a leading dot, or not
    ending in ``.fit``/``.fits`` is replaced by ``<key>.fits`` (itself cleaned of separators).

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
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", key).lstrip(".") or "stack"
    fallback += ".fits"
    name = _disposition_name(header)
    if name is None:
        return fallback
    bad = (
        not name
        or name.startswith(".")
        or any(ch in name for ch in "/\\:")
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in name)
        or not name.lower().endswith((".fit", ".fits"))
        or len(name.encode("utf-8")) > 200
    )
    return fallback if bad else name


@attrs.frozen
class StackMeta:
    """The optional form fields of a stack upload, read from the file and its name."""

    n_frames_input: int | None = None
    n_frames_aligned: int | None = None
    date_obs_start: str | None = None
    date_obs_end: str | None = None
    server_key: str | None = None
    object_name: str | None = None


def _int_card(header: Any, key: str) -> int | None:
    try:
        return int(header[key])
    except (KeyError, TypeError, ValueError):
        return None


def _block_of_key(key: str) -> tuple[datetime, datetime] | None:
    match = re.fullmatch(r"(\d{8})\.(\d+)(?:m(\d+))?", key)
    if match is None:
        return None
    minutes = int(match.group(3) or 15)
    try:
        day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    start = day + timedelta(minutes=minutes * int(match.group(2)))
    return start, start + timedelta(minutes=minutes)


def stack_meta(path: Path) -> StackMeta:
    """Frame counts, the observation span, the chunk key and the object of a stacked FITS.

    Frames: ``n_frames_aligned`` is ``STACKCNT`` (what the stacker kept), ``n_frames_input`` the
    count in the CrowdSky name; each stands in for the other when missing. Span: the start is
    ``DATE-OBS``; the end is the end of the UTC block the name's chunk key (else ``DATE-OBS``)
    falls in. Every frame of a block stack lies inside its block, whereas ``DATE-OBS + TOTALEXP``
    would end too early whenever the frames have gaps between them.
    """
    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError) as exc:
        raise ServerError(f"{path.name} is not a readable FITS file: {exc}") from exc
    name = parse_crowdsky_name(path.name)
    stackcnt = _int_card(header, "STACKCNT")
    named = name.frames if name is not None else None
    date_obs = parse_date_obs(header.get("DATE-OBS"))
    server_key = name.server_key if name is not None else None
    block = _block_of_key(name.chunk_key) if name is not None and name.chunk_key else None
    if server_key is None and date_obs is not None:
        ra, dec = header_pointing(header)
        try:
            server_key = f"{chunk_key(date_obs)}_HP{healpix_pixel(ra, dec):06d}"
        except PlanError:
            server_key = None
    if block is None and date_obs is not None:
        block = block_bounds(date_obs)
    obj = name.target if name is not None else header.get("OBJECT")
    return StackMeta(
        n_frames_input=named if named is not None else stackcnt,
        n_frames_aligned=stackcnt if stackcnt is not None else named,
        date_obs_start=date_obs.isoformat() if date_obs is not None else None,
        date_obs_end=block[1].isoformat() if block is not None else None,
        server_key=server_key,
        object_name=str(obj).strip() if obj else None,
    )


def companion_thumbnail(path: Path) -> Path | None:
    """The ``_thn.jpg`` beside a stack, else its ``.jpg``, else ``None``."""
    stem = path.with_suffix("")
    for candidate in (Path(f"{stem}_thn.jpg"), Path(f"{stem}.jpg")):
        if candidate.is_file():
            return candidate
    return None


def image_type(path: Path) -> str:
    """The MIME type of a thumbnail."""
    return "image/png" if path.suffix.lower() == ".png" else "image/jpeg"


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
