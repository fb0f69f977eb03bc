"""Issue 13's acceptance list, end to end: synthetic blocks written as FITS, the real registrar.

Every test runs :func:`stack_block` with its default registrar (sep detection, astroalign and
the least-squares fit) on subs written by :func:`write_subs`, then compares the stack with what
the block's truth says: the plain mean of the same frames warped with the TRUE transforms, the
stars' known positions, the trail's known track. Frames are small (480 x 360) but keep the
issue's geometry: a rotation ramp to 15 degrees and +-100 px dither.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import attrs
import numpy as np
import pytest
from astropy.io import fits
from numpy.typing import NDArray

from crowdsky.adapters.local_stack import Similarity, stack_block
from crowdsky.adapters.local_stack.combine import debayer_grbg, warp_band
from crowdsky.adapters.local_stack.engine import LocalStackResult, StarRegistrar
from local_stack.synthetic import SyntheticBlock, synthetic_block, write_subs

SHAPE = (480, 360)
DENSITY = 800.0  # stars per megapixel: about 140 in a frame of this size
APERTURE = 9.0
ANNULUS = (13.0, 18.0)


def _block(n_frames: int, **changes: object) -> SyntheticBlock:
    options: dict[str, object] = {
        "shape": SHAPE,
        "stars_per_megapixel": DENSITY,
        "rotation_deg": 15.0,
        "dither_px": 100.0,
        "seed": 13 + n_frames,
    }
    options.update(changes)
    return synthetic_block(n_frames, **options)  # type: ignore[arg-type]


def _stack(block: SyntheticBlock, folder: Path) -> tuple[LocalStackResult, list[Path]]:
    paths = write_subs(block, folder / "M 42_sub")
    result = stack_block(paths, folder / "CrowdSky_stack.fit")
    return result, paths


def _reference(block: SyntheticBlock) -> int:
    """The frame the engine registers on, chosen from the stars as the engine chooses it."""
    registrar = StarRegistrar()
    return registrar.choose_reference([registrar.detect(m) for m in block.mosaics()])


def _to_frame(block: SyntheticBlock, reference: int, index: int) -> Similarity:
    """The true transform from the reference frame's pixels to frame ``index``'s."""
    return block.truth(reference).inverse().then(block.truth(index))


def _warped(block: SyntheticBlock, reference: int, index: int) -> NDArray[np.float32]:
    rows = block.shape[0]
    rgb = debayer_grbg(block.mosaic(index))
    return warp_band(rgb, _to_frame(block, reference, index), 0, 0, rows)


def _plain_mean(block: SyntheticBlock, reference: int, kept: list[int]) -> NDArray[np.float32]:
    """``(3, rows, cols)``: the plain mean of the kept frames warped with the true transforms."""
    frames = np.stack([_warped(block, reference, i) for i in kept])
    mean: NDArray[np.float32] = np.mean(frames, axis=0).transpose(2, 0, 1)
    return mean  # NaN wherever a frame does not cover the pixel


def _planes(path: Path) -> NDArray[np.float64]:
    return np.asarray(fits.getdata(path), dtype=np.float64)


def _star_positions(block: SyntheticBlock, reference: int) -> NDArray[np.float64]:
    """``(N, 2)`` x, y of every star in the reference frame's pixels."""
    (a, mb, tx), (b, _, ty) = block.truth(reference).matrix()
    x = a * block.star_x + mb * block.star_y + tx
    y = b * block.star_x + a * block.star_y + ty
    return np.column_stack((x, y))


def _isolated_bright(
    block: SyntheticBlock, reference: int, covered: NDArray[np.bool_], low: float, high: float
) -> NDArray[np.float64]:
    """Unsaturated stars with G flux in ``[low, high]``, alone in their annulus, fully covered."""
    xy = _star_positions(block, reference)
    green = block.star_flux[:, 1]
    rows, cols = block.shape
    margin = ANNULUS[1] + 2
    inside = (
        (xy[:, 0] > margin)
        & (xy[:, 0] < cols - 1 - margin)
        & (xy[:, 1] > margin)
        & (xy[:, 1] < rows - 1 - margin)
    )
    chosen = []
    for i in np.flatnonzero(inside & (green >= low) & (green <= high)):
        others = np.delete(np.arange(len(xy)), i)
        near = np.hypot(*(xy[others] - xy[i]).T) < ANNULUS[1] + 6
        x, y = round(xy[i, 0]), round(xy[i, 1])
        r = round(margin)
        if not near.any() and covered[y - r : y + r + 1, x - r : x + r + 1].all():
            chosen.append(xy[i])
    return np.array(chosen)


def _aperture_flux(plane: NDArray[np.float64], x: float, y: float) -> float:
    yy, xx = np.mgrid[0 : plane.shape[0], 0 : plane.shape[1]]
    r = np.hypot(xx - x, yy - y)
    sky = float(np.median(plane[(r >= ANNULUS[0]) & (r < ANNULUS[1])]))
    return float((plane[r < APERTURE] - sky).sum())


def _fwhm(plane: NDArray[np.float64], x: float, y: float) -> float:
    """FWHM from the second moments of the background-subtracted star within 6 px."""
    yy, xx = np.mgrid[0 : plane.shape[0], 0 : plane.shape[1]]
    r = np.hypot(xx - x, yy - y)
    sky = float(np.median(plane[(r >= ANNULUS[0]) & (r < ANNULUS[1])]))
    near = r < 6.0
    light = np.clip(plane[near] - sky, 0.0, None)
    cx = float((light * xx[near]).sum() / light.sum())
    cy = float((light * yy[near]).sum() / light.sum())
    variance = float((light * ((xx[near] - cx) ** 2 + (yy[near] - cy) ** 2)).sum() / light.sum())
    return 2.0 * math.sqrt(2.0 * math.log(2.0)) * math.sqrt(variance / 2.0)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_blank_and_starless_frames_are_left_out_with_the_reason(tmp_path: Path) -> None:
    block = _block(8, trail_frame=2, blank_frames=(5,), sparse_frames={6: 4})
    result, paths = _stack(block, tmp_path)
    assert result.left_out == (
        (paths[5].name, "too few stars (0)"),
        (paths[6].name, "too few stars (3)"),  # the 4 brightest, one of them saturated
    )
    assert result.kept == tuple(p.name for i, p in enumerate(paths) if i not in (5, 6))
    header = fits.getheader(result.output)
    assert (header["STACKCNT"], header["TOTALEXP"]) == (6, 60.0)


def test_star_fluxes_match_a_plain_mean_under_variable_seeing(tmp_path: Path) -> None:
    block = _block(10, hot_pixels=0, fwhm=(2.2, 4.5), transparency=(0.6, 1.0))
    result, _ = _stack(block, tmp_path)
    assert result.left_out == ()
    reference = _reference(block)
    plain = _plain_mean(block, reference, list(range(10)))
    stack = _planes(result.output)
    covered = ~np.isnan(plain).any(axis=0)
    stars = _isolated_bright(block, reference, covered, 3e4, 3e5)
    assert len(stars) >= 5
    ratios = np.array(
        [
            _aperture_flux(stack[c], x, y) / _aperture_flux(plain[c].astype(np.float64), x, y)
            for x, y in stars
            for c in range(3)
        ]
    )
    deviation = np.abs(ratios - 1.0)
    assert float(np.median(deviation)) <= 0.005
    assert float(deviation.max()) <= 0.01


def test_stars_in_the_stack_are_at_most_15_percent_wider_than_in_the_reference_sub(
    tmp_path: Path,
) -> None:
    # The same seeing in every frame (the sharpest the S50 gets): what widens is the stacking.
    block = _block(8, hot_pixels=0, fwhm=(2.5, 2.5), transparency=(1.0, 1.0))
    result, _ = _stack(block, tmp_path)
    reference = _reference(block)
    single = debayer_grbg(block.mosaic(reference)).transpose(2, 0, 1).astype(np.float64)
    stack = _planes(result.output)
    covered = np.ones(block.shape, dtype=np.bool_)
    stars = _isolated_bright(block, reference, covered, 3e4, 3e5)
    assert len(stars) >= 8
    widening = [_fwhm(stack[1], x, y) / _fwhm(single[1], x, y) for x, y in stars]
    assert float(np.median(widening)) <= 1.15


def test_snr_is_at_least_97_percent_of_a_plain_mean(tmp_path: Path) -> None:
    block = _block(8, hot_pixels=0, stars_per_megapixel=300.0)
    result, _ = _stack(block, tmp_path)
    reference = _reference(block)
    plain = _plain_mean(block, reference, list(range(8)))
    stack = _planes(result.output)
    sky = _star_free(block, reference, ~np.isnan(plain).any(axis=0))
    for c, level in enumerate(block.sky):
        noise_plain = float(np.std(plain[c][sky] - level))
        noise_stack = float(np.std(stack[c][sky] - level))
        assert noise_plain / noise_stack >= 0.97


def _star_free(block: SyntheticBlock, reference: int, covered: NDArray[np.bool_]) -> NDArray:
    """Covered pixels at least 12 px from every star (30 from the saturated ones)."""
    rows, cols = block.shape
    free = covered.copy()
    free[:4], free[-4:], free[:, :4], free[:, -4:] = False, False, False, False
    yy, xx = np.mgrid[0:rows, 0:cols]
    saturated = block.star_flux[:, 1] > 1e6
    for (x, y), big in zip(_star_positions(block, reference), saturated, strict=True):
        reach = 30.0 if big else 12.0
        if -reach < x < cols + reach and -reach < y < rows + reach:
            free &= np.hypot(xx - x, yy - y) >= reach
    return free


@pytest.mark.parametrize("n_frames", [8, 12])
def test_a_one_frame_trail_leaves_at_most_one_and_a_half_sigma(
    tmp_path: Path, n_frames: int
) -> None:
    trailed = _block(n_frames, trail_frame=1)
    clean = attrs.evolve(trailed, trail_frame=None)
    with_trail, _ = _stack(trailed, tmp_path / "trail")
    without, _ = _stack(clean, tmp_path / "clean")
    reference = _reference(clean)
    stack_clean = _planes(without.output)
    residual = _planes(with_trail.output) - stack_clean
    distance = _trail_distance(trailed, reference)
    covered = _covered(clean, reference)
    free = _star_free(clean, reference, covered)
    for c in range(3):
        background = stack_clean[c][free]
        sigma = 1.4826 * float(np.median(np.abs(background - np.median(background))))
        profile = [
            float(np.mean(residual[c][(np.abs(distance - d) < 0.5) & free]))
            for d in np.arange(0.0, 6.0, 1.0)
        ]
        assert max(np.abs(profile)) <= 1.5 * sigma, (c, profile, sigma)


def _covered(block: SyntheticBlock, reference: int) -> NDArray[np.bool_]:
    rows, cols = block.shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    covered = np.ones((rows, cols), dtype=np.bool_)
    for index in range(len(block)):
        (a, mb, tx), (b, _, ty) = _to_frame(block, reference, index).matrix()
        fx, fy = a * xx + mb * yy + tx, b * xx + a * yy + ty
        covered &= (fx >= 2) & (fx <= cols - 3) & (fy >= 2) & (fy <= rows - 3)
    return covered


def _trail_distance(block: SyntheticBlock, reference: int) -> NDArray[np.float64]:
    """Distance of every reference pixel from the trail's centre line (found in its frame)."""
    index = block.trail_frame
    assert index is not None
    trail = block.expected(index) - attrs.evolve(block, trail_frame=None).expected(index)
    ys, xs = np.nonzero(trail > 0.9 * trail.max())
    centre = np.array([xs.mean(), ys.mean()])
    _, _, axes = np.linalg.svd(np.column_stack((xs, ys)) - centre, full_matrices=False)
    normal = axes[1]
    rows, cols = block.shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    (a, mb, tx), (b, _, ty) = _to_frame(block, reference, index).matrix()
    fx, fy = a * xx + mb * yy + tx, b * xx + a * yy + ty
    return np.asarray(np.abs((fx - centre[0]) * normal[0] + (fy - centre[1]) * normal[1]))


def test_same_input_same_bytes_and_the_raw_subs_stay_untouched(tmp_path: Path) -> None:
    block = _block(6, trail_frame=3, blank_frames=(4,))
    paths = write_subs(block, tmp_path / "M 42_sub")
    before = [(_digest(p), p.stat().st_mtime_ns) for p in paths]
    digests = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        result = stack_block(paths, tmp_path / run / "CrowdSky_x.fit")
        companions = sorted((tmp_path / run).iterdir())
        digests.append([(p.name, _digest(p)) for p in companions])
        assert result.output in companions
    assert digests[0] == digests[1]
    assert [(_digest(p), p.stat().st_mtime_ns) for p in paths] == before
    assert sorted((tmp_path / "M 42_sub").iterdir()) == sorted(paths)
