"""The functional core: pure functions from a frame inventory to block plans and names.

Nothing here touches the network, the disk or the clock; "now" and the device's zone come in as
arguments. Import from here rather than from the submodules.
"""

from __future__ import annotations

from crowdsky.domain.blocks import (
    Block,
    CoverageKey,
    check_min_exptime,
    coverage_key_of,
    partition_by_exptime,
    plan_blocks,
    settle_time,
)
from crowdsky.domain.names import (
    COMPANION_SUFFIXES,
    CrowdskyName,
    RawFrame,
    StackedName,
    companion_names,
    crowdsky_name,
    format_exposure,
    parse_crowdsky_name,
    parse_exposure,
    parse_raw_name,
    parse_raw_names,
    parse_stacked_name,
)
from crowdsky.domain.outcomes import BlockStatus
from crowdsky.domain.sky import DEFAULT_TILING, UNKNOWN_PIXEL, SkyTiling, healpix_pixel
from crowdsky.domain.timekeys import (
    BOUNDARY_MARGIN_S,
    MINUTES_PER_DAY,
    SAVE_DELAY_S,
    NightlyOffsets,
    ZoneDecision,
    as_utc,
    block_bounds,
    check_block_minutes,
    chunk_key,
    decide_zone,
    frame_utc,
    header_offset,
    local_to_utc,
    near_boundary,
    needs_date_obs,
    night_of,
    night_samples,
    offset_surprises,
)

__all__ = [
    "BOUNDARY_MARGIN_S",
    "COMPANION_SUFFIXES",
    "DEFAULT_TILING",
    "MINUTES_PER_DAY",
    "SAVE_DELAY_S",
    "UNKNOWN_PIXEL",
    "Block",
    "BlockStatus",
    "CoverageKey",
    "CrowdskyName",
    "NightlyOffsets",
    "RawFrame",
    "SkyTiling",
    "StackedName",
    "ZoneDecision",
    "as_utc",
    "block_bounds",
    "check_block_minutes",
    "check_min_exptime",
    "chunk_key",
    "companion_names",
    "coverage_key_of",
    "crowdsky_name",
    "decide_zone",
    "format_exposure",
    "frame_utc",
    "header_offset",
    "healpix_pixel",
    "local_to_utc",
    "near_boundary",
    "needs_date_obs",
    "night_of",
    "night_samples",
    "offset_surprises",
    "parse_crowdsky_name",
    "parse_exposure",
    "parse_raw_name",
    "parse_raw_names",
    "parse_stacked_name",
    "partition_by_exptime",
    "plan_blocks",
    "settle_time",
]
