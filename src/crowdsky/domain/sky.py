"""Sky tiling: the HEALPix pixel that lets stacks from different Seestars be matched.

The default is HEALPix RING, NSIDE = 128 (196 608 pixels of about 27.5'), the scheme of the
CrowdSky server, its data API and the other clients (shared README, decision 1). The reading
"NSIDE=64, nested" of the original documentation is one setting away:
``SkyTiling(nside=64, order="nested")``.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import attrs
from astropy import units as u
from astropy_healpix import HEALPix  # type: ignore[import-untyped,unused-ignore]

from crowdsky.errors import PlanError

__all__ = ["DEFAULT_TILING", "UNKNOWN_PIXEL", "SkyTiling", "healpix_pixel"]

#: Pixel used when a stack's RA/Dec cannot be read (as the specification says).
UNKNOWN_PIXEL = 0


#: The finest HEALPix grid (order 29); beyond it pixel numbers overflow 64 bits.
_MAX_NSIDE = 2**29


def _power_of_two(_: object, __: object, value: int) -> None:
    # Checked as a true int first: 64.0 or "64" would otherwise fail with a bare TypeError.
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= _MAX_NSIDE
        or value & (value - 1)
    ):
        raise PlanError(
            f"HEALPix NSIDE must be a power of two from 1 to 2**29 (like 64 or 128), got {value!r}."
        )


def _ordering(_: object, __: object, value: str) -> None:
    if value not in ("ring", "nested"):
        raise PlanError(f"HEALPix ordering must be 'ring' or 'nested', got {value!r}.")


@attrs.frozen
class SkyTiling:
    """A HEALPix tiling of the sky.

    Parameters
    ----------
    nside : int
        HEALPix NSIDE, a power of two (default 128).
    order : {"ring", "nested"}
        Pixel ordering (default ``"ring"``).
    """

    nside: int = attrs.field(default=128, validator=_power_of_two)
    order: Literal["ring", "nested"] = attrs.field(default="ring", validator=_ordering)

    @property
    def npix(self) -> int:
        """Number of pixels on the sky."""
        return 12 * self.nside * self.nside


DEFAULT_TILING = SkyTiling()


def healpix_pixel(
    ra_deg: float | None, dec_deg: float | None, tiling: SkyTiling = DEFAULT_TILING
) -> int:
    """The HEALPix pixel of a pointing, or :data:`UNKNOWN_PIXEL` when RA/Dec are unknown.

    Parameters
    ----------
    ra_deg, dec_deg : float or None
        ICRS right ascension and declination in degrees (FITS ``RA``/``DEC`` cards).
    tiling : SkyTiling
        The tiling; RING / NSIDE 128 by default.

    Returns
    -------
    int

    Raises
    ------
    PlanError
        When the declination is outside [-90, 90].

    Examples
    --------
    >>> healpix_pixel(85.25, -2.46)
    102265
    >>> healpix_pixel(85.25, -2.46, SkyTiling(nside=64, order="nested"))
    22854
    >>> healpix_pixel(None, 12.0)
    0
    """
    if ra_deg is None or dec_deg is None or not (math.isfinite(ra_deg) and math.isfinite(dec_deg)):
        return UNKNOWN_PIXEL
    if not -90.0 <= dec_deg <= 90.0:
        raise PlanError(f"Declination {dec_deg} deg is outside -90..90; is it in hours?")
    lon = (ra_deg % 360.0) * u.deg
    return int(_grid(tiling).lonlat_to_healpix(lon, dec_deg * u.deg))


@functools.cache
def _grid(tiling: SkyTiling) -> HEALPix:
    return HEALPix(nside=tiling.nside, order=tiling.order)
