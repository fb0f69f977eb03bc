"""A CrowdSky server on 127.0.0.1 to test against: real HTTP, real files, injectable faults.

:class:`LoopbackCrowdskyServer` serves the endpoints the client uses from a
:class:`LoopbackStore` (users' stacks, raw sessions, faults, the request bodies it saw);
:func:`serve_forever` is ``crowdsky serve``.
"""

from __future__ import annotations

from crowdsky.adapters.collab.loopback.server import LoopbackCrowdskyServer, serve_forever
from crowdsky.adapters.collab.loopback.store import LoopbackFaults, LoopbackStore

__all__ = ["LoopbackCrowdskyServer", "LoopbackFaults", "LoopbackStore", "serve_forever"]
