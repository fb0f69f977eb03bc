"""The command line's workflow (targets, stack, time) against every simulator firmware profile.

Each profile runs ``crowdsky simulate``'s engine on loopback with a small night laid down first
(IC 434 and M 42, one 15-minute block each) and a key pair, which the firmware uses or not.
"""

from __future__ import annotations

import io
import re
import shlex
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import crowdsky
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.simulator import FIRMWARE_PROFILES
from crowdsky.adapters.simulator.main import run_simulator
from crowdsky.cli import main

EXPECTED = {
    "IC 434": "CrowdSky_30_IC 434_10.0s_LP_20260227.81_HP102265.fit",
    "M 42": "CrowdSky_30_M 42_10.0s_LP_20260227.84_HP107383.fit",
}
VERSION = {
    "7.75": "7.75 (2775)", "7.32": "7.32 (2732)", "7.18": "7.18 (2718)", "7.06": "7.06 (2706)",
    "6.70": "6.70 (2670)", "2.x": "2.25 (2225)", "old": "4.27 (2427)",
}  # fmt: skip


def small_night(root: Path) -> None:
    device = FakeSeestar(storage=DirectoryStorage(root))
    runs = [
        ("IC 434", datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC), 27, (85.25, -2.46)),
        ("M 42", datetime(2026, 2, 27, 21, 0, 5, tzinfo=UTC), 12, (83.82, -5.39)),
    ]
    for target, start, cadence, radec in runs:
        for i in range(30):
            add_sub(device, target, 10.0, "LP", start + i * timedelta(seconds=cadence), *radec)


@pytest.fixture(params=FIRMWARE_PROFILES)
def simulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A simulator of one profile in a thread; yields it with the device options to pass."""
    root = tmp_path / "emmc"
    small_night(root)
    out, stop = io.StringIO(), threading.Event()
    thread = threading.Thread(
        target=run_simulator,
        kwargs={
            "root": root,
            "rpc_port": 0,
            "http_port": 0,
            "auth_key_out": tmp_path / "key.pem",
            "firmware": request.param,
            "seconds_per_frame": 0.0,
            "setup_seconds": 0.0,
            "pistatus_interval": 0.5,
            "out": out,
            "stop": stop,
        },
    )
    thread.start()
    try:
        for _ in range(600):
            if "Try:" in out.getvalue():
                break
            time.sleep(0.05)
        suggestion = re.search(r"crowdsky stack (.*)$", out.getvalue(), re.M)
        assert suggestion, out.getvalue()
        yield request.param, shlex.split(suggestion[1])
    finally:
        stop.set()
        thread.join()
        crowdsky.disconnect()


def test_targets_stack_and_time_on_every_firmware(
    simulator: tuple[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile, device = simulator
    assert main(["targets", *device]) == 0
    listed = capsys.readouterr().out
    assert re.search(r"^IC 434 +raw= +30 stacked= +0$", listed, re.M), listed
    assert re.search(r"^M 42 +raw= +30 stacked= +0$", listed, re.M), listed

    assert main(["stack", *device]) == 0
    stacked = capsys.readouterr().out
    for name in EXPECTED.values():
        assert f"  Renamed -> {name}" in stacked
    for target, name in EXPECTED.items():
        assert (tmp_path / "emmc" / "MyWorks" / target / name).is_file()

    assert main(["time", *device]) == 0
    shown = capsys.readouterr().out
    assert "Model:    Seestar S50" in shown
    assert f"Firmware: {VERSION[profile]}" in shown
