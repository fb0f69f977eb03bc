"""The simulator's UDP discovery responder (port 4720 style): ``scan_iscope`` answered.

Clients find a Seestar by sending ``{"id": 1, "method": "scan_iscope", "params": ""}`` to UDP
port 4720 (protocol reference §1.1; the official app and seestar_alp broadcast it, the latter
also to satisfy guest mode, §1.8). The device answers the sender with one datagram. Its shape is
not published: the simulator answers like a JSON-RPC reply (``jsonrpc``, ``Timestamp``,
``method``, ``result``, ``code``, the request's ``id``), ``result`` holding ``product_model``,
``sn``, ``ip`` and ``tcp_client_num`` (the fields third-party discovery code reads; Inferred).
Datagrams that are not a ``scan_iscope`` request get no answer.

The responder binds one address (loopback by default); it never sends a broadcast.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

from crowdsky.adapters.jsonrpc import encode_reply

__all__ = ["DiscoveryResponder", "scan_iscope_result"]

_JOIN_TIMEOUT = 5.0
_MAX_DATAGRAM = 65536


def scan_iscope_result(
    product_model: str, serial: str, ip: str, tcp_client_num: int
) -> dict[str, Any]:
    """The ``result`` of a ``scan_iscope`` reply.

    Examples
    --------
    >>> scan_iscope_result("Seestar S50", "5eed0042", "127.0.0.1", 0)["product_model"]
    'Seestar S50'
    """
    return {
        "product_model": product_model,
        "sn": serial,
        "ip": ip,
        "tcp_client_num": tcp_client_num,
    }


def _scan_request(datagram: bytes) -> dict[str, Any] | None:
    """The request in ``datagram`` when it is a ``scan_iscope``; ``None`` otherwise."""
    try:
        frame = json.loads(datagram.decode("utf-8").strip())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(frame, dict) or frame.get("method") != "scan_iscope":
        return None
    return frame


class DiscoveryResponder:
    """Answers ``scan_iscope`` datagrams on ``(host, port)`` (port 0: any free port).

    Parameters
    ----------
    host : str
        Address to bind.
    port : int
        UDP port to bind; see :attr:`port` for the one bound.
    result : callable
        Makes the reply's ``result`` (called per request, so it is current).
    timestamp : callable
        The device's ``Timestamp`` (seconds since boot).
    """

    def __init__(
        self,
        host: str,
        port: int,
        result: Callable[[], dict[str, Any]],
        timestamp: Callable[[], float],
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self._sock.settimeout(0.1)
        self.host: str = self._sock.getsockname()[0]
        self.port: int = self._sock.getsockname()[1]
        self._result = result
        self._timestamp = timestamp
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="sim-udp")

    def start(self) -> None:
        """Start answering."""
        self._thread.start()

    def close(self) -> None:
        """Stop answering and release the port; idempotent."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(_JOIN_TIMEOUT)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, sender = self._sock.recvfrom(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                return
            request = _scan_request(datagram)
            if request is None:
                continue
            reply = encode_reply(
                request.get("id"), "scan_iscope", self._result(), timestamp=self._timestamp()
            )
            with contextlib.suppress(OSError):
                self._sock.sendto(reply, sender)
