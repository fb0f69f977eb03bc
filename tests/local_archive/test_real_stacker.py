"""``crowdsky stack --local-dir`` with the REAL local stacker: a small synthetic night, end to end.

Two 15-minute blocks of small synthetic frames (a rotation ramp, dither, hot pixels, one blank
frame) written as the Seestar's raw subs into ``<night>/M 42_sub/``; :func:`crowdsky.cli.main`
plans, stacks on this computer (``crowdsky.adapters.local_stack.stack_block`` with its real
registrar), names and reports them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.sub_frames import DEMO_TARGETS
from crowdsky.cli import main
from crowdsky.domain import parse_crowdsky_name
from crowdsky.domain.sky import DEFAULT_TILING, healpix_pixel
from local_stack.synthetic import synthetic_block, write_subs

from .conftest import fingerprint

M42 = DEMO_TARGETS[1]
FIRST = datetime(2026, 2, 27, 19, 30, 5, tzinfo=UTC)
SECOND = datetime(2026, 2, 27, 19, 45, 5, tzinfo=UTC)
FRAMES = 6
BLANK = 2  # the third frame of the first block is under cloud


@pytest.fixture
def small_night(tmp_path: Path) -> tuple[Path, list[list[Path]]]:
    """Two blocks of :data:`FRAMES` frames of 240 x 320, 100 s apart, in ``night/M 42_sub``."""
    folder = tmp_path / "night" / f"{M42.name}_sub"
    device = FakeSeestar(zone="UTC")
    blocks = []
    for start, seed, blank in ((FIRST, 3, (BLANK,)), (SECOND, 4, ())):
        block = synthetic_block(
            FRAMES,
            shape=(320, 240),
            seed=seed,
            stars_per_megapixel=1500.0,
            rotation_deg=3.0,
            dither_px=20.0,
            blank_frames=blank,
        )
        paths = write_subs(block, folder, target=M42, start=start, interval_s=100.0, device=device)
        blocks.append(paths)
    return tmp_path / "night", blocks


def test_a_small_night_stacks_on_this_computer_and_a_rerun_stacks_nothing(
    small_night: tuple[Path, list[list[Path]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    night, blocks = small_night
    out = tmp_path / "stacks"
    before = fingerprint(night)
    argv = ["stack", "--local-dir", str(night), "--dest", str(out), "--json"]
    argv += ["--min-exptime", "0"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["total_blocks_stacked"] == 2
    assert result["total_blocks_failed"] == 0
    entries = result["results"][M42.name]["blocks"]
    assert [e["frames_stacked"] for e in entries] == [FRAMES - 1, FRAMES]
    folder = out / M42.name
    assert sorted(p.name for p in folder.glob("CrowdSky_*.fit")) == sorted(
        e["file"] for e in entries
    )
    # The cloudy frame is named in the report, with why it was left out, and in the JSON.
    blank = blocks[0][BLANK].name
    assert [e["left_out"] for e in entries] == [
        [{"file": blank, "reason": "too few stars (0)"}],
        [],
    ]
    assert f"  left out {blank}: too few stars (0)" in captured.err.splitlines()
    pixel = healpix_pixel(M42.ra_deg, M42.dec_deg, DEFAULT_TILING)
    for entry, paths in zip(entries, blocks, strict=True):
        name = parse_crowdsky_name(entry["file"])
        assert name is not None
        assert name.pixel == pixel
        kept = [p for p in paths if p.name != blank]
        first = fits.getheader(kept[0])
        header = fits.getheader(folder / entry["file"])
        assert header["STACKCNT"] == name.frames == len(kept)
        assert header["TOTALEXP"] == len(kept) * first["EXPTIME"]
        assert header["DATE-OBS"] == first["DATE-OBS"]  # the first combined sub's
        taken = datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=UTC)
        start, end = (
            datetime.fromisoformat(entry[k]) for k in ("block_start_utc", "block_end_utc")
        )
        assert start <= taken < end
        for key in ("RA", "DEC", "OBJECT", "FILTER", "INSTRUME"):
            assert header[key] == first[key]
        planes = fits.getdata(folder / entry["file"])
        assert planes.shape == (3, 320, 240)
        assert planes.dtype == np.uint16
        stem = entry["file"][: -len(".fit")]
        assert (folder / f"{stem}_thn.jpg").is_file()
        assert (folder / f"{stem}.jpg").is_file()
    assert fingerprint(night) == before
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["total_blocks_stacked"] == 0
    assert again["total_blocks_failed"] == 0
