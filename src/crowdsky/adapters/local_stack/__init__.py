"""Stacking a block of raw sub-frames on this computer (issue 13): registration and combination."""

from __future__ import annotations

from crowdsky.adapters.local_stack.transform import Similarity

__all__ = ["Similarity"]
