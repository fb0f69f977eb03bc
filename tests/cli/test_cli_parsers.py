"""Odd input from the telescope reaches the command line as one ``crowdsky: ...`` line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import crowdsky
from adapters.jsonrpc.scripted_server import ScriptedServer, ServerConn  # tests/ on the path
from crowdsky.adapters.device_model import night
from crowdsky.adapters.jsonrpc import Request
from crowdsky.cli import main

YEAR_ONE = "Light_IC 434_10.0s_LP_00010101-000000.fit"


@pytest.fixture(autouse=True)
def _forget_seestar() -> Iterator[None]:
    yield
    crowdsky.disconnect()


def test_a_raw_name_from_year_one_is_ignored(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = night.demo_seestar

    def demo_with_a_reset_clock(**options: Any) -> Any:
        seestar = demo(**options)
        seestar.storage.put(f"MyWorks/IC 434_sub/{YEAR_ONE}", b"a frame saved by a reset clock")
        return seestar

    monkeypatch.setattr(night, "demo_seestar", demo_with_a_reset_clock)
    assert main(["plan", "IC 434", "--simulator"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith("3 unstacked block(s) for IC 434")
    assert "Traceback" not in captured.err


def _device_with_an_impossible_size(conn: ServerConn, request: Request) -> None:
    answers: dict[str, Any] = {
        "get_albums": {"list": [{"files": [{"name": "M 81_sub", "count": 1}]}]},
        "get_img_file_page_number": 1,
        "get_img_file_page_name": [
            {"name": "Light_M 81_10.0s_LP_20260227-210000.fit", "size_k": 1e308}
        ],
    }
    conn.reply(request, answers.get(request.method, 0))


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer(_device_with_an_impossible_size, old_firmware=True)
    yield server
    server.close()


def test_an_impossible_reply_is_one_line(
    scripted: ScriptedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "MyWorks").mkdir()
    # A share that cannot list the folder (a file where it should be): the listing falls back
    # to the device's pages, whose reply is under test.
    (tmp_path / "MyWorks" / "M 81_sub").write_bytes(b"")
    args = ["--host", "127.0.0.1", "--port", str(scripted.port), "--share", str(tmp_path)]
    assert main(["targets", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("crowdsky: The Seestar sent an impossible size_k")
    assert len(err.strip().splitlines()) == 1
