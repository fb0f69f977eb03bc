"""The geometry shared by registration and combination: a similarity transform between frames.

Pixel coordinates are ``(x, y)`` = (column, row) of the full-resolution frame (the raw mosaic's
shape, one colour sample per pixel), with the centre of pixel ``[row, col]`` at ``(col, row)``.
A :class:`Similarity` maps a point of the *reference* frame to where the same point of the sky
lies in *another* frame, which is what warping needs: output (reference) pixel ``p`` takes the
value of the other frame at ``T(p)``.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["Similarity"]


@attrs.frozen
class Similarity:
    """``x' = s (cos t x - sin t y) + tx``, ``y' = s (sin t x + cos t y) + ty``.

    Parameters
    ----------
    scale : float
        ``s``, 1.0 for frames of one camera.
    rotation : float
        ``t`` in radians, counter-clockwise in ``(x, y)``.
    tx, ty : float
        Shift in pixels.
    """

    scale: float = 1.0
    rotation: float = 0.0
    tx: float = 0.0
    ty: float = 0.0

    def matrix(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """The 2x3 affine matrix ``[[a, -b, tx], [b, a, ty]]`` (OpenCV's ``warpAffine`` form)."""
        a = self.scale * math.cos(self.rotation)
        b = self.scale * math.sin(self.rotation)
        return ((a, -b, self.tx), (b, a, self.ty))

    def apply(self, x: float, y: float) -> tuple[float, float]:
        """Where the reference point ``(x, y)`` lies in the other frame."""
        (a, mb, tx), (b, _, ty) = self.matrix()
        return (a * x + mb * y + tx, b * x + a * y + ty)

    def inverse(self) -> Similarity:
        """The transform back from the other frame to the reference."""
        s = 1.0 / self.scale
        t = -self.rotation
        c, n = math.cos(t), math.sin(t)
        return Similarity(
            scale=s,
            rotation=t,
            tx=-s * (c * self.tx - n * self.ty),
            ty=-s * (n * self.tx + c * self.ty),
        )

    def then(self, other: Similarity) -> Similarity:
        """``other`` applied after ``self``."""
        a = Similarity(scale=self.scale * other.scale, rotation=self.rotation + other.rotation)
        x, y = other.apply(self.tx, self.ty)
        return attrs.evolve(a, tx=x, ty=y)
