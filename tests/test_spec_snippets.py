"""The specification's code blocks, run as written (``import crowdsky`` for seestarpy's)."""

from __future__ import annotations

import pytest

import crowdsky


@pytest.fixture(autouse=True)
def simulator() -> object:
    device = crowdsky.use_simulator()
    yield device
    crowdsky.disconnect()


def test_discovering_targets(capsys: pytest.CaptureFixture[str]) -> None:
    targets = crowdsky.list_targets()
    for t in targets:
        print(f"{t['target']:25s} raw={t['raw_files']:>5d} stacked={t['stacked_files']:>3d}")
    assert capsys.readouterr().out == (
        "IC 434                    raw=  158 stacked=  1\n"
        "M 42                      raw=  216 stacked=  1\n"
        "M 81                      raw= 2053 stacked=  1\n"
    )


def test_previewing_unstacked_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    blocks = crowdsky.find_unstacked_blocks("IC 434")
    for b in blocks:
        start = b["block_start"].strftime("%H:%M")
        end = b["block_end"].strftime("%H:%M")
        print(f"  {start}-{end} {b['frame_count']} frames {b['exposure']} {b['filter']}")
    assert capsys.readouterr().out == (
        "  21:15-21:30 33 frames 10.0s LP\n"
        "  21:30-21:45 69 frames 10.0s LP\n"
        "  21:45-22:00 56 frames 10.0s LP\n"
    )


def test_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    crowdsky.stack_blocks("IC 434", dry_run=True)
    assert capsys.readouterr().out == (
        "Dry run: 3 blocks to stack for IC 434\n"
        "  21:15-21:30  33 frames x 10.0s (LP) = 330s\n"
        "  21:30-21:45  69 frames x 10.0s (LP) = 690s\n"
        "  21:45-22:00  56 frames x 10.0s (LP) = 560s\n"
    )


def test_stacking_and_rerun(capsys: pytest.CaptureFixture[str]) -> None:
    result = crowdsky.stack_blocks("IC 434")
    assert capsys.readouterr().out == (
        "Stacking block 21:15-21:30 (33 frames, 10.0s LP)...\n"
        "  Complete: 33 frames stacked\n"
        "  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit\n"
        "Stacking block 21:30-21:45 (69 frames, 10.0s LP)...\n"
        "  Complete: 69 frames stacked\n"
        "  Renamed -> CrowdSky_69_IC 434_10.0s_LP_20260227.82_HP102265.fit\n"
        "Stacking block 21:45-22:00 (56 frames, 10.0s LP)...\n"
        "  Complete: 56 frames stacked\n"
        "  Renamed -> CrowdSky_56_IC 434_10.0s_LP_20260227.83_HP102265.fit\n"
    )
    assert result["blocks_stacked"] == 3
    assert result["blocks_failed"] == 0
    assert crowdsky.stack_blocks("IC 434")["blocks_stacked"] == 0


def test_parameters() -> None:
    result = crowdsky.stack_blocks("M 81", block_minutes=10, min_exptime=120)
    assert result["blocks_stacked"] > 0
    assert result["blocks_failed"] == 0
    assert all("m10_HP" in name for name in result["files"])


def test_stacking_all_targets(capsys: pytest.CaptureFixture[str]) -> None:
    preview = crowdsky.stack_all(dry_run=True)  # preview first
    result = crowdsky.stack_all()  # then run
    print(
        f"Stacked: {result['total_blocks_stacked']} "
        f"Failed: {result['total_blocks_failed']} "
        f"Skipped: {result['total_blocks_skipped']} "
        f"across {result['targets_processed']} targets"
    )
    last = capsys.readouterr().out.strip().splitlines()[-1]
    planned = sum(r["blocks_planned"] for r in preview["results"].values())
    assert last == (
        f"Stacked: {planned} Failed: 0 Skipped: {preview['total_blocks_skipped']} across 3 targets"
    )


def test_purging() -> None:
    crowdsky.stack_all()
    crowdsky.purge_crowdsky_stacks("IC 434")  # Purge one target
    assert len(crowdsky.find_unstacked_blocks("IC 434")) == 3
    crowdsky.purge_crowdsky_stacks()  # Purge all targets
    names = [
        e.name
        for target in ("IC 434", "M 42", "M 81")
        for e in crowdsky.current_seestar().list_files(target)
    ]
    assert not [n for n in names if n.startswith("CrowdSky_")]
    # The firmware's own stacks and the raw frames are untouched.
    assert crowdsky.list_targets()[0]["raw_files"] == 158
