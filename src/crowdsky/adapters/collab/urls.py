"""Where the CrowdSky client may send, and as whom: the server URL and the credentials.

The policy that keeps the password safe lives here: credentials come from arguments or the
environment and never show in a ``repr``; a URL with user info, or plain ``http://`` to a host
that is not loopback, is refused before anything is sent.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

import attrs

from crowdsky.errors import MissingCredentialsError, PlanError

__all__ = [
    "CREDENTIALS_HINT",
    "DEFAULT_URL",
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
