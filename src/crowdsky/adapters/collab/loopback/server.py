"""A CrowdSky server on 127.0.0.1 to test against: real HTTP, real files, injectable faults.

It answers the six requests of ``reference/crowdsky-server-api.md`` with the documented shapes:
Basic auth, stacks stored on disk, chunk keys derived from each upload's own FITS header
(``DATE-OBS`` -> UTC 15-minute chunk, ``RA``/``DEC`` -> HEALPix RING/128), the 50 MB limit,
FITS-only uploads, raw sessions whose finalize de-duplicates by chunk key + telescope, and
``{"error": ...}`` with a 4xx where the API says so. ``server.faults`` injects failures.

Examples
--------
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp, LoopbackCrowdskyServer(tmp) as server:
...     server.url.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import mmap
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from crowdsky.adapters.collab.loopback.store import (
    LoopbackFaults,
    LoopbackStore,
    Refusal,
    file_chunks,
    parse_multipart,
    spool,
)

__all__ = ["LoopbackCrowdskyServer", "download_name", "serve_forever"]

_ENDPOINTS = {
    "/api/my_stacks.php": "my_stacks",
    "/api/upload_stack.php": "upload_stack",
    "/api/download_stack.php": "download_stack",
    "/api/raw_upload.php": "raw_upload",
}
_MAX_FORM = 64 * 1024
_LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>CrowdSky - Login</title></head><body>"
    b'<form action="login.php" method="post"><input name="username">'
    b'<input type="password" name="password"></form></body></html>'
)
#: Characters the real server keeps in a download's file name; every other one becomes ``_``.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def download_name(record: Mapping[str, Any]) -> str:
    """The file name the real server gives a download: ``<object>_<chunk_key>.fits``, made safe.

    Characters other than ASCII letters, digits, ``.``, ``_`` and ``-`` become ``_`` (which ones
    the real server replaces is not published; these are the ones seen kept). A stack without an
    object name is called ``stack``.

    Examples
    --------
    >>> download_name({"object_name": "IC 434", "chunk_key": "20260227.81_HP102265"})
    'IC_434_20260227.81_HP102265.fits'
    >>> download_name({"object_name": "\u03b5 Cnc/x", "chunk_key": "20260227.81_HP071234"})
    '__Cnc_x_20260227.81_HP071234.fits'
    """
    name = f"{record.get('object_name') or 'stack'}_{record['chunk_key']}.fits"
    return _UNSAFE.sub("_", name)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "CrowdskyLoopback/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the test output is the place for test results."""

    # --- answers ---------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        if self.server.faults.bare_text_errors:
            self._send(status, message.encode(), "text/plain; charset=utf-8")
        else:
            self._json(status, {"error": message})

    # --- dispatch --------------------------------------------------------------------------

    def do_GET(self) -> None:
        """Answer a GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Answer a POST."""
        self._dispatch("POST")

    def _user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.server.users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return None
        return user

    def _dispatch(self, method: str) -> None:
        server = self.server
        server.requests.append((method, self.path))
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        endpoint = _ENDPOINTS.get(url.path)
        if server.faults.delay:
            time.sleep(server.faults.delay)
        with tempfile.TemporaryFile(dir=server.store.root) as spooled:
            try:
                self._read_body(spooled)
                if endpoint is None:
                    raise Refusal(404, "No such endpoint.")
                if server.faults.login_redirect:
                    self._send(302, b"", "text/html", Location="/login.php")
                    return
                user = self._user()
                if user is None:
                    body = json.dumps({"error": "Unauthorized"}).encode()
                    realm = 'Basic realm="CrowdSky"'
                    self._send(401, body, "application/json", WWW_Authenticate=realm)
                    return
                with server.lock:
                    failing = server.faults.take_failure(endpoint)
                if failing:
                    raise Refusal(500, "Injected server failure.")
                self._route(method, endpoint, query, user, spooled)
            except Refusal as refusal:
                self._error(refusal.status, refusal.message)

    def _read_body(self, spooled: Any) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise Refusal(411, "Send a Content-Length; chunked uploads are not accepted.")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise Refusal(400, "Bad Content-Length.") from None
        if length < 0:
            raise Refusal(400, "Bad Content-Length.")
        if length > self.server.store.max_file_bytes * 2 + _MAX_FORM:
            raise Refusal(413, "Request body too large.")
        spool(self.rfile, length, spooled)
        spooled.flush()
        self._length = length

    def _route(
        self, method: str, endpoint: str, query: dict[str, str], user: str, spooled: Any
    ) -> None:
        if endpoint == "my_stacks" and method == "GET":
            self._json(200, self.server.store.stacks_of(user, query.get("object")))
        elif endpoint == "download_stack" and method == "GET":
            self._download(user, query.get("chunk_key"))
        elif endpoint == "upload_stack" and method == "POST":
            self._upload(user, spooled)
        elif endpoint == "raw_upload" and method == "POST":
            self._raw(user, query.get("action"), spooled)
        else:
            raise Refusal(405, f"{method} is not allowed here.")

    def _multipart(self, spooled: Any) -> tuple[mmap.mmap | None, dict[str, Any]]:
        if self._length == 0:
            return None, {}
        body = mmap.mmap(spooled.fileno(), 0, access=mmap.ACCESS_READ)
        parts = parse_multipart(body, self.headers.get("Content-Type", ""))
        return body, {part.name: part for part in parts}

    def _form_fields(self, body: mmap.mmap | None, parts: Mapping[str, Any]) -> dict[str, str]:
        if body is None:
            return {}
        return {
            name: body[p.start : p.end].decode("utf-8", "replace")
            for name, p in parts.items()
            if p.filename is None and p.end - p.start <= _MAX_FORM
        }

    # --- endpoints -------------------------------------------------------------------------

    def _upload(self, user: str, spooled: Any) -> None:
        store, faults = self.server.store, self.server.faults
        body, parts = self._multipart(spooled)
        try:
            if body is None or "file" not in parts or parts["file"].filename is None:
                raise Refusal(400, "No file uploaded (expected a file part named 'file').")
            path = store.save_part(body, parts["file"], user, "stacks")
            if "thumbnail" in parts and parts["thumbnail"].filename is not None:
                store.save_part(body, parts["thumbnail"], user, "thumbnail")
            record = store.add_stack(
                user, path, self._form_fields(body, parts), parts["file"].filename
            )
        finally:
            if body is not None:
                body.close()
        if faults.on_upload is not None:
            faults.on_upload(str(parts["file"].filename))
        with self.server.lock:
            lost = faults.fail_after_upload > 0
            faults.fail_after_upload -= 1 if lost else 0
        if lost:
            raise Refusal(500, "Injected failure after the upload was stored.")
        if faults.legacy_upload_answer:
            answer = {"ok": True, "stack_id": record["id"], "chunk_key": record["chunk_key"],
                      "telescope_id": record["telescope_id"]}  # fmt: skip
        else:
            answer = {"ok": True, "job_id": record["id"], "chunk_key": record["chunk_key"],
                      "status": "queued"}  # fmt: skip
        self._json(200, answer)

    def _download(self, user: str, key: str | None) -> None:
        faults = self.server.faults
        if faults.login_page_downloads:
            self._send(200, _LOGIN_PAGE, "text/html; charset=utf-8")
            return
        if not key:
            raise Refusal(400, "Missing stack ID.")
        record = self.server.store.find_stack(user, key)
        if record is None:
            raise Refusal(404, "Stack not found.")
        path = Path(record["path"])
        if faults.endless_downloads:
            self._endless(path)
            return
        size = path.stat().st_size
        length = size // 2 + 7 if faults.truncate_downloads else size
        name = faults.disposition_name or download_name(record)
        disposition = f'attachment; filename="{name}"'
        if faults.rfc6266_disposition:
            disposition += f"; filename*=UTF-8''{quote(name)}"
        self.send_response(200)
        self.send_header("Content-Type", "application/fits")
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Disposition", disposition)
        self.end_headers()
        try:
            for chunk in file_chunks(path, length):
                self._write(chunk, faults.trickle_downloads)
        except OSError:  # the client hung up: that is what a client with a deadline does
            self.close_connection = True

    def _write(self, chunk: bytes, trickle: float) -> None:
        if trickle <= 0:
            self.wfile.write(chunk)
            return
        for i in range(len(chunk)):
            self.wfile.write(chunk[i : i + 1])
            self.wfile.flush()
            time.sleep(trickle)

    def _endless(self, path: Path) -> None:
        """A FITS header, then zeros until the client hangs up (no ``Content-Length``)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/fits")
        self.end_headers()
        self.close_connection = True
        zeros = bytes(256 * 1024)
        try:
            self.wfile.write(next(file_chunks(path, 2880)))
            while True:
                self.wfile.write(zeros)
        except OSError:
            return

    def _raw(self, user: str, action: str | None, spooled: Any) -> None:
        store = self.server.store
        if action == "start":
            self._json(200, {"session_token": store.start_session(user)})
        elif action == "file":
            body, parts = self._multipart(spooled)
            try:
                form = self._form_fields(body, parts)
                session = store.session(user, form.get("session_token"))
                if body is None or "file" not in parts or parts["file"].filename is None:
                    raise Refusal(400, "No file uploaded (expected a file part named 'file').")
                path = store.save_part(body, parts["file"], user, "raw")
                answer = store.add_raw(session, path, parts["file"].filename)
            finally:
                if body is not None:
                    body.close()
            self._json(200, answer)
        elif action == "finalize":
            spooled.seek(0)
            form = {k: v[0] for k, v in parse_qs(spooled.read(_MAX_FORM).decode()).items()}
            token = form.get("session_token")
            store.session(user, token)
            overwrite = form.get("overwrite") == "1"
            self._json(200, store.finalize(user, str(token), overwrite=overwrite))
        else:
            # The real endpoint answers bad actions with 200 + error (API doc: raw endpoints).
            self._json(200, {"error": f"Unknown action {action!r}."})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], store: LoopbackStore, users: Mapping[str, str]
    ) -> None:
        super().__init__(address, _Handler)
        self.store = store
        self.users = dict(users)
        self.faults = LoopbackFaults()
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []


class LoopbackCrowdskyServer:
    """A CrowdSky server on the loopback interface, in a background thread.

    Parameters
    ----------
    storage_dir : str or Path
        Where uploaded files are kept.
    users : Mapping[str, str]
        Accounts, name -> password; ``{"username": "password"}`` by default.
    host : str
        Address to bind; loopback by default.
    port : int
        0 picks a free port; see :attr:`url`.
    max_file_bytes : int
        Largest file accepted (50 MB like the real server).
    """

    def __init__(
        self,
        storage_dir: str | Path,
        users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_file_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.store = LoopbackStore(Path(storage_dir), max_file_bytes=max_file_bytes)
        self._users = dict(users) if users is not None else {"username": "password"}
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"LoopbackCrowdskyServer({where}, users={sorted(self._users)})"

    @property
    def _running(self) -> _Server:
        if self._server is None:
            raise RuntimeError("The loopback server is not running; call start() first.")
        return self._server

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        host, port = self._running.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{text}:{port}" if ":" not in text else f"http://[{text}]:{port}"

    @property
    def faults(self) -> LoopbackFaults:
        """The faults to inject (change its fields at any time)."""
        return self._running.faults

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request received, in order."""
        return self._running.requests

    @property
    def stacks(self) -> list[dict[str, Any]]:
        """Every stored stack record (all users)."""
        with self.store.lock:
            return list(self.store.stacks)

    def start(self) -> LoopbackCrowdskyServer:
        """Bind and serve in a daemon thread; return ``self``."""
        if self._server is None:
            self._server = _Server(self._address, self.store, self._users)
            # A short poll interval keeps stop() quick (it waits for the loop to notice).
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="crowdsky-loopback",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> LoopbackCrowdskyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8080,
    storage_dir: str | Path = "crowdsky-server-data",
    users: Mapping[str, str] | Iterable[tuple[str, str]] = (("username", "password"),),
) -> None:
    """Run the loopback server in the foreground until interrupted (``crowdsky serve``).

    Parameters
    ----------
    host, port : str, int
        Where to listen; keep the loopback address unless you know why not (Basic auth over
        plain HTTP).
    storage_dir : str or Path
        Where uploads are stored.
    users : Mapping or iterable of (name, password)
        Accounts.
    """
    server = _Server((host, port), LoopbackStore(Path(storage_dir)), dict(users))
    bound_host, bound_port = server.server_address[:2]
    shown = bound_host.decode() if isinstance(bound_host, bytes) else str(bound_host)
    print(f"CrowdSky test server on http://{shown}:{bound_port} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
