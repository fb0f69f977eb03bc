"""Progress adapters: print plain lines, draw live bars on a terminal, collect, or stay quiet.

:class:`PrintProgress` writes the report lines only (no escape codes off a terminal);
:class:`RichProgress` adds, on a terminal, a live bar for the block that stacks and an overall
line "block i of N · target j of M · about T left", drawn with ``rich``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from crowdsky.app.ports import BatchStackStatus
from crowdsky.app.progress import SilentProgress

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

#: Seconds between two drawings of a transfer's bar.
TRANSFER_REDRAW = 0.1

__all__ = [
    "TRANSFER_REDRAW",
    "CollectingProgress",
    "PrefixedProgress",
    "PrintProgress",
    "QuietProgress",
    "RichProgress",
    "left_out_lines",
    "summary_table",
]


def left_out_lines(status: BatchStackStatus) -> list[str]:
    """One report line per frame the stacker left out, once the stack is complete.

    Examples
    --------
    >>> from crowdsky.app.ports import BatchStackState
    >>> done = BatchStackStatus(
    ...     BatchStackState.COMPLETE, left_out=(("Light_a.fit", "too few stars (0)"),)
    ... )
    >>> left_out_lines(done)
    ['  left out Light_a.fit: too few stars (0)']
    """
    if not status.terminal:
        return []
    return [f"  left out {name}: {reason}" for name, reason in status.left_out]


class PrintProgress:
    """Print the report lines; show stacking progress on one rewritten line on a terminal.

    Parameters
    ----------
    stream : TextIO, optional
        Where to write; standard output by default (looked up at each write, so pytest's
        ``capsys`` and redirections see it).
    show_progress : bool or None
        Show percent/frames/time left while a block stacks; by default only on a terminal.
    """

    def __init__(self, stream: TextIO | None = None, *, show_progress: bool | None = None) -> None:
        self._stream = stream
        self._show = show_progress
        self._dirty = False

    @property
    def stream(self) -> TextIO:
        """The stream written to."""
        return self._stream if self._stream is not None else sys.stdout

    def line(self, text: str) -> None:
        """Print one report line."""
        self._end_progress()
        print(text, file=self.stream, flush=True)

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Rewrite the progress line (terminals only unless asked); say what was left out."""
        for text in left_out_lines(status):
            self.line(text)
        show = self._show if self._show is not None else self.stream.isatty()
        if not show or status.terminal:
            return
        left = "" if status.remaining_sec is None else f", ~{status.remaining_sec:.0f}s left"
        self.stream.write(
            f"\r    {status.percent:5.1f}%  {status.stacked_img}/{status.total_img} frames{left}  "
        )
        self.stream.flush()
        self._dirty = True

    def run_planned(self, blocks: int, frames: int, targets: int) -> None:
        """Nothing: the plain report has no overall line."""

    def target_started(self, target: str, index: int, total: int) -> None:
        """Nothing: the report's own lines name the blocks."""

    def block_started(self, label: str, frames: int) -> None:
        """Nothing: the report prints its own ``Stacking block`` line."""

    def block_finished(self, stacked: bool) -> None:
        """End the rewritten progress line, if one is showing."""
        self._end_progress()

    def transfer(self, name: str, done: int, total: int | None) -> None:
        """Nothing: byte counts only show on a live display."""

    def _end_progress(self) -> None:
        if self._dirty:
            self.stream.write("\n")
            self._dirty = False


class PrefixedProgress:
    """Report lines of one of several telescopes, each line led by the telescope's name.

    Stacking progress goes through only when ``show_stacking`` is set, and the live-display
    events (run planned, target and block started, transfers) not at all: several telescopes
    drawing on one terminal at once would garble it.

    Parameters
    ----------
    inner : PrintProgress or CollectingProgress or QuietProgress
        Where the lines go.
    prefix : str
        Put before every line (``"[192.168.1.83] "``, say).
    show_stacking : bool
        Pass stacking progress on.
    """

    def __init__(
        self,
        inner: PrintProgress | CollectingProgress | QuietProgress,
        prefix: str,
        *,
        show_stacking: bool = False,
    ) -> None:
        self._inner = inner
        self._prefix = prefix
        self._show = show_stacking

    def line(self, text: str) -> None:
        """Pass the line on with the prefix."""
        self._inner.line(f"{self._prefix}{text}")

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Pass the reading on when asked to; the frames left out are always said."""
        for text in left_out_lines(status):
            self.line(text)
        if self._show:
            status = attrs.evolve(status, left_out=())
            self._inner.stack_progress(status)

    def run_planned(self, blocks: int, frames: int, targets: int) -> None:
        """Not shown: see the class notes."""

    def target_started(self, target: str, index: int, total: int) -> None:
        """Not shown: see the class notes."""

    def block_started(self, label: str, frames: int) -> None:
        """Not shown: see the class notes."""

    def block_finished(self, stacked: bool) -> None:
        """Not shown: see the class notes."""

    def transfer(self, name: str, done: int, total: int | None) -> None:
        """Not shown: see the class notes."""


class CollectingProgress:
    """Keep the lines, status readings and events in lists (tests, GUIs, notebooks).

    ``events`` holds one tuple per call of the other methods, such as
    ``("block_started", "21:15-21:30", 33)``.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.statuses: list[BatchStackStatus] = []
        self.events: list[tuple[object, ...]] = []

    def line(self, text: str) -> None:
        """Remember a report line."""
        self.lines.append(text)

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Remember a status reading."""
        self.statuses.append(status)

    def run_planned(self, blocks: int, frames: int, targets: int) -> None:
        """Remember the plan's size."""
        self.events.append(("run_planned", blocks, frames, targets))

    def target_started(self, target: str, index: int, total: int) -> None:
        """Remember the target."""
        self.events.append(("target_started", target, index, total))

    def block_started(self, label: str, frames: int) -> None:
        """Remember the block."""
        self.events.append(("block_started", label, frames))

    def block_finished(self, stacked: bool) -> None:
        """Remember how the block ended."""
        self.events.append(("block_finished", stacked))

    def transfer(self, name: str, done: int, total: int | None) -> None:
        """Remember the byte count."""
        self.events.append(("transfer", name, done, total))


class QuietProgress(SilentProgress):
    """Discard everything (``crowdsky -q``)."""


class RichProgress:
    """Report lines above a live display: the stacking block's bar and the overall line.

    Parameters
    ----------
    console : rich.console.Console, optional
        Where to draw; a console on standard output by default. The display is drawn only when
        the console is a terminal; otherwise only the report lines are printed, plainly.
    monotonic : callable, optional
        Seconds from a monotonic clock, for the measured speed ("about T left").

    Use it as a context manager (or call :meth:`close`) so the live display is taken down.
    """

    def __init__(
        self, console: Console | None = None, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

        self._console = console if console is not None else Console()
        self._now = monotonic
        self._bars = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            console=self._console,
            auto_refresh=False,
            transient=True,
        )
        self._live = False
        self._starting = threading.Lock()
        self._overall: TaskID | None = None
        self._block: TaskID | None = None
        self._transfer: TaskID | None = None
        self._transfer_name = ""
        self._transfer_done = 0
        self._transfer_began = 0.0
        self._transfer_drawn: float | None = None
        self._blocks = self._frames = self._targets = 0
        self._block_index = self._frames_done = 0
        self._target = ""
        self._target_index = 0
        self._block_frames = 0
        self._block_began = 0.0
        self._stacking_seconds = 0.0
        self._device_left: float | None = None

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def console(self) -> Console:
        """The console drawn on."""
        return self._console

    def close(self) -> None:
        """Take the live display down (the report lines stay)."""
        if self._live:
            self._bars.stop()
            self._live = False

    def summary_table(
        self, results: Mapping[str, Mapping[str, Any]], targets_failed: Mapping[str, str]
    ) -> None:
        """Print the end-of-run table (see :func:`summary_table`)."""
        self.close()
        summary_table(self._console, results, targets_failed)

    def line(self, text: str) -> None:
        """Print one report line above the live display, exactly as given."""
        self._console.print(text, markup=False, highlight=False, emoji=False, soft_wrap=True)

    def run_planned(self, blocks: int, frames: int, targets: int) -> None:
        """Remember the plan's size for the overall line."""
        self._blocks, self._frames, self._targets = blocks, frames, targets

    def target_started(self, target: str, index: int, total: int) -> None:
        """Name the target when it changes."""
        self._target, self._target_index, self._targets = target, index, total
        self.line(f"── {target} (target {index} of {total}) ──")

    def block_started(self, label: str, frames: int) -> None:
        """Start the block's bar and move the overall line on."""
        self._block_index += 1
        self._block_frames = frames
        self._block_began = self._now()
        self._device_left = None
        self._ensure_live()
        if self._block is not None:
            self._bars.remove_task(self._block)
        self._block = self._bars.add_task(
            f"{self._target} {label}", total=100.0, detail=f"0/{frames} frames"
        )
        self._update_overall()

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Move the block's bar: percent, frames, the device's own time left."""
        for text in left_out_lines(status):
            self.line(text)
        if self._block is None:
            return
        self._device_left = status.remaining_sec
        left = "" if status.remaining_sec is None else f" · {_duration(status.remaining_sec)} left"
        self._bars.update(
            self._block,
            completed=status.percent,
            detail=f"{status.stacked_img}/{status.total_img} frames{left}",
        )
        self._update_overall()

    def block_finished(self, stacked: bool) -> None:
        """Count the block's frames and time toward the measured speed."""
        self._frames_done += self._block_frames
        self._stacking_seconds += max(0.0, self._now() - self._block_began)
        if self._block is not None:
            self._bars.remove_task(self._block)
            self._block = None
        self._device_left = None
        self._update_overall()

    def transfer(self, name: str, done: int, total: int | None) -> None:
        """Show the bytes of a download or upload moved so far, the total and the rate.

        Drawn on a terminal only, at most every :data:`TRANSFER_REDRAW` seconds (a transfer
        reports every piece of its body); the bar goes once all ``total`` bytes moved.
        """
        if not self._console.is_terminal:
            return
        now = self._now()
        if self._transfer is None or name != self._transfer_name or done < self._transfer_done:
            self._transfer_began, self._transfer_drawn = now, None  # a new file, or a retry
        self._transfer_name, self._transfer_done = name, done
        finished = total is not None and done >= total
        drawn = self._transfer_drawn
        if not finished and drawn is not None and now - drawn < TRANSFER_REDRAW:
            return
        self._transfer_drawn = now
        self._ensure_live()
        detail = _transfer_detail(done, total, now - self._transfer_began)
        if self._transfer is None:
            self._transfer = self._bars.add_task(name, total=total, detail=detail)
        self._bars.update(
            self._transfer, description=name, completed=done, total=total, detail=detail
        )
        if finished:
            self._bars.remove_task(self._transfer)
            self._transfer = None
        self._bars.refresh()

    def overall_text(self) -> str:
        """``block i of N · target j of M · about T left`` (the time once it can be told)."""
        parts = [f"block {self._block_index} of {self._blocks}"]
        if self._targets:
            parts.append(f"target {self._target_index} of {self._targets}")
        left = self._seconds_left()
        parts.append(
            "time left not measured yet" if left is None else f"about {_duration(left)} left"
        )
        return " · ".join(parts)

    def _seconds_left(self) -> float | None:
        if self._frames_done == 0 or self._stacking_seconds <= 0:
            return self._device_left if self._blocks == 1 else None
        per_frame = self._stacking_seconds / self._frames_done
        in_block = self._block_frames if self._block is not None else 0
        later = max(0, self._frames - self._frames_done - in_block)
        current = self._device_left if self._device_left is not None else per_frame * in_block
        return current + per_frame * later

    def _ensure_live(self) -> None:
        # `crowdsky run` reports transfers from its upload thread while a block stacks.
        with self._starting:
            if self._live or not self._console.is_terminal:
                return
            self._bars.start()
            self._live = True

    def _update_overall(self) -> None:
        if not self._live:
            return
        if self._overall is None:
            self._overall = self._bars.add_task(
                self.overall_text(), total=None, detail="", start=False
            )
        self._bars.update(self._overall, description=self.overall_text())
        self._bars.refresh()


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _transfer_detail(done: int, total: int | None, seconds: float) -> str:
    """``3.0 MB of 12.0 MB · 1.5 MB/s`` (the rate once some time has passed).

    Examples
    --------
    >>> _transfer_detail(3 * 1024**2, 12 * 1024**2, 2.0)
    '3.0 MB of 12.0 MB · 1.5 MB/s'
    >>> _transfer_detail(500, None, 0.0)
    '500 B'
    """
    text = _size(done) + ("" if total is None else f" of {_size(total)}")
    if seconds > 0:
        text += f" · {_size(round(done / seconds))}/s"
    return text


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def summary_table(
    console: Console,
    results: Mapping[str, Mapping[str, Any]],
    targets_failed: Mapping[str, str],
) -> None:
    """The end-of-run table: per target, blocks stacked, failed, skipped (and why), files."""
    from rich.table import Table

    table = Table(title="crowdsky stack", title_justify="left")
    for column in ("target", "stacked", "failed", "skipped", "files"):
        table.add_column(column, justify="right" if column in ("stacked", "failed") else "left")
    for target, result in results.items():
        skipped = int(result["blocks_skipped"])
        why = f"{skipped} (too little exposure)" if skipped else "0"
        table.add_row(
            target,
            str(result["blocks_stacked"]),
            str(result["blocks_failed"]),
            why,
            "\n".join(result["files"]) or "-",
        )
    for target, error in targets_failed.items():
        table.add_row(target, "-", "target", "-", error)
    console.print(table)
