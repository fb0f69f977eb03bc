"""Registration: similarity transforms within 0.1 px of the truth, or a reason and no transform."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crowdsky.adapters.local_stack import Similarity
from crowdsky.adapters.local_stack.register import (
    MIN_STARS,
    Registration,
    choose_reference,
    register,
)
from crowdsky.adapters.local_stack.stars import Stars, detect_stars
from local_stack.synthetic import S50_SHAPE, SyntheticBlock, synthetic_block

BLANK, TRAIL, SPARSE = 6, 3, 8


def _corner_error(found: Similarity, truth: Similarity, shape: tuple[int, int]) -> float:
    rows, cols = shape
    corners = [(0.0, 0.0), (cols - 1.0, 0.0), (0.0, rows - 1.0), (cols - 1.0, rows - 1.0)]
    return max(math.dist(found.apply(*c), truth.apply(*c)) for c in corners)


def _truth(block: SyntheticBlock, reference: int, index: int) -> Similarity:
    """Reference frame -> frame ``index``: back to frame 0, then on to ``index``."""
    return block.truth(reference).inverse().then(block.truth(index))


@pytest.fixture(scope="module")
def s50_block() -> tuple[SyntheticBlock, list[Stars]]:
    """A full-size S50 block: 0-15 degree ramp, +-100 px dither, seeing 2.5-4 px,
    transparency 0.6-1, hot pixels, a satellite trail, a blank frame and a sparse frame."""
    block = synthetic_block(
        10,
        shape=S50_SHAPE,
        seed=2026,
        trail_frame=TRAIL,
        blank_frames=(BLANK,),
        sparse_frames={SPARSE: 4},
    )
    return block, [detect_stars(mosaic) for mosaic in block.mosaics()]


def test_every_transform_is_within_a_tenth_of_a_pixel_at_the_corners(
    s50_block: tuple[SyntheticBlock, list[Stars]],
) -> None:
    block, stars = s50_block
    reference = choose_reference(stars)
    registered = 0
    for index, frame in enumerate(stars):
        found = register(stars[reference], frame)
        if index in (BLANK, SPARSE):
            continue
        assert found.transform is not None, (index, found.reason)
        assert found.matched >= 100
        error = _corner_error(found.transform, _truth(block, reference, index), block.shape)
        assert error < 0.1, (index, error)
        registered += 1
    assert registered == len(block) - 2
    # The block really turns and shifts: 15 degrees from the first frame to the last.
    last = _truth(block, 0, len(block) - 1)
    assert math.degrees(last.rotation) == pytest.approx(15.0)


def test_a_blank_or_sparse_frame_gets_a_reason_and_no_transform(
    s50_block: tuple[SyntheticBlock, list[Stars]],
) -> None:
    _, stars = s50_block
    reference = choose_reference(stars)
    blank = register(stars[reference], stars[BLANK])
    sparse = register(stars[reference], stars[SPARSE])
    assert blank == Registration(None, "too few stars (0)", 0)
    assert sparse.transform is None
    assert sparse.reason == f"too few stars ({len(stars[SPARSE])})"
    assert len(stars[SPARSE]) < MIN_STARS


def test_the_reference_is_a_clear_frame_near_the_middle(
    s50_block: tuple[SyntheticBlock, list[Stars]],
) -> None:
    _, stars = s50_block
    reference = choose_reference(stars)
    assert reference not in (BLANK, SPARSE)
    assert abs(reference - 4.5) <= 2.5
    itself = register(stars[reference], stars[reference]).transform
    assert itself is not None
    assert _corner_error(itself, Similarity(), S50_SHAPE) < 1e-9


def test_registration_is_the_same_on_every_run(
    s50_block: tuple[SyntheticBlock, list[Stars]],
) -> None:
    block, stars = s50_block
    again = [detect_stars(block.mosaic(i)) for i in (0, len(block) - 1)]
    first = register(stars[0], stars[-1])
    for _ in range(3):
        assert register(stars[0], stars[-1]) == first
    assert register(again[0], again[1]) == first


# Quick cases on star lists and small frames.


def _star_list(x: np.ndarray, y: np.ndarray) -> Stars:
    return Stars(np.asarray(x, float), np.asarray(y, float), np.linspace(1e5, 1e3, len(x)))


def _sky(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1080, n), rng.uniform(0, 1920, n)


def _moved(truth: Similarity, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    (a, mb, tx), (b, _, ty) = truth.matrix()
    return a * x + mb * y + tx, b * x + a * y + ty


def test_exact_star_lists_give_the_exact_transform_scale_included() -> None:
    truth = Similarity(scale=1.002, rotation=math.radians(-7.5), tx=81.25, ty=-64.5)
    x, y = _sky(120, 1)
    found = register(_star_list(x, y), _star_list(*_moved(truth, x, y)))
    assert found.transform is not None
    assert _corner_error(found.transform, truth, S50_SHAPE) < 1e-6
    assert found.matched == 120


def test_wrong_centroids_and_stray_sources_are_left_out_of_the_fit() -> None:
    truth = Similarity(rotation=math.radians(12.0), tx=-95.0, ty=40.0)
    x, y = _sky(150, 2)
    mx, my = _moved(truth, x, y)
    mx[::10] += 0.9  # every tenth centroid pulled by a blend or a hot pixel
    stray_x, stray_y = _sky(40, 3)  # sources that are not in the reference
    frame = _star_list(np.append(mx, stray_x), np.append(my, stray_y))
    found = register(_star_list(x, y), frame)
    assert found.transform is not None
    assert _corner_error(found.transform, truth, S50_SHAPE) < 1e-6


def test_too_few_stars_is_said_with_the_count() -> None:
    x, y = _sky(3, 4)
    reference = _star_list(*_sky(100, 5))
    assert register(reference, _star_list(x, y)) == Registration(None, "too few stars (3)", 0)
    assert register(_star_list(x, y), reference).reason == (
        "too few stars in the reference frame (3)"
    )


def test_an_unrelated_field_does_not_match() -> None:
    found = register(_star_list(*_sky(25, 6)), _star_list(*_sky(25, 7)))
    assert found.transform is None
    assert found.reason is not None
    assert found.reason.startswith("no match")


def test_a_failed_detection_is_the_reason() -> None:
    reference = _star_list(*_sky(100, 5))
    failed = Stars.none("star detection failed: deblending overflow")
    assert register(reference, failed) == Registration(
        None, "star detection failed: deblending overflow", 0
    )


def test_a_small_block_registers_under_rotation_and_dither() -> None:
    block = synthetic_block(3, shape=(720, 480), seed=9, stars_per_megapixel=600)
    stars = [detect_stars(mosaic) for mosaic in block.mosaics()]
    for index in (1, 2):
        found = register(stars[0], stars[index])
        assert found.transform is not None, found.reason
        assert _corner_error(found.transform, block.truth(index), block.shape) < 0.1


def test_choose_reference_prefers_clear_frames_near_the_middle() -> None:
    rich, poor = _star_list(*_sky(100, 8)), _star_list(*_sky(30, 9))
    assert choose_reference([rich] * 5) == 2
    assert choose_reference([rich, rich, poor, poor, rich]) == 1
    assert choose_reference([poor, rich]) == 1


def test_choose_reference_of_a_starless_block_is_the_frame_with_most() -> None:
    few = _star_list(*_sky(3, 10))
    assert choose_reference([Stars.none(), few, Stars.none()]) == 1


def test_choose_reference_needs_frames() -> None:
    with pytest.raises(ValueError, match="without frames"):
        choose_reference([])
