"""A persistent JSON-RPC connection to a Seestar on TCP port 4700.

Theory of operation
-------------------
* One socket at a time, read by a background thread that feeds the sans-I/O
  :class:`~crowdsky.adapters.jsonrpc.codec.Decoder`.
* Every request gets a **fresh** id from a counter that never repeats, even across reconnects.
  A reply is handed only to the request with its id; a reply that arrives after its request gave
  up is discarded and counted (``late_replies``). Clients that reuse one id (seestarpy: always 1)
  take a late reply for the next request; this cannot happen here (reference §7 item 4).
* Events (no ``id``) go to the ``on_event`` callbacks, on the reader thread, and to a bounded
  queue that :meth:`JsonRpcConnection.wait_event` searches. Events may arrive before the reply of
  the command that caused them (§1.6), which is why waiting also looks at queued events.
* Authentication is per socket (§1.8): every new socket runs the authenticator first.
* When the socket drops during a call (EOF, reset, any ``OSError``) the connection reconnects
  and re-authenticates **once** and repeats the call once, unless ``retry=False``. A call that
  merely times out is not repeated (the device may have acted on it); if not a single frame
  arrived while waiting, the socket is taken for half-open (Wi-Fi dropouts give no FIN) and the
  next call opens a new one.
* Every new socket bumps :attr:`JsonRpcConnection.generation`. State the device keeps per
  connection (the folder being paged, §3.3) is gone when it changes; callers that rely on such
  state compare it before and after their calls.
* The firmware drops a control connection after ~16 s without client traffic (§1.8). A
  heartbeat thread sends ``test_connection`` after ``heartbeat_interval`` seconds without any
  request, without waiting for the answer.
* With ``probe_firmware`` on, each new socket first learns the firmware
  (:func:`~crowdsky.adapters.jsonrpc.firmware.probe`), unless an earlier socket of this
  connection already did: it is cached for the connection's lifetime (:attr:`firmware`). On
  firmware 5.82-7.17 every request then carries the verify marker in the form its method
  accepts (:mod:`~crowdsky.adapters.jsonrpc.marker`) and no handshake is attempted (that
  firmware has none, and ignores the unmarked ``get_verify_str``).
* Firmware 7.32+ silently ignores every command from an unauthenticated socket while events keep
  flowing (§2.2). A timeout on a socket that never verified, never got any reply, but did get
  events, is therefore reported as :class:`~crowdsky.errors.SeestarAuthError` with the way to
  supply the key.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol

from crowdsky.adapters.jsonrpc._events import EventCallback, EventHub
from crowdsky.adapters.jsonrpc._link import (
    HandshakeCaller,
    Link,
    LinkDropped,
    ReplyTimeout,
    not_json_rpc_error,
    open_socket,
)
from crowdsky.adapters.jsonrpc.auth import KEY_ENV_VAR, RpcCaller, default_key_path
from crowdsky.adapters.jsonrpc.codec import ABSENT, DEFAULT_MAX_FRAME, Event, Reply
from crowdsky.adapters.jsonrpc.firmware import probe, reprobe
from crowdsky.domain.firmware import Firmware
from crowdsky.errors import SeestarAuthError, SeestarConnectionError, SeestarRpcError

__all__ = ["DEFAULT_PORT", "Authenticator", "EventCallback", "JsonRpcConnection"]

log = logging.getLogger(__name__)

#: The Seestar's JSON-RPC control port.
DEFAULT_PORT = 4700


class Authenticator(Protocol):
    """Runs a handshake on each new socket, before any other command."""

    def authenticate(self, rpc: RpcCaller) -> bool:
        """Authenticate; True when the device verified us, False when it needs nothing.

        Raises :class:`~crowdsky.errors.SeestarAuthError` when authentication fails.
        """
        ...


class JsonRpcConnection:
    """A persistent, authenticated JSON-RPC connection to a Seestar.

    Nothing happens on construction; the socket opens on :meth:`connect` or the first call.

    Parameters
    ----------
    host : str
        Name or address (``seestar.local``, ``10.0.0.1``).
    port : int, optional
        TCP port (4700).
    timeout : float, optional
        Default seconds to wait for a reply.
    connect_timeout : float, optional
        Seconds to wait for the TCP connection.
    authenticator : Authenticator, optional
        Runs on every new socket, e.g. :class:`~crowdsky.adapters.jsonrpc.auth.RsaAuthenticator`.
    heartbeat_interval : float, optional
        Seconds without any request after which ``test_connection`` is sent; 0 disables.
    on_event : callable, optional
        Called with every event, on the reader thread.
    max_frame : int, optional
        Largest frame accepted, in bytes.
    event_buffer : int, optional
        How many unclaimed events :meth:`wait_event` keeps (oldest dropped first).
    probe_firmware : bool, optional
        Learn the firmware on the first socket before anything else, and send the verify
        marker when it needs one (off by default: then requests go out exactly as given).
    probe_timeout : float, optional
        Seconds each probing step waits (``get_device_state`` takes up to ~1.3 s).

    Examples
    --------
    ::

        with JsonRpcConnection("seestar.local", authenticator=RsaAuthenticator()) as rpc:
            rpc.call("test_connection")            # 'server connected!'
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_PORT,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        authenticator: Authenticator | None = None,
        heartbeat_interval: float = 5.0,
        on_event: EventCallback | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        event_buffer: int = 1000,
        probe_firmware: bool = False,
        probe_timeout: float = 2.5,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._authenticator = authenticator
        self._heartbeat_interval = heartbeat_interval
        self._max_frame = max_frame
        self._events = EventHub(event_buffer)
        if on_event is not None:
            self._events.add_listener(on_event)
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()
        self._connect_lock = threading.Lock()
        self._closed = threading.Event()
        self._link: Link | None = None
        self._heartbeat: threading.Thread | None = None
        self._retired = {"late_replies": 0, "events": 0, "problems": 0}
        self._generation = 0
        self._probe = probe_firmware
        self._probe_timeout = probe_timeout
        self._firmware: Firmware | None = None
        self.reconnects = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else "open" if self.connected else "idle"
        return f"JsonRpcConnection({self.host!r}, {self.port}, {state})"

    @property
    def address(self) -> str:
        """``host:port``, as used in messages."""
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        """True while a socket is open and alive."""
        link = self._link
        return link is not None and link.alive

    @property
    def generation(self) -> int:
        """How many sockets have been opened: 0 before the first, +1 on every reconnect.

        The device keeps some state per connection (the folder being paged, §3.3). Read this
        after a call that sets such state, and again after each call that relies on it: a
        different number means the call went out on a new socket that knows nothing of it.
        """
        return self._generation

    @property
    def verified(self) -> bool:
        """True when the current socket passed the authentication handshake."""
        link = self._link
        return link is not None and link.verified

    @property
    def firmware(self) -> Firmware | None:
        """The firmware learnt by probing (cached for the connection); ``None`` until known.

        Probing happens on the first socket (:meth:`connect` or the first call) when the
        connection was made with ``probe_firmware=True``.
        """
        return self._firmware

    @property
    def late_replies(self) -> int:
        """Replies discarded because no request was waiting for their id (all sockets)."""
        return self._stat("late_replies", "late_replies")

    @property
    def events_received(self) -> int:
        """Events received on all sockets so far."""
        return self._stat("events", "events_received")

    @property
    def problems(self) -> int:
        """Malformed or oversized frames skipped on all sockets so far."""
        return self._stat("problems", "problems")

    def _stat(self, retired_key: str, attribute: str) -> int:
        link = self._link  # read once: another thread may replace it
        current: int = getattr(link, attribute) if link is not None else 0
        return self._retired[retired_key] + current

    # -- lifecycle -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the socket and authenticate now, instead of on the first call.

        Raises
        ------
        SeestarConnectionError
            When the Seestar cannot be reached.
        SeestarAuthError
            When authentication fails.
        """
        self._ensure_link()

    def close(self) -> None:
        """Close the socket and stop the background threads (idempotent)."""
        self._closed.set()
        with self._connect_lock:
            link, self._link = self._link, None
        if link is not None:
            self._retire(link)
        self._events.close()
        heartbeat = self._heartbeat
        if heartbeat is not None and heartbeat is not threading.current_thread():
            heartbeat.join()

    def __enter__(self) -> JsonRpcConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _next_id(self) -> int:
        with self._ids_lock:
            return next(self._ids)

    def _retire(self, link: Link) -> None:
        link.close()
        self._retired["late_replies"] += link.late_replies
        self._retired["events"] += link.events_received
        self._retired["problems"] += link.problems

    def _ensure_link(self, replacing: Link | None = None) -> Link:
        with self._connect_lock:
            if self._closed.is_set():
                raise SeestarConnectionError(f"The connection to {self.address} is closed.")
            link = self._link
            if link is not None and link.alive and link is not replacing:
                return link
            if link is not None:
                self._link = None
                self._retire(link)
                self.reconnects += 1
                log.info("reconnecting to the Seestar at %s", self.address)
            self._link = self._open_link()
            self._generation += 1
            self._start_heartbeat()
            return self._link

    def _open_link(self) -> Link:
        sock = open_socket(self.host, self.port, self.connect_timeout)
        link = Link(
            sock,
            self.address,
            next_id=self._next_id,
            on_event=self._events.dispatch,
            max_frame=self._max_frame,
        )
        try:
            self._prepare(link)
        except LinkDropped as exc:
            self._retire(link)
            wrong_port = not_json_rpc_error(link, self.address, "the firmware probe")
            if wrong_port is not None:
                raise wrong_port from exc
            raise SeestarConnectionError(
                f"The Seestar at {self.address} closed the connection while crowdsky was "
                "asking for its firmware. Check that no other program holds it and try again."
            ) from exc
        except BaseException:
            self._retire(link)
            raise
        return link

    def _prepare(self, link: Link) -> None:
        """Learn the firmware (once per connection) and authenticate where the firmware can."""
        firmware = self._firmware
        if self._probe and firmware is None:
            firmware = probe(link, self._probe_timeout)
        link.firmware = firmware
        if self._authenticator is not None and (
            firmware is None or firmware.has_handshake is not False
        ):
            caller = HandshakeCaller(link, self.address, self.timeout)
            link.verified = self._authenticator.authenticate(caller)
            if self._probe and (firmware is None or not firmware.known):
                # Unverified (no key, or 7.18-7.31 where it is optional): ask briefly only.
                wait = self.timeout if link.verified else self._probe_timeout
                firmware = reprobe(link, wait) or firmware
                link.firmware = firmware
        if firmware is not None:
            self._firmware = firmware
            log.info(
                "Seestar at %s: %s, firmware %s%s",
                self.address, firmware.model or "model unknown", firmware.text or "unknown",
                " (verify marker)" if firmware.marker else "",
            )  # fmt: skip

    # -- heartbeat -----------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None and self._heartbeat_interval > 0:
            self._heartbeat = threading.Thread(
                target=self._heartbeat_loop,
                name=f"crowdsky-jsonrpc-heartbeat {self.address}",
                daemon=True,
            )
            self._heartbeat.start()

    def _heartbeat_loop(self) -> None:
        interval = self._heartbeat_interval
        delay = interval
        while not self._closed.wait(delay):
            delay = interval
            link = self._link
            if link is None or not link.alive:
                continue  # a dead link is replaced by the next call, not by the heartbeat
            idle = time.monotonic() - link.last_send
            if idle >= interval:
                link.send_heartbeat()
            else:
                delay = interval - idle

    # -- events --------------------------------------------------------------------------------

    def add_event_listener(self, callback: EventCallback) -> None:
        """Call ``callback`` with every event from now on (on the reader thread)."""
        self._events.add_listener(callback)

    def remove_event_listener(self, callback: EventCallback) -> None:
        """Stop calling ``callback``; harmless if it was not registered."""
        self._events.remove_listener(callback)

    def wait_event(
        self, predicate: Callable[[Event], bool] | None = None, timeout: float | None = None
    ) -> Event | None:
        """Take the oldest queued or future event matching ``predicate``.

        Events already received count: a command's side-effect events often arrive before its
        reply (reference §1.6). The event returned is removed from the queue.

        Parameters
        ----------
        predicate : callable, optional
            Selects the event; any event when omitted.
        timeout : float, optional
            Seconds to wait; forever when ``None``.

        Returns
        -------
        Event or None
            ``None`` on timeout or when the connection is closed.
        """
        return self._events.wait(predicate, timeout)

    def drain_events(self) -> list[Event]:
        """Remove and return every queued event, oldest first."""
        return self._events.drain()

    # -- calls ---------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        params: object = ABSENT,
        *,
        timeout: float | None = None,
        retry: bool = True,
    ) -> Any:
        """Send ``method`` and return its ``result``.

        Parameters
        ----------
        method : str
            The JSON-RPC method.
        params : object, optional
            Any JSON value; the ``params`` key is omitted when not given.
        timeout : float, optional
            Seconds to wait for the reply (default: the connection's ``timeout``).
        retry : bool, optional
            If the socket drops before the reply, reconnect, re-authenticate and send the call
            once more. Pass ``False`` for commands that must not run twice (the first copy may
            have reached the device before the drop).

        Returns
        -------
        object
            The reply's ``result``.

        Raises
        ------
        SeestarRpcError
            When the device answers with a non-zero code.
        SeestarConnectionError
            When the Seestar is unreachable, drops the link, or does not answer in time.
        SeestarAuthError
            When authentication fails, or the device ignores commands for lack of it.
        """
        reply = self.call_reply(method, params, timeout=timeout, retry=retry)
        if not reply.ok:
            raise SeestarRpcError(method, reply.code, reply.error or "no error text")
        return reply.result

    def call_reply(
        self,
        method: str,
        params: object = ABSENT,
        *,
        timeout: float | None = None,
        retry: bool = True,
    ) -> Reply:
        """Like :meth:`call`, but return the whole :class:`Reply`, whatever its code."""
        wait = self.timeout if timeout is None else timeout
        link = self._ensure_link()
        try:
            return self._roundtrip(link, method, params, wait)
        except LinkDropped as exc:
            if not retry:
                raise SeestarConnectionError(
                    f"The Seestar at {self.address} dropped the connection during {method!r}; "
                    "not repeated (retry=False) because it may already have run."
                ) from exc
            log.info("link to %s dropped during %r; reconnecting once", self.address, method)
        link = self._ensure_link(replacing=link)
        try:
            return self._roundtrip(link, method, params, wait)
        except LinkDropped as exc:
            raise SeestarConnectionError(
                f"The Seestar at {self.address} dropped the connection twice during {method!r}. "
                "Check the Wi-Fi signal and that no other program is using the Seestar."
            ) from exc

    def _roundtrip(self, link: Link, method: str, params: object, timeout: float) -> Reply:
        try:
            return link.roundtrip(method, params, timeout)
        except ReplyTimeout as exc:
            raise self._timeout_error(link, method, timeout, exc.silent) from exc

    def _timeout_error(
        self, link: Link, method: str, timeout: float, silent: bool
    ) -> SeestarConnectionError | SeestarAuthError:
        if not link.verified and link.replies_received == 0 and link.events_received > 0:
            return SeestarAuthError(
                f"The Seestar at {self.address} sends events but did not answer {method!r} "
                f"within {timeout:g} s. Firmware 7.32 and later ignore every command until the "
                "connection authenticates with the Seestar app's key: pass key_path= or set "
                f"{KEY_ENV_VAR} to that PEM file (default {str(default_key_path())!r})."
            )
        if silent:
            # Not a byte while waiting: likely a half-open socket. Open a new one next time.
            with self._connect_lock:
                if self._link is link:
                    self._link = None
                    self._retire(link)
                    self.reconnects += 1
        hint = ""
        if not link.verified and link.replies_received == 0:
            # No events yet to tell silence-for-lack-of-key apart from a busy device.
            hint = (
                " If it runs firmware 7.32 or later it ignores commands until authenticated: "
                f"pass key_path= or set {KEY_ENV_VAR}."
            )
        return SeestarConnectionError(
            f"The Seestar at {self.address} did not answer {method!r} within {timeout:g} s. "
            f"It may be busy or out of Wi-Fi range; try again, or raise the timeout.{hint}"
        )
