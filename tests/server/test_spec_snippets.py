"""The specification's server snippets, run as written against the loopback server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import crowdsky.api as crowdsky
from crowdsky import session
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.errors import CrowdskyError, PlanError, ServerAuthError

from .helpers import IC434_DOWNLOAD, IC434_KEY, IC434_NAME, TinySeestar, no_password_in, write_stack

M42_NAME = "CrowdSky_20_M 42_10.0s_LP_20260227.81_HP107383.fit"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LoopbackCrowdskyServer]:
    with LoopbackCrowdskyServer(tmp_path / "data", users={"username": "password"}) as loop:
        crowdsky.configure_server(loop.url)
        yield loop


@pytest.fixture
def seestar(tmp_path: Path) -> Iterator[TinySeestar]:
    ic = write_stack(tmp_path / "dev")
    m42 = write_stack(tmp_path / "dev", M42_NAME, obj="M 42", ra=83.82, dec=-5.39)
    device = TinySeestar({
        "IC 434": {ic.name: ic.read_bytes()},
        "IC 434_sub": {"Light_IC 434_10.0s_LP_20260227-211503.fit": b"raw"},
        "M 42": {m42.name: m42.read_bytes()},
    })  # fmt: skip
    previous = session.use(device)  # type: ignore[arg-type]
    yield device
    session.use(previous)


def test_single_upload_list_and_download(
    server: LoopbackCrowdskyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    write_stack(tmp_path)
    monkeypatch.chdir(tmp_path)

    crowdsky.set_credentials("username", "password")
    crowdsky.upload_stack("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    stacks = crowdsky.list_stacks()
    for s in stacks:
        print(s)
    crowdsky.download_stack(["20260227.81_HP102265"], dest="./downloads")

    assert IC434_KEY in capsys.readouterr().out
    assert (tmp_path / "downloads" / IC434_DOWNLOAD).read_bytes() == (
        tmp_path / IC434_NAME
    ).read_bytes()
    assert crowdsky.download_stack(IC434_KEY, dest=tmp_path / "one") == [
        tmp_path / "one" / IC434_DOWNLOAD
    ]


def test_bulk_upload_in_all_three_forms(
    server: LoopbackCrowdskyServer, seestar: TinySeestar, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    write_stack(tmp_path / "my_stacks", IC434_NAME.replace("_LP_", "_IRCUT_"), filt="IRCUT")

    crowdsky.set_credentials("username", "password")
    preview = crowdsky.upload_all_stacks("IC 434", dry_run=True)
    one = crowdsky.upload_all_stacks("IC 434", dest="./downloads")
    every = crowdsky.upload_all_stacks(dest="./downloads")
    local = crowdsky.upload_all_stacks(local_dir="./my_stacks")

    assert preview["would_upload"] == [IC434_NAME]
    assert one["uploaded"] == [IC434_NAME]
    assert (every["uploaded"], every["skipped"]) == ([M42_NAME], [IC434_NAME])
    assert local["files_uploaded"] == 1
    assert sorted((s["object_name"], s["filter_name"]) for s in server.stacks) == [
        ("IC 434", "IRCUT"), ("IC 434", "LP"), ("M 42", "LP"),
    ]  # fmt: skip
    assert (tmp_path / "downloads" / "M 42" / M42_NAME).is_file()


def test_without_credentials_nothing_is_sent(server: LoopbackCrowdskyServer) -> None:
    with pytest.raises(ServerAuthError, match="set_credentials"):
        crowdsky.list_stacks()
    assert server.requests == []


def test_credentials_from_the_environment(
    server: LoopbackCrowdskyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDSKY_USERNAME", "username")
    monkeypatch.setenv("CROWDSKY_PASSWORD", "password")
    assert crowdsky.list_stacks() == []


def test_settings_never_show_the_password(
    server: LoopbackCrowdskyServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "correct horse battery staple"
    crowdsky.set_credentials("username", secret)
    assert secret not in repr(session.server_settings())
    server.faults.fail_next = 1
    with pytest.raises(CrowdskyError) as info:
        crowdsky.upload_stack(write_stack(tmp_path))
    texts = [str(info.value), repr(info.value)] + [r.getMessage() for r in caplog.records]
    texts += [repr(r.args) for r in caplog.records]
    assert caplog.records  # httpx/httpcore did log the exchange
    assert no_password_in(texts, secret)


def test_a_remote_plain_http_url_is_refused(tmp_path: Path) -> None:
    crowdsky.set_credentials("username", "password", url="http://crowdsky.example.org")
    with pytest.raises(PlanError, match="http://"):
        crowdsky.list_stacks()


def test_settings_are_safe_to_change_from_threads(server: LoopbackCrowdskyServer) -> None:
    def churn(n: int) -> None:
        for _ in range(50):
            crowdsky.set_credentials("username", "password", url=server.url)
            assert repr(session.server_settings())

    threads = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert crowdsky.list_stacks() == []
