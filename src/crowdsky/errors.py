"""The exceptions and warnings crowdsky raises.

Every error crowdsky raises on purpose derives from :class:`CrowdskyError`, so one
``except crowdsky.CrowdskyError`` catches them all. Foreign exceptions (``OSError``,
``httpx.HTTPError``, ``smb`` errors, JSON-RPC error replies) are translated at the adapter
edge into one of these, with the original kept as ``__cause__``.

::

    CrowdskyError
    ├── PlanError (also ValueError)        bad arguments: block_minutes, min_exptime, names
    ├── UnknownTargetError (also LookupError)
    ├── NoSeestarError                     a module-level function before a Seestar was chosen
    ├── ConfigError                        settings: configuration file, environment, options
    │   └── MissingExtraError              an optional extra (``crowdsky[stack]``) is not installed
    ├── LocalStackError                    subs on this computer could not be stacked
    ├── LocalStackCancelled                a local stack was cancelled; nothing was written
    ├── SeestarError                       the telescope misbehaved or is unreachable
    │   ├── SeestarConnectionError         cannot connect, link dropped, no reply in time
    │   ├── SeestarAuthError               key missing or signature rejected
    │   ├── SeestarRpcError                a JSON-RPC reply with a non-zero code
    │   ├── StorageError                   rename, delete or download of a file failed
    │   │   └── HeaderReadError            a FITS header could not be read, even when retried
    │   ├── ListingIncompleteError         a folder listing kept coming back short
    │   └── BatchStackError                start refused, stack failed, timed out
    └── ServerError                        the CrowdSky collaboration server
        ├── ServerUnavailable              cannot connect, timeout, 5xx after retries
        │   └── UploadUnconfirmed          a change may have reached the server; answer lost
        ├── ServerRejected                 4xx with the server's own message
        │   └── ServerAuthError            401 or a redirect to the login page
        │       └── MissingCredentialsError  no credentials set (also a ConfigError)
        └── ServerProtocolError            an answer that is not what the API promises

    CrowdskyWarning (UserWarning)
    └── DeviceTimeWarning                  the device's time zone had to be guessed

    KeyboardInterrupt
    └── UploadsInterrupted                 Ctrl-C during uploads, with what got done
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BatchStackError",
    "ConfigError",
    "CrowdskyError",
    "CrowdskyWarning",
    "DeviceTimeWarning",
    "HeaderReadError",
    "ListingIncompleteError",
    "LocalStackCancelled",
    "LocalStackError",
    "MissingCredentialsError",
    "MissingExtraError",
    "NoSeestarError",
    "PlanError",
    "SeestarAuthError",
    "SeestarConnectionError",
    "SeestarError",
    "SeestarRpcError",
    "ServerAuthError",
    "ServerError",
    "ServerProtocolError",
    "ServerRejected",
    "ServerUnavailable",
    "StorageError",
    "UnknownTargetError",
    "UploadUnconfirmed",
    "UploadsInterrupted",
]


class CrowdskyError(Exception):
    """Root of every error crowdsky raises on purpose."""


class PlanError(CrowdskyError, ValueError):
    """An argument cannot be used to plan blocks (for example ``block_minutes=7``)."""


class UnknownTargetError(CrowdskyError, LookupError):
    """The named target has no raw sub-frame folder on the Seestar.

    Parameters
    ----------
    target : str
        The name that was asked for.
    known : tuple of str
        The targets that do exist, to put in the message.
    """

    def __init__(self, target: str, known: tuple[str, ...] = ()) -> None:
        self.target = target
        self.known = known
        hint = f" Targets with raw sub-frames: {', '.join(known)}." if known else ""
        super().__init__(
            f"No raw sub-frames for target {target!r} on the Seestar.{hint} "
            "Call list_targets() to see the exact names (spaces and case matter)."
        )


class NoSeestarError(CrowdskyError):
    """A module-level function was called before a Seestar was chosen.

    Choose one with :func:`crowdsky.connect` or :func:`crowdsky.use_simulator`.
    """


class ConfigError(CrowdskyError):
    """The settings cannot be used (a usage or configuration problem).

    A malformed configuration file, an unknown ``--scope``, an environment variable of the
    wrong type, a missing host or missing credentials.

    The command line exits with status 2 for it (a usage or configuration problem).
    """


class MissingExtraError(ConfigError):
    """A feature needs an optional extra that is not installed (``pip install "crowdsky[stack]"``).

    Its message is one line naming the command that installs it; the command line exits with
    status 2 for it, as for any other configuration problem.
    """


class LocalStackError(CrowdskyError):
    """A block of raw sub-frames on this computer could not be stacked.

    A sub that cannot be read (missing, truncated, not a Seestar mosaic), no frame that can be
    registered, or an output that cannot be written. Nothing is written when it is raised.
    """


class LocalStackCancelled(CrowdskyError):
    """A local stack was cancelled between frames; no output (or ``.part`` file) was left."""


class SeestarError(CrowdskyError):
    """The Seestar could not do what was asked."""


class SeestarConnectionError(SeestarError):
    """The Seestar cannot be reached, dropped the link, or did not answer in time."""


class SeestarAuthError(SeestarError):
    """Authentication with the Seestar failed (key missing, unreadable or rejected)."""


class SeestarRpcError(SeestarError):
    """A JSON-RPC command was answered with a non-zero code.

    Parameters
    ----------
    method : str
        The command that failed.
    code : int
        The device's error code (see the protocol reference, section 1.7).
    message : str
        The device's error text.
    """

    def __init__(self, method: str, code: int, message: str) -> None:
        self.method = method
        self.code = code
        self.message = message
        super().__init__(f"Seestar refused {method!r}: {message} (code {code})")


class StorageError(SeestarError):
    """A file on the Seestar could not be renamed, deleted, read or downloaded."""


class HeaderReadError(StorageError):
    """A FITS header could not be read, even after retrying.

    Not the same as a header without ``DATE-OBS`` or ``RA``/``DEC``: nothing is planned or
    named from a header that could not be read.

    Parameters
    ----------
    path : str
        The ``MyWorks/...`` path of the file.
    attempts : int
        How many times the read was tried.
    reason : str
        The last failure.
    """

    def __init__(self, path: str, attempts: int, reason: str) -> None:
        self.path = path
        self.attempts = attempts
        self.reason = reason
        super().__init__(
            f"The FITS header of {path} could not be read ({attempts} attempts; last: {reason})."
        )


class ListingIncompleteError(SeestarError):
    """A folder listing came back short on every attempt, so none is returned.

    The device promised more entries than it sent (an empty or short page before the last), or
    the link was replaced while the folder was being paged (the device keeps the folder being
    paged per connection). Planning from part of a folder would stack blocks with part of their
    frames and count them as covered for good.

    Parameters
    ----------
    folder : str
        The folder, as sent to the device (``MyWorks/<folder>``).
    attempts : int
        How many times the whole listing was tried.
    reason : str
        What was wrong with the last attempt.
    """

    def __init__(self, folder: str, attempts: int, reason: str) -> None:
        self.folder = folder
        self.attempts = attempts
        self.reason = reason
        super().__init__(
            f"The listing of {folder!r} came back short {attempts} times ({reason}); "
            "nothing was planned from it. Check the Wi-Fi signal and try again."
        )


class BatchStackError(SeestarError):
    """An on-device batch stack could not be started, failed, or timed out."""


class ServerError(CrowdskyError):
    """The CrowdSky collaboration server could not do what was asked."""


class ServerUnavailable(ServerError):
    """The server cannot be reached, timed out, or kept failing with 5xx."""


class UploadUnconfirmed(ServerUnavailable):
    """An upload (or other change) may have reached the server, but its answer was lost.

    The server's list could not confirm it either way.

    It is not repeated blindly; the next run looks for the stack on the server before sending.
    """


class ServerRejected(ServerError):
    """The server answered with a 4xx status.

    Parameters
    ----------
    status : int
        The HTTP status code.
    message : str
        The server's own message (from ``{"error": ...}`` or the body text).
    """

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"CrowdSky server refused the request (HTTP {status}): {message}")


class ServerAuthError(ServerRejected):
    """The server did not accept the credentials (HTTP 401 or a redirect to its login page)."""


class ServerProtocolError(ServerError):
    """The server answered with something the API does not promise (HTML, truncated FITS)."""


class CrowdskyWarning(UserWarning):
    """Root of the warnings crowdsky emits."""


class DeviceTimeWarning(CrowdskyWarning):
    """The device's UTC offset could not be established and had to be assumed."""


class MissingCredentialsError(ServerAuthError, ConfigError):
    """No CrowdSky credentials were set, so nothing was sent."""


class UploadsInterrupted(KeyboardInterrupt):
    """Ctrl-C (``KeyboardInterrupt``) during uploads, with what had been done by then.

    Still a ``KeyboardInterrupt``: whoever catches that sees the interruption as before.

    Parameters
    ----------
    uploaded : sequence of str
        Stacks uploaded and recorded in the upload journal before the interruption.
    unfinished : sequence of str
        The stack whose download or upload was cut short: not recorded as uploaded, so the
        next run looks for it on the server and sends it if it is not there.
    not_started : sequence of str
        Stacks that were to be sent and were not touched.
    """

    def __init__(
        self, uploaded: Sequence[str], unfinished: Sequence[str], not_started: Sequence[str]
    ) -> None:
        self.uploaded = tuple(uploaded)
        self.unfinished = tuple(unfinished)
        self.not_started = tuple(not_started)
        super().__init__(self.summary())

    def summary(self) -> str:
        """``3 uploaded, 1 not finished (NAME), 5 not started``.

        Examples
        --------
        >>> UploadsInterrupted(["a.fit"], ["b.fit"], ["c.fit", "d.fit"]).summary()
        '1 uploaded, 1 not finished (b.fit), 2 not started'
        """
        unfinished = len(self.unfinished)
        names = f" ({', '.join(self.unfinished)})" if unfinished else ""
        return (
            f"{len(self.uploaded)} uploaded, {unfinished} not finished{names}, "
            f"{len(self.not_started)} not started"
        )
