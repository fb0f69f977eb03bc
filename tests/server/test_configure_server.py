"""``configure_server`` changes only what it is given (docs/server.md calls it twice)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import crowdsky.api as crowdsky
from crowdsky import session


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    session.server_settings().reset()
    yield
    session.server_settings().reset()


def test_a_later_call_keeps_the_url_an_earlier_one_set() -> None:
    with httpx.Client() as client:
        crowdsky.configure_server("http://127.0.0.1:8080")
        crowdsky.configure_server(client=client)
        choice = session.server_settings().current()
        assert choice.url == "http://127.0.0.1:8080"
        assert choice.client is client


def test_a_later_call_keeps_insecure_http_allowed() -> None:
    crowdsky.configure_server("http://192.0.2.5", allow_insecure_http=True)
    crowdsky.configure_server("http://192.0.2.6")
    choice = session.server_settings().current()
    assert choice.url == "http://192.0.2.6"
    assert choice.allow_insecure_http is True
    crowdsky.configure_server(allow_insecure_http=False)
    assert session.server_settings().current().allow_insecure_http is False


def test_set_credentials_keeps_the_url() -> None:
    crowdsky.configure_server("http://127.0.0.1:9")
    crowdsky.set_credentials("u", "p")
    assert session.server_settings().current().url == "http://127.0.0.1:9"
