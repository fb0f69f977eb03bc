"""Progress adapters: print to a terminal, collect in memory, or stay quiet."""

from __future__ import annotations

import sys
from typing import TextIO

from crowdsky.app.ports import BatchStackStatus

__all__ = ["CollectingProgress", "PrefixedProgress", "PrintProgress", "QuietProgress"]


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
        """Rewrite the progress line (terminals only unless asked)."""
        show = self._show if self._show is not None else self.stream.isatty()
        if not show or status.terminal:
            return
        left = "" if status.remaining_sec is None else f", ~{status.remaining_sec:.0f}s left"
        self.stream.write(
            f"\r    {status.percent:5.1f}%  {status.stacked_img}/{status.total_img} frames{left}  "
        )
        self.stream.flush()
        self._dirty = True

    def _end_progress(self) -> None:
        if self._dirty:
            self.stream.write("\n")
            self._dirty = False


class PrefixedProgress:
    """Report lines of one of several telescopes, each line led by the telescope's name.

    Stacking progress goes through only when ``show_stacking`` is set: several telescopes
    rewriting one terminal line at once would garble it.

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
        """Pass the reading on when asked to."""
        if self._show:
            self._inner.stack_progress(status)


class CollectingProgress:
    """Keep the lines and status readings in lists (tests, GUIs, notebooks)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.statuses: list[BatchStackStatus] = []

    def line(self, text: str) -> None:
        """Remember a report line."""
        self.lines.append(text)

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Remember a status reading."""
        self.statuses.append(status)


class QuietProgress:
    """Discard everything."""

    def line(self, text: str) -> None:
        """Discard the line."""

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Discard the reading."""
