"""The rig of ``crowdsky demo``: two simulated Seestars and a CrowdSky server, all on loopback.

Each Seestar has the demo night laid down in its own time zone (so the two nights fall on
different UTC blocks), at least one of them a zone other than this computer's; both require the
firmware 7.18+ key handshake with a key made for the run, stack fast and serve small images.
The server has one account with a password made for the run. Keys and password stay in memory
and in files under the demo folder (mode 0600); nothing prints them. Everything stops when the
context exits.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import attrs

from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.main import write_private_key
from crowdsky.adapters.simulator.options import SimulatorOptions
from crowdsky.adapters.simulator.server import SimulatorServer, demo_simulator_device

__all__ = ["DEMO_ZONES", "DemoRig", "DemoSeestar", "demo_rig", "demo_zones", "host_offset_now"]

#: Zones the demo Seestars may be in, in order of preference.
DEMO_ZONES = ("Europe/Vienna", "America/Santiago", "Asia/Tokyo")


@attrs.frozen
class DemoSeestar:
    """One simulated Seestar of the rig: its name, where it listens and its storage."""

    name: str
    zone: str
    host: str
    rpc_port: int
    http_port: int
    root: Path
    key_path: Path


@attrs.frozen
class DemoRig:
    """What :func:`demo_rig` started.

    ``password`` is made for the run; never print it (``repr`` leaves it out).
    """

    seestars: tuple[DemoSeestar, ...]
    server_url: str
    username: str
    password: str = attrs.field(repr=False)
    server_storage: Path


def demo_zones(now: datetime, host_offset_s: float, count: int = 2) -> list[str]:
    """``count`` zones of :data:`DEMO_ZONES`, those whose offset differs from the host's first.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> demo_zones(datetime(2026, 2, 27, tzinfo=UTC), 3600.0)
    ['America/Santiago', 'Asia/Tokyo']
    >>> demo_zones(datetime(2026, 2, 27, tzinfo=UTC), 0.0)
    ['Europe/Vienna', 'America/Santiago']
    """

    def same_as_host(zone: str) -> bool:
        offset = now.astimezone(ZoneInfo(zone)).utcoffset()
        return offset is not None and offset.total_seconds() == host_offset_s

    ordered = sorted(DEMO_ZONES, key=same_as_host)  # stable: preference kept otherwise
    return ordered[:count]


def _seestar(
    stack: contextlib.ExitStack, folder: Path, name: str, zone: str, serial: str, seed: int
) -> DemoSeestar:
    root = folder / name
    root.mkdir(parents=True)
    private_pem, public_pem = generate_test_keypair()
    key_path = folder / "keys" / f"{name}.pem"
    key_path.parent.mkdir(exist_ok=True)
    write_private_key(key_path, private_pem)
    device = demo_simulator_device(
        root,
        seconds_per_frame=0.0,
        setup_seconds=0.1,
        zone=zone,
        seed=seed,
        telescope=f"S50_{serial}",
    )
    options = SimulatorOptions(auth_public_key=public_pem, pistatus_interval=None)
    sim = stack.enter_context(SimulatorServer(device, root, options))
    return DemoSeestar(name, zone, sim.host, sim.rpc_port, sim.http_port, root, key_path)


@contextlib.contextmanager
def demo_rig(folder: Path, zones: Sequence[str]) -> Iterator[DemoRig]:
    """Start the rig with its files under ``folder`` (which must be empty or absent).

    Parameters
    ----------
    folder : Path
        Holds each Seestar's storage (``<name>/MyWorks``), the keys and the server's files.
    zones : sequence of str
        One IANA zone per simulated Seestar.
    """
    folder.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    with contextlib.ExitStack() as stack:
        seestars = tuple(
            _seestar(stack, folder, f"seestar-{i + 1}", zone, f"demo{i + 1:04d}", seed=i)
            for i, zone in enumerate(zones)
        )
        storage = folder / "server"
        server = stack.enter_context(LoopbackCrowdskyServer(storage, users={"demo": password}))
        yield DemoRig(seestars, server.url, "demo", password, storage)


def host_offset_now() -> tuple[datetime, float]:
    """Now, and this computer's UTC offset in seconds."""
    now = datetime.now(UTC)
    offset = now.astimezone().utcoffset()
    return now, offset.total_seconds() if offset is not None else 0.0
