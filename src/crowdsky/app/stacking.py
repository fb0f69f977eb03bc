"""Carrying out a block plan on the Seestar: one batch stack at a time, then the rename.

Theory of operation (protocol reference §4): for every block, clear the stale ``BatchStack``
state (once: the next block's clear also clears this one's result, and
:func:`finish_stacking` clears after the last), configure the block's frames by full path, start,
then wait for ``BatchStack`` to be ``complete``, ``fail`` or ``cancel``, with a per-block timeout.

The wait costs few requests (issue 12): one status poll right after the start gives the device's
``remaining_sec``; the next poll is due when that time has run out (between ``poll_min`` and
``poll_max``), and is sent one round trip of the last poll early, so that it reaches the device
as the stack ends rather than a round trip late; while the device has no estimate, or says 0 s
and is still working (its estimate is rounded), the interval doubles from ``poll_min``. A device
that pushes ``BatchStack`` events (:class:`~crowdsky.app.ports.BatchStackEvents`) is waited on
instead of sleeping, and the state an event carries is taken as it is: a ``working`` event moves
the next poll to its estimate plus ``event_grace`` (the end is expected as an event; the poll
only makes up for a lost one), a terminal one ends the wait without a poll (a ``complete`` event
that names no output file is checked by a poll).

On ``complete`` the output ``.fit`` is renamed to its CrowdSky name first, because only that
rename decides coverage (shared README, decision 6); the JPEG companions follow, best effort.
The rename may overlap the next block's stack (issue 12): :func:`stack_block` returns a
complete stack as a :class:`CompleteStack`, not yet renamed, and the caller passes its finish
as the next block's ``before_wait``, which runs once the next block's start returned (after its
first status poll), or failed, or was interrupted. The device names its output by the second it
finished, so a quick next stack of as many frames could overwrite the unrenamed output: the
finish first checks the next block's status, and an output the next stack has taken the name of
is not renamed (the block fails and is stacked again on the next run). A stack that took less
than :data:`OVERLAP_MIN_STACK_S` is renamed before the next block starts.

Ctrl-C while a block stacks stops and clears the batch stack on the device before the
``KeyboardInterrupt`` propagates; Ctrl-C during the renames is held back until the renames of that
block are done, so nothing is left half-renamed.

With :class:`BlockRecords` (see :mod:`crowdsky.app.orphans`) a pending stack is recorded before
the start and settled when the block ends, so that a stack the device finishes after crowdsky was
killed is adopted by the next run instead of stacked again.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from datetime import timedelta, tzinfo
from types import FrameType
from typing import Any, Protocol

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
    ConfigError,
    CrowdskyError,
    CrowdskyWarning,
    HeaderReadError,
    SeestarConnectionError,
    StorageError,
)

__all__ = [
    "OVERLAP_MIN_STACK_S",
    "BeforeWait",
    "BlockOutcome",
    "BlockRecords",
    "CompleteStack",
    "StackOptions",
    "device_idle",
    "finish_stacking",
    "rename_output",
    "run_block",
    "stack_block",
    "wait_for_batch_stack",
]


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
        Bounds of the adaptive polling interval in seconds: the next status poll is due when
        the device's ``remaining_sec`` has run out, but never sooner than ``poll_min`` nor later
        than ``poll_max``.
    event_grace : float
        Once the device has pushed a ``BatchStack`` event, the poll waits this many seconds
        past the estimate the last event carried: the terminal event is expected first, and a
        poll is only the fallback for one that got lost.
    """

    tiling: SkyTiling = DEFAULT_TILING
    block_timeout: float | None = None
    poll_min: float = 0.02
    poll_max: float = 30.0
    event_grace: float = 1.0

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
    left_out : tuple of (str, str)
        Frames the stacker left out and why, as ``(file name, reason)`` pairs, from the
        terminal stack status (the local stacker reports them; a device stack reports none).
    """

    block: Block
    status: BlockStatus
    file: str | None = None
    frames_stacked: int = 0
    error: str | None = None
    left_out: tuple[tuple[str, str], ...] = ()

    def as_dict(self, tz: tzinfo) -> dict[str, Any]:
        """The outcome as a plain dict (see :func:`block_dict`).

        ``left_out`` becomes a list of ``{"file": ..., "reason": ...}``.
        """
        return {
            **block_dict(self.block, tz),
            "status": self.status.value,
            "file": self.file,
            "frames_stacked": self.frames_stacked,
            "error": self.error,
            "left_out": [{"file": name, "reason": reason} for name, reason in self.left_out],
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
    records: BlockRecords | None = None,
) -> BlockOutcome:
    """Stack one block on the device and rename its output at once (:func:`stack_block`).

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
    records : BlockRecords, optional
        Where the block is recorded as pending while it stacks; no record without it.

    Raises
    ------
    SeestarConnectionError, ConfigError
        As :func:`stack_block`.
    """
    stacked = stack_block(
        seestar, clock, progress, block, paths=paths, tz=tz, options=options, records=records
    )
    if isinstance(stacked, CompleteStack):
        return stacked.finish(seestar, progress, next_started=False)
    return stacked


OVERLAP_MIN_STACK_S = 1.0
"""Seconds a stack must have taken for the next block to start before it is renamed."""

BeforeWait = Callable[[bool, "BatchStackStatus | None"], None]
"""Run once per block before its wait: ``(started, first_status)``.

``started`` is False when the block's batch stack was certainly not started; ``first_status``
is the block's first status reading, ``None`` when there was none (the start failed or was
interrupted, or the block fails before its start).
"""


def stack_block(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    block: Block,
    *,
    paths: list[str],
    tz: tzinfo,
    options: StackOptions,
    records: BlockRecords | None = None,
    before_wait: BeforeWait | None = None,
) -> BlockOutcome | CompleteStack:
    """Stack one block on the device; a complete stack is returned unrenamed.

    Parameters
    ----------
    seestar, clock, progress, block, paths, tz, options, records
        As :func:`run_block`.
    before_wait : callable, optional
        The previous block's finish: called exactly once, before this block's stacking line,
        after this block's first status poll, or (in a ``finally``) when the block ends before
        that, even by an exception (see :data:`BeforeWait`).

    Returns
    -------
    BlockOutcome or CompleteStack
        The outcome of a block that failed (its record settled), or the complete stack whose
        :meth:`CompleteStack.finish` renames it and settles its record.

    Raises
    ------
    SeestarConnectionError
        When the telescope cannot be reached any more: the run should stop, not fail every
        remaining block the same way.
    ConfigError
        When the stacker cannot work as installed or configured (the local stacker's
        ``[stack]`` extra is missing, :class:`~crowdsky.errors.MissingExtraError`): every
        remaining block would fail the same way. Any other error fails this block only.
    """
    hook = _Once(progress, text.stacking_line(block, tz), before_wait)
    if records is not None:
        try:
            records.begin(block)
        except CrowdskyError as exc:  # no stack is started that a kill could orphan unrecorded
            hook.run_now()
            progress.line(text.failed_line(str(exc)))
            return BlockOutcome(block, BlockStatus.FAILED, error=str(exc))
        except BaseException:
            hook.run_now()
            raise
    try:
        stacked = _stack(seestar, clock, progress, block, paths, options, hook)
    except BaseException:
        try:
            hook.run_now()  # the previous block is renamed before this one's record is settled
        finally:
            if records is not None:
                records.settle(block, None)
        raise
    hook.run_now()
    if isinstance(stacked, BlockOutcome):
        if records is not None:
            records.settle(block, stacked)
        return stacked
    return attrs.evolve(stacked, records=records)


@attrs.define
class _Once:
    """The previous block's finish and this block's stacking line, run once."""

    progress: Progress
    stacking: str
    before_wait: BeforeWait | None
    started: bool = False
    done: bool = False

    def __call__(self, started: bool, status: BatchStackStatus | None) -> None:
        if self.done:
            return
        self.done = True
        try:
            if self.before_wait is not None:
                self.before_wait(started, status)
        finally:
            self.progress.line(self.stacking)

    def run_now(self) -> None:
        self(self.started, None)


@attrs.frozen
class CompleteStack:
    """A block whose batch stack is complete and whose output is not renamed yet.

    Parameters
    ----------
    block : Block
        The block.
    status : BatchStackStatus
        Its terminal ``complete`` status (it names the output).
    paths : list of str
        Its frames' full paths.
    options : StackOptions
        Tiling for the name.
    records : BlockRecords or None
        Where its pending record is settled once it is renamed.
    """

    block: Block
    status: BatchStackStatus
    paths: list[str]
    options: StackOptions
    records: BlockRecords | None = None
    took: float = 0.0

    @property
    def may_overlap(self) -> bool:
        """The next block may start before this one is renamed.

        Only after a stack that took at least :data:`OVERLAP_MIN_STACK_S` from its start to
        its end: the device names a stack by the second it finished, so a next stack that
        could end within the same second (an instant fake) would overwrite this output.
        """
        return self.took >= OVERLAP_MIN_STACK_S

    def finish(
        self,
        seestar: Seestar,
        progress: Progress,
        *,
        next_started: bool,
        next_status: BatchStackStatus | None = None,
    ) -> BlockOutcome:
        """Rename the output (unless the next block's stack took its name), settle the record.

        ``next_started`` says whether the next block's batch stack may have started since this
        one completed, ``next_status`` is its first status reading if there was one (else it
        is read here). Never leaves the output half-renamed; a Ctrl-C waits for the renames.
        """
        outcome: BlockOutcome | None = None
        try:
            outcome = self._finish(seestar, progress, next_started, next_status)
        finally:
            if self.records is not None:
                self.records.settle(self.block, outcome)
        return outcome

    def _finish(
        self,
        seestar: Seestar,
        progress: Progress,
        next_started: bool,
        next_status: BatchStackStatus | None,
    ) -> BlockOutcome:
        output = self.status.output_fit
        assert output is not None
        if next_started:
            clash = _overwritten(seestar, output, next_status)
            if clash is not None:
                frames = _frames_stacked(self.status, output)
                progress.line(text.complete_line(frames))
                progress.line(text.failed_line(clash))
                return BlockOutcome(self.block, BlockStatus.FAILED, error=clash)
        return _finish(seestar, progress, self.block, self.status, self.paths, self.options)


def _overwritten(seestar: Seestar, output: str, next_status: BatchStackStatus | None) -> str | None:
    """Why ``output`` cannot be renamed as this block's: the next stack took its name.

    ``None`` when the next stack's status shows it has not written ``output``.
    """
    if next_status is None:
        try:
            next_status = seestar.batch_stack_status()
        except CrowdskyError as exc:
            return (
                f"Could not tell whether the next stack overwrote {output} ({exc}); it keeps "
                "its name."
            )
    if next_status is None or next_status.state is not BatchStackState.COMPLETE:
        return None
    name = output.rsplit("/", 1)[-1]
    written = next_status.output_fit
    if written is None or written.rsplit("/", 1)[-1] != name:
        return None
    return (
        f"the next block's stack finished within the same second and overwrote {name}; "
        "the block is stacked again on the next run."
    )


class BlockRecords(Protocol):
    """The pending-stack records of one target's blocks (:mod:`crowdsky.app.orphans`)."""

    def begin(self, block: Block) -> None:
        """Record ``block`` as pending, just before its batch stack starts."""
        ...

    def settle(self, block: Block, outcome: BlockOutcome | None) -> None:
        """The block ended (``None``: by an exception); drop its record if nothing can follow.

        Never raises: a record left behind is harmless, the next run settles it.
        """
        ...


def _stack(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    block: Block,
    paths: list[str],
    options: StackOptions,
    hook: _Once,
) -> BlockOutcome | CompleteStack:
    began = clock.now()
    try:
        status = _stack_on_device(seestar, clock, progress, block, paths, options, hook)
    except (SeestarConnectionError, ConfigError):
        raise  # the telescope is gone, or the stacker unusable: the next blocks would fail too
    except CrowdskyError as exc:
        hook.run_now()
        _clear_quietly(seestar)
        progress.line(text.failed_line(str(exc)))
        return BlockOutcome(block, BlockStatus.FAILED, error=str(exc))
    if status.state is BatchStackState.COMPLETE and status.output_fit is not None:
        took = (clock.now() - began).total_seconds()
        return CompleteStack(block, status, paths, options, took=took)
    return _finish(seestar, progress, block, status, paths, options)


def device_idle(seestar: Seestar) -> bool:
    """True when no batch stack runs on the device: none, or it ended (or was cleared).

    A status that cannot be read is not idle.
    """
    try:
        status = seestar.batch_stack_status()
    except CrowdskyError:
        return False
    return status is None or status.terminal


def wait_for_batch_stack(
    seestar: Seestar, clock: Clock, progress: Progress, block: Block, options: StackOptions
) -> BatchStackStatus:
    """Wait, as for one of ours, for the batch stack running on the device to end.

    Raises :class:`~crowdsky.errors.BatchStackError` after ``block``'s timeout (the stack is
    left running: it is not ours to stop).
    """
    return _wait(seestar, clock, progress, options.timeout_for(block), options, None)


def finish_stacking(seestar: Seestar) -> None:
    """Clear the last block's result from the device, once the last block is done.

    :func:`run_block` clears before every block (and after a failure), not after a success:
    the next block's clear does that, so this is needed once, after the last block.
    """
    _clear_quietly(seestar)


def _stack_on_device(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    block: Block,
    paths: list[str],
    options: StackOptions,
    hook: _Once,
) -> BatchStackStatus:
    folder = paths[0].rsplit("/", 1)[0]
    seestar.clear_batch_stack()
    seestar.configure_batch_stack(folder, paths)
    hook.started = True  # from here on the device may be stacking this block
    seestar.start_batch_stack()
    try:
        return _wait(seestar, clock, progress, options.timeout_for(block), options, hook)
    except BaseException:
        # Ctrl-C, a timeout or a lost link: leave the device idle and clean, then propagate.
        _stop_quietly(seestar)
        raise


def _wait(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    timeout: float,
    options: StackOptions,
    hook: _Once | None,
) -> BatchStackStatus:
    started = clock.now()
    last: BatchStackStatus | None = None
    misses = 0  # polls in a row that gave no usable time estimate
    while True:
        sent = clock.now()
        status = seestar.batch_stack_status()
        answered = clock.now()
        if hook is not None:
            hook(True, status)  # the previous block's finish, told what this stack has done
        finishing = (clock.now() - answered).total_seconds()  # that finish's time, if it ran
        if _informative(status):
            assert status is not None
            progress.stack_progress(status)
            if status.terminal:
                return status
            last = status
        misses = 0 if _estimate(status) > 0 else misses + 1
        left = timeout - (answered - started).total_seconds()
        if left <= 0:
            raise _timed_out(timeout, last)
        seconds = _interval(status, misses, options)
        if misses == 0:
            # The estimate was made about half a round trip ago, and the next poll reaches the
            # device half a round trip after it is sent: send it one round trip early.
            seconds = max(options.poll_min, seconds - (answered - sent).total_seconds())
        seconds = max(0.0, seconds - finishing)  # the renames ran while this block stacked
        pushed = _wait_for_next_poll(seestar, clock, progress, seconds, left, options)
        if pushed is not None:
            return pushed


def _timed_out(timeout: float, last: BatchStackStatus | None) -> BatchStackError:
    return BatchStackError(
        f"Batch stack did not finish within {timeout:.0f} s "
        f"(last state: {last.state_text if last else 'none'}); it was stopped."
    )


def _informative(status: BatchStackStatus | None) -> bool:
    """A reading that says something: not absent, and past the blank ``""`` after a start."""
    return status is not None and status.state is not BatchStackState.STARTING


def _estimate(status: BatchStackStatus | None) -> float:
    if status is None or status.remaining_sec is None:
        return 0.0
    return status.remaining_sec


def _interval(status: BatchStackStatus | None, misses: int, options: StackOptions) -> float:
    """Seconds to the next poll: the device's ``remaining_sec``, within the bounds.

    Without an estimate (or with 0 s left and still working) the interval is ``poll_min``,
    then doubles with every further such poll, so a device that lags its estimate is not hammered.
    """
    backoff: float = options.poll_min * 2.0 ** min(max(0, misses - 1), 20)
    guess = max(_estimate(status), backoff)
    return max(options.poll_min, min(options.poll_max, guess))


def _wait_for_next_poll(
    seestar: Seestar,
    clock: Clock,
    progress: Progress,
    seconds: float,
    left: float,
    options: StackOptions,
) -> BatchStackStatus | None:
    """Sleep until the next poll is due; with pushed events, take the state they carry.

    Returns a terminal status an event carried (no poll needed), else ``None`` when the next
    poll is due. A ``working`` event moves the poll to its own ``remaining_sec`` plus
    ``event_grace``: a device that pushes events is expected to push its end too.
    """
    if not isinstance(seestar, BatchStackEvents):
        clock.sleep(min(seconds, left))
        return None
    deadline = clock.now() + timedelta(seconds=min(seconds, left))
    end = clock.now() + timedelta(seconds=left)
    while (wait := (deadline - clock.now()).total_seconds()) > 0:
        status = seestar.next_batch_stack_status(wait)
        if status is None or not _informative(status):
            continue
        if status.terminal:
            if status.state is BatchStackState.COMPLETE and status.output_fit is None:
                return None  # the poll names the output
            progress.stack_progress(status)
            return status
        progress.stack_progress(status)
        if _estimate(status) > 0:  # the event's own estimate moves the next poll
            seconds = _interval(status, 0, options) + options.event_grace
            deadline = min(end, clock.now() + timedelta(seconds=seconds))
    return None


def _finish(
    seestar: Seestar,
    progress: Progress,
    block: Block,
    status: BatchStackStatus,
    paths: list[str],
    options: StackOptions,
) -> BlockOutcome:
    outcome = _outcome(seestar, progress, block, status, paths, options)
    if not status.left_out:
        return outcome
    return attrs.evolve(outcome, left_out=tuple(status.left_out))


def _outcome(
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
    return rename_output(
        seestar, progress, block, output, _frames_stacked(status, output), paths, options
    )


def rename_output(
    seestar: Seestar,
    progress: Progress,
    block: Block,
    output: str,
    frames: int,
    paths: list[str],
    options: StackOptions,
) -> BlockOutcome:
    """Rename the device's stack ``output`` of ``block`` to its CrowdSky name, companions after.

    ``frames`` is what the device stacked; the pixel comes from the stack's header (else a
    sub-frame's). A header that cannot be read leaves the output under its firmware name and
    the block failed (``frames_stacked`` set).
    """
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
