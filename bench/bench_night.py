"""Measure ``crowdsky run``: the night's wall time against the device's stacking time.

Run: ``python bench/bench_night.py``. One simulated Seestar (the demo night: 47 blocks to stack,
48 stacks to upload) on loopback, reached through the network adapters with the key handshake,
and the loopback CrowdSky server answering each request after a delay (a server across the
internet). Three fresh runs:

* **stack only**: ``run_night`` without a server: the device's stacking time plus the control
  link's own cost, the floor for the night;
* **pipelined**: ``run_night`` with the server: each stack downloaded and uploaded while the next
  block stacks;
* **one after the other**: stack only, then :func:`crowdsky.bootstrap.upload_stacks`: what the
  night costs without the overlap.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from crowdsky import bootstrap
from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.console import QuietProgress
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.main import write_private_key
from crowdsky.adapters.simulator.options import SimulatorOptions
from crowdsky.adapters.simulator.server import SimulatorServer, demo_simulator_device
from crowdsky.app.night import Telescope

SECONDS_PER_FRAME = 0.005
SETUP_SECONDS = 0.2
SERVER_DELAY = 0.15
PASSWORD = "bench-only"


@contextlib.contextmanager
def rig(folder: Path) -> Iterator[tuple[Telescope, LoopbackCrowdskyServer, Path]]:
    root = folder / "seestar"
    root.mkdir(parents=True)
    private_pem, public_pem = generate_test_keypair()
    key = folder / "key.pem"
    write_private_key(key, private_pem)
    device = demo_simulator_device(
        root, seconds_per_frame=SECONDS_PER_FRAME, setup_seconds=SETUP_SECONDS
    )
    options = SimulatorOptions(auth_public_key=public_pem, pistatus_interval=None)
    with (
        SimulatorServer(device, root, options) as sim,
        LoopbackCrowdskyServer(folder / "server", users={"bench": PASSWORD}) as server,
    ):
        server.faults.delay = SERVER_DELAY
        telescope = bootstrap.network_telescope(
            sim.host,
            name="bench",
            key_path=key,
            mounted_share=root,
            port=sim.rpc_port,
            http_port=sim.http_port,
        )
        yield telescope, server, folder / "stacks"


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> int:
    ports = bootstrap.night_ports(progress_for=lambda _name: QuietProgress())
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with rig(Path(tmp) / "a") as (telescope, _server, dest):
            times["stack only"] = _timed(
                lambda: bootstrap.run_night([telescope], None, dest=dest, ports=ports)
            )
        with (
            rig(Path(tmp) / "b") as (telescope, server, dest),
            bootstrap.collab_server(server.url, username="bench", password=PASSWORD) as client,
        ):
            result: dict[str, object] = {}

            def pipelined() -> None:
                result.update(bootstrap.run_night([telescope], client, dest=dest, ports=ports))

            times["pipelined"] = _timed(pipelined)
            uploaded = result["telescopes"][0]["files_uploaded"]  # type: ignore[index]
        with (
            rig(Path(tmp) / "c") as (telescope, server, dest),
            bootstrap.collab_server(server.url, username="bench", password=PASSWORD) as client,
        ):

            def one_after_the_other() -> None:
                bootstrap.run_night([telescope], None, dest=dest, ports=ports)
                with contextlib.closing(telescope.open()) as seestar:  # type: ignore[type-var]
                    bootstrap.upload_stacks(
                        client, seestar=seestar, dest=dest / "bench", progress=QuietProgress()
                    )

            times["one after the other"] = _timed(one_after_the_other)
    floor = times["stack only"]
    print(
        f"demo night, 47 blocks stacked and {uploaded} stacks uploaded; device "
        f"{SETUP_SECONDS}s + {SECONDS_PER_FRAME}s/frame, server {SERVER_DELAY}s per request"
    )
    for name, seconds in times.items():
        print(f"{name:22s} {seconds:6.1f} s  ({seconds / floor:4.2f} x stack only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
