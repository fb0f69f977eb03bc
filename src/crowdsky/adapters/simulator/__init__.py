"""A simulated Seestar on the network: the device model behind real TCP JSON-RPC and HTTP.

:class:`SimulatorServer` serves a :class:`~crowdsky.adapters.device_model.fake.FakeSeestar`
whose files live in a directory, the way the protocol reference (§7) says a faithful simulator
must: CRLF frames in the device's exact shapes, events interleaved anywhere, the RSA handshake
with silent unverified connections, paged listings, batch stacking, and transport faults on
request (:class:`SimulatorOptions`). :func:`run_simulator` is the command-line entry point.
"""

from __future__ import annotations

from crowdsky.adapters.simulator.auth import generate_test_keypair, verify_signature
from crowdsky.adapters.simulator.http_server import FileServer, parse_range
from crowdsky.adapters.simulator.main import run_simulator
from crowdsky.adapters.simulator.methods import HANDSHAKE_METHODS, METHODS, PAGE_SIZE
from crowdsky.adapters.simulator.options import (
    FIRMWARE_PROFILES,
    SimulatorOptions,
    firmware_version,
)
from crowdsky.adapters.simulator.rpc_server import RpcServer
from crowdsky.adapters.simulator.server import (
    SimulatorServer,
    demo_simulator_device,
    device_firmware,
)

__all__ = [
    "FIRMWARE_PROFILES",
    "HANDSHAKE_METHODS",
    "METHODS",
    "PAGE_SIZE",
    "FileServer",
    "RpcServer",
    "SimulatorOptions",
    "SimulatorServer",
    "demo_simulator_device",
    "device_firmware",
    "firmware_version",
    "generate_test_keypair",
    "parse_range",
    "run_simulator",
    "verify_signature",
]
