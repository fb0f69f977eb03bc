"""Combination: debayer order, warping convention, outlier rejection and its noise cost."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from tests.local_stack.frames_for_combine import Scene, channel_map, dithered, render

from crowdsky.adapters.local_stack import Similarity
from crowdsky.adapters.local_stack.combine import (
    combine_strip,
    debayer_grbg,
    source_band,
    strip_rows,
    warp_band,
)


def _warped(mosaic: NDArray[np.uint16], transform: Similarity) -> NDArray[np.float32]:
    rows = mosaic.shape[0]
    return warp_band(debayer_grbg(mosaic), transform, 0, 0, rows)


def test_grbg_debayers_to_red_green_blue_planes() -> None:
    # The 2x2 colour test: R, G, B sites hold 1000, 2000, 3000.
    levels = np.array([1000, 2000, 3000], dtype=np.uint16)
    rgb = debayer_grbg(levels[channel_map(8, 8)])
    assert rgb.shape == (8, 8, 3)
    assert np.array_equal(rgb[2:6, 2:6].mean(axis=(0, 1)), [1000.0, 2000.0, 3000.0])


def test_output_pixel_takes_the_frame_value_at_the_transformed_point() -> None:
    scene = Scene(shape=(64, 64), background=(100.0, 100.0, 100.0), stars=((30.0, 20.0, 5000.0),))
    moved = Similarity(1.0, math.radians(10), 7.0, -4.0)
    warped = _warped(render(scene, moved), moved)
    green = np.nan_to_num(warped[..., 1])
    row, col = np.unravel_index(np.argmax(green), green.shape)
    assert (col, row) == (30, 20)


def test_pixels_outside_the_frame_are_nan() -> None:
    mosaic = np.full((32, 32), 500, dtype=np.uint16)
    warped = _warped(mosaic, Similarity(tx=10.0, ty=0.0))
    assert np.isnan(warped[:, 22:]).all()
    assert not np.isnan(warped[:, :22]).any()


def test_a_band_of_rows_warps_like_the_whole_frame() -> None:
    scene = Scene(shape=(80, 60), stars=((20.0, 30.0, 3000.0), (40.0, 60.0, 2000.0)))
    moved = Similarity(1.0, math.radians(20), 5.0, 3.0)
    mosaic = render(scene, moved, noise=20.0)
    whole = _warped(mosaic, moved)
    first, stop = source_band(moved, 30, 16, 60, 80) or (0, 0)
    assert first % 2 == 0
    part = warp_band(debayer_grbg(mosaic[first:stop]), moved, first, 30, 16)
    np.testing.assert_allclose(part, whole[30:46], rtol=1e-5, equal_nan=True)


def test_strip_height_keeps_memory_flat_in_the_number_of_frames() -> None:
    budget = 64 * 1024 * 1024
    for frames in (5, 90, 180, 400):
        rows = strip_rows(frames, 1080, 1920, budget)
        assert frames * 3 * rows * 1080 * 4 <= budget
    assert strip_rows(1, 1080, 1920, budget) == 1920


def test_a_pixel_no_frame_covers_is_nan_and_others_use_the_frames_covering_them() -> None:
    stack = np.full((6, 1, 2, 3), np.nan, dtype=np.float32)
    stack[:4, 0, 1] = [[10.0] * 3, [12.0] * 3, [11.0] * 3, [13.0] * 3]
    out = combine_strip(stack)
    assert np.isnan(out[0, 0]).all()
    np.testing.assert_allclose(out[0, 1], 11.5)


def _noise_frames(
    count: int, seed: int, trail: bool
) -> tuple[list[Similarity], list[NDArray[np.float32]]]:
    scene = Scene(shape=(96, 72), background=(800.0, 800.0, 800.0))
    transforms = dithered(count, seed)
    frames = []
    for index, transform in enumerate(transforms):
        line = (-10.0, 20.0, 90.0, 70.0, 3000.0) if trail and index == 1 else None
        mosaic = render(scene, transform, noise=25.0, seed=seed * 1000 + index, trail=line)
        frames.append(_warped(mosaic, transform))
    return transforms, frames


def _combined(frames: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    return combine_strip(np.stack(frames))


@pytest.mark.parametrize("count", [8, 12, 45, 90])
def test_a_one_frame_trail_leaves_at_most_one_and_a_half_sigma(count: int) -> None:
    transforms, clean = _noise_frames(count, seed=count, trail=False)
    _, trailed = _noise_frames(count, seed=count, trail=True)
    stack_clean = _combined(clean)
    residual = _combined(trailed) - stack_clean
    inner = (slice(8, -8), slice(8, -8))
    sigma = float(np.nanstd(stack_clean[inner]))
    # The trail in reference pixels: frame 1's line mapped back.
    back = transforms[1].inverse()
    (x0, y0), (x1, y1) = back.apply(-10.0, 20.0), back.apply(90.0, 70.0)
    yy, xx = np.mgrid[0:96, 0:72]
    distance = np.abs((y1 - y0) * xx - (x1 - x0) * yy + x1 * y0 - y1 * x0) / math.hypot(
        x1 - x0, y1 - y0
    )
    covered = ~np.isnan(np.stack(clean)).any(axis=(0, 3))
    # What stays visible is the trail's mean profile across its track.
    profile = [
        float(np.nanmean(residual[inner][((np.abs(distance - d) < 0.5) & covered)[inner]]))
        for d in np.arange(0.0, 6.0, 1.0)
    ]

    assert max(np.abs(profile)) <= 1.5 * sigma


@pytest.mark.parametrize("count", [5, 8, 12, 45])
def test_rejection_costs_at_most_three_percent_of_snr(count: int) -> None:
    _, frames = _noise_frames(count, seed=100 + count, trail=False)
    inner = (slice(8, -8), slice(8, -8))
    truth = 800.0
    plain = np.nanmean(np.stack(frames), axis=0)[inner] - truth
    robust = _combined(frames)[inner] - truth
    ratio = float(np.nanstd(plain) / np.nanstd(robust))

    assert ratio >= 0.97
