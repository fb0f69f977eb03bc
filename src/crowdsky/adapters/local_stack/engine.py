"""Stack one block of raw sub-frames on this computer, in the device's format.

:func:`stack_block` makes two passes over the subs. The first reads each sub once, detects its
stars, chooses a reference frame and registers every frame to it; a frame that cannot be
registered is left out with the reason and never combined. The second combines the registered
frames in strips of rows (see :mod:`.combine`), reading from each sub only the rows a strip
needs, so memory does not grow with the number of frames. The stack is then written atomically
(:func:`.fits_io.write_stack`). Raw subs are only ever opened for reading.

The registration step is a parameter (:class:`Registrar`); the default,
:class:`StarRegistrar`, detects stars and matches them with :mod:`.stars` and :mod:`.register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs
import numpy as np
from numpy.typing import NDArray

from crowdsky.adapters.local_stack import combine, fits_io
from crowdsky.adapters.local_stack.transform import Similarity
from crowdsky.errors import LocalStackCancelled, LocalStackError

__all__ = [
    "LocalStackResult",
    "Registrar",
    "RegistrationLike",
    "StarRegistrar",
    "stack_block",
]


class RegistrationLike(Protocol):
    """What a registrar says of one frame: its transform, or why there is none."""

    @property
    def transform(self) -> Similarity | None:
        """Reference -> this frame, or ``None`` when the frame cannot be registered."""

    @property
    def reason(self) -> str | None:
        """Why the frame cannot be registered (``None`` when it can)."""


class Registrar(Protocol):
    """The registration step: star lists, a reference, and each frame's transform."""

    def detect(self, mosaic: NDArray[np.uint16]) -> Any:
        """The stars of a raw GRBG mosaic, in whatever form :meth:`register` takes."""

    def choose_reference(self, star_lists: Sequence[Any]) -> int:
        """The index of the frame every other is registered to."""

    def register(self, reference: Any, stars: Any) -> RegistrationLike:
        """The transform from the reference to the frame with ``stars``."""


class StarRegistrar:
    """The default registrar: :func:`.stars.detect_stars` and :func:`.register.register`.

    The modules are imported when first used, so the engine can be given another registrar.
    """

    def detect(self, mosaic: NDArray[np.uint16]) -> Any:
        """Detect the stars of ``mosaic`` (see :func:`.stars.detect_stars`)."""
        return _module("stars").detect_stars(mosaic)

    def choose_reference(self, star_lists: Sequence[Any]) -> int:
        """Choose the reference (see :func:`.register.choose_reference`)."""
        return int(_module("register").choose_reference(star_lists))

    def register(self, reference: Any, stars: Any) -> RegistrationLike:
        """Register one frame (see :func:`.register.register`)."""
        registration: RegistrationLike = _module("register").register(reference, stars)
        return registration


def _module(name: str) -> Any:
    return importlib.import_module(f"crowdsky.adapters.local_stack.{name}")


@attrs.frozen
class LocalStackResult:
    """What :func:`stack_block` made.

    Parameters
    ----------
    output : Path
        The stack written.
    kept : tuple of str
        File names of the subs combined, in the order given.
    left_out : tuple of (str, str)
        ``(file name, reason)`` of each sub not combined.
    """

    output: Path
    kept: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]


@attrs.frozen
class _Frame:
    path: Path
    header: dict[str, Any]
    comments: dict[str, str]
    data_offset: int
    shape: tuple[int, int]


@attrs.frozen
class _Registered:
    frame: _Frame
    transform: Similarity


def stack_block(
    paths: Sequence[Path],
    output: Path,
    *,
    on_frame: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    registrar: Registrar | None = None,
    strip_budget: int = combine.STRIP_BUDGET_BYTES,
) -> LocalStackResult:
    """Stack the raw subs ``paths`` into ``output`` (device format, ``<stem>.jpg``, ``_thn.jpg``).

    Parameters
    ----------
    paths : Sequence[Path]
        The block's ``Light_*.fit`` subs, read only.
    output : Path
        The ``.fit`` to write; it appears only when complete.
    on_frame : callable, optional
        ``on_frame(done, total)`` for progress, ``total`` being twice the number of subs: one
        step per sub read and registered, then the combination's progress in the same steps.
    cancelled : callable, optional
        Polled between frames (and strips); when it returns true the stack stops.
    registrar : Registrar, optional
        The registration step; :class:`StarRegistrar` by default.
    strip_budget : int, optional
        Bytes of warped frames held at once (see :func:`.combine.strip_rows`); the memory
        bound, whatever the number of frames.

    Returns
    -------
    LocalStackResult

    Raises
    ------
    LocalStackCancelled
        When ``cancelled()`` returned true; no output or ``.part`` file is left.
    LocalStackError
        When a sub cannot be read, no frame besides the reference can be registered, or the
        output cannot be written.
    """
    if not paths:
        raise LocalStackError("No sub-frames were given to stack.")
    progress = _Progress(on_frame, 2 * len(paths))
    stop = cancelled or (lambda: False)
    registered, left_out = _register_all(paths, registrar or StarRegistrar(), progress, stop)
    planes = _combine_all(registered, progress, stop, strip_budget)
    first = _first_combined(registered)
    header = fits_io.stack_header(first.header, len(registered), first.comments)
    _check_cancelled(stop)
    fits_io.write_stack(output, planes, header)
    return LocalStackResult(
        output=output,
        kept=tuple(r.frame.path.name for r in registered),
        left_out=tuple(left_out),
    )


class _Progress:
    def __init__(self, callback: Callable[[int, int], None] | None, total: int) -> None:
        self.callback = callback
        self.total = total

    def report(self, done: int) -> None:
        if self.callback is not None:
            self.callback(done, self.total)


def _check_cancelled(stop: Callable[[], bool]) -> None:
    if stop():
        raise LocalStackCancelled("The local stack was cancelled; nothing was written.")


def _register_all(
    paths: Sequence[Path],
    registrar: Registrar,
    progress: _Progress,
    stop: Callable[[], bool],
) -> tuple[list[_Registered], list[tuple[str, str]]]:
    """Pass 1: read each sub once, detect its stars, choose a reference, register."""
    frames: list[_Frame] = []
    stars: list[Any] = []
    for done, path in enumerate(paths, start=1):
        _check_cancelled(stop)
        sub = fits_io.read_sub(path)
        frames.append(
            _Frame(
                path=path,
                header=dict(sub.header),
                comments=dict(sub.comments),
                data_offset=sub.data_offset,
                shape=(int(sub.mosaic.shape[0]), int(sub.mosaic.shape[1])),
            )
        )
        stars.append(registrar.detect(sub.mosaic))
        del sub
        progress.report(done)
    reference = registrar.choose_reference(stars)
    registered: list[_Registered] = []
    left_out: list[tuple[str, str]] = []
    for index, frame in enumerate(frames):
        reason = _why_unusable(frame, frames[reference])
        transform: Similarity | None = None
        if reason is None and index == reference:
            transform = Similarity()
        elif reason is None:
            registration = registrar.register(stars[reference], stars[index])
            transform, reason = registration.transform, registration.reason
        if transform is None:
            left_out.append((frame.path.name, reason or "could not be registered"))
        else:
            registered.append(_Registered(frame, transform))
    if len(registered) < 2 <= len(frames):
        reasons = "; ".join(f"{name}: {why}" for name, why in left_out)
        raise LocalStackError(
            f"No sub-frame could be registered to the reference {frames[reference].path.name} "
            f"({reasons})."
        )
    return registered, left_out


def _first_combined(registered: Sequence[_Registered]) -> _Frame:
    """The earliest sub combined (by ``DATE-OBS``), whose keywords the stack carries."""
    undated = [r.frame.path.name for r in registered if "DATE-OBS" not in r.frame.header]
    if undated:
        raise LocalStackError(f"{undated[0]} has no DATE-OBS, so the stack cannot be dated.")
    return min(registered, key=lambda r: str(r.frame.header["DATE-OBS"])).frame


def _why_unusable(frame: _Frame, reference: _Frame) -> str | None:
    if frame.shape != reference.shape:
        return f"size {frame.shape[1]}x{frame.shape[0]} differs from the reference's"
    return None


def _combine_all(
    registered: Sequence[_Registered],
    progress: _Progress,
    stop: Callable[[], bool],
    budget: int,
) -> NDArray[np.uint16]:
    """Pass 2: warp and combine the registered frames strip by strip."""
    height, width = registered[0].frame.shape
    rows = combine.strip_rows(len(registered), width, height, budget)
    planes = np.empty((3, height, width), dtype=np.uint16)
    stack = np.empty((len(registered), rows, width, 3), dtype=np.float32)
    first_step = progress.total // 2
    for top in range(0, height, rows):
        strip = min(rows, height - top)
        for index, item in enumerate(registered):
            _check_cancelled(stop)
            stack[index, :strip] = _warped_strip(item, top, strip)
        mean = combine.combine_strip(stack[:, :strip])
        planes[:, top : top + strip] = combine.to_uint16(mean).transpose(2, 0, 1)
        progress.report(first_step + (first_step * (top + strip)) // height)
    return planes


def _warped_strip(item: _Registered, top: int, rows: int) -> NDArray[np.float32]:
    height, width = item.frame.shape
    band = combine.source_band(item.transform, top, rows, width, height)
    if band is None:
        return np.full((rows, width, 3), np.nan, dtype=np.float32)
    first, stop = band
    mosaic = fits_io.read_rows(item.frame.path, item.frame.data_offset, width, first, stop)
    return combine.warp_band(combine.debayer_grbg(mosaic), item.transform, first, top, rows)
