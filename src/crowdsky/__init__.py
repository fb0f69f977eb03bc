"""crowdsky: clock-aligned time-block stacking on ZWO Seestar telescopes.

Raw sub-frames are grouped into clock-aligned UTC blocks (15 minutes by default), each block is
batch-stacked on the telescope, and the output is renamed
``CrowdSky_<frames>_<target>_<exposure>_<filter>_<YYYYMMDD.CC>_HP<pixel>.fit``. Re-runs are
idempotent.

Choose a telescope first; nothing connects at import time::

    import crowdsky
    crowdsky.use_simulator()            # the built-in in-memory Seestar with a demo night
    crowdsky.stack_blocks("IC 434", dry_run=True)
"""

from __future__ import annotations

from typing import Any

from crowdsky.api import (
    find_unstacked_blocks,
    list_targets,
    purge_crowdsky_stacks,
    service,
    stack_all,
    stack_blocks,
)
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import StackOptions
from crowdsky.domain import SkyTiling
from crowdsky.errors import (
    BatchStackError,
    CrowdskyError,
    CrowdskyWarning,
    DeviceTimeWarning,
    PlanError,
    SeestarAuthError,
    SeestarConnectionError,
    SeestarError,
    SeestarRpcError,
    ServerAuthError,
    ServerError,
    ServerProtocolError,
    ServerRejected,
    ServerUnavailable,
    StorageError,
    UnknownTargetError,
)
from crowdsky.serverapi import (
    configure_server,
    download_stack,
    list_stacks,
    set_credentials,
    upload_all_stacks,
    upload_stack,
)
from crowdsky.session import NoSeestarError, current_seestar, disconnect, use

__all__ = [
    "BatchStackError",
    "Crowdsky",
    "CrowdskyError",
    "CrowdskyWarning",
    "DeviceTimeWarning",
    "NoSeestarError",
    "PlanError",
    "SeestarAuthError",
    "SeestarConnectionError",
    "SeestarError",
    "SeestarRpcError",
    "ServerAuthError",
    "ServerError",
    "ServerProtocolError",
    "ServerRejected",
    "ServerUnavailable",
    "SkyTiling",
    "StackOptions",
    "StorageError",
    "UnknownTargetError",
    "configure_server",
    "connect",
    "current_seestar",
    "disconnect",
    "download_stack",
    "find_unstacked_blocks",
    "list_stacks",
    "list_targets",
    "purge_crowdsky_stacks",
    "service",
    "set_credentials",
    "stack_all",
    "stack_blocks",
    "upload_all_stacks",
    "upload_stack",
    "use",
    "use_simulator",
]

__version__ = "0.1.0"


def use_simulator(**options: Any) -> Any:
    """Use the built-in in-memory Seestar, loaded with a demo night, and return it.

    Parameters
    ----------
    **options
        Passed to :func:`crowdsky.adapters.device_model.night.demo_seestar` (for example a
        fault-injecting configuration).

    Returns
    -------
    FakeSeestar
        The simulated telescope, now the one the module-level functions act on.
    """
    from crowdsky.adapters.device_model.night import demo_seestar

    seestar = demo_seestar(**options)
    use(seestar)
    return seestar


def connect(
    host: str,
    *,
    key_path: str | None = None,
    mounted_share: str | None = None,
    **options: Any,
) -> Any:
    """Connect to a real Seestar and make it the one the module-level functions act on.

    Parameters
    ----------
    host : str
        The telescope's address (``"192.168.1.83"``, ``"seestar.local"``).
    key_path : str, optional
        PEM private key for firmware 7.18+ authentication; by default ``$SEESTAR_KEY_PATH`` or
        ``~/.config/crowdsky/seestar_key.pem``. Firmware without authentication needs none.
    mounted_share : str, optional
        Directory where the operating system mounted the Seestar's ``EMMC Images`` share; used
        for renames and deletes instead of SMB on port 445.
    **options
        Passed to :func:`crowdsky.adapters.seestar.network.connect_seestar` (ports, timeouts).

    Returns
    -------
    NetworkSeestar
        The connected telescope.
    """
    from crowdsky.adapters.seestar.network import connect_seestar

    seestar = connect_seestar(host, key_path=key_path, mounted_share=mounted_share, **options)
    disconnect()
    use(seestar)
    return seestar
