"""Finding the stars of a raw GRBG sub-frame, for registration (issue 13).

Detection runs on a luminance image made from the mosaic by summing each 2x2 Bayer cell (one R,
two G, one B: every colour counts, half the resolution, four times faster); sep (Source
Extractor as a library) subtracts the background and extracts the sources. Without a smoothing
kernel a hot pixel lights one cell and is dropped by the minimum area, and a blob that reaches
the saturation level or touches the edge is dropped too: its centre is not where the star is.
Each surviving star's centre is then refined with sep's windowed centroid on a full-resolution
luminance image (the mosaic smoothed by the 3x3 kernel ``[1, 2, 1]`` x ``[1, 2, 1]``, which
weighs R, G and B as 1 : 2 : 1 around every pixel, so a flat colour comes out flat and nothing
is shifted), in full-resolution mosaic coordinates: ``x`` = column, ``y`` = row, pixel centres
at integers, as in :mod:`crowdsky.adapters.local_stack.transform`.
"""

from __future__ import annotations

import attrs
import cv2
import numpy as np
import sep
from numpy.typing import NDArray

__all__ = ["DETECTION_SIGMA", "MAX_STARS", "MIN_AREA", "SATURATION", "Stars", "detect_stars"]

#: Detection threshold in background standard deviations of the 2x2-summed image.
DETECTION_SIGMA = 5.0
#: Fewest 2x2 cells above the threshold a star must cover: a hot pixel covers one.
MIN_AREA = 3
#: ADU from which a raw pixel counts as saturated (the Seestar's 16-bit scale).
SATURATION = 65000.0
#: Stars kept per frame, brightest first.
MAX_STARS = 250

#: sep's flags for a source cut by the image edge (``OBJ_TRUNC``) or blended with another
#: (``OBJ_MERGED``): either moves its centre.
_BAD_OBJECT = 0x0001 | 0x0008
#: A pixel this many noise sigmas above all its neighbours but one, and by this share of its
#: height above the sky, is a hot pixel or a cosmic-ray hit, not a star.
_HOT_SIGMA = 5.0
_HOT_SHARE = 0.7
_SMOOTH = np.array([0.5, 1.0, 0.5], dtype=np.float32)  # [1,2,1]/2: R + 2G + B per pixel


@attrs.frozen(eq=False)
class Stars:
    """The stars of one frame, brightest first.

    Parameters
    ----------
    x, y : numpy.ndarray
        Centres in full-resolution mosaic pixels (``x`` = column, ``y`` = row).
    flux : numpy.ndarray
        Background-subtracted flux in ADU (R + 2G + B), for ranking.
    failure : str or None
        Why detection failed on this frame (the frame then has no stars), or None.
    """

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    flux: NDArray[np.float64]
    failure: str | None = None

    def __len__(self) -> int:
        return int(self.x.size)

    def xy(self) -> NDArray[np.float64]:
        """The centres as an ``(N, 2)`` array of ``(x, y)``."""
        return np.column_stack((self.x, self.y))

    @classmethod
    def none(cls, failure: str | None = None) -> Stars:
        """A frame without stars (``failure`` says why detection could not run)."""
        empty = np.zeros(0, dtype=np.float64)
        return cls(empty, empty.copy(), empty.copy(), failure)


def detect_stars(
    mosaic: NDArray[np.generic],
    *,
    max_stars: int = MAX_STARS,
    threshold: float = DETECTION_SIGMA,
    saturation: float = SATURATION,
) -> Stars:
    """The stars of a raw GRBG mosaic, brightest first.

    Parameters
    ----------
    mosaic : numpy.ndarray
        The raw 2-D Bayer frame ``(rows, columns)`` in ADU (uint16 or float).
    max_stars : int
        How many of the brightest stars to keep.
    threshold : float
        Detection threshold in background standard deviations.
    saturation : float
        A source with a raw pixel at or above this level is left out.

    Returns
    -------
    Stars
        Centres in full-resolution mosaic coordinates and fluxes; none for a frame without stars
        (then ``failure`` says why if sep could not run).
    """
    data = np.asarray(mosaic, dtype=np.float32)
    if data.ndim != 2 or data.shape[0] < 8 or data.shape[1] < 8:
        raise ValueError(f"A raw mosaic is 2-D and at least 8x8 pixels, not {data.shape}.")
    try:
        background = sep.Background(_cell_sums(data))
    except Exception as exc:  # sep raises bare Exceptions
        return Stars.none(f"star detection failed: {exc}")
    noise = float(background.globalrms)
    if not noise > 0.0:  # a constant frame: nothing stands out of it
        return Stars.none()
    back = np.asarray(background.back(), dtype=np.float32)
    back_full = _full_size(back, data.shape)
    data = _without_hot_pixels(data, _site_sky(data, back_full / 4.0), noise / 2.0)
    cells = _cell_sums(data)
    sep.set_extract_pixstack(max(300_000, cells.size))  # room for every pixel: no overflow
    try:
        objects = sep.extract(
            cells - back, threshold, err=noise, minarea=MIN_AREA, filter_kernel=None
        )
    except Exception as exc:  # sep raises bare Exceptions (deblending overflow)
        return Stars.none(f"star detection failed: {exc}")
    objects = objects[_usable(objects, data, saturation)]
    if objects.size == 0:
        return Stars.none()
    # A few spare candidates: refinement drops the odd star whose window runs off the frame.
    objects = objects[np.argsort(-objects["flux"], kind="stable")[: max_stars + max_stars // 4]]
    stars = _refined(_luminance(data) - back_full, objects)
    return Stars(stars.x[:max_stars], stars.y[:max_stars], stars.flux[:max_stars])


def _without_hot_pixels(
    data: NDArray[np.float32], sky: NDArray[np.float32], noise: float
) -> NDArray[np.float32]:
    """The mosaic with lone bright pixels replaced by their neighbourhood's median.

    A hot pixel (or a cosmic-ray hit) stands alone, or with one hot neighbour: it exceeds the
    second brightest of its eight neighbours by most of its own height above the sky, while a
    star's peak has several neighbours at about half its height. Left in, a hot pixel on a
    star's wing drags the star's centroid by pixels.
    """
    rows, cols = np.nonzero(data - sky > _HOT_SIGMA * noise)
    if rows.size == 0:
        return data
    around = np.arange(-1, 2)
    near_rows = np.clip(rows[:, None, None] + around[None, :, None], 0, data.shape[0] - 1)
    near_cols = np.clip(cols[:, None, None] + around[None, None, :], 0, data.shape[1] - 1)
    patches = data[near_rows, near_cols].reshape(rows.size, 9)
    centre = patches[:, 4]
    second = np.partition(np.delete(patches, 4, axis=1), -2, axis=1)[:, -2]
    above = centre - second
    lone = (above > _HOT_SIGMA * noise) & (above > _HOT_SHARE * (centre - sky[rows, cols]))
    if not lone.any():
        return data
    cleaned = data.copy()
    cleaned[rows[lone], cols[lone]] = np.median(patches[lone], axis=1)
    return cleaned


def _site_sky(data: NDArray[np.float32], sky: NDArray[np.float32]) -> NDArray[np.float32]:
    """The sky of each mosaic pixel: the colour-blind ``sky`` plus its Bayer site's offset.

    The sky differs between the R, G and B sites (by far more than the noise under a coloured
    or light-polluted sky); without the offset every pixel of the brightest colour would stand
    "above the sky" and be examined as a possible hot pixel.
    """
    site_sky = sky.copy()
    for row in (0, 1):
        for col in (0, 1):
            # Every 4th pixel of the site is plenty for a median, and a quarter of the cost.
            offset = np.median(data[row::4, col::4] - sky[row::4, col::4])
            site_sky[row::2, col::2] += np.float32(offset)
    return site_sky


def _cell_sums(data: NDArray[np.float32]) -> NDArray[np.float32]:
    """Each 2x2 Bayer cell summed (an odd last row or column is dropped)."""
    rows, cols = data.shape[0] // 2, data.shape[1] // 2
    even = data[: 2 * rows : 2, : 2 * cols]
    odd = data[1 : 2 * rows : 2, : 2 * cols]
    cells = even[:, 0::2] + even[:, 1::2] + odd[:, 0::2] + odd[:, 1::2]
    return np.ascontiguousarray(cells, dtype=np.float32)


def _luminance(data: NDArray[np.float32]) -> NDArray[np.float32]:
    """Full-resolution R + 2G + B (the scale of a cell sum), centred on every pixel."""
    smoothed = cv2.sepFilter2D(data, cv2.CV_32F, _SMOOTH, _SMOOTH, borderType=cv2.BORDER_REFLECT)
    return np.asarray(smoothed, dtype=np.float32)


def _full_size(cells: NDArray[np.float32], shape: tuple[int, ...]) -> NDArray[np.float32]:
    """A cell-resolution image interpolated back onto the full-resolution pixel grid."""
    resized = cv2.resize(cells, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.asarray(resized, dtype=np.float32)


def _usable(
    objects: NDArray[np.void], data: NDArray[np.float32], saturation: float
) -> NDArray[np.bool_]:
    """Sources whose centre can be trusted: whole, unblended, unsaturated."""
    usable = (objects["flag"] & _BAD_OBJECT) == 0
    for i, obj in enumerate(objects):
        if usable[i]:
            rows = slice(2 * int(obj["ymin"]), 2 * int(obj["ymax"]) + 2)
            cols = slice(2 * int(obj["xmin"]), 2 * int(obj["xmax"]) + 2)
            usable[i] = float(data[rows, cols].max()) < saturation
    return np.asarray(usable, dtype=np.bool_)


def _refined(luminance: NDArray[np.float32], objects: NDArray[np.void]) -> Stars:
    """Windowed centroids on the full-resolution luminance, from the cells' first guesses."""
    # Cell (i, j) covers rows 2i..2i+1 and columns 2j..2j+1: its centre is (2j + 0.5, 2i + 0.5).
    x0 = 2.0 * objects["x"].astype(np.float64) + 0.5
    y0 = 2.0 * objects["y"].astype(np.float64) + 0.5
    radius = np.clip(2.0 * 3.0 * objects["a"].astype(np.float64), 4.0, 30.0)
    half_light, flag_r = sep.flux_radius(luminance, x0, y0, radius, 0.5, subpix=5)
    sigma = np.clip(2.0 * np.asarray(half_light, dtype=np.float64) / 2.3548, 0.5, 10.0)
    x, y, flag_w = sep.winpos(luminance, x0, y0, sigma)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    good = (
        (np.asarray(flag_r) == 0)
        & (np.asarray(flag_w) == 0)
        & np.isfinite(x)
        & np.isfinite(y)
        & (np.hypot(x - x0, y - y0) < 2.0)
    )
    flux = objects["flux"].astype(np.float64)
    return Stars(x[good], y[good], flux[good])
