"""One TCP socket to the Seestar and the thread that reads it (private to the connection).

A :class:`Link` lives exactly as long as one socket. It matches replies to the requests waiting
for them by id, hands events to a callback, and wakes every waiter when the socket dies. It never
reconnects: :class:`~crowdsky.adapters.jsonrpc.connection.JsonRpcConnection` replaces dead links.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from crowdsky.adapters.jsonrpc.codec import ABSENT, Decoder, Event, Problem, Reply, encode_call
from crowdsky.adapters.jsonrpc.marker import mark
from crowdsky.domain.firmware import Firmware
from crowdsky.errors import SeestarConnectionError

log = logging.getLogger("crowdsky.adapters.jsonrpc.connection")

_RECV_SIZE = 65536
#: Heartbeat ids remembered so their replies are not counted as late replies.
_HEARTBEATS_REMEMBERED = 64


def open_socket(host: str, port: int, connect_timeout: float) -> socket.socket:
    """Connect to ``host:port``, translating failures into :class:`SeestarConnectionError`."""
    where = f"the Seestar at {host}:{port}"
    check = (
        "Check that the Seestar is switched on and on the same network as this computer, "
        "and that the host name or address and the port (JSON-RPC uses TCP 4700) are right."
    )
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
    except socket.gaierror as exc:
        raise SeestarConnectionError(
            f"Cannot connect to {where}: the name {host!r} does not resolve. "
            "Try the IP address shown in the Seestar app."
        ) from exc
    except ConnectionRefusedError as exc:
        raise SeestarConnectionError(
            f"Cannot connect to {where}: connection refused. {check}"
        ) from exc
    except TimeoutError as exc:
        raise SeestarConnectionError(
            f"Cannot connect to {where}: no answer within {connect_timeout:g} s. {check}"
        ) from exc
    except OSError as exc:
        raise SeestarConnectionError(f"Cannot connect to {where}: {exc}. {check}") from exc
    # Blocking reads: the reader thread waits for data; close() wakes it with shutdown().
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


class LinkDropped(Exception):
    """Private control flow, never leaves the package.

    The socket closed, was reset, or failed while a request was in flight.
    """


class ReplyTimeout(Exception):
    """No reply in time; ``silent`` when not a single frame arrived meanwhile."""

    def __init__(self, silent: bool) -> None:
        super().__init__("no reply in time")
        self.silent = silent


class _Slot:
    """Where the reader thread leaves the reply for one waiting request."""

    __slots__ = ("done", "id", "reply")

    def __init__(self, request_id: int = 0) -> None:
        self.done = threading.Event()
        self.reply: Reply | None = None
        self.id = request_id


#: A request sent with :meth:`Link.request`, whose reply :meth:`Link.wait_any` waits for.
Pending = _Slot


class Link:
    """One connected socket, its reader thread and its in-flight requests.

    Parameters
    ----------
    sock : socket.socket
        A connected, blocking socket; the link owns and closes it.
    label : str
        ``host:port``, for thread names and logs.
    next_id : callable
        Returns a fresh request id on each call (shared across links, so ids never repeat).
    on_event : callable
        Called on the reader thread with each event.
    max_frame : int
        Frame size limit for the decoder.
    """

    def __init__(
        self,
        sock: socket.socket,
        label: str,
        *,
        next_id: Callable[[], int],
        on_event: Callable[[Event], None],
        max_frame: int,
    ) -> None:
        self.label = label
        self.verified = False
        #: The device's firmware once known; requests then carry the marker it needs.
        self.firmware: Firmware | None = None
        #: The last ``Version`` event (it carries ``firmware_ver_int`` on some firmware).
        self.version_event: Event | None = None
        self.events_received = 0
        self.replies_received = 0
        self.late_replies = 0
        self.problems = 0
        self.last_send = time.monotonic()
        self._sock = sock
        self._next_id = next_id
        self._on_event = on_event
        self._decoder = Decoder(max_frame)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Slot] = {}
        self._heartbeat_ids: deque[int] = deque(maxlen=_HEARTBEATS_REMEMBERED)
        self._frames = 0
        self._dropped = False
        self._reader = threading.Thread(
            target=self._read_loop, name=f"crowdsky-jsonrpc-reader {label}", daemon=True
        )
        self._reader.start()

    @property
    def alive(self) -> bool:
        """False once the socket has closed, failed or been closed by us."""
        return not self._dropped

    # -- reader thread -------------------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            while data := self._sock.recv(_RECV_SIZE):
                self._decoder.receive_data(data)
                for message in self._decoder:
                    self._dispatch(message)
        except OSError as exc:
            log.debug("link %s: read failed: %s", self.label, exc)
        finally:
            self._mark_dropped()

    def _dispatch(self, message: Reply | Event | Problem) -> None:
        with self._lock:
            self._frames += 1
        if isinstance(message, Event):
            with self._lock:
                self.events_received += 1
                if message.name == "Version":
                    self.version_event = message
            self._on_event(message)
        elif isinstance(message, Problem):
            with self._lock:
                self.problems += 1
            log.warning(
                "link %s: skipped a frame: %s: %r", self.label, message.reason, message.line_excerpt
            )
        else:
            self._deliver(message)

    def _deliver(self, reply: Reply) -> None:
        with self._lock:
            self.replies_received += 1
            key = reply.id if type(reply.id) is int else None
            slot = self._pending.pop(key, None) if key is not None else None
            if slot is not None:
                # Set under the lock so a waiter that just timed out sees it consistently.
                slot.reply = reply
                slot.done.set()
                self._arrived.notify_all()
                return
            if key is not None and key in self._heartbeat_ids:
                self._heartbeat_ids.remove(key)
                return
            self.late_replies += 1
        log.debug("link %s: discarded a reply nobody waits for (id %r)", self.label, reply.id)

    def _mark_dropped(self) -> None:
        with self._lock:
            self._dropped = True
            slots = list(self._pending.values())
            self._pending.clear()
            self._arrived.notify_all()
        for slot in slots:
            slot.done.set()  # no reply: the waiter sees a dropped link

    # -- caller side ---------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        """Write one frame; :class:`LinkDropped` when the socket fails."""
        if self._dropped:
            raise LinkDropped("the link is closed")
        try:
            with self._send_lock:
                self._sock.sendall(frame)
                self.last_send = time.monotonic()
        except OSError as exc:
            self._mark_dropped()
            raise LinkDropped(str(exc)) from exc

    def roundtrip(self, method: str, params: object, timeout: float) -> Reply:
        """Send a request with a fresh id and wait for its reply.

        Raises
        ------
        LinkDropped
            The socket died before the reply came.
        ReplyTimeout
            No reply within ``timeout`` seconds; the request is forgotten, so a reply arriving
            later is discarded and counted in ``late_replies``.
        """
        request_id = self._next_id()
        slot = _Slot()
        with self._lock:
            if self._dropped:
                raise LinkDropped("the link is closed")
            self._pending[request_id] = slot
            frames_before = self._frames
        try:
            self.send(encode_call(request_id, method, mark(method, params, self.firmware)))
        except LinkDropped:
            with self._lock:
                self._pending.pop(request_id, None)
            raise
        slot.done.wait(timeout)
        with self._lock:
            self._pending.pop(request_id, None)
            silent = self._frames == frames_before
            reply = slot.reply
        if reply is not None:
            return reply
        if slot.done.is_set():
            raise LinkDropped("the link closed while waiting for the reply")
        raise ReplyTimeout(silent)

    def send_heartbeat(self) -> None:
        """Send ``test_connection`` without waiting; its reply is dropped quietly."""
        request_id = self._next_id()
        with self._lock:
            self._heartbeat_ids.append(request_id)
        try:
            self.send(
                encode_call(
                    request_id, "test_connection", mark("test_connection", ABSENT, self.firmware)
                )
            )
        except LinkDropped:
            log.debug("link %s: heartbeat found the link closed", self.label)

    def request(self, method: str, params: object = ABSENT) -> Pending:
        """Send a request exactly as given (no marker added) without waiting for its reply.

        Wait with :meth:`wait_any`; :meth:`forget` it when no longer wanted.

        Raises
        ------
        LinkDropped
            The socket is closed or failed.
        """
        slot = _Slot(self._next_id())
        with self._lock:
            if self._dropped:
                raise LinkDropped("the link is closed")
            self._pending[slot.id] = slot
        try:
            self.send(encode_call(slot.id, method, params))
        except LinkDropped:
            self.forget(slot)
            raise
        return slot

    def wait_any(self, pending: list[Pending], timeout: float) -> Pending | None:
        """The first of ``pending`` that has a reply, waiting up to ``timeout`` seconds.

        ``None`` when none was answered in time. Raises :class:`LinkDropped` when the socket
        died before any reply came.
        """

        def answered() -> Pending | None:
            return next((p for p in pending if p.reply is not None), None)

        with self._arrived:
            self._arrived.wait_for(lambda: answered() is not None or self._dropped, timeout)
            first = answered()
            if first is None and self._dropped:
                raise LinkDropped("the link closed while waiting for the reply")
            return first

    def forget(self, pending: Pending) -> None:
        """Stop waiting for ``pending``: a reply arriving later counts as a late reply."""
        with self._lock:
            self._pending.pop(pending.id, None)

    def close(self) -> None:
        """Close the socket and wait for the reader thread (idempotent)."""
        self._mark_dropped()
        # shutdown wakes a recv() blocked in the reader thread; close() alone may not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self._reader:
            self._reader.join()
        self._sock.close()


def not_json_rpc_error(link: Link, address: str, what: str) -> SeestarConnectionError | None:
    """The error for a port that answered only with frames that are not JSON-RPC, if it did.

    An HTTP server on the port, say: every frame it sent was a problem, none a reply.
    """
    if link.problems and not link.replies_received:
        return SeestarConnectionError(
            f"{address} is not a Seestar's control port: it answered {what} with something "
            "that is not JSON-RPC (the Seestar's control port is 4700)."
        )
    return None


class HandshakeCaller:
    """The :class:`RpcCaller` an authenticator gets: one socket, no reconnects, no retries."""

    def __init__(self, link: Link, address: str, default_timeout: float) -> None:
        self._link = link
        self._address = address
        self._timeout = default_timeout

    def call_reply(
        self, method: str, params: object = ABSENT, *, timeout: float | None = None
    ) -> Reply:
        wait = self._timeout if timeout is None else timeout
        try:
            return self._link.roundtrip(method, params, wait)
        except (LinkDropped, ReplyTimeout) as exc:
            raise self._error(exc, method, wait) from exc

    def _error(self, exc: Exception, method: str, wait: float) -> SeestarConnectionError:
        wrong_port = not_json_rpc_error(self._link, self._address, repr(method))
        if wrong_port is not None:
            return wrong_port
        if isinstance(exc, LinkDropped):
            return SeestarConnectionError(
                f"The Seestar at {self._address} closed the connection during authentication "
                f"({method!r}). Check that no other program holds the Seestar and try again."
            )
        return SeestarConnectionError(
            f"The Seestar at {self._address} did not answer {method!r} within {wait:g} s "
            "during authentication. It may be busy (imaging); try again in a minute."
        )
