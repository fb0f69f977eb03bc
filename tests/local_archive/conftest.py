"""A night laid down as real files, and a test double of the local stacker.

``fake_stacker`` stands in for ``crowdsky.adapters.local_stack.stack_block`` (another module's
job, tested there): it writes a valid device-format stack, the plain mean of the subs as three
equal planes, with the device's keywords, atomically, reporting each frame and stopping when
cancelled. It is a test double only.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import attrs
import numpy as np
import pytest
from astropy.io import fits

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.night import lay_down_session
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.device_model.sub_frames import DEMO_TARGETS
from crowdsky.domain import local_to_utc
from crowdsky.errors import BatchStackError

MORNING = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)
_TARGETS = {t.name: t for t in DEMO_TARGETS}

#: (target, first DATE-OBS in Vienna wall time, frames, exposure, filter)
NIGHT = (
    ("M 42", datetime(2026, 2, 27, 20, 15, 3), 80, 10.0, "IRCUT"),
    ("IC 434", datetime(2026, 2, 27, 21, 22, 56), 158, 10.0, "LP"),
)


@attrs.frozen
class FakeStackResult:
    output: Path
    kept: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...] = ()


def fake_stacker(
    paths: Sequence[Path],
    output: Path,
    *,
    on_frame: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> FakeStackResult:
    """Test double: the mean of the subs as a device-format stack (see the module docstring)."""
    total = np.zeros(fits.getdata(paths[0]).shape, dtype=np.float64)
    headers = []
    for done, path in enumerate(paths, start=1):
        if cancelled is not None and cancelled():
            raise BatchStackError("cancelled")
        with fits.open(path) as hdul:
            total += hdul[0].data
            headers.append(hdul[0].header)
        if on_frame is not None:  # the real stacker's steps: each frame read, then combined
            on_frame(done, 2 * len(paths))
    if on_frame is not None:
        on_frame(2 * len(paths), 2 * len(paths))
    mean = np.round(total / len(paths)).astype(np.uint16)
    first = headers[0]
    hdu = fits.PrimaryHDU(np.stack([mean, mean, mean]))
    for key in ("DATE-OBS", "RA", "DEC", "OBJECT", "FILTER", "INSTRUME", "TELESCOP"):
        if key in first:
            hdu.header[key] = first[key]
    hdu.header["STACKCNT"] = len(paths)
    hdu.header["EXPTIME"] = first["EXPTIME"]
    hdu.header["TOTALEXP"] = len(paths) * first["EXPTIME"]
    part = output.with_name(output.name + ".part")
    hdu.writeto(part)
    os.replace(part, output)
    output.with_name(output.name.rsplit(".", 1)[0] + "_thn.jpg").write_bytes(b"\xff\xd8\xff\xd9")
    return FakeStackResult(output, tuple(p.name for p in paths))


class BlockingStacker:
    """Test double that works frame by frame until cancelled (for stop and Ctrl-C)."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def __call__(
        self,
        paths: Sequence[Path],
        output: Path,
        *,
        on_frame: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> FakeStackResult:
        assert cancelled is not None
        output.with_name(output.name + ".part").write_bytes(b"half a stack")
        self.started.set()
        while not cancelled():
            threading.Event().wait(0.01)
        output.with_name(output.name + ".part").unlink()
        raise BatchStackError("cancelled")


def lay_night(root: Path) -> FakeSeestar:
    """The :data:`NIGHT` on an in-memory Seestar whose files are real, under ``root/MyWorks``."""
    device = FakeSeestar(
        clock=FakeClock(MORNING), zone="Europe/Vienna", storage=DirectoryStorage(root)
    )
    for name, first, frames, exposure, filter in NIGHT:
        lay_down_session(
            device,
            _TARGETS[name],
            first_date_obs=local_to_utc(first, device.tz),
            frames=frames,
            exposure_s=exposure,
            filter=filter,
        )
    return device


@pytest.fixture(scope="session")
def night_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("night") / "seestar"
    lay_night(root)
    return root


@pytest.fixture
def night(night_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the night's tree: ``<root>/MyWorks/<target>_sub/Light_*.fit``."""
    import shutil

    root = tmp_path / "copied"
    shutil.copytree(night_template, root)
    return root


def fingerprint(root: Path) -> dict[str, tuple[str, int]]:
    """SHA-256 and mtime (ns) of every raw sub-frame under ``root``."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("Light_*"))
    }
