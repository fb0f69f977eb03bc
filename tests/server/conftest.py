from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crowdsky import session
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer

from .helpers import PASSWORD


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("CROWDSKY_URL", "CROWDSKY_USERNAME", "CROWDSKY_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    session.server_settings().reset()
    yield
    session.server_settings().reset()


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[LoopbackCrowdskyServer]:
    with LoopbackCrowdskyServer(
        tmp_path / "server-data", users={"username": PASSWORD, "other": "pw-of-other"}
    ) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(loopback: LoopbackCrowdskyServer, sleeps: list[float]) -> Iterator[HttpCollabServer]:
    with HttpCollabServer(
        loopback.url, username="username", password=PASSWORD, sleep=sleeps.append
    ) as server:
        yield server
