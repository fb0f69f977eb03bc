"""The module-level server functions share one client per choice of settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import crowdsky
from crowdsky import api, bootstrap
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer

from .helpers import IC434_KEY, PASSWORD, write_stack


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[HttpCollabServer]:
    """Every server client the composition root builds, in order."""
    made: list[HttpCollabServer] = []
    original = bootstrap.collab_server

    def counting(*args: Any, **kwargs: Any) -> HttpCollabServer:
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(bootstrap, "collab_server", counting)
    api.close_server()
    yield made
    api.close_server()


def test_one_client_serves_every_call_of_a_session(
    loopback: LoopbackCrowdskyServer, built: list[HttpCollabServer], tmp_path: Path
) -> None:
    crowdsky.set_credentials("username", PASSWORD, url=loopback.url)
    receipt = crowdsky.upload_stack(write_stack(tmp_path / "up"))
    assert [r.chunk_key for r in crowdsky.list_stacks()] == [IC434_KEY]
    first = crowdsky.download_stack(IC434_KEY, tmp_path / "down")
    again = crowdsky.download_stack([IC434_KEY], tmp_path / "again")
    assert crowdsky.list_stacks("IC 434")[0].chunk_key == receipt.chunk_key
    assert first[0].read_bytes() == again[0].read_bytes()
    assert len(built) == 1
    assert not built[0].is_closed


def test_new_settings_build_a_new_client_and_close_the_old(
    loopback: LoopbackCrowdskyServer, built: list[HttpCollabServer]
) -> None:
    crowdsky.set_credentials("username", PASSWORD, url=loopback.url)
    assert crowdsky.list_stacks() == []
    crowdsky.set_credentials("other", "pw-of-other")
    assert crowdsky.list_stacks() == []
    assert len(built) == 2
    assert built[0].is_closed
    assert not built[1].is_closed
    assert built[1].username == "other"


def test_the_environment_changing_builds_a_new_client(
    loopback: LoopbackCrowdskyServer,
    built: list[HttpCollabServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crowdsky.configure_server(loopback.url)
    monkeypatch.setenv("CROWDSKY_USERNAME", "username")
    monkeypatch.setenv("CROWDSKY_PASSWORD", PASSWORD)
    assert crowdsky.list_stacks() == []
    monkeypatch.setenv("CROWDSKY_USERNAME", "other")
    monkeypatch.setenv("CROWDSKY_PASSWORD", "pw-of-other")
    assert crowdsky.list_stacks() == []
    assert [server.username for server in built] == ["username", "other"]


def test_close_server_closes_it_and_the_next_call_opens_another(
    loopback: LoopbackCrowdskyServer, built: list[HttpCollabServer]
) -> None:
    crowdsky.set_credentials("username", PASSWORD, url=loopback.url)
    crowdsky.list_stacks()
    api.close_server()
    assert built[0].is_closed
    crowdsky.list_stacks()
    assert len(built) == 2
    assert not built[1].is_closed


def test_the_cli_style_context_manager_still_closes_its_own_client(
    loopback: LoopbackCrowdskyServer,
) -> None:
    with bootstrap.collab_server(loopback.url, username="username", password=PASSWORD) as server:
        assert server.list_stacks() == []
    assert server.is_closed
