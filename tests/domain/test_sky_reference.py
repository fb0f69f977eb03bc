"""The plain-Python HEALPix pixel agrees with astropy-healpix, the reference implementation.

astropy-healpix is only a test dependency: the package computes pixels itself so that it starts
without astropy (0.4 s). Off pixel edges the two must agree exactly; a position exactly on an
edge (the equator at an RA that is a multiple of 90/NSIDE degrees, say) belongs to either side,
and there the pixel must be one astropy-healpix gives for a point a micro-arcsecond away.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from astropy import units as u
from astropy_healpix import HEALPix
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import SkyTiling, healpix_pixel

ORDERS = ("ring", "nested")
NSIDES = [2**power for power in (0, 1, 2, 3, 6, 7, 10, 13, 17, 21, 25, 29)]
#: A thousandth of a micro-arcsecond, in degrees: far below any pixel (NSIDE 2**29: 0.4 mas).
NUDGE_DEG = 1e-9


def _reference(ras: list[float], decs: list[float], tiling: SkyTiling) -> list[int]:
    grid = HEALPix(nside=tiling.nside, order=tiling.order)
    pixels = grid.lonlat_to_healpix(np.asarray(ras) % 360.0 * u.deg, np.asarray(decs) * u.deg)
    return [int(pixel) for pixel in pixels]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("nside", NSIDES)
def test_agrees_on_random_directions(nside: int, order: str) -> None:
    tiling = SkyTiling(nside=nside, order=order)  # type: ignore[arg-type]
    draw = random.Random(f"{nside}-{order}")
    # Uniform on the sphere (so the polar caps get their share) and uniform in declination.
    decs = [float(np.degrees(np.arcsin(draw.uniform(-1, 1)))) for _ in range(1500)]
    decs += [draw.uniform(-90, 90) for _ in range(1500)]
    ras = [draw.uniform(0, 360) for _ in decs]

    ours = [healpix_pixel(ra, dec, tiling) for ra, dec in zip(ras, decs, strict=True)]

    assert ours == _reference(ras, decs, tiling)


@pytest.mark.parametrize("order", ORDERS)
def test_agrees_on_header_like_values(order: str) -> None:
    # FITS RA/DEC cards carry a few decimals; the CrowdSky default grid and the spec's reading.
    draw = random.Random(order)
    ras = [round(draw.uniform(0, 360), draw.choice((2, 4, 6))) for _ in range(4000)]
    decs = [round(draw.uniform(-90, 90), draw.choice((2, 4, 6))) for _ in range(4000)]
    for nside in (64, 128):
        tiling = SkyTiling(nside=nside, order=order)  # type: ignore[arg-type]
        ours = [healpix_pixel(ra, dec, tiling) for ra, dec in zip(ras, decs, strict=True)]
        assert ours == _reference(ras, decs, tiling)


tilings = st.builds(
    SkyTiling,
    nside=st.integers(min_value=0, max_value=29).map(lambda power: 2**power),
    order=st.sampled_from(ORDERS),
)


@given(
    st.floats(min_value=0.0, max_value=360.0, exclude_max=True),
    st.floats(min_value=-90.0, max_value=90.0),
    tilings,
)
def test_agrees_or_is_on_an_edge(ra: float, dec: float, tiling: SkyTiling) -> None:
    ours = healpix_pixel(ra, dec, tiling)
    (theirs,) = _reference([ra], [dec], tiling)
    if ours == theirs:
        return
    around = [
        (ra + dra, min(90.0, max(-90.0, dec + ddec)))
        for dra in (-NUDGE_DEG, 0.0, NUDGE_DEG)
        for ddec in (-NUDGE_DEG, 0.0, NUDGE_DEG)
    ]
    near = _reference([r for r, _ in around], [d for _, d in around], tiling)
    assert ours in near, f"pixel {ours}, astropy-healpix {theirs}, nearby {sorted(set(near))}"
