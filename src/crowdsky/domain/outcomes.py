"""What became of one time block: the decision value every stacking summary counts.

A block is ``planned`` (dry run) or ``skipped`` (below ``min_exptime``) by the planner; a block
that was stacked on the device ends ``stacked`` (renamed to its CrowdSky name), ``failed`` (the
device did not produce a stack) or ``rename_failed`` (stacked, but the rename that records
coverage failed, so the block is stacked again on the next run).

The values are the strings the summary dicts carry (``result["blocks"][i]["status"]``).
"""

from __future__ import annotations

import enum

__all__ = ["BlockStatus"]


class BlockStatus(enum.StrEnum):
    """What happened to one block; the value is the ``status`` string of its summary dict."""

    PLANNED = "planned"
    SKIPPED = "skipped"
    STACKED = "stacked"
    FAILED = "failed"
    RENAME_FAILED = "rename_failed"

    @property
    def counts_as_failed(self) -> bool:
        """True for the outcomes a summary's ``blocks_failed`` counts (a failed rename too).

        Examples
        --------
        >>> BlockStatus.RENAME_FAILED.counts_as_failed, BlockStatus.SKIPPED.counts_as_failed
        (True, False)
        """
        return self in (BlockStatus.FAILED, BlockStatus.RENAME_FAILED)
