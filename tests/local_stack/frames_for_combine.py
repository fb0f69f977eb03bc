"""Small test frames for the combination tests: GRBG mosaics rendered from a known geometry.

A frame is rendered, not warped: each star of a reference-frame star list is drawn at
``transform.apply(x, y)`` in the frame (the :class:`Similarity` maps reference -> frame), on a
flat background whose R, G and B sites have their own levels, with Gaussian noise, optional hot
pixels (fixed on the sensor) and an optional satellite trail. :class:`TrueRegistrar` is the
legitimate fake registration step for these frames: it returns the transforms the frames were
rendered with (registration itself is tested with its own synthetic blocks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
from astropy.io import fits
from numpy.typing import NDArray

from crowdsky.adapters.local_stack import Similarity

#: GRBG: (row parity, column parity) -> channel index (0 R, 1 G, 2 B).
_CHANNEL = {(0, 0): 1, (0, 1): 0, (1, 0): 2, (1, 1): 1}


def channel_map(rows: int, cols: int) -> NDArray[np.intp]:
    """The colour (0 R, 1 G, 2 B) of every site of a GRBG mosaic."""
    out = np.empty((rows, cols), dtype=np.intp)
    for (dr, dc), channel in _CHANNEL.items():
        out[dr::2, dc::2] = channel
    return out


@attrs.frozen
class Scene:
    """What a frame shows: background levels per colour and stars in reference coordinates."""

    shape: tuple[int, int] = (64, 48)
    background: tuple[float, float, float] = (1000.0, 2000.0, 3000.0)
    stars: tuple[tuple[float, float, float], ...] = ()  # (x, y, peak ADU)
    fwhm: float = 3.0


def render(
    scene: Scene,
    transform: Similarity,
    *,
    noise: float = 0.0,
    seed: int = 0,
    hot_pixels: Sequence[tuple[int, int]] = (),
    trail: tuple[float, float, float, float, float] | None = None,
) -> NDArray[np.uint16]:
    """One GRBG mosaic of ``scene`` seen through ``transform`` (reference -> this frame).

    ``trail`` is ``(x0, y0, x1, y1, peak)`` in this frame's pixels, drawn with a Gaussian
    cross-section of sigma 1.5 px.
    """
    rows, cols = scene.shape
    image = np.asarray(scene.background, dtype=np.float64)[channel_map(rows, cols)]
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    sigma = scene.fwhm / (2 * math.sqrt(2 * math.log(2)))
    for x, y, peak in scene.stars:
        fx, fy = transform.apply(x, y)
        image += peak * np.exp(-((xx - fx) ** 2 + (yy - fy) ** 2) / (2 * sigma**2))
    if trail is not None:
        x0, y0, x1, y1, peak = trail
        length = math.hypot(x1 - x0, y1 - y0)
        distance = np.abs((y1 - y0) * xx - (x1 - x0) * yy + x1 * y0 - y1 * x0) / length
        image += peak * np.exp(-(distance**2) / (2 * 1.5**2))
    if noise:
        image += np.random.default_rng(seed).normal(0.0, noise, image.shape)
    for row, col in hot_pixels:
        image[row, col] = 60000.0
    return np.rint(np.clip(image, 0, 65535)).astype(np.uint16)


def sub_header(index: int, exptime: float = 10.0) -> fits.Header:
    """A Seestar-like raw sub header; ``DATE-OBS`` advances ``exptime`` seconds per index."""
    header = fits.Header()
    seconds = 3 + int(index * exptime)
    header["CREATOR"] = ("ZWO Seestar S50", "Capture software")
    header["INSTRUME"] = ("Seestar S50", "Camera model")
    header["TELESCOP"] = "Seestar S50"
    header["FOCALLEN"] = 250
    header["XPIXSZ"] = 2.9
    header["GAIN"] = 80
    header["STACKCNT"] = (1, "Stack frames")
    header["EXPOSURE"] = exptime
    header["EXPTIME"] = (exptime, "Exposure time in seconds")
    header["RA"] = 148.89
    header["DEC"] = 69.07
    header["DATE-OBS"] = f"2026-02-27T22:{seconds // 60:02d}:{seconds % 60:02d}.500000"
    header["FILTER"] = "IRCUT"
    header["OBJECT"] = "M 81"
    header["BAYERPAT"] = "GRBG"
    return header


def write_sub(path: Path, mosaic: NDArray[np.uint16], index: int) -> Path:
    """Write ``mosaic`` as a raw sub (uint16 as BITPIX 16, BZERO 32768) and return ``path``."""
    fits.PrimaryHDU(data=mosaic, header=sub_header(index)).writeto(path)
    return path


@attrs.frozen
class TrueRegistration:
    """A registration answer (the shape the engine reads)."""

    transform: Similarity | None
    reason: str | None = None
    matched: int = 0


@attrs.define
class TrueRegistrar:
    """A fake registrar answering with the transforms the frames were rendered with.

    ``detect`` numbers the frames in the order the engine reads them; the reference is frame
    ``reference`` (its transform must be the identity); ``reject`` maps frame numbers to the
    reason to give instead of a transform.
    """

    transforms: Sequence[Similarity]
    reject: dict[int, str] = attrs.field(factory=dict)
    reference: int = 0
    seen: int = 0

    def detect(self, mosaic: NDArray[np.uint16]) -> int:
        self.seen += 1
        return self.seen - 1

    def choose_reference(self, star_lists: Sequence[int]) -> int:
        return self.reference

    def register(self, reference: int, stars: int) -> TrueRegistration:
        if stars in self.reject:
            return TrueRegistration(None, self.reject[stars])
        return TrueRegistration(self.transforms[stars], None, 50)


def dithered(count: int, seed: int, shift: float = 6.0, turn: float = 0.05) -> list[Similarity]:
    """``count`` transforms, the first the identity, the others shifted and turned at random."""
    rng = np.random.default_rng(seed)
    out = [Similarity()]
    for _ in range(count - 1):
        dx, dy = rng.uniform(-shift, shift, 2)
        out.append(Similarity(1.0, float(rng.uniform(-turn, turn)), float(dx), float(dy)))
    return out
