"""The live display, drawn by rich on a terminal console, and plain on anything else."""

from __future__ import annotations

import re
from io import StringIO

from rich.console import Console

from crowdsky.adapters.console import RichProgress
from crowdsky.app.ports import BatchStackState, BatchStackStatus

ESCAPE = re.compile(r"\x1b\[")


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _status(percent: float, stacked: int, total: int, left: float | None) -> BatchStackStatus:
    return BatchStackStatus(
        BatchStackState.WORKING,
        percent=percent,
        stacked_img=stacked,
        total_img=total,
        remaining_sec=left,
    )


def _night(progress: RichProgress, ticks: Ticks) -> None:
    progress.run_planned(blocks=3, frames=90, targets=2)
    progress.target_started("IC 434", 1, 2)
    progress.block_started("21:15-21:30", 30)
    progress.line("Stacking block 21:15-21:30 (30 frames, 10.0s LP)...")
    progress.stack_progress(_status(40.0, 12, 30, 18.0))
    ticks.now = 60.0
    progress.block_finished(stacked=True)
    progress.target_started("M 42", 2, 2)
    progress.block_started("2026-02-28 00:15-00:30", 30)
    progress.stack_progress(_status(50.0, 15, 30, 30.0))


def test_terminal_shows_bar_overall_line_and_target() -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    ticks = Ticks()
    with RichProgress(console, monotonic=ticks) as progress:
        _night(progress, ticks)
        # 60 s for 30 frames: 2 s a frame; 30 s left in this block by the device, 30 frames later
        assert progress.overall_text() == "block 2 of 3 · target 2 of 2 · about 1m30s left"
    out = buffer.getvalue()
    assert ESCAPE.search(out)  # a live display on a terminal
    assert "block 1 of 3 · target 1 of 2" in out
    assert "IC 434 21:15-21:30" in out
    assert "12/30 frames · 18s left" in out
    assert "40%" in out
    assert "── M 42 (target 2 of 2) ──" in out
    assert "M 42 2026-02-28 00:15-00:30" in out
    assert "Stacking block 21:15-21:30 (30 frames, 10.0s LP)..." in out


def test_before_any_block_finished_the_time_left_is_not_guessed() -> None:
    console = Console(file=StringIO(), force_terminal=True, width=120)
    progress = RichProgress(console, monotonic=Ticks())
    progress.run_planned(blocks=2, frames=60, targets=1)
    progress.block_started("21:15-21:30", 30)
    assert progress.overall_text().endswith("time left not measured yet")
    progress.close()


def test_transfer_bytes_show_on_a_terminal() -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    with RichProgress(console) as progress:
        progress.transfer("CrowdSky_33_IC 434.fit", 1536, 3 * 1024 * 1024)
    assert "1.5 KB of 3.0 MB" in buffer.getvalue()


def test_transfer_bar_shows_bytes_total_and_rate_then_goes() -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    ticks = Ticks()
    mib = 1024 * 1024
    with RichProgress(console, monotonic=ticks) as progress:
        progress.transfer("CrowdSky_33_IC 434.fit", mib, 12 * mib)
        ticks.now = 2.0
        progress.transfer("CrowdSky_33_IC 434.fit", 4 * mib, 12 * mib)
        drawn = buffer.getvalue()
        assert "4.0 MB of 12.0 MB · 2.0 MB/s" in drawn
        assert "33%" in drawn
        progress.line("  upload CrowdSky_33_IC 434.fit -> 20260227.81_HP102265 (queued)")
        ticks.now = 3.0
        progress.transfer("CrowdSky_33_IC 434.fit", 12 * mib, 12 * mib)
        assert progress._transfer is None  # the finished file's bar is taken down


def test_transfer_bar_is_redrawn_at_most_every_tenth_of_a_second() -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=True, width=120, color_system=None)
    ticks = Ticks()
    with RichProgress(console, monotonic=ticks) as progress:
        progress.transfer("a.fit", 1024, 100 * 1024)
        for kib in range(2, 50):  # pieces arriving within the same instant are not drawn
            progress.transfer("a.fit", kib * 1024, 100 * 1024)
        assert "49.0 KB of" not in buffer.getvalue()
        ticks.now = 0.5
        progress.transfer("a.fit", 50 * 1024, 100 * 1024)
        assert "50.0 KB of 100.0 KB" in buffer.getvalue()


def test_transfer_off_a_terminal_draws_nothing() -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=False, width=80)
    with RichProgress(console, monotonic=Ticks()) as progress:
        progress.transfer("a.fit", 1024, 2048)
        progress.transfer("a.fit", 2048, 2048)
    assert buffer.getvalue() == ""


def test_not_a_terminal_plain_lines_only() -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=False, width=40)
    ticks = Ticks()
    with RichProgress(console, monotonic=ticks) as progress:
        _night(progress, ticks)
        progress.line("  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit")
    out = buffer.getvalue()
    assert not ESCAPE.search(out)
    assert "\r" not in out
    assert out.splitlines() == [
        "── IC 434 (target 1 of 2) ──",
        "Stacking block 21:15-21:30 (30 frames, 10.0s LP)...",
        "── M 42 (target 2 of 2) ──",
        "  Renamed -> CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
    ]


def test_summary_table_per_target() -> None:
    buffer = StringIO()
    console = Console(file=buffer, force_terminal=True, width=160, color_system=None)
    results = {
        "IC 434": {
            "blocks_stacked": 2,
            "blocks_failed": 1,
            "blocks_skipped": 1,
            "files": ["CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit"],
        }
    }
    with RichProgress(console) as progress:
        progress.summary_table(results, {"M 42": "header could not be read"})
    out = buffer.getvalue()
    row = next(line for line in out.splitlines() if "IC 434" in line)
    cells = [c.strip() for c in re.split(r"[│┃|]", row) if c.strip()]
    assert cells == [
        "IC 434",
        "2",
        "1",
        "1 (too little exposure)",
        "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit",
    ]
    assert "header could not be read" in out
