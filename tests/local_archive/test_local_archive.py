"""The local archive as a Seestar: the same plan as the telescope, stacks in its output folder."""

from __future__ import annotations

import shutil
from datetime import UTC
from pathlib import Path

import pytest
from astropy.io import fits

from crowdsky.adapters.clock import FakeClock
from crowdsky.adapters.console import CollectingProgress
from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.storage import DirectoryStorage
from crowdsky.adapters.local_archive import LocalArchive, StackBlock
from crowdsky.app.ports import BatchStackState
from crowdsky.app.service import Crowdsky
from crowdsky.app.stacking import StackOptions
from crowdsky.domain import parse_crowdsky_name
from crowdsky.domain.timekeys import ZoneSource
from crowdsky.errors import ConfigError, MissingExtraError, StorageError

from .conftest import MORNING, BlockingStacker, fake_stacker, fingerprint


def archive(
    root: Path, output: Path | None = None, stacker: StackBlock = fake_stacker
) -> LocalArchive:
    return LocalArchive(root, output or root / "CrowdSky", load_stacker=lambda: stacker)


def service(seestar: object) -> Crowdsky:
    options = StackOptions(poll_min=0.01, poll_max=0.05)
    return Crowdsky(
        seestar, FakeClock(MORNING), CollectingProgress(), host_zone=UTC, options=options
    )  # type: ignore[arg-type]


def device_on(root: Path) -> FakeSeestar:
    return FakeSeestar(
        clock=FakeClock(MORNING), zone="Europe/Vienna", storage=DirectoryStorage(root)
    )


def plan_of(seestar: object, target: str) -> list[tuple[object, ...]]:
    blocks = service(seestar).find_unstacked_blocks(target, min_exptime=0)
    return [
        (
            b["chunk_key"],
            b["block_start_utc"],
            b["frame_count"],
            b["exposure"],
            b["filter"],
            tuple(b["files"]),
        )
        for b in blocks
    ]


def test_an_archive_plans_the_same_blocks_as_the_telescope_it_was_copied_from(night: Path) -> None:
    local = archive(night)
    assert [t["target"] for t in service(local).list_targets()] == ["IC 434", "M 42"]
    for target in ("IC 434", "M 42"):
        expected = plan_of(device_on(night), target)
        assert len(expected) >= 2
        assert plan_of(local, target) == expected
    # No clock is claimed: the zone comes from the subs' DATE-OBS.
    assert local.device_time().zone is None
    assert local.device_time().local is None
    inventory = service(local)._inventory("IC 434", 15)
    assert inventory.zone.source is ZoneSource.HEADER


@pytest.mark.parametrize("layout", ["flat", "sub_folder", "MyWorks"])
def test_every_layout_gives_the_same_plan(night: Path, tmp_path: Path, layout: str) -> None:
    expected = {t: plan_of(device_on(night), t) for t in ("IC 434", "M 42")}
    copied = tmp_path / layout
    if layout == "flat":  # one folder of Light_*.fit, targets mixed
        copied.mkdir()
        for sub in (night / "MyWorks").glob("*_sub/Light_*.fit"):
            shutil.copy2(sub, copied / sub.name)
    elif layout == "sub_folder":  # the MyWorks folder itself
        shutil.copytree(night / "MyWorks", copied)
    else:
        shutil.copytree(night, copied)
    local = archive(copied, tmp_path / "out")
    assert {t: plan_of(local, t) for t in expected} == expected


def test_stacking_names_like_the_telescope_writes_the_device_format_and_a_rerun_stacks_nothing(
    night: Path, tmp_path: Path
) -> None:
    device_copy = tmp_path / "device"
    shutil.copytree(night, device_copy)
    on_device = service(device_on(device_copy)).stack_all(min_exptime=0)
    before = fingerprint(night)
    local = archive(night)
    result = service(local).stack_all(min_exptime=0)
    assert result["total_blocks_failed"] == 0
    assert result["total_blocks_stacked"] == on_device["total_blocks_stacked"] > 3
    for target, summary in result["results"].items():
        assert summary["files"] == on_device["results"][target]["files"]
        folder = night / "CrowdSky" / target
        assert sorted(p.name for p in folder.iterdir() if p.suffix == ".fit") == sorted(
            summary["files"]
        )
        for name in summary["files"]:
            parsed = parse_crowdsky_name(name)
            assert parsed is not None
            header = fits.getheader(folder / name)
            assert (header["NAXIS"], header["NAXIS3"], header["BITPIX"], header["BZERO"]) == (
                3,
                3,
                16,
                32768,
            )
            assert header["STACKCNT"] == parsed.frames
            # The thumbnail followed its stack's name.
            assert (folder / (name[: -len(".fit")] + "_thn.jpg")).is_file()
    assert fingerprint(night) == before  # raw subs: same bytes, same mtimes
    again = service(local).stack_all(min_exptime=0)
    assert again["total_blocks_stacked"] == 0
    assert again["total_blocks_failed"] == 0
    # A new archive object over the same folders (a later run) sees the coverage too.
    assert service(archive(night)).find_unstacked_blocks("IC 434", min_exptime=0) == []


def test_raw_sub_frames_are_never_renamed_deleted_or_rewritten(night: Path) -> None:
    before = fingerprint(night)
    local = archive(night)
    raw = next(e.name for e in local.list_files("IC 434_sub") if e.name.endswith(".fit"))
    path = f"MyWorks/IC 434_sub/{raw}"
    with pytest.raises(StorageError, match="raw sub-frames"):
        local.rename(path, "CrowdSky_1_IC 434_10.0s_LP_20260227.85_HP102265.fit")
    with pytest.raises(StorageError, match="raw sub-frames"):
        local.delete(path)
    # Nor through the output folder: a path that leads back into the archive.
    with pytest.raises(StorageError):
        local.delete(f"MyWorks/../MyWorks/IC 434_sub/{raw}")
    assert (
        local.download(path, night / "copy.fit").read_bytes()
        == (night / "MyWorks/IC 434_sub" / raw).read_bytes()
    )
    assert fingerprint(night) == before


def test_stop_cancels_between_frames_and_leaves_no_output(night: Path) -> None:
    stacker = BlockingStacker()
    local = archive(night, stacker=stacker)
    paths = [
        f"MyWorks/IC 434_sub/{e.name}"
        for e in local.list_files("IC 434_sub")
        if e.name.endswith(".fit")
    ]
    local.configure_batch_stack("MyWorks/IC 434_sub", paths[:5])
    local.start_batch_stack()
    assert stacker.started.wait(10)
    local.stop_batch_stack()
    status = local.batch_stack_status()
    assert status is not None
    assert status.state is BatchStackState.CANCEL
    assert [p.name for p in (night / "CrowdSky").rglob("*")] == ["IC 434"]


def test_a_missing_stack_extra_stops_the_run_with_one_line_naming_the_install(night: Path) -> None:
    def not_installed() -> StackBlock:
        raise ModuleNotFoundError("No module named 'cv2'", name="cv2")

    local = LocalArchive(night, night / "CrowdSky", load_stacker=not_installed)
    assert service(local).find_unstacked_blocks("IC 434")  # planning needs no extra
    with pytest.raises(MissingExtraError) as caught:
        service(local).stack_all(min_exptime=0)
    message = str(caught.value)
    assert 'pip install "crowdsky[stack]"' in message
    assert "\n" not in message
    assert not list((night / "CrowdSky").rglob("*.fit"))


def test_another_import_failure_is_not_called_a_missing_extra(night: Path) -> None:
    def broken() -> StackBlock:
        raise ImportError("cannot import name 'stack_block'", name="crowdsky.adapters.local_stack")

    local = LocalArchive(night, night / "CrowdSky", load_stacker=broken)
    with pytest.raises(ImportError, match="stack_block"):
        local.start_batch_stack()


def test_bad_folders_are_refused_with_what_to_do(tmp_path: Path, night: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        archive(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no raw sub-frames \(Light_\*\.fit\)"):
        archive(tmp_path / "empty")
    with pytest.raises(ConfigError, match="inside a raw sub-frame folder"):
        archive(night, night / "MyWorks" / "IC 434_sub" / "out")
    with pytest.raises(ConfigError, match="contains the archive"):
        archive(night / "MyWorks", night)


def test_progress_counts_frames_as_the_device_does(night: Path) -> None:
    # The stacker reports steps (twice the frames); the status reports frames, as a Seestar's.
    local = archive(night)
    paths = [
        f"MyWorks/IC 434_sub/{e.name}"
        for e in local.list_files("IC 434_sub")
        if e.name.endswith(".fit")
    ][:4]
    local.configure_batch_stack("MyWorks/IC 434_sub", paths)
    local.start_batch_stack()
    seen = []
    while (status := local.next_batch_stack_status(10.0)) is not None:
        seen.append(status)
        if status.terminal:
            break
    working = [s for s in seen if s.state is BatchStackState.WORKING and s.percent > 0]
    assert working
    assert {s.total_img for s in working} == {4}
    assert [s.stacked_img for s in working] == sorted(s.stacked_img for s in working)
    assert max(s.stacked_img for s in working) == 4
    assert working[0].stacked_img == 0  # one sub read of four: nothing combined yet
    assert seen[-1].state is BatchStackState.COMPLETE
