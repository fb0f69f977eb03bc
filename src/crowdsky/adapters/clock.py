"""Clocks: the system clock, and a fake one for tests and the simulator's fast mode."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from crowdsky.errors import PlanError

__all__ = ["FakeClock", "SystemClock"]


class SystemClock:
    """The host's clock, in UTC."""

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time."""
        time.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when told to: ``sleep`` advances it instantly.

    Parameters
    ----------
    start : datetime
        Aware starting time.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> clock = FakeClock(datetime(2026, 2, 28, 6, 0, tzinfo=UTC))
    >>> clock.sleep(90)
    >>> clock.now().isoformat()
    '2026-02-28T06:01:30+00:00'
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise PlanError("FakeClock needs an aware start time (for example tzinfo=UTC).")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def now(self) -> datetime:
        """The fake current time."""
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        """Advance the clock by ``seconds`` without waiting, and remember the call."""
        self.slept.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        if seconds < 0:
            raise PlanError("A clock does not run backwards.")
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        """Jump to an aware ``moment``."""
        with self._lock:
            self._now = moment.astimezone(UTC)
