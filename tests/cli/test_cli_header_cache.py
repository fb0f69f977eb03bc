"""``crowdsky plan`` twice against the network simulator: the second run reads no header.

Every HTTP read of a file on the simulator passes its fault check; a check that records the
path and never faults counts the header reads the simulator serves.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from crowdsky.adapters.header_cache import HEADER_CACHE_NAME
from crowdsky.cli import main

from .night_helpers import simulated


class ServedReads:
    """A fault rule that never fails a read and records each path read over HTTP."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, path: str) -> bool:
        with self._lock:
            self.paths.append(path)
        return False

    def of_subs(self) -> list[str]:
        with self._lock:
            return [path for path in self.paths if "_sub/" in path]


def test_plan_twice_reads_the_headers_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = Path(os.environ["CROWDSKY_STATE_DIR"])  # the tests' own (tests/conftest.py)
    with simulated(tmp_path / "sim", zone="Europe/Vienna", serial="cccc0003", seed=3) as sim:
        served = ServedReads()
        sim.device.faults.read_fails = served  # type: ignore[assignment]
        argv = ["plan", "IC 434", "--host", sim.host, "--port", str(sim.rpc_port)]
        argv += ["--http-port", str(sim.http_port), "--share", str(sim.root), "--min-exptime", "0"]
        assert main(argv) == 0
        first = capsys.readouterr().out
        read_first = served.of_subs()
        assert read_first
        assert (state / HEADER_CACHE_NAME).is_file()
        served.paths.clear()
        assert main(argv) == 0
        assert capsys.readouterr().out == first
        assert served.of_subs() == []

        (state / HEADER_CACHE_NAME).write_text("{damaged", encoding="utf-8")
        assert main(argv) == 0  # a damaged cache is only read again, never a failure
        assert capsys.readouterr().out == first
        assert sorted(served.of_subs()) == sorted(read_first)
    kept = json.loads((state / HEADER_CACHE_NAME).read_text(encoding="utf-8"))
    assert {item["folder"] for item in kept["folders"]} == {"IC 434_sub"}
