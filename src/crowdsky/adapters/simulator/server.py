"""The network simulator: a :class:`FakeSeestar` served over TCP JSON-RPC and HTTP on loopback."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

from crowdsky.adapters.clock import SystemClock
from crowdsky.adapters.device_model.batch_stack import StackDateObs
from crowdsky.adapters.device_model.fake import FakeSeestar, Faults
from crowdsky.adapters.device_model.night import demo_seestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.simulator.discovery import DiscoveryResponder, scan_iscope_result
from crowdsky.adapters.simulator.http_server import FileServer
from crowdsky.adapters.simulator.options import SimulatorOptions, firmware_version
from crowdsky.adapters.simulator.rpc_server import RpcServer
from crowdsky.app.ports import Clock

__all__ = ["SimulatorServer", "demo_simulator_device", "device_firmware"]


def device_firmware(profile: str) -> str:
    """The device model's firmware string for a simulator profile (``"old"`` → ``"4.27"``).

    Examples
    --------
    >>> device_firmware("7.32"), device_firmware("old")
    ('7.32', '4.27')
    """
    major, minor = firmware_version(profile)
    return f"{major}.{minor:02d}"


def demo_simulator_device(
    root: Path,
    *,
    firmware: str = "7.75",
    clock: Clock | None = None,
    seconds_per_frame: float = 0.5,
    setup_seconds: float = 1.0,
    zone: str = "Europe/Vienna",
    report_zone: bool = True,
    faults: Faults | None = None,
    seed: int = 0,
    stack_date_obs: StackDateObs = StackDateObs.FIRST_FRAME,
    telescope: str = "S50_5eed0042",
) -> FakeSeestar:
    """The spec's demo night laid down as real files under ``root/MyWorks``.

    Parameters
    ----------
    root : Path
        The directory that plays the eMMC root.
    firmware : str
        A simulator firmware profile (see :class:`SimulatorOptions`); the device model runs the
        matching firmware (full paths for batch stacks from 7.75 on).
    clock : Clock, optional
        The device's clock; the host's by default, so batch stacks take real time.
    seconds_per_frame, setup_seconds : float
        Batch-stack timing.
    zone, report_zone, faults, seed, telescope
        Passed to :func:`~crowdsky.adapters.device_model.night.demo_seestar`.
    stack_date_obs : StackDateObs
        Whether a stack's ``DATE-OBS`` is its first frame's or the stacking time.

    Returns
    -------
    FakeSeestar
        A device whose storage is a :class:`DirectoryStorage` on ``root``.
    """
    device = demo_seestar(
        clock=clock if clock is not None else SystemClock(),
        zone=zone,
        report_zone=report_zone,
        storage=DirectoryStorage(Path(root)),
        seconds_per_frame=seconds_per_frame,
        setup_seconds=setup_seconds,
        firmware=device_firmware(firmware),
        faults=faults,
        seed=seed,
        telescope=telescope,
    )
    device.stack_date_obs = stack_date_obs
    return device


class SimulatorServer:
    """A simulated Seestar on the network: JSON-RPC (port 4700 style) and HTTP (port 80 style).

    Use it as a context manager; both listeners run in background threads until it exits.

    Parameters
    ----------
    device : FakeSeestar
        The device model; its storage should be a ``DirectoryStorage(root)`` so that HTTP serves
        the same files (and a share mounted on ``root`` changes what the device sees).
    root : Path
        The directory that plays the eMMC root (holding ``MyWorks/``).
    options : SimulatorOptions, optional
        Behaviour; the faithful defaults when omitted.
    host : str
        Address to bind (loopback by default).
    rpc_port, http_port : int
        Ports to bind; 0 (default) picks free ones, see :attr:`rpc_port` / :attr:`http_port`.
    udp_port : int or None
        Answer UDP ``scan_iscope`` discovery probes on this port of ``host`` (0: any free one,
        see :attr:`udp_port`); ``None`` (default) for no discovery responder.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     device = FakeSeestar(storage=DirectoryStorage(Path(tmp)))
    ...     with SimulatorServer(device, Path(tmp)) as sim:
    ...         sim.rpc_port > 0 and sim.http_port > 0
    True
    """

    def __init__(
        self,
        device: FakeSeestar,
        root: Path,
        options: SimulatorOptions | None = None,
        *,
        host: str = "127.0.0.1",
        rpc_port: int = 0,
        http_port: int = 0,
        udp_port: int | None = None,
    ) -> None:
        self.device = device
        self.root = Path(root)
        self._options = options if options is not None else SimulatorOptions()
        self._rpc = RpcServer(device, self._options, host, rpc_port)
        try:
            self._http = FileServer(
                self.root,
                host,
                http_port,
                honour_range=self._options.honour_range,
                faults=device.faults,
            )
        except BaseException:
            self._rpc.close()
            raise
        self.host: str = self._rpc.host
        self.rpc_port: int = self._rpc.port
        self.http_port: int = self._http.port
        self._udp: DiscoveryResponder | None = None
        if udp_port is not None:
            try:
                self._udp = DiscoveryResponder(
                    host, udp_port, self._scan_iscope_result, self._rpc.timestamp
                )
            except BaseException:
                self._rpc.close()
                self._http.close()
                raise
        #: The UDP discovery port, or ``None`` without a responder.
        self.udp_port: int | None = self._udp.port if self._udp is not None else None
        self._running = False

    @property
    def options(self) -> SimulatorOptions:
        """The behaviour; assign new options to switch transport faults on or off at runtime.

        A new value reaches open connections at their next request (latency, drops,
        ``coalesce_and_split``, half-open, silent methods) and new connections (idle drop).
        Listener settings (``honour_range``, ``max_clients``, event intervals) keep the values
        the server started with.
        """
        return self._options

    @options.setter
    def options(self, options: SimulatorOptions) -> None:
        self._options = options
        self._rpc.options = options

    @property
    def http_url(self) -> str:
        """``http://host:port`` of the file server."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def client_count(self) -> int:
        """JSON-RPC connections currently open."""
        return self._rpc.client_count

    def _scan_iscope_result(self) -> dict[str, object]:
        telescope = self.device.telescope
        serial = telescope.rsplit("_", 1)[-1] if "_" in telescope else telescope
        return scan_iscope_result(self.device.instrument, serial, self.host, self.client_count)

    def broadcast_event(self, name: str, fields: dict[str, object]) -> None:
        """Push an arbitrary event to every connection (for tests of event handling)."""
        self._rpc.broadcast_event(name, dict(fields))

    def start(self) -> SimulatorServer:
        """Start serving (the context manager does this)."""
        if not self._running:
            self._running = True
            self._rpc.start()
            self._http.start()
            if self._udp is not None:
                self._udp.start()
        return self

    def close(self) -> None:
        """Stop both servers and close every connection; idempotent."""
        self._running = False
        self._rpc.close()
        self._http.close()
        if self._udp is not None:
            self._udp.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
