"""A tiny scripted Seestar on loopback, for the connection tests.

It speaks the device's framing (via the codec's device side), runs the firmware 7.18+ handshake
against a test public key, can ignore unauthenticated commands (firmware 7.32), drop idle
connections, and hands every other request to a per-test handler that decides what to send:
events before the reply, no reply, a late reply, a dropped socket.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from crowdsky.adapters.jsonrpc import (
    Request,
    RequestDecoder,
    encode_error,
    encode_event,
    encode_reply,
)
from crowdsky.adapters.simulator.auth import verify_signature

AUTH_METHODS = frozenset({"get_verify_str", "verify_client", "pi_is_verified"})
_POLL = 0.02


class ServerConn:
    """One accepted client socket, as the handler sees it."""

    def __init__(self, server: ScriptedServer, sock: socket.socket, index: int) -> None:
        self.server = server
        self.sock = sock
        self.index = index  # 1 for the first connection, 2 for the next, ...
        self.authenticated = False
        self.challenge: str | None = None
        self.closed = False
        self._send_lock = threading.Lock()

    def _ts(self) -> float:
        return time.monotonic() - self.server.boot

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            if not self.closed:
                try:
                    self.sock.sendall(data)
                except OSError:
                    self.closed = True

    def reply(self, request: Request, result: object) -> None:
        self.send_raw(encode_reply(request.id, request.method, result, timestamp=self._ts()))

    def error(self, request: Request, code: int, text: str) -> None:
        self.send_raw(encode_error(request.id, request.method, code, text, timestamp=self._ts()))

    def event_bytes(self, name: str, **fields: Any) -> bytes:
        return encode_event(name, fields, timestamp=self._ts())

    def event(self, name: str, **fields: Any) -> None:
        self.send_raw(self.event_bytes(name, **fields))

    def drop(self) -> None:
        """Close the connection from the device side (the client reads EOF)."""
        with self._send_lock:
            if not self.closed:
                self.closed = True
                self.sock.shutdown(socket.SHUT_RDWR)


Handler = Callable[[ServerConn, Request], None]


def echo(conn: ServerConn, request: Request) -> None:
    conn.reply(request, {"method": request.method, "params": request.params})


class ScriptedServer:
    """A loopback TCP server on an ephemeral port; close() stops every thread it started."""

    def __init__(
        self,
        handler: Handler = echo,
        *,
        public_pem: bytes | None = None,
        require_auth: bool = False,
        old_firmware: bool = False,
        idle_timeout: float | None = None,
        greeting: tuple[tuple[str, dict[str, Any]], ...] = (),
        challenge_shape: str = "object",
        verified_shape: str = "bool",
    ) -> None:
        self.handler = handler
        self.public_pem = public_pem
        self.require_auth = require_auth
        self.old_firmware = old_firmware
        self.idle_timeout = idle_timeout
        self.greeting = greeting
        self.challenge_shape = challenge_shape
        self.verified_shape = verified_shape
        self.boot = time.monotonic() - 4000.0
        self.requests: list[tuple[int, Request]] = []
        self.connections = 0
        self.verified = 0
        self.idle_drops = 0
        self.ignored = 0
        self.state: dict[str, Any] = {}
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(_POLL)
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept_loop)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def count(self, method: str) -> int:
        with self.changed:
            return sum(1 for _, r in self.requests if r.method == method)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(_POLL)
            with self.changed:
                self.connections += 1
                conn = ServerConn(self, sock, self.connections)
                self._socks.append(sock)
                self.changed.notify_all()
            self._spawn(self._serve, conn)

    def _serve(self, conn: ServerConn) -> None:
        for name, fields in self.greeting:
            conn.event(name, **fields)
        decoder = RequestDecoder()
        last_heard = time.monotonic()
        while not self._stop.is_set() and not conn.closed:
            try:
                data = conn.sock.recv(65536)
            except TimeoutError:
                if self.idle_timeout and time.monotonic() - last_heard > self.idle_timeout:
                    with self.changed:
                        self.idle_drops += 1
                        self.changed.notify_all()
                    conn.drop()
                continue
            except OSError:
                break
            if not data:
                break
            last_heard = time.monotonic()
            decoder.receive_data(data)
            for request in decoder:
                if isinstance(request, Request):
                    self._handle(conn, request)
        conn.closed = True

    def _handle(self, conn: ServerConn, request: Request) -> None:
        with self.changed:
            self.requests.append((conn.index, request))
            self.changed.notify_all()
        if request.method in AUTH_METHODS:
            self._auth(conn, request)
        elif self.require_auth and not conn.authenticated:
            with self.changed:
                self.ignored += 1  # firmware 7.32: silence, while events keep flowing
                self.changed.notify_all()
        elif request.method == "test_connection":
            conn.reply(request, "server connected!")
        else:
            self.handler(conn, request)

    def _auth(self, conn: ServerConn, request: Request) -> None:
        if self.old_firmware:
            conn.error(request, 103, "method not found")
        elif request.method == "get_verify_str":
            conn.challenge = secrets.token_urlsafe(24)
            bare = self.challenge_shape == "bare"
            conn.reply(request, conn.challenge if bare else {"str": conn.challenge})
        elif request.method == "verify_client":
            params = request.params if isinstance(request.params, dict) else {}
            ok = (
                self.public_pem is not None
                and conn.challenge is not None
                and params.get("data") == conn.challenge
                and verify_signature(self.public_pem, conn.challenge, str(params.get("sign")))
            )
            if ok:
                conn.authenticated = True
                with self.changed:
                    self.verified += 1
                    self.changed.notify_all()
                conn.reply(request, 0)
            else:
                conn.error(request, 207, "fail to operate")
        else:
            answer = conn.authenticated
            conn.reply(request, {"is_verified": answer} if self.verified_shape == "obj" else answer)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._listener.close()
        for sock in self._socks:
            sock.close()
