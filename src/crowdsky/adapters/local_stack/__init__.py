"""Stacking a block of raw sub-frames on this computer (issue 13): registration and combination.

:func:`stack_block` (in :mod:`.engine`) needs the ``[stack]`` extra (numpy, OpenCV, ...);
importing it without the extra raises ``ImportError``, which the local archive adapter turns into
:class:`crowdsky.errors.MissingExtraError` naming ``pip install "crowdsky[stack]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crowdsky.adapters.local_stack.transform import Similarity

if TYPE_CHECKING:
    from crowdsky.adapters.local_stack.engine import LocalStackResult, stack_block

__all__ = ["LocalStackResult", "Similarity", "stack_block"]


def __getattr__(name: str) -> Any:
    # The engine imports numpy and OpenCV: only when it is asked for.
    if name in ("LocalStackResult", "stack_block"):
        from crowdsky.adapters.local_stack import engine

        return getattr(engine, name)
    raise AttributeError(name)
