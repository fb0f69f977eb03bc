"""Where each block of a target stands: not stacked yet, stacked on the telescope, on the server.

:func:`classify_blocks` is the pure decision behind ``crowdsky status``. The application gathers
the facts: the blocks the planner would still stack (their chunk keys), the ``CrowdSky_*`` stacks
in the target's folder, and which of those the upload decision
(:func:`crowdsky.domain.uploads.plan_uploads`) found already on the server, or ``None`` when the
server could not be asked.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable

import attrs

from crowdsky.domain.names import CrowdskyName

__all__ = ["BlockState", "TargetStatus", "block_label", "classify_blocks"]


class BlockState(enum.StrEnum):
    """The state of one block; the value is its key in ``crowdsky status --json``-style dicts."""

    NOT_STACKED = "not_stacked"
    ON_TELESCOPE = "on_telescope"
    ON_SERVER = "on_server"


@attrs.frozen
class TargetStatus:
    """The blocks of one target by state, as sorted labels (see :func:`block_label`).

    Parameters
    ----------
    target : str
        The target.
    blocks : dict
        :class:`BlockState` → labels.
    server_known : bool
        False when the server could not be asked: every stack then counts as on the telescope.
    """

    target: str
    blocks: dict[BlockState, tuple[str, ...]]
    server_known: bool

    def count(self, state: BlockState) -> int:
        """How many blocks are in ``state``."""
        return len(self.blocks[state])


def block_label(stack: CrowdskyName) -> str:
    """A stack's block as ``<chunk key>_HP<pixel>``; the legacy form keeps its file name.

    Examples
    --------
    >>> from crowdsky.domain.names import parse_crowdsky_name
    >>> name = parse_crowdsky_name("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    >>> block_label(name)
    '20260227.81_HP102265'
    """
    if stack.chunk_key is None or stack.pixel is None:
        return stack.name
    return f"{stack.chunk_key}_HP{stack.pixel:06d}"


def classify_blocks(
    target: str,
    unstacked: Iterable[str],
    stacks: Iterable[CrowdskyName],
    on_server: Collection[str] | None,
) -> TargetStatus:
    """Sort a target's blocks into not stacked, on the telescope and on the server.

    Parameters
    ----------
    target : str
        The target.
    unstacked : iterable of str
        Chunk keys of the blocks still to stack (the planner's, ``min_exptime`` applied).
    stacks : iterable of CrowdskyName
        The ``CrowdSky_*`` stacks in the target's folder.
    on_server : collection of str or None
        File names of the stacks known to be on the server; ``None`` when unknown.

    Returns
    -------
    TargetStatus

    Examples
    --------
    >>> from crowdsky.domain.names import parse_crowdsky_name
    >>> a = parse_crowdsky_name("CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    >>> b = parse_crowdsky_name("CrowdSky_69_IC 434_10.0s_LP_20260227.82_HP102265.fit")
    >>> s = classify_blocks("IC 434", ["20260227.83"], [a, b], {a.name})
    >>> [s.count(state) for state in BlockState]
    [1, 1, 1]
    >>> s.blocks[BlockState.ON_TELESCOPE]
    ('20260227.82_HP102265',)
    """
    uploaded = set(on_server) if on_server is not None else set()
    placed: dict[BlockState, list[str]] = {state: [] for state in BlockState}
    placed[BlockState.NOT_STACKED] = list(unstacked)
    for stack in stacks:
        state = BlockState.ON_SERVER if stack.name in uploaded else BlockState.ON_TELESCOPE
        placed[state].append(block_label(stack))
    return TargetStatus(
        target,
        {state: tuple(sorted(labels)) for state, labels in placed.items()},
        server_known=on_server is not None,
    )
