"""Ctrl-C during ``crowdsky upload``: what was uploaded, what was cut short, what not started.

The loopback server presses Ctrl-C (``_thread.interrupt_main``) while the client waits for the
answer to a chosen upload, as a user would; the command then reports through ``main(argv)``.
"""

from __future__ import annotations

import _thread
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import crowdsky
from crowdsky import session
from crowdsky.adapters.collab.journal import JOURNAL_NAME
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.cli import main

from .helpers import PASSWORD, write_stack


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackCrowdskyServer]:
    monkeypatch.setenv("CROWDSKY_USERNAME", "ada")
    monkeypatch.setenv("CROWDSKY_PASSWORD", PASSWORD)
    session.server_settings().reset()
    with LoopbackCrowdskyServer(tmp_path / "server", users={"ada": PASSWORD}) as running:
        yield running
    session.server_settings().reset()
    crowdsky.disconnect()


def _four_blocks(folder: Path) -> list[str]:
    """Four IC 434 stacks of consecutive blocks in ``folder``; their names, in upload order."""
    names = []
    for block, minute in zip((81, 82, 83, 84), (15, 30, 45, 0), strict=True):
        hour = 20 if block < 84 else 21
        name = f"CrowdSky_33_IC 434_10.0s_LP_20260227.{block}_HP102265.fit"
        write_stack(folder, name, date_obs=f"2026-02-27T{hour}:{minute:02d}:03.5")
        names.append(name)
    return names


def _interrupt_on(upload: int) -> Callable[[str], None]:
    """A server hook that presses Ctrl-C (in the main thread) during the ``upload``-th upload."""
    seen: list[str] = []

    def hook(name: str) -> None:
        seen.append(name)
        if len(seen) == upload:
            _thread.interrupt_main()

    return hook


def test_ctrl_c_during_uploads_says_what_was_uploaded_and_what_not(
    server: LoopbackCrowdskyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "stacks"
    names = _four_blocks(local)
    server.faults.on_upload = _interrupt_on(2)
    assert main(["upload", "--local-dir", str(local), "--url", server.url]) == 130
    err = capsys.readouterr().err
    assert err == (
        f"\ncrowdsky: interrupted; 1 uploaded, 1 not finished ({names[1]}), 2 not started.\n"
    )
    # Only the first is recorded as done; the second reached the server but not the journal.
    journal = json.loads((local / JOURNAL_NAME).read_text())
    assert [entry["name"] for entry in journal["uploads"]] == names[:1]
    server.faults.on_upload = None
    assert main(["upload", "--local-dir", str(local), "--url", server.url]) == 0
    assert capsys.readouterr().out.strip().endswith("Uploaded: 2 Skipped: 2 Failed: 0")


def test_ctrl_c_during_an_upload_from_the_seestar_mentions_it(
    server: LoopbackCrowdskyServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.faults.on_upload = _interrupt_on(1)
    dest = tmp_path / "downloads"
    assert main(["upload", "--simulator", "--dest", str(dest), "--url", server.url]) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-2] == ""
    assert err[-1].startswith("crowdsky: interrupted; 0 uploaded, 1 not finished (CrowdSky_")
    assert err[-1].endswith(", 0 not started; nothing on the Seestar was left half done.")
