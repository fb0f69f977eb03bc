"""A stack's ``DATE-OBS``: the first frame's or the stacking time (unknown for real devices).

The CrowdSky name comes from the block plan, so it is the same under both. The server keys a stack
by its header's ``DATE-OBS``: with the first frame's time that is the named block; with the
stacking time (the next morning here) it would be another block, so such a stack is refused
rather than filed where it does not belong (shared decision 7).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from astropy.io import fits

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.collab.http_client import HttpCollabServer
from crowdsky.adapters.collab.journal import JOURNAL_NAME
from crowdsky.adapters.collab.stack_meta import stack_meta
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.batch_stack import StackDateObs
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.sub_frames import add_sub
from crowdsky.adapters.simulator.server import demo_simulator_device
from crowdsky.app.service import Crowdsky
from crowdsky.domain.uploads import UploadReason

from .test_upload_all import upload

FIRST = datetime(2026, 2, 27, 20, 15, 5, tzinfo=UTC)
MORNING = datetime(2026, 2, 28, 6, 0, tzinfo=UTC)
NAME = "CrowdSky_33_IC 434_10.0s_LP_20260227.81_HP102265.fit"
KEY = "20260227.81_HP102265"


def _stacked(mode: StackDateObs) -> FakeSeestar:
    """A device that stacked block 20260227.81 of IC 434 the next morning, with ``mode``."""
    device = FakeSeestar(clock=FakeClock(MORNING), stack_date_obs=mode)
    for i in range(33):
        add_sub(device, "IC 434", 10.0, "LP", FIRST + i * timedelta(seconds=27), 85.25, -2.46)
    result = Crowdsky(device, device.clock, CollectingProgress()).stack_blocks("IC 434")
    assert result["files"] == [NAME]  # the name comes from the block plan either way
    return device


@pytest.mark.parametrize("mode", list(StackDateObs))
def test_the_name_is_the_blocks_under_either_date_obs(mode: StackDateObs) -> None:
    device = _stacked(mode)
    header = device.read_header(f"MyWorks/IC 434/{NAME}")
    expected = "2026-02-27T20:15:05" if mode is StackDateObs.FIRST_FRAME else "2026-02-28T06:00:00"
    assert str(header["DATE-OBS"]).startswith(expected)


def test_a_first_frame_stack_is_keyed_as_it_is_named(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    device = _stacked(StackDateObs.FIRST_FRAME)
    summary = upload(client, seestar=device, dest=tmp_path / "dl")
    assert summary["uploaded"] == [NAME]
    assert [r.chunk_key for r in client.list_stacks()] == [KEY]
    assert stack_meta(tmp_path / "dl" / "IC 434" / NAME).server_key == KEY


def test_a_stacking_time_stack_is_refused_not_filed_under_another_block(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    device = _stacked(StackDateObs.STACKING_TIME)
    progress = CollectingProgress()
    for forced in (False, True):
        summary = upload(
            client, seestar=device, dest=tmp_path / "dl", progress=progress,
            skip_existing=not forced,
        )  # fmt: skip
        assert summary["uploaded"] == []
        assert [f["name"] for f in summary["failed"]] == [NAME]
        assert UploadReason.MISFILED.value in summary["failed"][0]["error"]
    assert client.list_stacks() == []
    assert any(line.startswith(f"  REFUSED {NAME}") for line in progress.lines)
    assert not (tmp_path / "dl" / JOURNAL_NAME).exists() or NAME not in (
        tmp_path / "dl" / JOURNAL_NAME
    ).read_text(encoding="utf-8")


def test_a_local_stack_stamped_with_its_stacking_time_is_refused_too(
    client: HttpCollabServer, tmp_path: Path
) -> None:
    device = _stacked(StackDateObs.STACKING_TIME)
    folder = tmp_path / "mine"
    folder.mkdir()
    device.download(f"MyWorks/IC 434/{NAME}", folder / NAME)
    assert fits.getheader(folder / NAME)["DATE-OBS"].startswith("2026-02-28T06:00:00")
    summary = upload(client, local_dir=folder)
    assert [f["name"] for f in summary["failed"]] == [NAME]
    assert client.list_stacks() == []


@pytest.mark.parametrize("mode", list(StackDateObs))
def test_the_simulators_device_takes_the_option(mode: StackDateObs, tmp_path: Path) -> None:
    device = demo_simulator_device(tmp_path, clock=FakeClock(MORNING), stack_date_obs=mode)
    assert device.stack_date_obs is mode
