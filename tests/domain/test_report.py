"""The printed lines, exactly as the specification shows them, from blocks built out of frames."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import (
    Block,
    RawFrame,
    crowdsky_name,
    healpix_pixel,
    parse_raw_name,
    plan_blocks,
)
from crowdsky.domain.report import (
    block_span,
    complete_line,
    dry_run_lines,
    failed_line,
    rename_failed_line,
    renamed_line,
    seconds_text,
    skipped_line,
    stacking_line,
)
from strategies import (
    block_minutes,
    device_zones,
    local_times,
    name_stamp,
    raw_frames,
    raw_name,
)

VIENNA = ZoneInfo("Europe/Vienna")
IC_434 = (85.25, -2.46)
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)


def _frames(start: datetime, count: int) -> list[str]:
    """Names of ``count`` 10 s LP frames whose exposures start in the 15 minutes from ``start``.

    Each name is stamped at save time, 14 s after its exposure started, so the last names of a
    block may carry the next block's minute; the block is the exposure's.
    """
    step = timedelta(seconds=900 // count)
    return [
        raw_name("IC 434", 10.0, "LP", name_stamp(start + timedelta(seconds=3) + i * step, 10.0))
        for i in range(count)
    ]


@pytest.fixture
def spec_blocks() -> tuple[Block, ...]:
    """The specification's session: 33, 69 and 56 frames from 21:15 to 22:00 in Vienna."""
    names = (
        _frames(datetime(2026, 2, 27, 21, 15), 33)
        + _frames(datetime(2026, 2, 27, 21, 30), 69)
        + _frames(datetime(2026, 2, 27, 21, 45), 56)
        + ["Light_IC 434_10.0s_LP_20260227-211517_thn.jpg", "IC 434_sub"]
    )
    frames = [frame for frame in map(parse_raw_name, names) if frame is not None]
    assert len(frames) == 33 + 69 + 56
    # A name past the block's end whose frame still belongs to it: the rule is really exercised.
    assert names[33 + 68] == "Light_IC 434_10.0s_LP_20260227-214501.fit"
    now = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)
    return plan_blocks(frames, now=now, device_tz=VIENNA)


def test_dry_run_lines(spec_blocks: tuple[Block, ...]) -> None:
    assert dry_run_lines("IC 434", spec_blocks, VIENNA) == (
        "Dry run: 3 blocks to stack for IC 434",
        "  21:15-21:30  33 frames x 10.0s (LP) = 330s",
        "  21:30-21:45  69 frames x 10.0s (LP) = 690s",
        "  21:45-22:00  56 frames x 10.0s (LP) = 560s",
    )


def test_stacking_lines(spec_blocks: tuple[Block, ...]) -> None:
    pixel = healpix_pixel(*IC_434)
    lines = []
    for block in spec_blocks:
        name = crowdsky_name(
            frames=block.frame_count,
            target=block.target,
            exposure_s=block.exposure_s,
            filter=block.filter,
            chunk_key=block.chunk_key,
            pixel=pixel,
        )
        lines += [
            stacking_line(block, VIENNA),
            complete_line(block.frame_count),
            renamed_line(name),
        ]
    assert lines == [
        "Stacking block 21:15-21:30 (33 frames, 10.0s LP)...",
        "  Complete: 33 frames stacked",
        "  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
        "Stacking block 21:30-21:45 (69 frames, 10.0s LP)...",
        "  Complete: 69 frames stacked",
        "  Renamed -> CrowdSky_69_IC 434_10.0s_LP_20260227.82_HP102265.fit",
        "Stacking block 21:45-22:00 (56 frames, 10.0s LP)...",
        "  Complete: 56 frames stacked",
        "  Renamed -> CrowdSky_56_IC 434_10.0s_LP_20260227.83_HP102265.fit",
    ]


def test_one_block_is_singular(spec_blocks: tuple[Block, ...]) -> None:
    assert dry_run_lines("IC 434", spec_blocks[:1], VIENNA)[0] == (
        "Dry run: 1 block to stack for IC 434"
    )
    assert dry_run_lines("IC 434", (), VIENNA) == ("Dry run: 0 blocks to stack for IC 434",)


def test_spans_are_device_local_time(spec_blocks: tuple[Block, ...]) -> None:
    assert block_span(spec_blocks[0], VIENNA) == "21:15-21:30"
    assert block_span(spec_blocks[0], UTC) == "20:15-20:30"
    assert block_span(spec_blocks[0], ZoneInfo("Asia/Kathmandu")) == "02:00-02:15"


def test_skip_and_failure_lines(spec_blocks: tuple[Block, ...]) -> None:
    assert skipped_line(spec_blocks[0], VIENNA, 337.5) == (
        "  Skipping 21:15-21:30: 33 frames x 10.0s = 330s < min_exptime 337.5s"
    )
    assert failed_line("device busy") == "  Failed: device busy"
    loud = rename_failed_line(
        "DSO_Stacked_33_IC 434_10.0s_20260227_213012.fit", "CrowdSky_x.fit", "no SMB"
    )
    assert loud.startswith("  RENAME FAILED: DSO_Stacked_33_IC 434_10.0s_20260227_213012.fit")
    assert "stacked again on the next run" in loud


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(330, "330s"), (330.0, "330s"), (337.5, "337.5s"), (0, "0s"), (0.25, "0.25s")],
)
def test_seconds_text(seconds: float, text: str) -> None:
    assert seconds_text(seconds) == text


_DRY_RUN_LINE = re.compile(
    r"  (?P<start>\d\d:\d\d)-(?P<end>\d\d:\d\d)  (?P<n>\d+) frames x (?P<exp>\S+s) "
    r"\((?P<filter>[A-Za-z0-9-]+)\) = (?P<total>\S+)s"
)


@given(
    st.lists(
        raw_frames(local_time=local_times(datetime(2026, 2, 27, 18), datetime(2026, 2, 28, 6))),
        max_size=30,
    ),
    device_zones(),
    block_minutes(),
)
def test_dry_run_has_one_faithful_line_per_block(
    frames: list[RawFrame], tz: tzinfo, minutes: int
) -> None:
    blocks = plan_blocks(frames, block_minutes=minutes, now=FAR_FUTURE, device_tz=tz)
    head, *lines = dry_run_lines("M 42", blocks, tz)
    assert head.startswith(f"Dry run: {len(blocks)} block")
    assert len(lines) == len(blocks)
    for line, block in zip(lines, blocks, strict=True):
        match = _DRY_RUN_LINE.fullmatch(line)
        assert match is not None, line
        assert match["start"] == f"{block.start.astimezone(tz):%H:%M}"
        assert match["end"] == f"{block.end.astimezone(tz):%H:%M}"
        assert (int(match["n"]), match["exp"], match["filter"]) == (
            block.frame_count,
            block.exposure,
            block.filter,
        )
        assert float(match["total"]) == pytest.approx(block.total_exposure_s, rel=1e-5)
