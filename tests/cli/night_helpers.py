"""Simulated Seestars on loopback for the night's commands."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

from crowdsky.adapters.simulator.options import SimulatorOptions
from crowdsky.adapters.simulator.server import SimulatorServer, demo_simulator_device


@contextlib.contextmanager
def simulated(root: Path, *, zone: str, serial: str, seed: int) -> Iterator[SimulatorServer]:
    """A simulated Seestar with the demo night, stacking instantly, discovery on loopback."""
    device = demo_simulator_device(
        root,
        seconds_per_frame=0.0,
        setup_seconds=0.0,
        zone=zone,
        seed=seed,
        telescope=f"S50_{serial}",
    )
    options = SimulatorOptions(pistatus_interval=None)
    with SimulatorServer(device, root, options, udp_port=0) as sim:
        yield sim


def host_args(sim: SimulatorServer) -> list[str]:
    return ["--host", f"{sim.host}:{sim.rpc_port}:{sim.http_port}", "--share", str(sim.root)]


def crowdsky_names(sim: SimulatorServer) -> list[str]:
    return sorted(p.name for p in (sim.root / "MyWorks").rglob("CrowdSky_*.fit"))


def free_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
