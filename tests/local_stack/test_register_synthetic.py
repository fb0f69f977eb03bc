"""The synthetic block generator the local stacker's tests rely on: its truth is the truth."""

from __future__ import annotations

import math
from pathlib import Path

import attrs
import numpy as np
import pytest
from astropy.io import fits

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.local_stack import Similarity
from local_stack.synthetic import BAYER_PLANE, synthetic_block, write_subs

SMALL = (96, 64)


def test_the_same_arguments_give_the_same_frames() -> None:
    first = synthetic_block(3, shape=SMALL, trail_frame=1)
    second = synthetic_block(3, shape=SMALL, trail_frame=1)
    for index in range(3):
        assert np.array_equal(first.mosaic(index), second.mosaic(index))
    assert first.truths == second.truths
    assert not np.array_equal(first.mosaic(0), synthetic_block(3, shape=SMALL, seed=14).mosaic(0))


def test_grbg_each_pixel_samples_its_own_colour_plane() -> None:
    assert BAYER_PLANE.tolist() == [[1, 0], [2, 1]]  # G R / B G
    block = synthetic_block(
        1, shape=(32, 32), sky=(0.0, 0.0, 0.0), hot_pixels=0, noise=False, transparency=(1.0, 1.0)
    )
    for plane, name in enumerate("RGB"):
        flux = np.zeros((1, 3))
        flux[0, plane] = 1e5
        one = attrs.evolve(block, star_x=np.array([15.3]), star_y=np.array([16.2]), star_flux=flux)
        lit = one.expected(0) > 0
        rows, cols = np.nonzero(lit)
        assert set(BAYER_PLANE[rows % 2, cols % 2].tolist()) == {plane}, name
        # The plane holds the star's whole flux; the mosaic samples a quarter of R or B, half of G.
        share = 0.5 if plane == 1 else 0.25
        assert one.expected(0).sum() == pytest.approx(share * 1e5, rel=0.02)


def test_a_star_lies_where_the_truth_maps_it() -> None:
    block = synthetic_block(
        2, shape=(200, 160), sky=(0.0, 0.0, 0.0), hot_pixels=0, noise=False, dither_px=20.0
    )
    flux = np.array([[2e5, 2e5, 2e5]])
    one = attrs.evolve(block, star_x=np.array([70.0]), star_y=np.array([110.0]), star_flux=flux)
    image = one.expected(1)
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    weights = image * np.where(BAYER_PLANE[rows % 2, cols % 2] == 1, 1.0, 2.0)  # flat per plane
    centre = ((weights * cols).sum() / weights.sum(), (weights * rows).sum() / weights.sum())
    expected = one.truth(1).apply(70.0, 110.0)
    assert math.dist(centre, expected) < 0.01


def test_the_block_turns_through_the_ramp_and_dithers() -> None:
    block = synthetic_block(5, shape=SMALL, rotation_deg=15.0, dither_px=100.0)
    assert block.truth(0) == Similarity(tx=0.0, ty=0.0)
    angles = [math.degrees(t.rotation) for t in block.truths]
    assert angles == pytest.approx([0.0, 3.75, 7.5, 11.25, 15.0])
    centre = ((SMALL[1] - 1) / 2, (SMALL[0] - 1) / 2)
    shifts = [np.subtract(t.apply(*centre), centre) for t in block.truths[1:]]
    assert all(np.abs(s).max() <= 100.0 for s in shifts)
    assert max(np.abs(s).max() for s in shifts) > 30.0


def test_hot_pixels_are_fixed_to_the_sensor() -> None:
    block = synthetic_block(3, shape=SMALL, stars_per_megapixel=0, saturated_stars=0)
    hot = [block.mosaic(i) > 2500 for i in range(3)]
    assert hot[0].sum() >= 100
    assert np.array_equal(hot[0], hot[1])
    assert np.array_equal(hot[0], hot[2])


def test_trail_blank_and_sparse_frames() -> None:
    block = synthetic_block(
        4, shape=(240, 160), trail_frame=1, blank_frames=(2,), sparse_frames={3: 2}
    )
    trail = block.expected(1) - attrs.evolve(block, trail_frame=None).expected(1)
    assert (trail > 1000).sum() > 160  # a line across the whole frame
    assert len(block.stars_in(2)[0]) == 0
    assert len(block.stars_in(3)[0]) == 2
    assert len(block.stars_in(0)[0]) > 2


def test_write_subs_writes_the_devices_raw_files(tmp_path: Path) -> None:
    block = synthetic_block(2, shape=SMALL)
    folder = tmp_path / "MyWorks" / "M 42_sub"
    paths = write_subs(block, folder, device=FakeSeestar(zone="UTC"))
    # Named in the device's local time when saved: DATE-OBS + 10 s exposure + 4 s to save.
    assert [p.name for p in paths] == [
        "Light_M 42_10.0s_LP_20260227-193019.fit",
        "Light_M 42_10.0s_LP_20260227-193031.fit",
    ]
    raw = paths[1].read_bytes()
    header = raw[:2880].decode("ascii")
    assert "BITPIX  =                   16" in header
    assert "BZERO   =                32768" in header
    with fits.open(paths[1]) as hdul:
        cards = hdul[0].header
        assert np.array_equal(hdul[0].data, block.mosaic(1))
        assert hdul[0].data.dtype == np.uint16
    assert cards["DATE-OBS"] == "2026-02-27T19:30:17.000000"
    assert (cards["OBJECT"], cards["FILTER"], cards["BAYERPAT"]) == ("M 42", "LP", "GRBG")
    assert (cards["EXPTIME"], cards["RA"], cards["DEC"]) == (10.0, 83.82, -5.39)
    assert cards["INSTRUME"] == "Seestar S50"
