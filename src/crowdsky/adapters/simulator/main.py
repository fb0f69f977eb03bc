"""``crowdsky simulate``: serve a demo Seestar on the network until Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.device_model.batch_stack import StackDateObs
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.simulator.auth import generate_test_keypair
from crowdsky.adapters.simulator.options import SimulatorOptions
from crowdsky.adapters.simulator.server import (
    SimulatorServer,
    demo_simulator_device,
    device_firmware,
)
from crowdsky.domain.device_paths import ROOT_FOLDER
from crowdsky.errors import PlanError

__all__ = ["run_simulator", "write_private_key"]


def write_private_key(path: Path, private_pem: bytes) -> None:
    """Write a PEM private key readable by its owner only (mode 0600); never overwrite a file.

    Raises
    ------
    PlanError
        When ``path`` exists (it might be someone's real key) or cannot be written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise PlanError(f"{path} exists; the simulator will not overwrite a key file.") from exc
    except OSError as exc:
        raise PlanError(f"Cannot write the simulator's key to {path}: {exc}") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)


def _device(
    root: Path,
    firmware: str,
    seconds_per_frame: float,
    setup_seconds: float,
    zone: str,
    stack_date_obs: StackDateObs,
) -> FakeSeestar:
    """A demo night in ``root``, or the files already there when ``root/MyWorks`` has folders."""
    storage = DirectoryStorage(root)
    if storage.folders():
        return FakeSeestar(
            clock=SystemClock(),
            zone=zone,
            storage=storage,
            seconds_per_frame=seconds_per_frame,
            setup_seconds=setup_seconds,
            firmware=device_firmware(firmware),
            stack_date_obs=stack_date_obs,
        )
    return demo_simulator_device(
        root,
        firmware=firmware,
        seconds_per_frame=seconds_per_frame,
        setup_seconds=setup_seconds,
        zone=zone,
        stack_date_obs=stack_date_obs,
    )


@contextlib.contextmanager
def _root_dir(root: Path | None) -> Iterator[Path]:
    if root is not None:
        yield Path(root)
        return
    with tempfile.TemporaryDirectory(prefix="crowdsky-sim-") as tmp:
        yield Path(tmp)


def run_simulator(
    *,
    root: Path | None = None,
    host: str = "127.0.0.1",
    rpc_port: int = 4700,
    http_port: int = 8080,
    udp_port: int | None = None,
    auth_key_out: Path | None = None,
    firmware: str = "7.75",
    seconds_per_frame: float = 0.5,
    setup_seconds: float = 1.0,
    zone: str = "Europe/Vienna",
    idle_drop_seconds: float | None = None,
    pistatus_interval: float | None = 2.0,
    stack_date_obs: StackDateObs = StackDateObs.FIRST_FRAME,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve a simulated Seestar with the demo night until Ctrl-C (or ``stop`` is set).

    Parameters
    ----------
    root : Path or None
        Directory playing the eMMC root. The demo night is laid down there unless
        ``root/MyWorks`` already has folders (then those files are served as they are). A
        temporary directory, removed at exit, when ``None``.
    host : str
        Address to bind; loopback by default.
    rpc_port, http_port : int
        JSON-RPC and HTTP ports (0: any free port; the line printed says which).
    udp_port : int or None
        Answer UDP ``scan_iscope`` discovery probes on this port (the device: 4720; 0: any free
        port); none by default.
    auth_key_out : Path or None
        When given, a fresh test key pair is made, its private key written there (mode 0600;
        an existing file is never overwritten) and the simulator requires the handshake on
        firmware 7.32+. The key itself is never printed.
    firmware : str
        Firmware profile: ``"7.75"``, ``"7.32"``, ``"7.18"``, ``"7.06"``, ``"6.70"``, ``"old"``
        or ``"2.x"`` (see :class:`SimulatorOptions`).
    seconds_per_frame, setup_seconds : float
        Batch-stack timing of the device.
    zone : str
        The device's IANA time zone.
    idle_drop_seconds : float or None
        Drop connections idle this long (the firmware: ~16 s); never by default.
    pistatus_interval : float or None
        Seconds between the device's periodic events.
    stack_date_obs : StackDateObs
        Whether a stack's ``DATE-OBS`` is its first frame's (default) or the stacking time.
    out : TextIO, optional
        Where the one status line goes (stdout by default).
    stop : threading.Event, optional
        Stop serving when set (for tests and embedding); otherwise serve until Ctrl-C.

    Raises
    ------
    PlanError
        For an unknown firmware profile or a key file that exists.
    """
    out = out if out is not None else sys.stdout
    try:
        options = SimulatorOptions(
            firmware=firmware,
            idle_drop_seconds=idle_drop_seconds,
            pistatus_interval=pistatus_interval,
        )
    except ValueError as exc:
        raise PlanError(str(exc)) from exc
    if auth_key_out is not None:
        private_pem, public_pem = generate_test_keypair()
        write_private_key(Path(auth_key_out), private_pem)
        options = SimulatorOptions(
            auth_public_key=public_pem,
            firmware=firmware,
            idle_drop_seconds=idle_drop_seconds,
            pistatus_interval=pistatus_interval,
        )
    with _root_dir(root) as where:
        device = _device(where, firmware, seconds_per_frame, setup_seconds, zone, stack_date_obs)
        with SimulatorServer(
            device,
            where,
            options,
            host=host,
            rpc_port=rpc_port,
            http_port=http_port,
            udp_port=udp_port,
        ) as sim:
            print(_banner(sim, where, auth_key_out), file=out, flush=True)
            waiter = stop if stop is not None else threading.Event()
            with contextlib.suppress(KeyboardInterrupt):
                while not waiter.wait(0.5):
                    pass


def _banner(sim: SimulatorServer, root: Path, key: Path | None) -> str:
    # The storage directory stands in for the mounted "EMMC Images" share (renames, deletes).
    point = (
        f"crowdsky stack --host {sim.host} --port {sim.rpc_port} --http-port {sim.http_port} "
        f'--share "{root}"'
    )
    if key is not None:
        point += f' --key "{key}"'
    udp = f", discovery UDP {sim.host}:{sim.udp_port}" if sim.udp_port is not None else ""
    return (
        f"Simulated Seestar (firmware {sim.options.firmware}): JSON-RPC {sim.host}:{sim.rpc_port}, "
        f"files {sim.http_url}/{ROOT_FOLDER}/ from {root}{udp}. Ctrl-C stops. Try:\n  {point}"
    )
