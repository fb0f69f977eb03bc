"""Where events go once read: listeners, and a bounded queue to wait on (private)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from crowdsky.adapters.jsonrpc.messages import Event

log = logging.getLogger("crowdsky.adapters.jsonrpc.connection")

#: Called on the reader thread with each event; must return quickly, and must not call the
#: connection (the reader thread is the one that would deliver the reply).
EventCallback = Callable[[Event], None]


class EventHub:
    """Fans events out to listeners and keeps the unclaimed ones for :meth:`wait`.

    Parameters
    ----------
    capacity : int
        Unclaimed events kept; the oldest are dropped first.
    """

    def __init__(self, capacity: int) -> None:
        self._listeners: list[EventCallback] = []
        self._queue: deque[Event] = deque(maxlen=capacity)
        self._cond = threading.Condition()
        self._closed = False

    def add_listener(self, callback: EventCallback) -> None:
        self._listeners.append(callback)

    def remove_listener(self, callback: EventCallback) -> None:
        if callback in self._listeners:
            self._listeners.remove(callback)

    def dispatch(self, event: Event) -> None:
        with self._cond:
            self._queue.append(event)
            self._cond.notify_all()
        for callback in list(self._listeners):
            try:
                callback(event)
            except Exception:
                # A faulty listener must not kill the reader thread (replies would stop).
                log.exception("event listener %r failed on %s", callback, event.name)

    def wait(
        self, predicate: Callable[[Event], bool] | None, timeout: float | None
    ) -> Event | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                for index, event in enumerate(self._queue):
                    if predicate is None or predicate(event):
                        del self._queue[index]
                        return event
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._closed or (remaining is not None and remaining <= 0):
                    return None
                self._cond.wait(remaining)

    def drain(self) -> list[Event]:
        with self._cond:
            events = list(self._queue)
            self._queue.clear()
        return events

    def close(self) -> None:
        """Wake every waiter; later waits return at once when nothing matches."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
