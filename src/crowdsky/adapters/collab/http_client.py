"""The CrowdSky collaboration server over HTTP (httpx).

:class:`HttpCollabServer` satisfies :class:`~crowdsky.app.server_port.CollabServer`.

Robustness rules, each from a defect seen in the existing clients (field notes 10 and 11):

* transient failures (cannot connect, timeouts, 5xx, 429) are retried with exponential backoff,
  but an upload is never re-sent blindly: before each retry the server's list is checked for
  the stack under the chunk key the server derives from the file's header (not the key in its
  name, which differs for other block lengths and headers without RA/DEC) with the same object
  and no other known field different, and a stack already there ends the retries. A request
  that may have changed the server and could not be confirmed raises
  :class:`~crowdsky.errors.UploadUnconfirmed`;
* request bodies stream from disk with a known length; downloads stream to ``<name>.part`` and
  are checked (``SIMPLE  =`` first, a length that is a multiple of 2880) before ``os.replace``;
* nothing is read whole: JSON answers stop at 16 MB, error bodies are read to 64 KiB, a download
  stops at ``max_download_bytes`` (256 MB) or past its ``Content-Length``, and every answer's
  body must arrive within ``transfer_deadline`` (30 min); ``.part`` files a killed download left
  in the destination are removed by the first download there in each session;
* the server's own ``{"error": ...}`` message (or bare text) is kept in the raised error;
* a 401 or a redirect to ``login.php`` is an authentication failure, never a success;
* the password goes only into the ``Authorization`` header: never into logs, ``repr`` or errors.

Stack downloads go over the client's own kept-alive sockets
(:class:`~crowdsky.adapters.direct_http.DirectGets`, TLS with the same ``ssl.SSLContext`` the
httpx client verifies with) when this object built its httpx client itself and no proxy is
configured: httpx's own work is about 1 ms of CPU per request, a fifth of a 12 MB loopback
transfer. Every other request, an answer those sockets do not read (chunked, encoded), and
everything sent through a client passed in go through httpx. Retries, limits and errors are
the same either way.
"""

from __future__ import annotations

import base64
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode
from urllib.request import getproxies

import attrs
import httpx

from crowdsky.adapters.collab.answers import (
    ReadLimits,
    error_for,
    json_answer,
    safe_filename,
    save_fits,
)
from crowdsky.adapters.collab.multipart import FilePart, MultipartBody
from crowdsky.adapters.collab.stack_meta import companion_thumbnail, image_type, stack_meta
from crowdsky.adapters.collab.urls import (
    Credentials,
    check_url,
    missing_credentials,
    resolve_url,
)
from crowdsky.adapters.direct_http import DirectGets, NotPlain, response_of
from crowdsky.adapters.fits_transfer import (
    DEFAULT_TRANSFER_DEADLINE,
    MAX_FITS_BYTES,
    remove_stale_parts,
)
from crowdsky.app.ports import ByteProgress
from crowdsky.app.server_port import StackRecord, UploadReceipt
from crowdsky.domain.uploads import same_stack
from crowdsky.errors import (
    PlanError,
    ServerError,
    ServerProtocolError,
    ServerUnavailable,
    UploadUnconfirmed,
)

__all__ = ["DEFAULT_TIMEOUT", "RAW_FILE_TIMEOUT", "UPLOAD_TIMEOUT", "HttpCollabServer"]

log = logging.getLogger("crowdsky.server")
T = TypeVar("T")

#: 30 s for everything but transfers of files.
DEFAULT_TIMEOUT = httpx.Timeout(30.0)
#: Stack uploads: 12 MB over a slow long-haul link needed a 300 s read timeout.
UPLOAD_TIMEOUT = httpx.Timeout(30.0, read=300.0, write=300.0)
#: One raw sub-frame.
RAW_FILE_TIMEOUT = httpx.Timeout(120.0, connect=30.0)

_MAX_BACKOFF = 30.0
# Answers that say the request was not processed; safe to repeat for every request.
_BUSY = frozenset({429, 503})
_DOWNLOAD = "/api/download_stack.php"

#: Opens one attempt of a request: sends it and returns the answer, its body not yet read.
Ask = Callable[[httpx.BasicAuth], httpx.Response]


class _Stop(Exception):
    """A pre-retry check found the work already done on the server."""


class HttpCollabServer:
    """The CrowdSky server API over HTTP.

    Parameters
    ----------
    base_url : str, optional
        Server root; else ``CROWDSKY_URL``; else ``https://crowdsky.univie.ac.at``.
    username, password : str, optional
        CrowdSky web-account credentials; else ``CROWDSKY_USERNAME``/``CROWDSKY_PASSWORD``.
        Without them every request fails before anything is sent.
    client : httpx.Client, optional
        A client to send with (tests pass one with a ``MockTransport``); it is not closed here,
        and every request goes through it. Without one, this object builds an httpx client
        (one ``ssl.SSLContext``, httpx's default verification: ``SSL_CERT_FILE`` /
        ``SSL_CERT_DIR``, else certifi's bundle) and downloads stacks over its own kept-alive
        sockets with the same context, unless a proxy is configured in the environment.
    allow_insecure_http : bool
        Allow Basic auth over plain ``http://`` to a host that is not loopback.
    retries : int
        Extra attempts after a transient failure.
    backoff : float
        First wait in seconds; doubled after each failed attempt (at most 30 s).
    sleep : callable
        How to wait (tests pass a recorder).
    timeout : httpx.Timeout, optional
        One timeout for every request instead of the defaults (30 s; 30 s connect / 300 s
        read for stack uploads; 120 s per raw file).
    transfer_deadline : float
        Seconds an answer's body may take in all, checked as each piece arrives (a trickle of
        bytes never ends otherwise); 30 minutes by default.
    max_download_bytes : int
        The largest stack downloaded
        (:data:`~crowdsky.adapters.fits_transfer.MAX_FITS_BYTES`, 256 MB).
    clock : callable
        Monotonic seconds for the deadline (tests pass a fake).
    patience : float
        Seconds after which a request that keeps timing out is not tried again: a server
        that does not answer at all fails after one 30 s timeout, not after every retry.

    Raises
    ------
    PlanError
        For a URL with credentials (any ``@``) in it, one httpx cannot use, or plain
        ``http://`` to a remote host; the message never repeats the URL.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        client: httpx.Client | None = None,
        allow_insecure_http: bool = False,
        retries: int = 3,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        timeout: httpx.Timeout | None = None,
        transfer_deadline: float = DEFAULT_TRANSFER_DEADLINE,
        max_download_bytes: int = MAX_FITS_BYTES,
        clock: Callable[[], float] = time.monotonic,
        patience: float = 30.0,
    ) -> None:
        self.url = resolve_url(base_url)
        check_url(self.url, allow_insecure_http=allow_insecure_http)
        self._credentials = Credentials.resolve(username, password)
        self._owns_client = client is None
        self._direct: DirectGets | None = None
        if client is None:
            context = httpx.create_ssl_context()  # as httpx builds one by default
            client = httpx.Client(timeout=DEFAULT_TIMEOUT, verify=context)
            self._direct = _direct_gets(self.url, timeout or DEFAULT_TIMEOUT, context)
        self._client = client
        parsed = httpx.URL(self.url)
        self._prefix = parsed.raw_path.decode("ascii").rstrip("/")  # the request target's
        self._path = parsed.path.rstrip("/")  # in messages
        self.retries = max(0, retries)
        self.backoff = backoff
        self._sleep = sleep
        self._timeout = timeout
        self._limits = ReadLimits(transfer_deadline, max_download_bytes, clock)
        self.patience = patience
        self._swept: set[Path] = set()  # folders swept of stale .part files this session

    def __repr__(self) -> str:
        user = self._credentials.username if self._credentials else None
        return f"HttpCollabServer(url={self.url!r}, username={user!r})"

    @property
    def username(self) -> str | None:
        """The account name in use, if any."""
        return self._credentials.username if self._credentials else None

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`close` closed the HTTP client (one passed in stays open)."""
        return self._client.is_closed

    def close(self) -> None:
        """Close the HTTP client (and the download sockets) if this object created it."""
        if self._direct is not None:
            self._direct.close()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> HttpCollabServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- sending ---------------------------------------------------------------------------

    def _auth(self) -> httpx.BasicAuth:
        if self._credentials is None:
            raise missing_credentials()
        return httpx.BasicAuth(self._credentials.username, self._credentials.password)

    def _wait(self, attempt: int, response: httpx.Response | None) -> None:
        delay = min(self.backoff * 2**attempt, _MAX_BACKOFF)
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.isdigit():
            delay = min(max(delay, float(retry_after)), 60.0)
        self._sleep(delay)

    def _send(
        self,
        ask: Ask,
        what: str,
        handle: Callable[[httpx.Response], T],
        *,
        idempotent: bool,
        before_retry: Callable[[], None] | None = None,
    ) -> T:
        """Send ``what`` by ``ask``, retrying transient failures; ``handle`` reads the answer.

        A request that may have reached the server is repeated only when it is idempotent, or
        after ``before_retry`` checked that repeating it is safe (it raises :class:`_Stop` when
        the work is already done).
        """
        auth = self._auth()
        attempt = 0
        maybe_done = False  # an attempt of a non-idempotent request reached the server
        started = time.monotonic()
        while True:
            response: httpx.Response | None = None
            try:
                response = ask(auth)
                log.debug("%s -> HTTP %s", what, response.status_code)
                status = response.status_code
                if status < 500 and status not in _BUSY:
                    return handle(response)
                reached, problem = status not in _BUSY, error_for(response, self._limits)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                reached, problem = False, ServerUnavailable(f"Cannot reach {self.url}: {exc}")
                problem.__cause__ = exc
            except httpx.TransportError as exc:
                reached, problem = True, ServerUnavailable(f"{what} to {self.url} failed: {exc!r}")
                problem.__cause__ = exc
            except OSError as exc:  # a local file could not be read or written
                raise ServerError(f"Local file error during {what}: {exc}") from exc
            finally:
                if response is not None:
                    response.close()
            maybe_done = maybe_done or (reached and not idempotent)
            if (
                attempt >= self.retries
                or (reached and not idempotent and before_retry is None)
                or self._out_of_patience(problem, started)
            ):
                if maybe_done:
                    raise UploadUnconfirmed(
                        f"{problem} The server may have carried out {what} before the answer "
                        "was lost; it was not sent again."
                    ) from problem
                raise problem
            log.warning(
                "%s failed (%s); retrying (%d/%d)", what, problem, attempt + 1, self.retries
            )
            self._wait(attempt, response)
            if before_retry is not None:
                before_retry()
            attempt += 1

    def _out_of_patience(self, problem: Exception, started: float) -> bool:
        """True when the last attempt timed out and the request has used up its patience."""
        timed_out = isinstance(problem.__cause__, httpx.TimeoutException)
        return timed_out and time.monotonic() - started >= self.patience

    def _what(self, method: str, endpoint: str) -> str:
        """The request as named in logs and errors: method and path, never the query."""
        return f"{method} {self._path}{endpoint}"

    def _ask_download(self, chunk_key: str) -> Ask:
        """Over the own sockets when there are any; through httpx for what they cannot read."""
        params = {"chunk_key": chunk_key}
        through_httpx = self._ask("GET", _DOWNLOAD, params=params)
        direct = self._direct
        if direct is None or self._credentials is None:
            return through_httpx
        target = f"{self._prefix}{_DOWNLOAD}?{urlencode(params)}"
        headers = {"Accept": "application/json", "Authorization": _basic(self._credentials)}
        agent = self._client.headers.get("User-Agent")
        if agent:
            headers["User-Agent"] = agent

        def ask(auth: httpx.BasicAuth) -> httpx.Response:
            try:
                answer = direct.open(target, headers)
            except NotPlain:  # an answer only httpx reads (chunked, encoded): ask it again
                return through_httpx(auth)
            return response_of(answer)

        return ask

    def _ask(
        self,
        method: str,
        endpoint: str,
        *,
        params: dict[str, str] | None = None,
        body: MultipartBody | None = None,
        form: dict[str, str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> Ask:
        """Send through httpx: no redirects followed, the answer streamed."""
        if self._timeout is not None:
            timeout = self._timeout

        def build() -> httpx.Request:
            try:
                return make()
            except (httpx.InvalidURL, ValueError):
                # The text names the URL; check_url lets no such URL through, but be sure.
                raise PlanError("The CrowdSky server URL cannot be used.") from None

        def make() -> httpx.Request:
            headers = {"Accept": "application/json"}
            if body is not None:
                headers.update(body.headers)
                return self._client.build_request(
                    method,
                    self.url + endpoint,
                    params=params,
                    content=body,
                    headers=headers,
                    timeout=timeout,
                )
            return self._client.build_request(
                method,
                self.url + endpoint,
                params=params,
                data=form,
                headers=headers,
                timeout=timeout,
            )

        def ask(auth: httpx.BasicAuth) -> httpx.Response:
            return self._client.send(build(), auth=auth, stream=True, follow_redirects=False)

        return ask

    def _read_json(self, what: str) -> Callable[[httpx.Response], Any]:
        def handle(response: httpx.Response) -> Any:
            return json_answer(response, what, self._limits)

        return handle

    # --- stacks ----------------------------------------------------------------------------

    def list_stacks(self, object_name: str | None = None) -> list[StackRecord]:
        """The user's stacks (``GET /api/my_stacks.php``), optionally of one object only.

        Entries without a ``chunk_key`` are dropped; every other field may be ``None``.
        """
        params = {"object": object_name} if object_name else None
        data = self._send(
            self._ask("GET", "/api/my_stacks.php", params=params),
            self._what("GET", "/api/my_stacks.php"),
            self._read_json("the stack list"),
            idempotent=True,
        )
        if not isinstance(data, list):
            raise ServerProtocolError("The stack list from the server is not a JSON array.")
        records = [StackRecord.from_json(item) for item in data if isinstance(item, dict)]
        return [record for record in records if record is not None]

    def upload_stack(
        self,
        path: Path | str,
        *,
        thumbnail: Path | str | None = None,
        n_frames_input: int | None = None,
        n_frames_aligned: int | None = None,
        date_obs_start: str | None = None,
        date_obs_end: str | None = None,
        scrub_location: bool = False,
        on_bytes: ByteProgress | None = None,
    ) -> UploadReceipt:
        """Upload one stacked FITS file (``POST /api/upload_stack.php``), streamed from disk.

        Metadata not given is read from the file (see
        :func:`~crowdsky.adapters.collab.stack_meta.stack_meta`); the ``_thn.jpg`` (else ``.jpg``)
        beside the file goes as the thumbnail. ``on_bytes`` is told the request body's bytes
        handed to the connection so far and its whole length, once per piece (512 KiB); a
        retried attempt counts from 0 again.

        Returns
        -------
        UploadReceipt
            The server's receipt; ``status == "already-on-server"`` when an attempt failed in
            transit but the stack turned out to be on the server.
        """
        path = Path(path)
        if not path.is_file():
            raise ServerError(f"No such file to upload: {path}")
        meta = stack_meta(path)
        frames_in = n_frames_input if n_frames_input is not None else meta.n_frames_input
        frames_kept = n_frames_aligned if n_frames_aligned is not None else meta.n_frames_aligned
        fields = {
            "n_frames_input": frames_in,
            "n_frames_aligned": frames_kept,
            "date_obs_start": date_obs_start or meta.date_obs_start,
            "date_obs_end": date_obs_end or meta.date_obs_end,
            "scrub_location": "1" if scrub_location else None,
        }
        thumb = Path(thumbnail) if thumbnail is not None else companion_thumbnail(path)
        files = [FilePart("file", path, path.name, "application/fits")]
        if thumb is not None:
            files.append(FilePart("thumbnail", thumb, thumb.name, image_type(thumb)))
        body = MultipartBody(
            [(k, str(v)) for k, v in fields.items() if v is not None], files, on_bytes=on_bytes
        )
        found: list[UploadReceipt] = []
        # The stack as the server records it, with the values this upload sends.
        sent = (
            attrs.evolve(
                meta.facts,
                n_frames_input=frames_in,
                n_frames_aligned=frames_kept,
                date_obs=None if date_obs_start else meta.facts.date_obs,
            )
            if meta.facts is not None
            else None
        )

        def check_before_retry() -> None:
            if sent is None or sent.server_key is None:
                raise UploadUnconfirmed(
                    f"Uploading {path.name} failed in transit and the server's chunk key for it "
                    "is unknown, so it is not sent again blindly; check list_stacks() and retry."
                )
            try:
                records = self.list_stacks(sent.object_name)
            except ServerError as exc:
                raise UploadUnconfirmed(
                    f"Uploading {path.name} failed in transit and the server's list could not "
                    f"be read to check whether it arrived ({exc}); it was not sent again."
                ) from exc
            for record in records:
                if same_stack(sent, record.as_server_stack()):
                    log.info("%s is on the server already; not sending it again", path.name)
                    found.append(UploadReceipt(record.chunk_key, status="already-on-server"))
                    raise _Stop

        try:
            data = self._send(
                self._ask("POST", "/api/upload_stack.php", body=body, timeout=UPLOAD_TIMEOUT),
                self._what("POST", "/api/upload_stack.php"),
                self._read_json(f"the upload of {path.name}"),
                idempotent=False,
                before_retry=check_before_retry,
            )
        except _Stop:
            return found[0]
        receipt = UploadReceipt.from_json(data) if isinstance(data, dict) else None
        if receipt is None:
            raise ServerProtocolError(
                f"The server's answer to the upload of {path.name} lacks 'ok' and 'chunk_key'."
            )
        return receipt

    def download_stack(
        self, chunk_key: str, dest_dir: Path | str, *, on_bytes: ByteProgress | None = None
    ) -> Path:
        """Download one stack into ``dest_dir``; return the file's path.

        ``on_bytes`` is told the bytes written so far (and the ``Content-Length``, when sent),
        once per piece of the body.

        The request goes over this object's own kept-alive sockets when it built its httpx
        client itself and no proxy is set (see the class), else through httpx; either way with
        the same retries, limits and errors.

        The body is written to ``<name>.part`` and moved into place only when it is a whole FITS
        file; otherwise nothing is left behind and :class:`ServerProtocolError` is raised
        (:class:`ServerAuthError` for a login page, :class:`ServerUnavailable` when the transfer
        outlasts ``transfer_deadline``). ``.fit.part``/``.fits.part`` files in ``dest_dir`` that
        no transfer can still be writing (older than the deadline) are removed first, by the
        first download into ``dest_dir`` of this object's life: only a killed run leaves them,
        and a folder of thousands of stacks is not listed again on every download.
        """
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        if dest not in self._swept:
            self._sweep(dest)
            self._swept.add(dest)

        def handle(response: httpx.Response) -> Path:
            if response.status_code != 200:
                raise error_for(response, self._limits)
            name = safe_filename(response.headers.get("Content-Disposition"), chunk_key)
            return save_fits(response, dest / name, chunk_key, self._limits, on_bytes=on_bytes)

        return self._send(
            self._ask_download(chunk_key),
            self._what("GET", _DOWNLOAD),
            handle,
            idempotent=True,
        )

    def _sweep(self, dest: Path) -> None:
        # Another run with the default deadline may be downloading here: never sweep younger.
        age = max(self._limits.deadline, DEFAULT_TRANSFER_DEADLINE)
        for path in remove_stale_parts(dest, age):
            log.info("Removed %s, left by an interrupted download", path.name)

    # --- raw sessions ----------------------------------------------------------------------

    def start_raw_session(self) -> str:
        """Open a raw-upload session; return its token."""
        data = self._send(
            self._ask("POST", "/api/raw_upload.php", params={"action": "start"}),
            self._what("POST", "/api/raw_upload.php"),
            self._read_json("raw upload start"),
            idempotent=True,  # a repeated start leaves at most an unused session behind
        )
        token = data.get("session_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token.isalnum():
            raise ServerProtocolError("The server's answer to a raw upload start has no token.")
        return token

    def add_raw_file(self, token: str, path: Path | str) -> dict[str, Any]:
        """Send one raw sub-frame to the session ``token``; return the server's answer."""
        path = Path(path)
        if not path.is_file():
            raise ServerError(f"No such file to upload: {path}")
        body = MultipartBody(
            [("session_token", token)], [FilePart("file", path, path.name, "application/fits")]
        )
        data = self._send(
            self._ask(
                "POST",
                "/api/raw_upload.php",
                params={"action": "file"},
                body=body,
                timeout=RAW_FILE_TIMEOUT,
            ),
            self._what("POST", "/api/raw_upload.php"),
            self._read_json(f"the raw file {path.name}"),
            idempotent=False,
        )
        return _object(data, "raw file")

    def finalize_raw_session(
        self, token: str, *, overwrite: bool = False, scrub_location: bool = False
    ) -> dict[str, Any]:
        """Close the session: the server groups its files by chunk key and telescope into jobs.

        ``scrub_location`` is always sent (``"0"``/``"1"``); ``overwrite=1`` only when true.
        """
        form = {"session_token": token, "scrub_location": "1" if scrub_location else "0"}
        if overwrite:
            form["overwrite"] = "1"
        data = self._send(
            self._ask("POST", "/api/raw_upload.php", params={"action": "finalize"}, form=form),
            self._what("POST", "/api/raw_upload.php"),
            self._read_json("raw upload finalize"),
            idempotent=False,
        )
        return _object(data, "raw finalize")


def _direct_gets(url: str, timeout: httpx.Timeout, context: ssl.SSLContext) -> DirectGets | None:
    """Own sockets to the server at ``url``, unless httpx would not go there directly.

    Not with a proxy configured for the scheme (or for all), as httpx then goes through it,
    nor for a URL with a query or fragment, which httpx would send along.
    """
    parts = httpx.URL(url)
    proxies = getproxies()
    if proxies.get(parts.scheme) or proxies.get("all") or parts.query or parts.fragment:
        return None
    host = parts.raw_host.decode("ascii")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return DirectGets(host, port, timeout, ssl_context=context if parts.scheme == "https" else None)


def _basic(credentials: Credentials) -> str:
    """The ``Authorization`` value httpx sends for these credentials (UTF-8, base64)."""
    pair = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ServerProtocolError(f"The server's answer to {what} is not a JSON object.")
    return data
