"""Debayering, warping and robust combination of registered frames, one strip of rows at a time.

The output grid is the reference frame's. For a strip of output rows, each frame contributes
the band of its own rows that the strip maps onto (:func:`source_band`), debayered
(:func:`debayer_grbg`) and warped into the strip (:func:`warp_band`); pixels the frame does not
cover are NaN and count for nothing. :func:`combine_strip` then rejects outliers per pixel and
averages what is kept.

Rejection works from a handful of frames up, in two rounds per pixel. First the centre is the
median of the frames covering it and the spread ``sigma`` comes from their interquartile range
(both ignore a bright trail or hot pixel in up to a quarter of the frames), never below that
spread pooled over neighbouring pixels, so that a few frames still give a steady estimate;
values further than :data:`CLIP_SIGMA` ``sigma`` from the median are dropped. Where a source
stands above the sky, ``sigma`` also grows with its signal (:data:`SOURCE_SPREAD`): seeing moves
a star's light between its core and its wings from frame to frame and transparency scales it,
and clipping that variation would trim the cores of bright stars and bias their flux low. Then
the same test is made again around the mean of the values kept, which is less noisy than the
median. The kept values are averaged with equal weights, so the noise is that of a plain mean
of the frames kept.

Warping is bilinear: its weights sum to one (flux is preserved) and it widens a star by much less
than registration does; wider kernels (Lanczos) ring around hot pixels and cost several times
more.
"""

from __future__ import annotations

import functools
import math
import statistics

import cv2
import numpy as np
from numpy.typing import NDArray

from crowdsky.adapters.local_stack.transform import Similarity

__all__ = [
    "CLIP_SIGMA",
    "STRIP_BUDGET_BYTES",
    "combine_strip",
    "debayer_grbg",
    "source_band",
    "strip_rows",
    "to_uint16",
    "warp_band",
]

#: Values further than this many ``sigma`` from a pixel's median are left out.
CLIP_SIGMA = 3.0
#: The smallest ``sigma`` (ADU): the data are whole counts, so a spread below one is rounding.
MIN_SIGMA = 1.0
#: Bytes of warped frames held at once (frames x 3 x strip rows x width x 4): the memory bound.
STRIP_BUDGET_BYTES = 160 * 1024 * 1024
#: Neighbouring pixels of a row whose spreads are pooled into one ``sigma``.
POOL_PIXELS = 31
#: Fraction of a source's signal above the sky added (in quadrature) to ``sigma``: seeing
#: moves a star's light between core and wings and transparency scales it, so a bright source
#: legitimately varies from frame to frame far beyond the noise.
SOURCE_SPREAD = 0.5
#: Pixels along the row over which the sky under a source is looked for, and smoothed over.
_SKY_PIXELS = 41
_SKY_SMOOTH = 7
#: Stands for "no sky here" where no frame covers a pixel.
_NO_SKY = 1.0e6
#: Bytes of one transposed chunk :func:`combine_strip` sorts at a time.
_CHUNK_BYTES = 16 * 1024 * 1024
#: Extra mosaic rows read on each side of a band: debayering looks one row away, bilinear
#: interpolation one more, and the band starts on an even row to keep the GRBG phase.
_BAND_MARGIN = 4
#: Interquartile range of a normal distribution, in sigma.
_IQR_SIGMA = 1.3489795


def strip_rows(frames: int, width: int, height: int, budget: int = STRIP_BUDGET_BYTES) -> int:
    """How many output rows to combine at once so the warped frames fit in ``budget`` bytes.

    Parameters
    ----------
    frames : int
        Frames combined.
    width, height : int
        The frame's columns and rows.
    budget : int
        Bytes for ``frames x 3 x rows x width`` float32 values.

    Returns
    -------
    int
        At least 1, at most ``height``.
    """
    per_row = max(frames, 1) * 3 * width * 4
    return max(1, min(height, budget // per_row))


def debayer_grbg(mosaic: NDArray[np.uint16]) -> NDArray[np.float32]:
    """A GRBG Bayer mosaic (its first row starts green, red) as ``(rows, cols, 3)`` R, G, B.

    OpenCV's four-letter ``COLOR_BayerGRBG2RGB`` names the pattern from the top-left corner;
    the legacy two-letter ``COLOR_BayerGR2RGB`` would swap red and blue on this layout.
    """
    rgb = cv2.cvtColor(mosaic, cv2.COLOR_BayerGRBG2RGB)
    return rgb.astype(np.float32)


def source_band(
    transform: Similarity, top: int, rows: int, width: int, height: int
) -> tuple[int, int] | None:
    """The rows of a frame that output rows ``top`` to ``top + rows - 1`` are warped from.

    Parameters
    ----------
    transform : Similarity
        Reference -> this frame.
    top, rows : int
        The output strip.
    width, height : int
        The frame's size.

    Returns
    -------
    tuple of int or None
        ``(first, stop)`` with ``first`` even (the Bayer phase is kept) and a margin for
        debayering and interpolation, clipped to the frame; ``None`` when the strip falls
        outside the frame.
    """
    corners = [transform.apply(x, y) for x in (0.0, width - 1.0) for y in (top, top + rows - 1.0)]
    ys = [y for _, y in corners]
    first = max(0, math.floor(min(ys)) - _BAND_MARGIN)
    stop = min(height, math.ceil(max(ys)) + 1 + _BAND_MARGIN)
    first -= first % 2
    if stop - first < 2:
        return None
    return first, stop


def warp_band(
    rgb_band: NDArray[np.float32], transform: Similarity, band_top: int, top: int, rows: int
) -> NDArray[np.float32]:
    """Warp a debayered band of a frame onto output rows ``top`` to ``top + rows - 1``.

    Output pixel ``p`` of the reference grid takes the frame's value at ``transform(p)``
    (bilinear); pixels whose point lies outside the frame are NaN.

    Parameters
    ----------
    rgb_band : numpy.ndarray
        ``(band rows, width, 3)`` float32, the frame's rows from ``band_top``.
    transform : Similarity
        Reference -> this frame.
    band_top : int
        The frame row of ``rgb_band[0]``.
    top, rows : int
        The output strip.

    Returns
    -------
    numpy.ndarray
        ``(rows, width, 3)`` float32.
    """
    (a, mb, tx), (b, _, ty) = transform.matrix()
    # One replicated column and row past the last: a point exactly on the frame's last row or
    # column interpolates with weight 0 beyond it, and must not turn NaN for that.
    padded = cv2.copyMakeBorder(rgb_band, 0, 1, 0, 1, cv2.BORDER_REPLICATE)
    # Shift the output origin to the strip's top and the source origin to the band's top.
    matrix = np.array([[a, mb, tx + mb * top], [b, a, ty + a * top - band_top]], dtype=np.float64)
    width = rgb_band.shape[1]
    warped = cv2.warpAffine(
        padded,
        matrix,
        (width, rows),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(math.nan, math.nan, math.nan, math.nan),
    )
    return np.asarray(warped, dtype=np.float32)


def combine_strip(stack: NDArray[np.float32]) -> NDArray[np.float32]:
    """Reject outliers and average: ``(frames, rows, cols, 3)`` -> ``(rows, cols, 3)``.

    NaN values (outside a frame) are ignored; a pixel no frame covers is NaN. Per pixel: keep
    the values within :data:`CLIP_SIGMA` ``sigma`` of the median; then keep the values within
    :data:`CLIP_SIGMA` ``sigma`` of those values' mean; average what is kept. ``sigma`` is the
    larger of the pixel's own spread (interquartile range / 1.349 in the first round, the kept
    values' standard deviation in the second) and a floor, and at least :data:`MIN_SIGMA`. The
    floor is, in quadrature, the interquartile spread pooled over :data:`POOL_PIXELS`
    neighbours along the row and :data:`SOURCE_SPREAD` times the median's height above the
    local sky, so a bright star's frame-to-frame variation is not clipped. With one or
    two frames nothing can be told apart, so all are kept.
    """
    frames, rows, cols, _ = stack.shape
    flat = stack.reshape(frames, -1)
    pixels = flat.shape[1]
    median = np.empty(pixels, dtype=np.float32)
    sigma = np.empty(pixels, dtype=np.float32)
    count = np.empty(pixels, dtype=np.intp)
    step = max(1, _CHUNK_BYTES // (4 * max(frames, 1)))
    for start in range(0, pixels, step):
        part = slice(start, min(pixels, start + step))
        median[part], sigma[part], count[part] = _robust_centre(
            np.ascontiguousarray(flat[:, part].T)
        )
    pooled = _pooled(sigma.reshape(rows, cols, 3)).reshape(-1)
    source = SOURCE_SPREAD * _above_sky(median.reshape(rows, cols, 3)).reshape(-1)
    out = np.empty(pixels, dtype=np.float32)
    for start in range(0, pixels, step):
        part = slice(start, min(pixels, start + step))
        values = flat[:, part]
        floor = np.hypot(pooled[part], source[part])
        kept = _within(values, median[part], np.maximum(sigma[part], floor), count[part])
        mean, spread = _mean_and_std(values, kept)
        kept = _within(values, mean, np.maximum(spread, floor), count[part])
        out[part] = _mean(values, kept)
    return out.reshape(rows, cols, 3)


def _robust_centre(
    values: NDArray[np.float32],
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.intp]]:
    """Median, interquartile sigma and number of frames of ``(pixels, frames)`` values.

    The values are sorted in place (NaN last).
    """
    values.sort(axis=1)
    count = values.shape[1] - np.isnan(values).sum(axis=1)
    last = np.maximum(count - 1, 0)
    median = _quantile(values, last, 0.5)
    spread = _quantile(values, last, 0.75) - _quantile(values, last, 0.25)
    return median, spread / _iqr_in_sigma(values.shape[1])[count], count


@functools.cache
def _iqr_in_sigma(frames: int) -> NDArray[np.float32]:
    """Expected interquartile range of ``n`` normal values, in sigma, for ``n = 0..frames``.

    The sample quartiles of a few values lie closer together than the distribution's (five
    values: 0.73 of 1.349 sigma); dividing by this removes that bias. Expected order statistics
    from Blom's approximation, interpolated as :func:`_quantile` does.
    """
    normal = statistics.NormalDist()
    table = np.full(frames + 1, _IQR_SIGMA, dtype=np.float32)
    for n in range(2, frames + 1):
        expected = [normal.inv_cdf((i + 1 - 0.375) / (n + 0.25)) for i in range(n)]

        def at(q: float, expected: list[float] = expected, n: int = n) -> float:
            position = (n - 1) * q
            below = math.floor(position)
            above = min(below + 1, n - 1)
            return expected[below] + (position - below) * (expected[above] - expected[below])

        table[n] = at(0.75) - at(0.25)
    return table


def _above_sky(median: NDArray[np.float32]) -> NDArray[np.float32]:
    """How far each pixel's median lies above the sky near it, per channel (0 or more).

    The sky is the lowest value of the median smoothed over :data:`_SKY_SMOOTH` pixels within
    :data:`_SKY_PIXELS` along the row (smoothing first keeps the minimum from following the
    noise down); a pixel no frame covers counts as bright, so it is never taken for the sky.
    """
    filled = np.nan_to_num(median, nan=_NO_SKY)
    smooth = cv2.blur(filled, (_SKY_SMOOTH, 1), borderType=cv2.BORDER_REFLECT)
    kernel = np.ones((1, _SKY_PIXELS), dtype=np.uint8)
    sky = cv2.erode(smooth, kernel, borderType=cv2.BORDER_REFLECT)
    above: NDArray[np.float32] = np.maximum(np.nan_to_num(median) - sky, 0.0)
    return above


def _pooled(sigma: NDArray[np.float32]) -> NDArray[np.float32]:
    """Root mean square of ``sigma`` over each pixel's neighbourhood, per channel.

    A spread from a few frames is itself noisy; pooled over neighbours it is not, and a
    threshold set too low by chance would drop good values and cost signal-to-noise.
    """
    square = np.nan_to_num(sigma, nan=0.0) ** 2
    # Along the row only, so that how the frame is cut into strips changes nothing.
    size = (POOL_PIXELS, 1)
    mean_square = cv2.blur(square, size, borderType=cv2.BORDER_REFLECT)
    # The filter's running float32 sums can leave -1e-9 where huge spreads meet pixels no frame
    # covers (a rotated frame's corner); that is 0, not the root of a negative number.
    return np.sqrt(np.maximum(mean_square, 0.0)).astype(np.float32)


def _within(
    values: NDArray[np.float32],
    centre: NDArray[np.float32],
    sigma: NDArray[np.float32],
    count: NDArray[np.intp],
) -> NDArray[np.bool_]:
    """``(frames, pixels)`` values within :data:`CLIP_SIGMA` ``sigma`` of ``centre``.

    All of them where ``count <= 2``; never a NaN (a frame not covering the pixel).
    """
    reach = CLIP_SIGMA * np.maximum(np.nan_to_num(sigma), MIN_SIGMA)
    reach[count <= 2] = np.inf
    kept: NDArray[np.bool_] = np.abs(values - centre) <= reach
    return kept


def _mean(values: NDArray[np.float32], kept: NDArray[np.bool_]) -> NDArray[np.float32]:
    """Per pixel (column), the mean of the kept values (NaN if none)."""
    number = kept.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.sum(values, axis=0, where=kept, dtype=np.float64)
        mean: NDArray[np.float32] = (total / number).astype(np.float32)
    return mean


def _mean_and_std(
    values: NDArray[np.float32], kept: NDArray[np.bool_]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per pixel (column), the mean and standard deviation of the kept values (NaN if none)."""
    number = kept.sum(axis=0)
    mean = _mean(values, kept)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviation = np.square(values - mean)
        variance = np.sum(deviation, axis=0, where=kept, dtype=np.float64) / (number - 1)
    return mean, np.sqrt(variance).astype(np.float32)


def _quantile(
    ordered: NDArray[np.float32], last: NDArray[np.intp], q: float
) -> NDArray[np.float32]:
    """The ``q`` quantile of each row's first ``last + 1`` values (linear interpolation)."""
    position = last * q
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, last)
    weight = (position - below).astype(np.float32)
    low = np.take_along_axis(ordered, below[:, None], axis=1)[:, 0]
    high = np.take_along_axis(ordered, above[:, None], axis=1)[:, 0]
    value: NDArray[np.float32] = low + weight * (high - low)
    return value


def to_uint16(planes: NDArray[np.float32]) -> NDArray[np.uint16]:
    """Round to whole ADU within ``0..65535``; a pixel no frame covered becomes 0."""
    clean = np.nan_to_num(planes, nan=0.0)
    return np.rint(np.clip(clean, 0.0, 65535.0)).astype(np.uint16)
