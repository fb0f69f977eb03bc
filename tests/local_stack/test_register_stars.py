"""Star detection on raw GRBG mosaics: true positions, no hot pixels, no saturated blobs."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from crowdsky.adapters.local_stack.stars import Stars, detect_stars
from local_stack.synthetic import SyntheticBlock, synthetic_block

SMALL = (480, 320)


def _distance_to_nearest(
    stars: Stars, x: NDArray[np.float64], y: NDArray[np.float64]
) -> NDArray[np.float64]:
    if x.size == 0:
        return np.full(len(stars), np.inf)
    return np.asarray(np.hypot(stars.x[:, None] - x, stars.y[:, None] - y).min(axis=1))


def _true_stars(block: SyntheticBlock, index: int) -> tuple[NDArray[np.float64], ...]:
    x, y, _ = block.stars_in(index, margin=10.0)
    return x, y


@pytest.mark.parametrize("fwhm", [(2.0, 2.0), (2.5, 4.0), (4.5, 5.0)])
def test_every_star_found_lies_on_a_true_star(fwhm: tuple[float, float]) -> None:
    block = synthetic_block(2, shape=SMALL, fwhm=fwhm, hot_pixels=0, seed=5)
    stars = detect_stars(block.mosaic(1))
    error = _distance_to_nearest(stars, *_true_stars(block, 1))
    assert len(stars) >= 15
    assert error.max() < 0.3
    assert np.median(error) < 0.05


def test_centres_are_in_full_resolution_pixels_of_the_mosaic() -> None:
    # One star, noise-free, in the middle of a pixel that is not a Bayer cell's corner.
    block = synthetic_block(
        1, shape=(64, 64), stars_per_megapixel=0, saturated_stars=0, hot_pixels=0, noise=False
    )
    block = _with_one_star(block, x=31.3, y=40.6)
    stars = detect_stars(block.mosaic(0))
    assert len(stars) == 1
    assert stars.x[0] == pytest.approx(31.3, abs=0.02)
    assert stars.y[0] == pytest.approx(40.6, abs=0.02)


def _with_one_star(block: SyntheticBlock, x: float, y: float) -> SyntheticBlock:
    import attrs

    return attrs.evolve(
        block,
        star_x=np.array([x]),
        star_y=np.array([y]),
        star_flux=np.array([[30000.0, 40000.0, 20000.0]]),
    )


def test_hot_pixels_are_not_stars() -> None:
    block = synthetic_block(2, shape=SMALL, hot_pixels=1500, seed=8)
    mosaic = block.mosaic(1)
    stars = detect_stars(mosaic)
    on_a_star = _distance_to_nearest(stars, *_true_stars(block, 1)) < 0.5
    assert len(stars) >= 15
    assert on_a_star.all(), list(zip(stars.x[~on_a_star], stars.y[~on_a_star], strict=True))


def test_a_frame_of_hot_pixels_alone_has_no_stars() -> None:
    block = synthetic_block(
        1, shape=SMALL, stars_per_megapixel=0, saturated_stars=0, hot_pixels=1500
    )
    mosaic = block.mosaic(0)
    assert int((mosaic > 3000).sum()) >= 1300  # the hot pixels are there
    assert len(detect_stars(mosaic)) == 0


def test_saturated_stars_are_left_out() -> None:
    block = synthetic_block(2, shape=SMALL, saturated_stars=6, seed=3)
    mosaic = block.mosaic(1)
    x, y, flux = block.stars_in(1)
    saturated = flux[:, 1] > 1e6
    assert saturated.sum() >= 1
    assert mosaic.max() == 65535
    stars = detect_stars(mosaic)
    assert _distance_to_nearest(stars, x[saturated], y[saturated]).min() > 5.0
    assert len(stars) >= 15


def test_a_blank_cloudy_frame_has_no_stars() -> None:
    block = synthetic_block(2, shape=SMALL, blank_frames=(1,), hot_pixels=300)
    stars = detect_stars(block.mosaic(1))
    assert len(stars) == 0
    assert stars.failure is None


def test_brightest_first_and_at_most_the_limit() -> None:
    block = synthetic_block(1, shape=SMALL, stars_per_megapixel=600)
    stars = detect_stars(block.mosaic(0), max_stars=40)
    assert len(stars) == 40
    assert (np.diff(stars.flux) <= 0).all()
    everything = detect_stars(block.mosaic(0))
    assert len(everything) > 40
    assert np.array_equal(everything.x[:40], stars.x)


def test_the_same_frame_gives_the_same_stars() -> None:
    mosaic = synthetic_block(1, shape=SMALL).mosaic(0)
    first, second = detect_stars(mosaic), detect_stars(mosaic.copy())
    assert np.array_equal(first.xy(), second.xy())
    assert np.array_equal(first.flux, second.flux)


def test_float_and_uint16_mosaics_agree() -> None:
    mosaic = synthetic_block(1, shape=SMALL).mosaic(0)
    as_int, as_float = detect_stars(mosaic), detect_stars(mosaic.astype(np.float64))
    assert np.allclose(as_int.xy(), as_float.xy())


def test_a_constant_frame_has_no_stars() -> None:
    assert len(detect_stars(np.full((64, 64), 1200, dtype=np.uint16))) == 0


def test_a_mosaic_must_be_two_dimensional() -> None:
    with pytest.raises(ValueError, match="2-D"):
        detect_stars(np.zeros((3, 64, 64), dtype=np.uint16))
