"""Finding Seestars on the local network the way the official app does: UDP ``scan_iscope``.

The probe is ``{"id": 1, "method": "scan_iscope", "params": ""}`` sent to UDP port 4720 (protocol
reference §1.1), by default to the local broadcast addresses; each Seestar answers the sender with
one datagram. The answer's shape is not published: it is read like a JSON-RPC reply whose
``result`` may hold ``product_model``, ``sn``, ``ip`` and ``tcp_client_num`` (the fields
third-party discovery code reads), and a firmware version when present; anything else is ignored
and a datagram that is not such a reply is skipped.

:func:`encode_probe` and :func:`decode_reply` are sans-I/O; :func:`scan` is the small socket
loop. The firmware is not in the known answer; :func:`ask_firmware` asks the device for it over
JSON-RPC.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from crowdsky.errors import CrowdskyError

__all__ = [
    "DISCOVERY_PORT",
    "DiscoveredSeestar",
    "ask_firmware",
    "broadcast_targets",
    "decode_reply",
    "encode_probe",
    "scan",
]

#: The UDP port Seestars listen on for ``scan_iscope``.
DISCOVERY_PORT = 4720
_MAX_DATAGRAM = 65536


@attrs.frozen
class DiscoveredSeestar:
    """One Seestar that answered a probe.

    Parameters
    ----------
    address : str
        Where the answer came from (the address to pass to ``--host``).
    model, serial : str or None
        ``product_model`` and ``sn`` of the answer.
    firmware : str or None
        The firmware, when the answer or a later question told it.
    clients : int or None
        ``tcp_client_num``: control connections open on the device.
    """

    address: str
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None
    clients: int | None = None


def encode_probe(request_id: int = 1) -> bytes:
    r"""The ``scan_iscope`` datagram.

    Examples
    --------
    >>> encode_probe()
    b'{"id": 1, "method": "scan_iscope", "params": ""}\r\n'
    """
    body = json.dumps({"id": request_id, "method": "scan_iscope", "params": ""})
    return body.encode("ascii") + b"\r\n"


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def decode_reply(datagram: bytes, sender: str) -> DiscoveredSeestar | None:
    """The Seestar a ``scan_iscope`` answer describes; ``None`` for anything else.

    Examples
    --------
    >>> reply = b'{"method": "scan_iscope", "result": {"product_model": "Seestar S50", "sn": "5e"}}'
    >>> found = decode_reply(reply, "192.168.1.83")
    >>> found.address, found.model, found.serial, found.firmware
    ('192.168.1.83', 'Seestar S50', '5e', None)
    >>> decode_reply(b"not json", "192.168.1.83") is None
    True
    """
    try:
        frame = json.loads(datagram.decode("utf-8").strip())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(frame, dict) or frame.get("method") != "scan_iscope":
        return None
    result = frame.get("result")
    if not isinstance(result, dict):
        return None
    clients = result.get("tcp_client_num")
    firmware = _text(result.get("firmware_ver_string")) or _text(result.get("firmware_ver_int"))
    return DiscoveredSeestar(
        address=sender,
        model=_text(result.get("product_model")),
        serial=_text(result.get("sn")),
        firmware=firmware,
        clients=clients if isinstance(clients, int) and not isinstance(clients, bool) else None,
    )


def _primary_address() -> str | None:
    """The address of this computer on its default route (nothing is sent to find it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.254.254.254", 1))  # UDP connect: no datagram leaves
            address: str = sock.getsockname()[0]
        except OSError:
            return None
    return address


def broadcast_targets(port: int = DISCOVERY_PORT) -> list[tuple[str, int]]:
    """The local broadcast addresses to probe: the limited one and the /24 of the main address."""
    targets = [("255.255.255.255", port)]
    primary = _primary_address()
    if primary and not primary.startswith("127."):
        targets.append((primary.rsplit(".", 1)[0] + ".255", port))
    return targets


def scan(targets: Sequence[tuple[str, int]], *, timeout: float = 2.0) -> list[DiscoveredSeestar]:
    """Send the probe to each of ``targets`` and collect answers for ``timeout`` seconds.

    Parameters
    ----------
    targets : sequence of (address, port)
        Where to send the probe (broadcast or single addresses).
    timeout : float
        Seconds to wait for answers after sending.

    Returns
    -------
    list of DiscoveredSeestar
        One per answering address and serial, in order of answer.

    Raises
    ------
    CrowdskyError
        When the probe cannot be sent.
    """
    found: dict[tuple[str, str | None], DiscoveredSeestar] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            for target in targets:
                sock.sendto(encode_probe(), target)
        except OSError as exc:
            raise CrowdskyError(f"Could not send the discovery probe: {exc}") from exc
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                datagram, sender = sock.recvfrom(_MAX_DATAGRAM)
            except TimeoutError:
                break
            except OSError:
                continue  # an ICMP "port unreachable" from a single address: keep listening
            seestar = decode_reply(datagram, sender[0])
            if seestar is not None:
                found.setdefault((seestar.address, seestar.serial), seestar)
    return list(found.values())


def ask_firmware(
    seestar: DiscoveredSeestar,
    *,
    port: int = 4700,
    key_path: str | Path | None = None,
    timeout: float = 5.0,
) -> DiscoveredSeestar:
    """``seestar`` with its firmware as the device reports it over JSON-RPC (unchanged if not).

    Nothing but the firmware question is asked; a device that does not answer keeps
    ``firmware=None``.
    """
    from crowdsky.adapters.seestar.network import NetworkSeestar

    if seestar.firmware is not None:
        return seestar
    # A mounted share that is never used keeps SMB out of a question about the firmware.
    device = NetworkSeestar(
        seestar.address, port=port, key_path=key_path, mounted_share=".", timeout=timeout
    )
    try:
        firmware = device.firmware_info()
    except CrowdskyError:
        return seestar
    finally:
        device.close()
    if firmware is None:
        return seestar
    return attrs.evolve(seestar, firmware=firmware.text, model=seestar.model or firmware.model)
