"""HEALPix pixels: the reference values everyone else uses, and the edges of the sky."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdsky.domain import DEFAULT_TILING, UNKNOWN_PIXEL, SkyTiling, healpix_pixel
from crowdsky.errors import PlanError

tilings = st.builds(
    SkyTiling,
    nside=st.integers(min_value=0, max_value=29).map(lambda power: 2**power),
    order=st.sampled_from(("ring", "nested")),
)
# RA on a 1/1024 degree grid: adding or removing 360 is then exact, so a wrap test compares the
# very same direction (a float RA + 360 - 360 could move by an ulp across a pixel edge).
grid_ra = st.integers(min_value=0, max_value=360 * 1024 - 1).map(lambda k: k / 1024)
decs = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)


def test_default_is_ring_128() -> None:
    assert SkyTiling(nside=128, order="ring") == DEFAULT_TILING
    assert DEFAULT_TILING.npix == 196_608


@pytest.mark.parametrize(
    ("ra", "dec", "tiling", "pixel"),
    [
        (85.25, -2.46, DEFAULT_TILING, 102265),  # IC 434
        (83.82, -5.39, DEFAULT_TILING, 107383),  # M 42
        (85.25, -2.46, SkyTiling(nside=64, order="nested"), 22854),  # the spec's literal reading
    ],
)
def test_reference_pixels(ra: float, dec: float, tiling: SkyTiling, pixel: int) -> None:
    assert healpix_pixel(ra, dec, tiling) == pixel


@pytest.mark.parametrize(
    ("ra", "dec"),
    [(None, -2.46), (85.25, None), (None, None), (math.nan, 0.0), (0.0, math.inf)],
)
def test_unknown_pointing_is_pixel_zero(ra: float | None, dec: float | None) -> None:
    assert healpix_pixel(ra, dec) == UNKNOWN_PIXEL == 0


@given(grid_ra, decs, tilings, st.integers(min_value=-3, max_value=3))
def test_ra_wraps(ra: float, dec: float, tiling: SkyTiling, turns: int) -> None:
    assert healpix_pixel(ra + 360 * turns, dec, tiling) == healpix_pixel(ra, dec, tiling)


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), decs, tilings)
def test_pixel_is_on_the_sky(ra: float, dec: float, tiling: SkyTiling) -> None:
    assert 0 <= healpix_pixel(ra, dec, tiling) < tiling.npix


def test_poles_and_edges() -> None:
    assert healpix_pixel(0.0, 90.0) in range(4)
    assert healpix_pixel(0.0, -90.0) in range(DEFAULT_TILING.npix - 4, DEFAULT_TILING.npix)
    assert healpix_pixel(360.0, 0.0) == healpix_pixel(0.0, 0.0)


@pytest.mark.parametrize("dec", [90.000001, -90.5, 180.0, -1000.0])
def test_declination_off_the_sky_is_refused(dec: float) -> None:
    with pytest.raises(PlanError):
        healpix_pixel(10.0, dec)


@pytest.mark.parametrize("nside", [0, -4, 3, 100, 2**30, True, 64.0, "64", None])
def test_bad_nside(nside: object) -> None:
    with pytest.raises(PlanError) as caught:
        SkyTiling(nside=nside)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)


def test_bad_order() -> None:
    with pytest.raises(PlanError):
        SkyTiling(order="NESTED")  # type: ignore[arg-type]
