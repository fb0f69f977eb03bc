"""The command line's progress wrapper, loaded only by a command that reports progress.

Kept out of :mod:`crowdsky.cli` so that building the parser (``crowdsky --help``) does not
import the application's ports.
"""

from __future__ import annotations

from typing import Any

from crowdsky.app.ports import Progress
from crowdsky.app.progress import RelayedProgress
from crowdsky.cli_wording import CommandRun

__all__ = ["CountingProgress"]


class CountingProgress(RelayedProgress):
    """Progress that also counts blocks begun and renamed, for the line after Ctrl-C.

    Parameters
    ----------
    inner : Progress
        Where the events go (the console display).
    run : CommandRun
        Counts what the command has done so far.
    """

    def __init__(self, inner: Progress, run: CommandRun) -> None:
        super().__init__(inner)
        self._run = run

    def block_started(self, label: str, frames: int) -> None:
        """Count the block, then pass it on."""
        self._run.blocks_started += 1
        super().block_started(label, frames)

    def block_finished(self, stacked: bool) -> None:
        """Count the block if it was stacked and renamed, then pass it on."""
        self._run.blocks_done += int(stacked)
        super().block_finished(stacked)

    def close(self) -> None:
        """Close the display, if it has anything to close."""
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:
        # Extras of the live display (its summary table) pass through.
        return getattr(self._inner, name)
