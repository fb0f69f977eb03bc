"""The real Seestar on the network: JSON-RPC on 4700, files over HTTP on 80, renames over SMB.

* :mod:`~crowdsky.adapters.seestar.network` — :class:`NetworkSeestar`, the
  :class:`~crowdsky.app.ports.Seestar` port over the network, and :func:`connect_seestar`.
* :mod:`~crowdsky.adapters.seestar.replies` — the device's JSON-RPC results read into the port's
  value types, without I/O.
* :mod:`~crowdsky.adapters.seestar.http_files` — reading files and headers from the file server.
* :mod:`~crowdsky.adapters.seestar.file_ops` — renames and deletes over SMB or a mounted share.

The JSON-RPC wire format and connection are in :mod:`crowdsky.adapters.jsonrpc`; the header
reads' kept-alive sockets in :mod:`crowdsky.adapters.direct_http`, shared with the CrowdSky
server client.
"""

from __future__ import annotations

from crowdsky.adapters.seestar.file_ops import SHARE, FileOps, MountedShareFileOps, SmbFileOps
from crowdsky.adapters.seestar.http_files import HttpFiles
from crowdsky.adapters.seestar.network import NetworkSeestar, connect_seestar

__all__ = [
    "SHARE",
    "FileOps",
    "HttpFiles",
    "MountedShareFileOps",
    "NetworkSeestar",
    "SmbFileOps",
    "connect_seestar",
]
