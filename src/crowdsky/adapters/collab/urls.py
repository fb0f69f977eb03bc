"""Where the CrowdSky client may send, and as whom: the server URL and the credentials.

The policy that keeps the password safe lives here: credentials come from arguments or the
environment and never show in a ``repr``; a URL with user info (any ``@``), one httpx cannot use,
or plain ``http://`` to a host that is not loopback, is refused before anything is sent, and
the refusal never repeats the URL.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import SplitResult, urlsplit

import attrs
import httpx

from crowdsky.errors import MissingCredentialsError, PlanError

__all__ = [
    "CREDENTIALS_HINT",
    "DEFAULT_URL",
    "INSECURE_HTTP_HINT",
    "Credentials",
    "check_url",
    "missing_credentials",
    "resolve_url",
]

DEFAULT_URL = "https://crowdsky.univie.ac.at"
CREDENTIALS_HINT = (
    "Set them with crowdsky.set_credentials('username', 'password') or the environment "
    "variables CROWDSKY_USERNAME and CROWDSKY_PASSWORD."
)
#: How to allow plain http:// anyway, in the Python API and on the command line.
INSECURE_HTTP_HINT = (
    "pass allow_insecure_http=True (on the command line: --insecure-http) if you really mean it"
)
_BAD_URL = "The CrowdSky server URL must look like https://host[:port][/path]."


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


def missing_credentials() -> MissingCredentialsError:
    """The error for a request that cannot be sent because no credentials are set."""
    message = f"No CrowdSky credentials set; nothing was sent. {CREDENTIALS_HINT}"
    error = MissingCredentialsError(401, message)
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


def _usable(url: str) -> SplitResult | None:
    """The parts of ``url`` when both urllib and httpx can use it, else ``None``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        httpx.URL(url).host  # noqa: B018 - decoding the host checks its IDNA labels
    except (ValueError, httpx.InvalidURL):  # IDNA errors are ValueErrors too
        return None
    return parts


def check_url(url: str, *, allow_insecure_http: bool) -> None:
    """Refuse URLs that would leak the password: user info in the URL, or plain ``http://``.

    Any ``@`` in the URL is refused before the URL is parsed: a password holding ``#``, ``/``
    or ``?`` makes parsers split the URL elsewhere and show part of it. No message here ever
    repeats the URL, and a URL that httpx cannot use is refused here, not when sending.
    Basic auth sends the password with every request, so ``http://`` is allowed only to a
    loopback host (127.0.0.0/8, ``::1``, ``localhost``) or when explicitly allowed.
    """
    if "@" in url:
        # The URL itself is not echoed: it holds the secret.
        raise PlanError(
            "Do not put credentials (or any '@') in the server URL. "
            + CREDENTIALS_HINT.replace("Set", "Pass")
        )
    parts = _usable(url)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlanError(_BAD_URL)  # raised outside any handler: no exception text rides along
    if parts.scheme == "http" and not _is_loopback(parts.hostname) and not allow_insecure_http:
        raise PlanError(
            f"Refusing to send the CrowdSky password over plain http:// to {parts.hostname}; "
            f"use https://, or {INSECURE_HTTP_HINT}."
        )
