"""Synthetic blocks of Seestar sub-frames with known truth, for the local stacker's tests.

A block is a fixed sky of stars (known position in the reference frame, known flux in each of the
R, G and B planes) seen through ``n_frames`` raw GRBG mosaics: frame ``i`` is the reference frame
(frame 0) turned by a rotation ramp (0 to ``rotation_deg`` over the block, about the frame centre,
as an alt-az field rotates) and shifted by a dither of up to ``dither_px``; its seeing (FWHM) and
transparency vary; Poisson and read noise sit on a sky background; sensor-fixed hot pixels light
the same mosaic pixels in every frame; one frame may carry a satellite trail; some frames may be
blank (clouds: no stars, a brighter, sloping background) or sparse (only their brightest few stars).

``block.truth(i)`` maps a reference-frame pixel to frame ``i`` (the convention of
:class:`crowdsky.adapters.local_stack.Similarity`); ``block.mosaic(i)`` renders frame ``i``
deterministically from the seed, so a block of 90 full-size frames costs memory for one frame at a
time. Stars are pixel-integrated Gaussians drawn in small stamps (fast); each mosaic pixel samples
its own colour plane: GRBG means G at (even row, even column), R at (even, odd), B at (odd, even),
G at (odd, odd). One ADU is one electron (Poisson noise of the expected counts).

:func:`write_subs` writes a block as the device's raw subs (``Light_<target>_<exp>_<filter>_
<YYYYMMDD-HHMMSS>.fit``, BITPIX 16 with BZERO 32768 and the device's header cards), reusing the
device model's names and cards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import numpy as np
from numpy.typing import NDArray
from scipy.special import erf

from crowdsky.adapters.device_model.fake import FakeSeestar
from crowdsky.adapters.device_model.fits_files import S50_SHAPE
from crowdsky.adapters.device_model.sub_frames import (
    DEMO_TARGETS,
    SAVE_DELAY_S,
    VIENNA,
    Target,
    sub_image,
    sub_name,
)
from crowdsky.adapters.local_stack import Similarity

__all__ = ["BAYER_PLANE", "S50_SHAPE", "SyntheticBlock", "synthetic_block", "write_subs"]

#: The colour plane (0 = R, 1 = G, 2 = B) of mosaic pixel ``[row % 2, col % 2]`` for GRBG.
BAYER_PLANE = np.array([[1, 0], [2, 1]], dtype=np.intp)
_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_FULL_WELL = 65535


@attrs.frozen(eq=False)
class SyntheticBlock:
    """A block's truth and the recipe that renders its frames.

    Attributes
    ----------
    shape : tuple[int, int]
        Rows x columns of every mosaic.
    seed : int
        Seeds everything; the same arguments give the same frames.
    star_x, star_y : numpy.ndarray
        Star positions in the reference frame (frame 0), pixels.
    star_flux : numpy.ndarray
        ``(N, 3)`` integrated flux of each star in the R, G and B planes at transparency 1, ADU.
    truths : tuple[Similarity, ...]
        Per frame: reference pixel -> the same sky point in that frame.
    fwhm, transparency : tuple[float, ...]
        Per frame seeing (pixels) and the factor on every star's flux.
    sky : tuple[float, float, float]
        Background of the R, G and B planes, ADU per pixel.
    read_noise : float
        Standard deviation of the read noise, ADU.
    hot_rows, hot_cols, hot_level : numpy.ndarray
        The sensor's hot pixels (the same mosaic pixels in every frame) and their ADU.
    trail_frame : int or None
        The frame crossed by a satellite trail.
    blank_frames : frozenset[int]
        Frames under cloud: no stars.
    sparse_frames : Mapping[int, int]
        Frames that show only their brightest ``n`` stars.
    noise : bool
        False renders the expected counts without noise (still rounded to ADU).
    """

    shape: tuple[int, int]
    seed: int
    star_x: NDArray[np.float64]
    star_y: NDArray[np.float64]
    star_flux: NDArray[np.float64]
    truths: tuple[Similarity, ...]
    fwhm: tuple[float, ...]
    transparency: tuple[float, ...]
    sky: tuple[float, float, float]
    read_noise: float
    hot_rows: NDArray[np.intp]
    hot_cols: NDArray[np.intp]
    hot_level: NDArray[np.float64]
    trail_frame: int | None
    blank_frames: frozenset[int]
    sparse_frames: Mapping[int, int]
    noise: bool

    def __len__(self) -> int:
        return len(self.truths)

    def truth(self, index: int) -> Similarity:
        """Reference (frame 0) pixel -> frame ``index`` pixel."""
        return self.truths[index]

    def stars_in(self, index: int, margin: float = 0.0) -> tuple[NDArray[np.float64], ...]:
        """``(x, y, flux_rgb)`` of the stars frame ``index`` shows, in its own pixels.

        Fluxes include the frame's transparency; a blank frame shows none.
        """
        rows, cols = self.shape
        (a, mb, tx), (b, _, ty) = self.truths[index].matrix()
        x = a * self.star_x + mb * self.star_y + tx
        y = b * self.star_x + a * self.star_y + ty
        inside = (x > -margin) & (x < cols - 1 + margin) & (y > -margin) & (y < rows - 1 + margin)
        if index in self.blank_frames:
            inside[:] = False
        flux = self.star_flux * self.transparency[index]
        x, y, flux = x[inside], y[inside], flux[inside]
        if index in self.sparse_frames:
            brightest = np.argsort(-flux[:, 1], kind="stable")[: self.sparse_frames[index]]
            x, y, flux = x[brightest], y[brightest], flux[brightest]
        return x, y, flux

    def expected(self, index: int) -> NDArray[np.float64]:
        """The noise-free mosaic of frame ``index`` (before hot pixels and clipping)."""
        rows, cols = self.shape
        plane = BAYER_PLANE[np.arange(rows)[:, None] % 2, np.arange(cols)[None, :] % 2]
        image = np.asarray(self.sky, dtype=np.float64)[plane]
        if index in self.blank_frames:  # cloud lit from below: brighter and sloping
            image *= 1.6 + 0.4 * np.arange(rows, dtype=np.float64)[:, None] / rows
        sigma = self.fwhm[index] / _FWHM_PER_SIGMA
        half = math.ceil(4.5 * sigma) + 1
        for x, y, flux in zip(*self.stars_in(index, margin=half), strict=True):
            _add_star(image, float(x), float(y), flux, sigma, half)
        if index == self.trail_frame:
            _add_trail(image, np.random.default_rng([self.seed, index, 7]))
        return image

    def mosaic(self, index: int) -> NDArray[np.uint16]:
        """Frame ``index`` as the camera records it: uint16 ADU, noise, hot pixels, clipping."""
        image = self.expected(index)
        if self.noise:
            rng = np.random.default_rng([self.seed, index])
            image = rng.poisson(image).astype(np.float64)
            image += rng.normal(0.0, self.read_noise, image.shape)
        image[self.hot_rows, self.hot_cols] += self.hot_level
        return np.clip(np.rint(image), 0, _FULL_WELL).astype(np.uint16)

    def mosaics(self) -> Iterator[NDArray[np.uint16]]:
        """Every frame in order, one at a time."""
        return (self.mosaic(i) for i in range(len(self)))


def _add_star(
    image: NDArray[np.float64],
    x: float,
    y: float,
    flux: NDArray[np.float64],
    sigma: float,
    half: int,
) -> None:
    """Add one pixel-integrated Gaussian star; each pixel takes its own plane's flux."""
    rows, cols = image.shape
    r0, r1 = max(0, round(y) - half), min(rows, round(y) + half + 1)
    c0, c1 = max(0, round(x) - half), min(cols, round(x) + half + 1)
    if r0 >= r1 or c0 >= c1:
        return
    across = _pixel_integrals(np.arange(c0, c1), x, sigma)
    down = _pixel_integrals(np.arange(r0, r1), y, sigma)
    plane = BAYER_PLANE[np.arange(r0, r1)[:, None] % 2, np.arange(c0, c1)[None, :] % 2]
    image[r0:r1, c0:c1] += np.outer(down, across) * flux[plane]


def _pixel_integrals(centres: NDArray[np.int_], mean: float, sigma: float) -> NDArray[np.float64]:
    """The share of a unit 1-D Gaussian falling on each pixel ``[c - 0.5, c + 0.5]``."""
    edges = (np.append(centres - 0.5, centres[-1] + 0.5) - mean) / (math.sqrt(2.0) * sigma)
    return np.asarray(0.5 * np.diff(erf(edges)), dtype=np.float64)


def _add_trail(image: NDArray[np.float64], rng: np.random.Generator) -> None:
    """A satellite crossing the whole frame: a straight line 2-3 pixels wide, 3000 ADU peak."""
    rows, cols = image.shape
    angle = rng.uniform(0.0, math.pi)
    cx, cy = rng.uniform(0.3, 0.7) * cols, rng.uniform(0.3, 0.7) * rows
    yy, xx = np.mgrid[0:rows, 0:cols]
    distance = np.abs((xx - cx) * math.sin(angle) - (yy - cy) * math.cos(angle))
    image += 3000.0 * np.exp(-0.5 * (distance / 1.1) ** 2)


def synthetic_block(
    n_frames: int = 8,
    *,
    shape: tuple[int, int] = S50_SHAPE,
    seed: int = 13,
    stars_per_megapixel: float = 200.0,
    rotation_deg: float = 15.0,
    dither_px: float = 100.0,
    fwhm: tuple[float, float] = (2.5, 4.0),
    transparency: tuple[float, float] = (0.6, 1.0),
    flux: tuple[float, float] = (2e3, 3e5),
    saturated_stars: int = 3,
    sky: tuple[float, float, float] = (300.0, 500.0, 400.0),
    read_noise: float = 3.0,
    hot_pixels: int = 150,
    trail_frame: int | None = None,
    blank_frames: Sequence[int] = (),
    sparse_frames: Mapping[int, int] | None = None,
    noise: bool = True,
) -> SyntheticBlock:
    """A synthetic block; frame 0 is the reference (its truth is the identity).

    Parameters
    ----------
    n_frames : int
        Frames in the block.
    shape : tuple[int, int]
        Rows x columns (the S50's ``(1920, 1080)`` by default; smaller for quick tests).
    seed : int
        Seeds the sky, the geometry and every frame's noise.
    stars_per_megapixel : float
        Mean density of stars (about 400 in an S50 frame by default).
    rotation_deg : float
        Field rotation of the last frame; the ramp is linear over the block.
    dither_px : float
        Each frame after the first is shifted by up to this many pixels in x and in y.
    fwhm, transparency : tuple[float, float]
        Ranges the per-frame seeing (pixels) and transparency are drawn from.
    flux : tuple[float, float]
        Range of the stars' G-plane flux (log-uniform), ADU.
    saturated_stars : int
        Extra stars bright enough to saturate.
    sky : tuple[float, float, float]
        Background of the R, G and B planes, ADU.
    read_noise : float
        Read noise, ADU.
    hot_pixels : int
        Sensor-fixed hot pixels.
    trail_frame : int, optional
        The frame a satellite crosses.
    blank_frames : Sequence[int]
        Frames under cloud (no stars).
    sparse_frames : Mapping[int, int], optional
        Frames showing only their ``n`` brightest stars.
    noise : bool
        False for noise-free frames.

    Returns
    -------
    SyntheticBlock
    """
    rows, cols = shape
    rng = np.random.default_rng([seed, 1_000_003])
    centre = ((cols - 1) / 2.0, (rows - 1) / 2.0)
    # Every frame's field lies within this square around the centre of the reference frame.
    reach = math.hypot(cols, rows) / 2.0 + math.sqrt(2.0) * dither_px + 8.0
    count = round(stars_per_megapixel * (2.0 * reach) ** 2 / 1e6)
    star_x = rng.uniform(centre[0] - reach, centre[0] + reach, count + saturated_stars)
    star_y = rng.uniform(centre[1] - reach, centre[1] + reach, count + saturated_stars)
    green = np.exp(rng.uniform(math.log(flux[0]), math.log(flux[1]), count))
    green = np.append(green, np.full(saturated_stars, 40.0 * flux[1]))
    colour = np.column_stack(
        (rng.uniform(0.5, 1.5, green.size), np.ones(green.size), rng.uniform(0.5, 1.5, green.size))
    )
    truths = tuple(
        _truth(centre, math.radians(rotation_deg) * i / max(1, n_frames - 1), rng, dither_px, i)
        for i in range(n_frames)
    )
    return SyntheticBlock(
        shape=shape,
        seed=seed,
        star_x=star_x,
        star_y=star_y,
        star_flux=colour * green[:, None],
        truths=truths,
        fwhm=tuple(float(v) for v in rng.uniform(*fwhm, n_frames)),
        transparency=tuple(float(v) for v in rng.uniform(*transparency, n_frames)),
        sky=sky,
        read_noise=read_noise,
        hot_rows=rng.integers(0, rows, hot_pixels),
        hot_cols=rng.integers(0, cols, hot_pixels),
        hot_level=rng.uniform(3000.0, 60000.0, hot_pixels),
        trail_frame=trail_frame,
        blank_frames=frozenset(blank_frames),
        sparse_frames=dict(sparse_frames or {}),
        noise=noise,
    )


def _truth(
    centre: tuple[float, float], angle: float, rng: np.random.Generator, dither: float, index: int
) -> Similarity:
    """Rotation by ``angle`` about ``centre``, then a dither shift (none for the reference)."""
    dx, dy = rng.uniform(-dither, dither, 2) if index else (0.0, 0.0)
    c, s = math.cos(angle), math.sin(angle)
    cx, cy = centre
    return Similarity(
        scale=1.0,
        rotation=angle,
        tx=cx - (c * cx - s * cy) + float(dx),
        ty=cy - (s * cx + c * cy) + float(dy),
    )


def write_subs(
    block: SyntheticBlock,
    folder: Path,
    *,
    target: Target = DEMO_TARGETS[1],
    exposure_s: float = 10.0,
    filter: str = "LP",
    start: datetime = datetime(2026, 2, 27, 19, 30, 5, tzinfo=UTC),
    interval_s: float = 12.0,
    device: FakeSeestar | None = None,
) -> list[Path]:
    """Write every frame of ``block`` into ``folder`` as the device's raw subs, in order.

    Parameters
    ----------
    block : SyntheticBlock
        The frames.
    folder : Path
        Where the files go (created), e.g. ``.../MyWorks/M 42_sub``.
    target : Target
        ``OBJECT``, ``RA`` and ``DEC``.
    exposure_s : float
        ``EXPTIME`` and the name's exposure.
    filter : str
        ``FILTER`` and the name's filter.
    start : datetime
        Aware UTC ``DATE-OBS`` of the first frame.
    interval_s : float
        Seconds between the starts of consecutive frames.
    device : FakeSeestar, optional
        Names the files in its local time and gives the instrument cards (an S50 in Vienna by
        default).

    Returns
    -------
    list[Path]
        The files written.
    """
    from astropy.io import fits

    device = device if device is not None else FakeSeestar()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, mosaic in enumerate(block.mosaics()):
        date_obs = start + timedelta(seconds=i * interval_s)
        cards = sub_image(device, target, exposure_s, filter, date_obs, VIENNA, 24.0).cards
        saved = date_obs + timedelta(seconds=exposure_s + SAVE_DELAY_S)
        path = folder / sub_name(device, target.name, exposure_s, filter, saved)
        hdu = fits.PrimaryHDU(data=mosaic)  # uint16 -> BITPIX 16 with BZERO 32768
        for key, value in cards.items():
            hdu.header[key] = value
        hdu.writeto(path)
        paths.append(path)
    return paths
