"""The in-memory Seestar: a device model true to the protocol reference, the simulator's engine.

* :mod:`~crowdsky.adapters.device_model.fake` — :class:`FakeSeestar`, the
  :class:`~crowdsky.app.ports.Seestar` port in memory, with injectable :class:`Faults`.
* :mod:`~crowdsky.adapters.device_model.batch_stack` — the on-device batch stack: timing,
  progress and the stacked product.
* :mod:`~crowdsky.adapters.device_model.storage` — where its files live: memory or a directory.
* :mod:`~crowdsky.adapters.device_model.fits_files` — FITS and JPEG bytes as a Seestar writes them.
* :mod:`~crowdsky.adapters.device_model.sub_frames` — raw sub-frame names and headers.
* :mod:`~crowdsky.adapters.device_model.night` — observing nights laid down on a model, and the
  demo night behind :func:`crowdsky.use_simulator`.

The same model serves the network simulator (:mod:`crowdsky.adapters.simulator`).
"""

from __future__ import annotations

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.faults import Faults
from crowdsky.adapters.device_model.night import (
    DEMO_NIGHT,
    DEMO_TARGETS,
    Site,
    Target,
    demo_seestar,
    lay_down_night,
    lay_down_session,
)
from crowdsky.adapters.device_model.storage import DeviceStorage, DirectoryStorage, MemoryStorage

__all__ = [
    "DEMO_NIGHT",
    "DEMO_TARGETS",
    "DeviceStorage",
    "DirectoryStorage",
    "FakeSeestar",
    "Faults",
    "MemoryStorage",
    "Site",
    "Target",
    "demo_seestar",
    "lay_down_night",
    "lay_down_session",
]
