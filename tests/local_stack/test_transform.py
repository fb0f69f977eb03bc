"""The similarity transform shared by registration and combination."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from crowdsky.adapters.local_stack import Similarity

scales = st.floats(0.8, 1.25)
angles = st.floats(-math.pi, math.pi)
shifts = st.floats(-500, 500)
coords = st.floats(0, 4000)
transforms = st.builds(Similarity, scales, angles, shifts, shifts)


@given(transforms, coords, coords)
def test_inverse_undoes_the_transform(t: Similarity, x: float, y: float) -> None:
    bx, by = t.inverse().apply(*t.apply(x, y))
    assert math.isclose(bx, x, abs_tol=1e-7)
    assert math.isclose(by, y, abs_tol=1e-7)


@given(transforms, transforms, coords, coords)
def test_then_applies_the_second_after_the_first(
    first: Similarity, second: Similarity, x: float, y: float
) -> None:
    cx, cy = first.then(second).apply(x, y)
    dx, dy = second.apply(*first.apply(x, y))
    assert math.isclose(cx, dx, abs_tol=1e-6)
    assert math.isclose(cy, dy, abs_tol=1e-6)


def test_a_quarter_turn_maps_x_to_y() -> None:
    x, y = Similarity(rotation=math.pi / 2, tx=10).apply(1.0, 0.0)
    assert math.isclose(x, 10.0, abs_tol=1e-12)
    assert math.isclose(y, 1.0)


def test_matrix_is_opencvs_warp_affine_form() -> None:
    (a, mb, tx), (b, a2, ty) = Similarity(2.0, math.pi / 6, 3.0, 4.0).matrix()
    assert (a, a2) == (2 * math.cos(math.pi / 6),) * 2
    assert (b, -mb, tx, ty) == (2 * math.sin(math.pi / 6),) * 2 + (3.0, 4.0)
