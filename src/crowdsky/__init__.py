"""crowdsky: clock-aligned time-block stacking on ZWO Seestar telescopes.

Raw sub-frames are grouped into clock-aligned UTC blocks (15 minutes by default), each block is
batch-stacked on the telescope, and the output is renamed
``CrowdSky_<frames>_<target>_<exposure>_<filter>_<YYYYMMDD.CC>_HP<pixel>.fit``. Re-runs are
idempotent.

Choose a telescope first; nothing connects at import time::

    import crowdsky
    crowdsky.use_simulator()            # the built-in in-memory Seestar with a demo night
    crowdsky.stack_blocks("IC 434", dry_run=True)

Sub-frames already copied to this computer are stacked here instead, after
``crowdsky.use_local_archive("/path/to/MyWorks")`` (the ``[stack]`` extra).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from crowdsky.errors import (
    BatchStackError,
    CrowdskyError,
    CrowdskyWarning,
    DeviceTimeWarning,
    HeaderReadError,
    ListingIncompleteError,
    NoSeestarError,
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
    UploadUnconfirmed,
)

if TYPE_CHECKING:
    from crowdsky.api import (
        configure_server,
        connect,
        download_stack,
        find_unstacked_blocks,
        list_stacks,
        list_targets,
        purge_crowdsky_stacks,
        service,
        set_credentials,
        stack_all,
        stack_blocks,
        upload_all_stacks,
        upload_stack,
        use_local_archive,
        use_simulator,
    )
    from crowdsky.app.service import Crowdsky
    from crowdsky.app.stacking import StackOptions
    from crowdsky.domain import SkyTiling
    from crowdsky.session import current_seestar, disconnect, use

# Loaded on first use (PEP 562), so that ``import crowdsky`` and the command line start fast:
# the telescope and server functions bring in the application and its adapters.
_LAZY = {
    "configure_server": "crowdsky.api",
    "connect": "crowdsky.api",
    "download_stack": "crowdsky.api",
    "find_unstacked_blocks": "crowdsky.api",
    "list_stacks": "crowdsky.api",
    "list_targets": "crowdsky.api",
    "purge_crowdsky_stacks": "crowdsky.api",
    "service": "crowdsky.api",
    "set_credentials": "crowdsky.api",
    "stack_all": "crowdsky.api",
    "stack_blocks": "crowdsky.api",
    "upload_all_stacks": "crowdsky.api",
    "upload_stack": "crowdsky.api",
    "use_local_archive": "crowdsky.api",
    "use_simulator": "crowdsky.api",
    "Crowdsky": "crowdsky.app.service",
    "StackOptions": "crowdsky.app.stacking",
    "SkyTiling": "crowdsky.domain",
    "current_seestar": "crowdsky.session",
    "disconnect": "crowdsky.session",
    "use": "crowdsky.session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crowdsky' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "BatchStackError",
    "Crowdsky",
    "CrowdskyError",
    "CrowdskyWarning",
    "DeviceTimeWarning",
    "HeaderReadError",
    "ListingIncompleteError",
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
    "UploadUnconfirmed",
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
    "use_local_archive",
    "use_simulator",
]

__version__ = "0.1.0"
