"""The command line against ``crowdsky simulate``'s engine over real loopback sockets."""

from __future__ import annotations

import io
import re
import shlex
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import crowdsky
from crowdsky.adapters.simulator.main import run_simulator
from crowdsky.cli import main


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[list[str]]:
    """Run the simulator (authentication on) in a thread; yield the command it suggests."""
    out = io.StringIO()
    stop = threading.Event()
    key = tmp_path / "key.pem"
    thread = threading.Thread(
        target=run_simulator,
        kwargs={
            "root": tmp_path / "emmc",
            "rpc_port": 0,
            "http_port": 0,
            "auth_key_out": key,
            "seconds_per_frame": 0.0,
            "setup_seconds": 0.0,
            "pistatus_interval": None,
            "out": out,
            "stop": stop,
        },
    )
    thread.start()
    try:
        for _ in range(600):  # the demo night is laid down on disk first
            if "Try:" in out.getvalue():
                break
            time.sleep(0.05)
        suggestion = re.search(r"crowdsky (stack .*)$", out.getvalue(), re.M)
        assert suggestion, out.getvalue()
        yield shlex.split(suggestion[1])
    finally:
        stop.set()
        thread.join()
        crowdsky.disconnect()


def test_the_suggested_command_stacks_over_the_network(
    simulator: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*simulator, "IC 434"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit" in out
    crowdsky.disconnect()
    assert main(args) == 0  # idempotent over the network too
    assert capsys.readouterr().out.strip() == "Stacked: 0 Failed: 0 Skipped: 0"


def test_without_the_key_the_silent_device_is_explained(
    simulator: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    without_key = simulator[: simulator.index("--key")]
    assert main(["targets", *without_key[1:], "--key", "/nonexistent/key.pem"]) == 2
    assert "key" in capsys.readouterr().err.lower()
