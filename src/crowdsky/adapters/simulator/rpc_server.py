"""The simulator's JSON-RPC listener (port 4700 style): one reader and one writer per connection.

Theory of operation
-------------------
Each connection has a reader thread, which decodes requests and answers them one at a time (so
replies are FIFO per connection, latency included), and a writer thread, which drains an outbox
of frames. Replies and events meet in that outbox: an event broadcast while a request is being
handled lands before its reply, which is how the device's side-effect events win the race
(protocol reference §1.6). With ``coalesce_and_split`` the writer joins queued frames into one
write and cuts large writes in pieces with tiny pauses, as the device does (§1.2).

Two server threads feed every outbox: the chatter of a working device (``PiStatus`` with partial
fields and, with ``event_variety``, events of many other kinds, see
:mod:`~crowdsky.adapters.simulator.traffic`), and the device's worker. The device model computes a
batch stack's state only when asked; the worker asks for it as a device works in the background:
it reads the frames once a stack starts, and wakes when the next frame is done or the stack ends
(``batch_poll_interval`` at the latest, for a device on a fake clock), so a stack finishes, writes
its output and, with ``push_batch_events``, pushes its ``complete`` event at its end rather than
on the next tick of a fixed-interval poll. With ``events_before_reply`` each reply is also
preceded by that many such events on its own connection.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import random
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.jsonrpc import (
    Problem,
    Request,
    RequestDecoder,
    encode_error,
    encode_event,
    encode_reply,
)
from crowdsky.adapters.simulator.methods import (
    HANDSHAKE_METHODS,
    Call,
    Session,
    dispatch,
    ignored,
)
from crowdsky.adapters.simulator.options import SimulatorOptions
from crowdsky.adapters.simulator.traffic import EventMix
from crowdsky.errors import CrowdskyError, SeestarRpcError

__all__ = ["RpcServer"]

#: Methods whose events are side effects that may overtake their reply.
_SIDE_EFFECTS = frozenset({"start_batch_stack", "stop_batch_stack"})
#: Writes longer than this may be split when ``coalesce_and_split`` is on (half of them are):
#: large enough that a quick heartbeat goes out whole, small enough that listings are split.
_SPLIT_OVER = 256
_JOIN_TIMEOUT = 5.0
#: The device worker never wakes sooner than this after its last look (no busy loop when the
#: clock is a hair short of a stack's next step).
_WORKER_MIN_WAIT = 0.001


class _Connection:
    """One client socket: its session, its reader and its writer."""

    def __init__(self, server: RpcServer, sock: socket.socket, number: int) -> None:
        self._server = server
        self._sock = sock
        self.session = Session()
        self._requests = 0
        self._rng = random.Random(f"{server.options.seed}:{number}")
        self._chatter = server.event_mix(f"{server.options.seed}:chatter:{number}")
        # Each frame with the time it may leave (``wire_delay`` after it was queued).
        self._outbox: queue.SimpleQueue[tuple[float, bytes] | None] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, daemon=True, name=f"sim-rx{number}")
        self._writer = threading.Thread(
            target=self._write_loop, daemon=True, name=f"sim-tx{number}"
        )

    @property
    def _options(self) -> SimulatorOptions:
        # Read per request, so that faults switched on the server reach open connections too.
        return self._server.options

    def start(self) -> None:
        self._writer.start()
        self._reader.start()

    def send(self, frame: bytes) -> None:
        """Queue ``frame`` for the writer (dropped once the connection is closed)."""
        if not self._closed.is_set():
            self._outbox.put((time.monotonic() + self._options.wire_delay, frame))

    def close(self) -> None:
        """Shut the socket down (waking both threads); idempotent, callable from any thread."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._outbox.put(None)

    def join(self) -> None:
        self._reader.join(_JOIN_TIMEOUT)

    # --- reading and answering ---------------------------------------------------------------

    def _read_loop(self) -> None:
        decoder = RequestDecoder()
        try:
            self._sock.settimeout(self._options.idle_drop_seconds)
            while not self._closed.is_set():
                try:
                    data = self._sock.recv(65536)
                except OSError:  # includes the idle timeout: the device hangs up
                    break
                if not data:
                    break
                decoder.receive_data(data)
                if not all(self._handle(m) for m in decoder if not isinstance(m, Problem)):
                    break
        finally:
            self.close()
            self._writer.join(_JOIN_TIMEOUT)
            self._sock.close()
            self._server.forget(self)

    def _handle(self, request: Request) -> bool:
        """Answer ``request`` (or stay silent); False to drop the connection instead."""
        options = self._options
        timestamp = self._server.timestamp()
        if (
            options.auth_required
            and not self.session.verified
            and request.method not in HANDSHAKE_METHODS
        ):
            return True  # §2.2: ignored without a word; events keep flowing
        if ignored(options, request):
            return True  # §1.3: firmware 5.82-7.17 never answers a request without the marker
        self._requests += 1
        half_open = options.half_open_after
        if request.method in options.silent_methods or (
            half_open is not None and self._requests > half_open
        ):
            return True
        if options.drop_probability and self._rng.random() < options.drop_probability:
            return False
        if request.method == "get_img_file_page_name" and self._server.drop_page_request():
            return False
        low, high = options.latency
        if high > 0 and self._closed.wait(self._rng.uniform(low, high)):
            return False
        if request.method in _SIDE_EFFECTS and not options.side_effect_events_first:
            with self._server.holding_events() as held:
                frame = self._answer(request, timestamp)
            self.send(frame)
            for event in held:
                self._server.broadcast(event)
        else:
            self._send_chatter()
            self.send(self._answer(request, timestamp))
        return True

    def _send_chatter(self) -> None:
        """The ``events_before_reply`` events that go out between a request and its reply."""
        mix = self._chatter
        for _ in range(self._options.events_before_reply):
            name, fields = mix.next() if self._options.event_variety else mix.pistatus()
            self.send(encode_event(name, fields, timestamp=self._server.timestamp()))

    def _answer(self, request: Request, timestamp: float) -> bytes:
        call = Call(self._server.device, self._options, self.session)
        try:
            result = dispatch(call, request)
        except SeestarRpcError as exc:
            return encode_error(
                request.id, request.method, exc.code, exc.message, timestamp=timestamp
            )
        return encode_reply(request.id, request.method, result, timestamp=timestamp)

    # --- writing -----------------------------------------------------------------------------

    def _write_loop(self) -> None:
        held: tuple[float, bytes] | None = None  # taken from the outbox, not due yet
        while True:
            item = held if held is not None else self._outbox.get()
            held = None
            if item is None:
                return
            due, frame = item
            self._await(due)
            frames, last = [frame], False
            if self._options.coalesce_and_split:
                while self._rng.random() < 0.7:
                    try:
                        more = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        last = True
                        break
                    if more[0] > time.monotonic():
                        held = more  # still on the wire: it goes in a later write
                        break
                    frames.append(more[1])
            try:
                self._write(b"".join(frames))
            except OSError:
                self.close()
                return
            if last:
                return

    def _await(self, due: float) -> None:
        """Wait until ``due`` (``time.monotonic``), or until the connection closes."""
        remaining = due - time.monotonic()
        if remaining > 0:
            self._closed.wait(remaining)

    def _write(self, data: bytes) -> None:
        if (
            not self._options.coalesce_and_split
            or len(data) <= _SPLIT_OVER
            or self._rng.random() < 0.5
        ):
            self._sock.sendall(data)
            return
        cuts = sorted(self._rng.sample(range(1, len(data)), k=min(3, len(data) - 1)))
        for begin, end in itertools.pairwise([0, *cuts, len(data)]):
            self._sock.sendall(data[begin:end])
            time.sleep(0.0005)  # long enough for the pieces to arrive as separate reads


class RpcServer:
    """A JSON-RPC listener serving ``device`` on ``(host, port)`` (port 0: any free port).

    Parameters
    ----------
    device : FakeSeestar
        The device model every connection talks to.
    options : SimulatorOptions
        Behaviour.
    host : str
        Address to bind.
    port : int
        Port to bind; 0 picks a free one (see :attr:`port`).
    """

    def __init__(
        self, device: FakeSeestar, options: SimulatorOptions, host: str, port: int
    ) -> None:
        self.device = device
        self.options = options
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.1)
        self.host: str = self._listener.getsockname()[0]
        self.port: int = self._listener.getsockname()[1]
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._numbers = itertools.count(1)
        self._page_requests = itertools.count(1)
        self._stop = threading.Event()
        self._held = threading.local()
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True, name="sim-accept")]
        if options.pistatus_interval:
            self._threads.append(threading.Thread(target=self._pistatus_loop, daemon=True))
        # Set on every change of the batch stack (a start above all): the worker looks again.
        self._device_changed = threading.Event()
        self._unsubscribe = device.subscribe(self._on_device_event)
        self._threads.append(threading.Thread(target=self._worker_loop, daemon=True))

    @property
    def client_count(self) -> int:
        """Connections currently open."""
        with self._lock:
            return len(self._connections)

    def start(self) -> None:
        """Start accepting connections and sending events."""
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop listening, close every connection and stop the event threads."""
        self._stop.set()
        self._device_changed.set()
        with contextlib.suppress(OSError):
            # Wakes a blocked accept() at once (Linux); the accept timeout covers the rest.
            self._listener.shutdown(socket.SHUT_RDWR)
        self._unsubscribe()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(_JOIN_TIMEOUT)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        for connection in connections:
            connection.join()

    def event_mix(self, seed: str) -> EventMix:
        """A seeded source of this device's chatter (its ``Version`` events name its firmware)."""
        return EventMix(seed, self.device.firmware_ver_int, self.device.firmware)

    def timestamp(self) -> float:
        """Seconds since the simulated device booted (its ``Timestamp``)."""
        return time.monotonic() - self._started

    def forget(self, connection: _Connection) -> None:
        """Drop a closed connection from the broadcast list."""
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)

    def drop_page_request(self) -> bool:
        """Count a ``get_img_file_page_name`` request; True if its connection must be dropped."""
        with self._lock:
            number = next(self._page_requests)
        return number in self.options.drop_page_requests

    def broadcast(self, frame: bytes) -> None:
        """Queue ``frame`` on every open connection."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.send(frame)

    def broadcast_event(self, name: str, fields: dict[str, Any]) -> None:
        """Send event ``name`` with ``fields`` to every connection."""
        self.broadcast(encode_event(name, fields, timestamp=self.timestamp()))

    @contextlib.contextmanager
    def holding_events(self) -> Iterator[list[bytes]]:
        """Collect the device events raised by this thread instead of sending them."""
        held: list[bytes] = []
        self._held.frames = held
        try:
            yield held
        finally:
            self._held.frames = None

    def _on_device_event(self, event: dict[str, Any]) -> None:
        self._device_changed.set()
        if not self.options.push_batch_events:
            return
        frame = encode_event(str(event["Event"]), event, timestamp=self.timestamp())
        held = getattr(self._held, "frames", None)
        if held is not None:
            held.append(frame)
        else:
            self.broadcast(frame)

    # --- threads -----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            # No Nagle: split frames must leave as separate small segments, at once.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                full = len(self._connections) >= self.options.max_clients
                if not full:
                    connection = _Connection(self, sock, next(self._numbers))
                    self._connections.append(connection)
            if full:
                # Refused: the client sees the connection close before any frame.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            else:
                connection.start()

    def _pistatus_loop(self) -> None:
        if self.options.event_variety:
            self._chatter_loop()
            return
        rng = random.Random(self.options.seed)
        interval = float(self.options.pistatus_interval or 0.0)
        temp, battery = 44.5, 88
        for tick in itertools.count():
            if self._stop.wait(interval):
                return
            # PiStatus carries only what changed (§1.5): one field per event here.
            if tick % 2 == 0:
                temp = round(min(60.0, max(30.0, temp + rng.uniform(-0.6, 0.6))), 1)
                self.broadcast_event("PiStatus", {"temp": temp})
            else:
                battery = max(5, battery - rng.choice((0, 0, 1)))
                self.broadcast_event("PiStatus", {"battery_capacity": battery})

    def _chatter_loop(self) -> None:
        mix = self.event_mix(f"{self.options.seed}:chatter")
        interval = float(self.options.pistatus_interval or 0.0)
        while not self._stop.wait(interval):
            self.broadcast_event(*mix.next())

    def _worker_loop(self) -> None:
        while not self._stop.is_set():
            due = self.device.seconds_to_next_change()
            wait = self.options.batch_poll_interval
            if due is not None:
                wait = min(wait, max(due, _WORKER_MIN_WAIT))
            self._device_changed.wait(wait)
            self._device_changed.clear()
            if self._stop.is_set():
                return
            # A storage failure inside the device must not kill the worker; the client sees
            # it as a failed stack anyway.
            with contextlib.suppress(CrowdskyError):
                self.device.poll_events()
