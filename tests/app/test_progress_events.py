"""The stacking run tells the progress port its size, its targets and each block."""

from __future__ import annotations

from crowdsky import bootstrap
from crowdsky.adapters.console import CollectingProgress


def test_stack_all_announces_the_whole_run_then_each_target_and_block() -> None:
    progress = CollectingProgress()
    app = bootstrap.crowdsky_service(bootstrap.simulator_seestar(), progress=progress)
    result = app.stack_all()
    events = progress.events
    planned = [e for e in events if e[0] == "run_planned"]
    stacked_blocks = result["total_blocks_stacked"] + result["total_blocks_failed"]
    frames = sum(
        b["frame_count"]
        for r in result["results"].values()
        for b in r["blocks"]
        if b["status"] != "skipped"
    )
    assert planned == [("run_planned", stacked_blocks, frames, 3)]
    assert events[0][0] == "run_planned"  # announced before the first block
    targets = [e[1:] for e in events if e[0] == "target_started"]
    assert targets == [("IC 434", 1, 3), ("M 42", 2, 3), ("M 81", 3, 3)]
    started = [e for e in events if e[0] == "block_started"]
    finished = [e for e in events if e[0] == "block_finished"]
    assert len(started) == len(finished) == stacked_blocks
    assert ("block_started", "21:15-21:30", 33) in started
    assert all(e == ("block_finished", True) for e in finished)


def test_dry_run_announces_no_stacking() -> None:
    progress = CollectingProgress()
    app = bootstrap.crowdsky_service(bootstrap.simulator_seestar(), progress=progress)
    app.stack_blocks("IC 434", dry_run=True)
    assert progress.events == []
