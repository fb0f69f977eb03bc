from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.app.service import Crowdsky

# The spec's example night: IC 434 from Vienna (UTC+1 in February), blocks 21:15-22:00 local.
IC434 = (85.25, -2.46)
MORNING = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)

AddRun = Callable[..., list[str]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MORNING)


@pytest.fixture
def device(clock: FakeClock) -> FakeSeestar:
    return FakeSeestar(clock=clock, zone="Europe/Vienna")


@pytest.fixture
def progress() -> CollectingProgress:
    return CollectingProgress()


@pytest.fixture
def app(device: FakeSeestar, clock: FakeClock, progress: CollectingProgress) -> Crowdsky:
    return Crowdsky(device, clock, progress, host_zone=UTC)


@pytest.fixture
def add_run(device: FakeSeestar) -> AddRun:
    """Lay down frames every ``cadence`` seconds of DATE-OBS from ``start`` for ``count`` frames."""

    def run(
        start: datetime,
        count: int,
        *,
        target: str = "IC 434",
        exposure_s: float = 10.0,
        filter: str = "LP",
        cadence: float | None = None,
        radec: tuple[float, float] = IC434,
        on: FakeSeestar | None = None,
    ) -> list[str]:
        step = timedelta(seconds=cadence if cadence is not None else exposure_s + 1.5)
        return [
            add_sub(on or device, target, exposure_s, filter, start + i * step, *radec)
            for i in range(count)
        ]

    return run


def spec_night(add_run: AddRun) -> None:
    """33, 69 and 56 frames in the UTC blocks 20:15, 20:30 and 20:45 of 2026-02-27."""
    add_run(datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC), 33, cadence=27)
    add_run(datetime(2026, 2, 27, 20, 30, 2, tzinfo=UTC), 69, cadence=12.8)
    add_run(datetime(2026, 2, 27, 20, 45, 2, tzinfo=UTC), 56, cadence=15.5)
