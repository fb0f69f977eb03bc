"""Stack on the simulator, upload to a loopback CrowdSky server, list and download: all by CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import crowdsky
from crowdsky import session
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.cli import main

SECRET = "s3cret-Pa55"


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackCrowdskyServer]:
    monkeypatch.setenv("CROWDSKY_USERNAME", "ada")
    monkeypatch.setenv("CROWDSKY_PASSWORD", SECRET)
    monkeypatch.delenv("CROWDSKY_URL", raising=False)
    session.server_settings().reset()
    with LoopbackCrowdskyServer(tmp_path / "server", users={"ada": SECRET}) as running:
        yield running
    session.server_settings().reset()
    crowdsky.disconnect()


def test_upload_list_download(
    server: LoopbackCrowdskyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "downloads"
    # The demo Seestar holds one CrowdSky stack (M 42, chunk 20260227.77).
    assert main(["upload", "--simulator", "--dest", str(dest), "--url", server.url]) == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("Uploaded: 1 Skipped: 0 Failed: 0")
    assert SECRET not in out
    assert list((dest / "M 42").glob("CrowdSky_*.fit"))

    assert main(["upload", "--local-dir", str(dest), "--url", server.url]) == 0
    assert capsys.readouterr().out.strip().endswith("Uploaded: 0 Skipped: 1 Failed: 0")

    assert main(["stacks", "--url", server.url]) == 0
    key = capsys.readouterr().out.split()[0]
    assert key.startswith("20260227.77_HP")

    assert main(["download", key, "--dest", str(tmp_path / "back"), "--url", server.url]) == 0
    (path,) = capsys.readouterr().out.split("\n")[:1]
    assert Path(path).read_bytes().startswith(b"SIMPLE  =")


def test_missing_credentials_say_how_to_set_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("CROWDSKY_USERNAME", "CROWDSKY_PASSWORD", "CROWDSKY_URL"):
        monkeypatch.delenv(name, raising=False)
    session.server_settings().reset()
    assert main(["stacks", "--url", "http://127.0.0.1:9"]) == 2
    assert "CROWDSKY_USERNAME" in capsys.readouterr().err


def test_plain_http_refusal_names_the_command_line_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDSKY_USERNAME", "ada")
    monkeypatch.setenv("CROWDSKY_PASSWORD", SECRET)
    session.server_settings().reset()
    try:
        assert main(["stacks", "--url", "http://192.0.2.7:8080"]) == 2  # a configuration problem
    finally:
        session.server_settings().reset()
    err = capsys.readouterr().err
    assert "--insecure-http" in err
    assert SECRET not in err


def test_a_login_page_instead_of_a_stack_says_so(
    server: LoopbackCrowdskyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults.login_page_downloads = True
    dest = tmp_path / "back"
    assert main(["download", "20260227.77_HP107383", "--dest", str(dest), "--url", server.url]) == 1
    err = capsys.readouterr().err
    assert "login page; check your credentials" in err
    assert SECRET not in err
    assert not dest.exists() or list(dest.iterdir()) == []
