"""Progress wrappers the services compose: pass everything on, or nothing.

A service that needs to change one kind of report (drop some lines, stop on a cancel) subclasses
:class:`RelayedProgress` and overrides that one method; the other events of the
:class:`~crowdsky.app.ports.Progress` port go through unchanged.
"""

from __future__ import annotations

from crowdsky.app.ports import BatchStackStatus, Progress

__all__ = ["RelayedProgress", "SilentProgress"]


class RelayedProgress:
    """Passes every progress event on to ``inner``.

    Parameters
    ----------
    inner : Progress
        Where the events go.
    """

    def __init__(self, inner: Progress) -> None:
        self._inner = inner

    def line(self, text: str) -> None:
        """Pass the line on."""
        self._inner.line(text)

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Pass the reading on."""
        self._inner.stack_progress(status)

    def run_planned(self, blocks: int, frames: int, targets: int) -> None:
        """Pass the plan's size on."""
        self._inner.run_planned(blocks, frames, targets)

    def target_started(self, target: str, index: int, total: int) -> None:
        """Pass the target on."""
        self._inner.target_started(target, index, total)

    def block_started(self, label: str, frames: int) -> None:
        """Pass the block on."""
        self._inner.block_started(label, frames)

    def block_finished(self, stacked: bool) -> None:
        """Pass the block's end on."""
        self._inner.block_finished(stacked)

    def transfer(self, name: str, done: int, total: int | None) -> None:
        """Pass the byte count on."""
        self._inner.transfer(name, done, total)


class SilentProgress:
    """Takes every progress event and shows none (for work whose report is not wanted)."""

    def line(self, text: str) -> None:
        """Drop the line."""

    def stack_progress(self, status: BatchStackStatus) -> None:
        """Drop the reading."""

    def run_planned(self, blocks: int, frames: int, targets: int) -> None:
        """Drop the plan's size."""

    def target_started(self, target: str, index: int, total: int) -> None:
        """Drop the target."""

    def block_started(self, label: str, frames: int) -> None:
        """Drop the block."""

    def block_finished(self, stacked: bool) -> None:
        """Drop the block's end."""

    def transfer(self, name: str, done: int, total: int | None) -> None:
        """Drop the byte count."""
