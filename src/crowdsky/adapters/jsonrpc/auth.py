"""The firmware 7.18+ authentication handshake (protocol reference §2).

Sequence, on every new TCP connection, before any other command::

    get_verify_str                      -> {"str": "<challenge>"}   (103 on firmware < 7.18)
    verify_client {"sign", "data"}      -> 0                        (non-zero: bad signature)
    pi_is_verified                      -> true / {"is_verified": true}   (informational)

The signature is RSASSA-PKCS1-v1_5 with SHA-1 over the UTF-8 bytes of the challenge, base64
(standard alphabet, no line wrapping). The key is the user's own copy of the Seestar app's key;
crowdsky never ships one. Key material never appears in messages, reprs or logs: only the path.

``cryptography`` is imported only when a key is actually needed, so connecting to old firmware
does not load it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from crowdsky.adapters.jsonrpc.codec import ABSENT, Reply
from crowdsky.errors import SeestarAuthError, SeestarConnectionError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

__all__ = [
    "KEY_ENV_VAR",
    "RpcCaller",
    "RsaAuthenticator",
    "default_key_path",
    "find_key_path",
    "load_private_key",
    "sign_challenge",
]

log = logging.getLogger(__name__)

#: Environment variable naming the PEM file with the Seestar app's private key.
KEY_ENV_VAR: Final = "SEESTAR_KEY_PATH"

#: Seconds an unverified connection waits for ``test_connection`` before the key is missing.
UNVERIFIED_PROBE_TIMEOUT: Final = 3.0

#: Answer of firmware older than 7.18 to ``get_verify_str``: "method not found".
_CODE_NO_SUCH_METHOD: Final = 103


class RpcCaller(Protocol):
    """What the handshake needs from a connection: send one request, get its reply."""

    def call_reply(
        self, method: str, params: object = ABSENT, *, timeout: float | None = None
    ) -> Reply:
        """Send ``method`` and return the device's reply, whatever its code."""
        ...


def default_key_path() -> Path:
    """``$XDG_CONFIG_HOME/crowdsky/seestar_key.pem``, or ``~/.config/crowdsky/seestar_key.pem``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "crowdsky" / "seestar_key.pem"


def find_key_path(
    key_path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Path | None:
    """Where to read the key from: ``key_path``, else ``$SEESTAR_KEY_PATH``, else the default.

    Parameters
    ----------
    key_path : str or path-like, optional
        An explicit path; returned as is (even if missing, so the error names it).
    env : Mapping, optional
        The environment to consult (default ``os.environ``).

    Returns
    -------
    Path or None
        ``None`` when nothing was given and the default file does not exist.
    """
    environ = os.environ if env is None else env
    if key_path is not None:
        return Path(key_path).expanduser()
    if environ.get(KEY_ENV_VAR):
        return Path(environ[KEY_ENV_VAR]).expanduser()
    default = default_key_path()
    return default if default.is_file() else None


def _crypto_missing(exc: ImportError) -> SeestarAuthError:
    error = SeestarAuthError(
        "This Seestar needs authentication, which needs the 'cryptography' package, a "
        "dependency of crowdsky that is missing here: pip install --force-reinstall crowdsky "
        "(or pip install cryptography)."
    )
    error.__cause__ = exc
    return error


def load_private_key(path: str | os.PathLike[str]) -> RSAPrivateKey:
    """Load an unencrypted RSA private key from a PEM file (PKCS#8 or PKCS#1).

    Parameters
    ----------
    path : str or path-like
        The PEM file.

    Returns
    -------
    RSAPrivateKey

    Raises
    ------
    SeestarAuthError
        When the file is missing, unreadable, not a PEM RSA private key, or password-protected.
        The message names the path, never the file's content.
    """
    try:
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError as exc:
        raise _crypto_missing(exc) from exc
    where = Path(path)
    try:
        data = where.read_bytes()
    except OSError as exc:
        reason = "does not exist" if isinstance(exc, FileNotFoundError) else "cannot be read"
        raise SeestarAuthError(
            f"The Seestar key file {str(where)!r} {reason} ({type(exc).__name__}). "
            f"Pass key_path= or set {KEY_ENV_VAR} to the PEM file with the Seestar app's key."
        ) from exc
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError as exc:  # raised for encrypted keys when no password is given
        raise SeestarAuthError(
            f"The Seestar key file {str(where)!r} is password-protected; "
            "store the key unencrypted (PEM, PKCS#8 or PKCS#1)."
        ) from exc
    except (ValueError, binascii.Error) as exc:
        raise SeestarAuthError(
            f"The Seestar key file {str(where)!r} is not a PEM private key "
            "(expected '-----BEGIN PRIVATE KEY-----' or '-----BEGIN RSA PRIVATE KEY-----')."
        ) from exc
    if not isinstance(key, RSAPrivateKey):
        raise SeestarAuthError(f"The Seestar key file {str(where)!r} holds a non-RSA key.")
    return key


def sign_challenge(key: RSAPrivateKey, challenge: str) -> str:
    r"""Sign ``challenge`` as the firmware expects: PKCS#1 v1.5, SHA-1, base64 without wrapping.

    Parameters
    ----------
    key : RSAPrivateKey
        The loaded key.
    challenge : str
        The ``get_verify_str`` challenge.

    Returns
    -------
    str
        The base64 signature (standard alphabet, one line).

    Raises
    ------
    SeestarAuthError
        When the challenge has no UTF-8 form (a lone surrogate such as ``"\\ud800"``).
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        data = challenge.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SeestarAuthError(
            "The Seestar sent an authentication challenge that is not valid text "
            f"({exc.reason} at position {exc.start}); cannot sign it."
        ) from exc
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA1())
    return base64.b64encode(signature).decode("ascii")


def _challenge_of(result: Any) -> str | None:
    # Documented shape: {"str": "<challenge>"}; one client also accepts a bare string.
    value = result.get("str") if isinstance(result, Mapping) else result
    return value if isinstance(value, str) and value else None


def _is_verified(result: Any) -> bool:
    if isinstance(result, Mapping):
        return result.get("is_verified") is True
    return result is True


class RsaAuthenticator:
    """Authenticates each new connection with the user's copy of the Seestar app's key.

    The key is looked up (``key_path``, else ``$SEESTAR_KEY_PATH``, else
    :func:`default_key_path`) and loaded only when the device asks for it, so firmware older
    than 7.18 (code 103 to ``get_verify_str``) works without a key and without ``cryptography``.

    Parameters
    ----------
    key_path : str or path-like, optional
        The PEM file (PKCS#8 or PKCS#1, unencrypted).
    timeout : float, optional
        Seconds to wait for each handshake reply; ``None`` uses the connection's timeout.
    env : Mapping, optional
        Environment for the key lookup (default ``os.environ``).
    """

    def __init__(
        self,
        key_path: str | os.PathLike[str] | None = None,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._explicit = key_path
        self._env = env
        self._timeout = timeout
        self._key: RSAPrivateKey | None = None

    def __repr__(self) -> str:
        # The path only: the key itself must never reach a repr or a log.
        path = find_key_path(self._explicit, self._env)
        return f"RsaAuthenticator(key_path={str(path) if path else None!r})"

    def key(self) -> RSAPrivateKey:
        """The private key, loaded once.

        Raises
        ------
        SeestarAuthError
            When no key file is configured or it cannot be loaded.
        """
        if self._key is None:
            path = find_key_path(self._explicit, self._env)
            if path is None:
                raise SeestarAuthError(
                    "This Seestar (firmware 7.18 or later) asks for authentication, but no key "
                    f"was given. Pass key_path= or set {KEY_ENV_VAR} to the PEM file with the "
                    f"Seestar app's private key, or put it at {str(default_key_path())!r}."
                )
            self._key = load_private_key(path)
        return self._key

    def authenticate(self, rpc: RpcCaller) -> bool:
        """Run the handshake on a freshly opened connection.

        Parameters
        ----------
        rpc : RpcCaller
            The connection (anything with ``call_reply``).

        Returns
        -------
        bool
            True when the device verified the signature; False when it needs no authentication
            (firmware older than 7.18, or no challenge offered), or when no key is configured
            and the device still answers ``test_connection`` (firmware 7.18-7.31).

        Raises
        ------
        SeestarAuthError
            When the key is missing or unreadable, or the device rejects the signature; also
            when no key is configured and the device ignores ``test_connection`` for
            :data:`UNVERIFIED_PROBE_TIMEOUT` seconds (firmware 7.32+).
        SeestarConnectionError
            When the device does not answer the handshake in time.
        """
        reply = rpc.call_reply("get_verify_str", timeout=self._timeout)
        if reply.code == _CODE_NO_SUCH_METHOD:
            log.debug("get_verify_str unknown (firmware < 7.18): no authentication needed")
            return False
        if not reply.ok:
            raise SeestarAuthError(
                f"The Seestar refused to start authentication: {reply.error} "
                f"(get_verify_str code {reply.code})."
            )
        challenge = _challenge_of(reply.result)
        if challenge is None:
            log.warning("get_verify_str gave no challenge; continuing without authentication")
            return False
        if self._key is None and find_key_path(self._explicit, self._env) is None:
            self._probe_unverified(rpc)
            return False
        sign = sign_challenge(self.key(), challenge)
        reply = rpc.call_reply(
            "verify_client", {"sign": sign, "data": challenge}, timeout=self._timeout
        )
        if not reply.ok:
            raise SeestarAuthError(
                f"Seestar signature rejected (verify_client code {reply.code}: {reply.error}). "
                "The key in use is probably not the Seestar app's key."
            )
        self._check_verified(rpc)
        log.debug("authenticated with the Seestar")
        return True

    def _probe_unverified(self, rpc: RpcCaller) -> None:
        """Tell, without a key, a device that answers unverified from one that will not.

        Firmware 7.18-7.31 offers the handshake but does not insist on it; 7.32+ then ignores
        every command. One harmless ``test_connection`` with a short timeout tells them apart
        within seconds, instead of the first real command timing out as if the device were busy.
        """
        try:
            rpc.call_reply("test_connection", timeout=UNVERIFIED_PROBE_TIMEOUT)
        except SeestarConnectionError as exc:
            raise SeestarAuthError(
                "This Seestar asks for authentication and ignores commands without it, but no "
                f"key was given. Pass key_path= or set {KEY_ENV_VAR} to the PEM file with the "
                f"Seestar app's private key, or put it at {str(default_key_path())!r}."
            ) from exc
        log.warning(
            "The Seestar offers authentication but no key is configured; continuing "
            "unverified (set %s if commands go unanswered)",
            KEY_ENV_VAR,
        )

    def _check_verified(self, rpc: RpcCaller) -> None:
        # Informational only in every known client: a wrong answer here is logged, not fatal.
        try:
            reply = rpc.call_reply("pi_is_verified", timeout=self._timeout)
        except SeestarConnectionError:
            log.warning("pi_is_verified was not answered after verify_client")
            return
        if not (reply.ok and _is_verified(reply.result)):
            log.warning("pi_is_verified did not confirm authentication (code %s)", reply.code)
