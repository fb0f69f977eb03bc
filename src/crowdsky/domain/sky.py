"""Sky tiling: the HEALPix pixel that lets stacks from different Seestars be matched.

The default is HEALPix RING, NSIDE = 128 (196 608 pixels of about 27.5'), the scheme of the
CrowdSky server, its data API and the other clients (shared README, decision 1). The reading
"NSIDE=64, nested" of the original documentation is one setting away:
``SkyTiling(nside=64, order="nested")``.

The pixel is computed here in plain Python from the HEALPix definition (Górski et al. 2005,
ApJ 622, 759, section 4): importing astropy-healpix costs about 0.4 s of start-up (astropy
units and coordinates), more than a whole ``crowdsky plan``. The test suite checks every
pixel against astropy-healpix on random positions, both orderings and NSIDE 1 to 2**29.
"""

from __future__ import annotations

import math
from typing import Literal

import attrs

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
    return _pixel(ra_deg % 360.0, dec_deg, tiling.nside, nested=tiling.order == "nested")


#: |z| = |sin(dec)| above which a direction is in a polar cap (HEALPix's 2/3).
_POLAR_Z = 2.0 / 3.0


def _pixel(ra_deg: float, dec_deg: float, nside: int, *, nested: bool) -> int:
    # tt: the longitude in quarter turns, 0 <= tt < 4 (a tiny negative RA can round to 360.0).
    tt = ra_deg / 90.0
    if tt >= 4.0:
        tt -= 4.0
    z = math.sin(math.radians(dec_deg))
    if abs(z) <= _POLAR_Z:
        return _equatorial(tt, z, nside, nested=nested)
    return _polar(tt, dec_deg, nside, nested=nested)


def _equatorial(tt: float, z: float, nside: int, *, nested: bool) -> int:
    # jp, jm: indices of the pixel edges of ascending and descending slope through the point.
    centre = nside * (0.5 + tt)
    slope = nside * 0.75 * z
    jp = int(centre - slope)
    jm = int(centre + slope)
    if nested:
        face_p, face_m = jp // nside, jm // nside
        if face_p == face_m:
            face = face_p % 4 + 4
        elif face_p < face_m:
            face = face_p % 4
        else:
            face = face_m % 4 + 8
        return _nested_index(face, jm % nside, nside - jp % nside - 1, nside)
    ring = nside + 1 + jp - jm  # 1 .. 2 nside + 1, counted from z = 2/3 down
    shifted = 1 - (ring & 1)
    in_ring = ((jp + jm - nside + shifted + 1) // 2) % (4 * nside)
    return 2 * nside * (nside - 1) + (ring - 1) * 4 * nside + in_ring


def _polar(tt: float, dec_deg: float, nside: int, *, nested: bool) -> int:
    # nside * sqrt(3 (1 - |z|)) written with the half colatitude, exact near the pole.
    half_colatitude = math.radians(90.0 - abs(dec_deg)) / 2.0
    scale = nside * math.sqrt(6.0) * math.sin(half_colatitude)
    quarter = min(int(tt), 3)
    tp = tt - quarter
    jp = int(tp * scale)
    jm = int((1.0 - tp) * scale)
    north = dec_deg > 0.0
    if nested:
        jp, jm = min(jp, nside - 1), min(jm, nside - 1)
        if north:
            return _nested_index(quarter, nside - jm - 1, nside - jp - 1, nside)
        return _nested_index(quarter + 8, jp, jm, nside)
    ring = jp + jm + 1  # counted from the nearer pole
    in_ring = int(tt * ring) % (4 * ring)
    if north:
        return 2 * ring * (ring - 1) + in_ring
    return 12 * nside * nside - 2 * ring * (ring + 1) + in_ring


def _nested_index(face: int, ix: int, iy: int, nside: int) -> int:
    # Bits of ix on the even places and bits of iy on the odd ones (a Morton code).
    code = 0
    bit = 0
    while ix or iy:
        code |= (ix & 1) << (2 * bit) | (iy & 1) << (2 * bit + 1)
        ix >>= 1
        iy >>= 1
        bit += 1
    return face * nside * nside + code
