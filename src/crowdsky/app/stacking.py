"""Carrying out a block plan on the Seestar: one batch stack at a time, then the rename.

Theory of operation (protocol reference §4): for every block, clear the stale ``BatchStack``
state, configure the block's frames by full path, start, then poll ``BatchStack`` until it is
``complete``, ``fail`` or ``cancel`` (adaptively, from the device's ``remaining_sec``, never a fixed
sleep), with a per-block timeout. On ``complete`` the output ``.fit`` is renamed to its CrowdSky
name first, because only that rename decides coverage (shared README, decision 6); the JPEG
companions follow, best effort. The state is cleared again afterwards.

Ctrl-C while a block stacks stops and clears the batch stack on the device before the
``KeyboardInterrupt`` propagates; Ctrl-C during the renames is held back until the renames of that
block are done, so nothing is left half-renamed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import tzinfo
from types import FrameType
from typing import Any

import attrs

from crowdsky.app.headers import read_header
from crowdsky.app.ports import (
    BatchStackEvents,
    BatchStackState,
    BatchStackStatus,
    Clock,
    Progress,
    Seestar,
)
from crowdsky.domain import (
    DEFAULT_TILING,
    UNKNOWN_PIXEL,
    Block,
    BlockStatus,
    SkyTiling,
    companion_names,
    crowdsky_name,
    healpix_pixel,
    parse_stacked_name,
)
from crowdsky.domain import report as text
from crowdsky.domain.headers import header_pointing
from crowdsky.errors import (
    BatchStackError,
    CrowdskyError,
    CrowdskyWarning,
    HeaderReadError,
    StorageError,
)

__all__ = ["BlockOutcome", "StackOptions", "run_block"]


@attrs.frozen
class StackOptions:
    """How blocks are stacked.

    Parameters
    ----------
    tiling : SkyTiling
        HEALPix tiling for the file names.
    block_timeout : float or None
        Seconds a block may take before it is stopped; ``None`` means 120 s plus 10 s per frame.
    poll_min, poll_max : float
        Bounds of the adaptive polling interval in seconds.
    """

    tiling: SkyTiling = DEFAULT_TILING
    block_timeout: float | None = None
    poll_min: float = 0.5
    poll_max: float = 5.0

    def timeout_for(self, block: Block) -> float:
        """The timeout of one block."""
        if self.block_timeout is not None:
            return self.block_timeout
        return 120.0 + 10.0 * block.frame_count


@attrs.frozen
class BlockOutcome:
    """What happened to one block.

    Parameters
    ----------
    block : Block
        The block.
    status : BlockStatus
        Stacked, failed, rename failed, skipped or planned.
    file : str or None
        The CrowdSky name (stacked) or the firmware's output name (rename failed).
    frames_stacked : int
        Frames the device stacked.
    error : str or None
        Why it failed.
    """

    block: Block
    status: BlockStatus
    file: str | None = None
    frames_stacked: int = 0
    error: str | None = None

    def as_dict(self, tz: tzinfo) -> dict[str, Any]:
        """The outcome as a plain dict (see :func:`block_dict`)."""
        return {
            **block_dict(self.block, tz),
            "status": self.status.value,
            "file": self.file,
            "frames_stacked": self.frames_stacked,
            "error": self.error,
        }


def block_dict(block: Block, tz: tzinfo) -> dict[str, Any]:
    """A block as the specification's dicts show it (``b["block_start"]`` in device time)."""
    start, end = block.local_bounds(tz)
    return {
        "target": block.target,
        "block_start": start,
        "block_end": end,
        "block_start_utc": block.start,
        "block_end_utc": block.end,
        "frame_count": block.frame_count,
        "exposure": block.exposure,
        "exposure_s": block.exposure_s,
        "filter": block.filter,
        "total_exposure_s": block.total_exposure_s,
        "chunk_key": block.chunk_key,
        "files": [frame.name for frame in block.frames],
    }


def run_block(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    block: Block,
    *,
    paths: list[str],
    tz: tzinfo,
    options: StackOptions,
) -> BlockOutcome:
    """Stack one block on the device and rename its output.

    Parameters
    ----------
    seestar, clock, progress
        The ports.
    block : Block
        The block to stack.
    paths : list of str
        Full ``MyWorks/...`` paths of the block's frames, in the block's order.
    tz : tzinfo
        The device's zone, for the printed lines.
    options : StackOptions
        Timeouts, polling and tiling.
    """
    progress.line(text.stacking_line(block, tz))
    try:
        status = _stack_on_device(seestar, clock, progress, block, paths, options)
    except CrowdskyError as exc:
        _clear_quietly(seestar)
        progress.line(text.failed_line(str(exc)))
        return BlockOutcome(block, BlockStatus.FAILED, error=str(exc))
    try:
        return _finish(seestar, progress, block, status, paths, options)
    finally:
        _clear_quietly(seestar)


def _stack_on_device(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    block: Block,
    paths: list[str],
    options: StackOptions,
) -> BatchStackStatus:
    folder = paths[0].rsplit("/", 1)[0]
    seestar.clear_batch_stack()
    seestar.configure_batch_stack(folder, paths)
    seestar.start_batch_stack()
    try:
        return _wait(seestar, clock, progress, options.timeout_for(block), options)
    except BaseException:
        # Ctrl-C, a timeout or a lost link: leave the device idle and clean, then propagate.
        _stop_quietly(seestar)
        raise


def _wait(
    seestar: Seestar, clock: Clock, progress: Progress, timeout: float, options: StackOptions
) -> BatchStackStatus:
    started = clock.now()
    while True:
        status = seestar.batch_stack_status()
        if status is not None and status.state is not BatchStackState.STARTING:
            progress.stack_progress(status)
            if status.terminal:
                return status
        elapsed = (clock.now() - started).total_seconds()
        if elapsed >= timeout:
            raise BatchStackError(
                f"Batch stack did not finish within {timeout:.0f} s "
                f"(last state: {status.state_text if status else 'none'}); it was stopped."
            )
        _pause(seestar, clock, _interval(status, options, timeout - elapsed))


def _pause(seestar: Seestar, clock: Clock, seconds: float) -> None:
    """Sleep until the next poll, or until the device pushes a ``BatchStack`` event."""
    if isinstance(seestar, BatchStackEvents):
        seestar.wait_batch_stack_event(seconds)
    else:
        clock.sleep(seconds)


def _interval(status: BatchStackStatus | None, options: StackOptions, left: float) -> float:
    """Poll sooner when the device says it is nearly done, never faster than ``poll_min``."""
    guess = options.poll_max
    if status is not None and status.remaining_sec is not None:
        guess = status.remaining_sec / 2
    return max(options.poll_min, min(options.poll_max, guess, left))


def _finish(
    seestar: Seestar,
    progress: Progress,
    block: Block,
    status: BatchStackStatus,
    paths: list[str],
    options: StackOptions,
) -> BlockOutcome:
    if status.state is not BatchStackState.COMPLETE:
        reason = _failure_text(status)
        progress.line(text.failed_line(reason))
        return BlockOutcome(block, BlockStatus.FAILED, error=reason)
    output = status.output_fit
    if output is None:
        reason = "the device reported no stacked .fit file"
        progress.line(text.failed_line(reason))
        return BlockOutcome(block, BlockStatus.FAILED, error=reason)
    frames = _frames_stacked(status, output)
    progress.line(text.complete_line(frames))
    try:
        pixel = _pixel(seestar, output, paths, options.tiling)
    except HeaderReadError as exc:
        # Not named from a guess: the stack keeps the firmware's name, and since only a CrowdSky
        # name counts as coverage, the next run stacks the block again.
        reason = f"{exc} {output} keeps its name; the block is stacked again on the next run."
        progress.line(text.failed_line(reason))
        return BlockOutcome(block, BlockStatus.FAILED, frames_stacked=frames, error=reason)
    new = crowdsky_name(
        frames=frames,
        target=block.target,
        exposure_s=block.exposure_s,
        filter=block.filter,
        chunk_key=block.chunk_key,
        pixel=pixel,
    )
    with _interrupts_held():
        return _rename(seestar, progress, block, output, new, frames)


def _failure_text(status: BatchStackStatus) -> str:
    if status.state is BatchStackState.CANCEL:
        return "the batch stack was cancelled on the device"
    detail = status.error or "no error text"
    return f"the device reported {status.state_text}: {detail} (code {status.code})"


def _frames_stacked(status: BatchStackStatus, output: str) -> int:
    parsed = parse_stacked_name(output.rsplit("/", 1)[-1])
    if parsed is not None:
        return parsed.frames
    return status.stacked_img or status.total_img


def _pixel(seestar: Seestar, output: str, paths: list[str], tiling: SkyTiling) -> int:
    """Pixel from the stack's RA/DEC, else from a sub-frame's, else the spec's ``HP000000``.

    Only a header that was read and has no RA/DEC falls through to the next one; a header that
    cannot be read raises :class:`HeaderReadError` (it might well hold the pointing).
    """
    for path in (output, paths[0]):
        ra, dec = header_pointing(read_header(seestar, path))
        if ra is not None and dec is not None:
            return healpix_pixel(ra, dec, tiling)
    warnings.warn(
        f"No RA/DEC in {output} or its sub-frames; naming it HP000000.",
        CrowdskyWarning,
        stacklevel=2,
    )
    return UNKNOWN_PIXEL


def _rename(
    seestar: Seestar, progress: Progress, block: Block, output: str, new: str, frames: int
) -> BlockOutcome:
    folder, old = output.rsplit("/", 1)
    try:
        seestar.rename(output, new)
    except StorageError as exc:
        progress.line(text.rename_failed_line(old, new, str(exc)))
        return BlockOutcome(block, BlockStatus.RENAME_FAILED, old, frames, str(exc))
    for old_companion, new_companion in zip(
        companion_names(old), companion_names(new), strict=True
    ):
        # Companions are best effort: the device may not have written both.
        with contextlib.suppress(StorageError):
            seestar.rename(f"{folder}/{old_companion}", new_companion)
    progress.line(text.renamed_line(new))
    return BlockOutcome(block, BlockStatus.STACKED, new, frames)


def _clear_quietly(seestar: Seestar) -> None:
    with contextlib.suppress(CrowdskyError):
        seestar.clear_batch_stack()


def _stop_quietly(seestar: Seestar) -> None:
    for step in (seestar.stop_batch_stack, seestar.clear_batch_stack):
        with contextlib.suppress(CrowdskyError):
            step()


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Hold back SIGINT until the block leaves the context, then raise it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)

    previous: Callable[[int, FrameType | None], Any] | int | None
    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
