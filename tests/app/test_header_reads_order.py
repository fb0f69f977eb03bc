"""Reads the settler asks for start before reads ahead that are still waiting.

``_HeaderReads`` feeds reads ahead to its pool only as the pool has room; a read asked for by
``results`` goes to the pool at once, so it starts as soon as a reader is free, however many
reads ahead wait. Driven by hand with events: nothing is timed.
"""

from __future__ import annotations

import threading

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.app.inventory import _HeaderReads

#: A guard against a hang, never reached when the test passes: no timing is asserted.
GUARD_S = 30.0


class Gated(FakeSeestar):
    """Two readers at once; each read is recorded as it starts and waits for its gate."""

    concurrent_header_reads = 2

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def gate(self, path: str) -> threading.Event:
        with self._lock:
            return self.gates.setdefault(path, threading.Event())

    def read_header(self, path: str) -> dict[str, object]:
        with self._lock:
            self.started.append(path)
        if not self.gate(path).wait(GUARD_S):
            raise AssertionError(f"{path} was never let through")
        return {"DATE-OBS": "2026-02-27T20:00:00"}


def _asked_is_handed_over(reads: _HeaderReads, path: str) -> bool:
    """Wait (up to the guard) until ``results`` has handed the read of ``path`` to the pool."""
    done = threading.Event()
    for _ in range(int(GUARD_S * 100)):
        if path in reads._started:
            return True
        done.wait(0.01)
    return False


def test_a_read_asked_for_starts_before_the_reads_ahead_still_waiting() -> None:
    device = Gated()
    ahead = [f"MyWorks/IC 434_sub/a{i}.fit" for i in range(6)]
    asked = "MyWorks/IC 434_sub/asked.fit"
    with _HeaderReads(device) as reads:
        reads.read_ahead(ahead)
        got: list[object] = []
        asking = threading.Thread(target=lambda: got.extend(reads.results([asked], ["asked.fit"])))
        asking.start()
        assert _asked_is_handed_over(reads, asked)  # before any reader is free
        for path in (*ahead[:2], asked, *ahead[2:]):  # let one read through at a time
            device.gate(path).set()
        asking.join(GUARD_S)
        assert not asking.is_alive()
    assert device.started[:2] == ahead[:2]  # the pool's two readers took the first reads ahead
    assert device.started[2] == asked  # the next free reader took the read asked for
    assert device.started[3:] == ahead[2:]  # and then the reads ahead, in order
    assert len(got) == 1
