"""Registering a frame's stars on the reference frame's: a similarity transform, or a reason.

astroalign matches asterisms (triangles of neighbouring stars, compared by their shape) between
the brightest stars of the two lists, which survives any rotation, dither and a change of
transparency; its answer is only a first guess from a few triangles. The transform is then
settled here on every star: each reference star is paired with the nearest star of the frame
within :data:`MATCH_RADIUS` of where the guess puts it (both ways nearest, so no star is used
twice), a least-squares similarity is fitted to all pairs, pairs further than
:data:`CLIP_SIGMA` robust sigmas from the fit are dropped, and pairing and fitting repeat until
the pairs stop changing. The result depends on the stars and not on which triangles the guess
came from (astroalign shuffles its candidates with an unseeded generator), so a frame registers
the same way on every run.

astroalign builds the triangle invariants of both star lists on every call, the reference's too,
though it is the same for every frame of a block; caching them would mean replacing a private
function inside astroalign for every user of the process, for about 1 s of CPU per 90 frames
(within the benchmark's run-to-run spread), so it is not done.

A frame with fewer than :data:`MIN_STARS` stars, one whose asterisms match nothing, or one whose
fit rests on fewer than :data:`MIN_MATCHES` pairs gets no transform, only the reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import astroalign
import attrs
import numpy as np
from numpy.typing import NDArray

from crowdsky.adapters.local_stack.stars import Stars
from crowdsky.adapters.local_stack.transform import Similarity

__all__ = [
    "CLIP_SIGMA",
    "CONTROL_POINTS",
    "MATCH_RADIUS",
    "MIN_MATCHES",
    "MIN_STARS",
    "Registration",
    "choose_reference",
    "register",
]

#: Fewest stars a frame needs to be registered.
MIN_STARS = 8
#: Fewest matched pairs the final fit must rest on.
MIN_MATCHES = 6
#: Brightest stars of each list given to the asterism matching (twice as many if they fail).
CONTROL_POINTS = 30
#: Pixels between a reference star's predicted position and a frame star for them to pair.
MATCH_RADIUS = 2.0
#: Pairs further from the fit than this many robust standard deviations are dropped.
CLIP_SIGMA = 4.0
#: The fit's scale must lie within this factor of 1: frames of one camera do not zoom.
MAX_SCALE_CHANGE = 1.05
_MIN_CLIP_PX = 0.05  # a clip never tighter than this: centroids are not better
_MAX_ROUNDS = 20
#: Of frames with at least this share of the most stars, the reference is the one nearest the
#: middle of the block (the smallest rotation to the others).
_GOOD_SHARE = 0.75


@attrs.frozen
class Registration:
    """How a frame maps onto the reference frame, or why it cannot be known.

    Parameters
    ----------
    transform : Similarity or None
        Reference pixel -> this frame's pixel; None when the frame cannot be registered.
    reason : str or None
        Why there is no transform (``"too few stars (3)"``, ``"no match"``), else None.
    matched : int
        Star pairs the transform was fitted to.
    """

    transform: Similarity | None
    reason: str | None
    matched: int


def register(reference: Stars, stars: Stars) -> Registration:
    """The similarity transform from the reference frame to the frame of ``stars``.

    Parameters
    ----------
    reference : Stars
        The reference frame's stars.
    stars : Stars
        The stars of the frame to register.

    Returns
    -------
    Registration
        The transform and the number of pairs it rests on, or None and the reason.
    """
    if stars.failure is not None:
        return Registration(None, stars.failure, 0)
    if len(stars) < MIN_STARS:
        return Registration(None, f"too few stars ({len(stars)})", 0)
    if len(reference) < MIN_STARS:
        return Registration(None, f"too few stars in the reference frame ({len(reference)})", 0)
    guess = _asterism_guess(reference, stars)
    if guess is None:
        return Registration(None, "no match", 0)
    fitted = _settle(reference.xy(), stars.xy(), guess)
    if fitted is None:
        return Registration(None, "no match", 0)
    transform, matched = fitted
    if matched < MIN_MATCHES:
        return Registration(None, f"no match (only {matched} stars agree)", matched)
    if not 1.0 / MAX_SCALE_CHANGE < transform.scale < MAX_SCALE_CHANGE:
        return Registration(None, f"no match (scale {transform.scale:.3f})", matched)
    return Registration(transform, None, matched)


def choose_reference(star_lists: Sequence[Stars]) -> int:
    """The index of the frame to register the block on.

    Among the frames with at least three quarters of the most stars any frame has (clear, sharp
    frames), the one nearest the middle of the block: the field rotates through a block, and the
    middle frame is the least turned from the others. If no frame has :data:`MIN_STARS` stars, the
    frame with the most (every registration then reports too few stars).

    Parameters
    ----------
    star_lists : Sequence[Stars]
        Each frame's stars, in the block's order.

    Returns
    -------
    int
        The reference frame's index.

    Raises
    ------
    ValueError
        When ``star_lists`` is empty.
    """
    if not star_lists:
        raise ValueError("A block without frames has no reference frame.")
    counts = [len(stars) for stars in star_lists]
    most = max(counts)
    if most < MIN_STARS:
        return counts.index(most)
    middle = (len(counts) - 1) / 2.0
    good = [i for i, n in enumerate(counts) if n >= _GOOD_SHARE * most]
    return min(good, key=lambda i: (abs(i - middle), i))


def _asterism_guess(reference: Stars, stars: Stars) -> Similarity | None:
    """The transform astroalign finds by matching triangles of the brightest stars, or None.

    The brightest :data:`CONTROL_POINTS` first, then twice as many if those do not match and both
    frames are rich in stars (a failed search tries every triangle, about a second: a cloudy frame
    with few stars gets one).
    """
    fewest = min(len(reference), len(stars))
    for size in (CONTROL_POINTS, 2 * CONTROL_POINTS)[: 2 if fewest >= 2 * CONTROL_POINTS else 1]:
        try:
            found, _ = astroalign.find_transform(reference.xy()[:size], stars.xy()[:size])
        except (ValueError, RuntimeError, IndexError, TypeError):  # MaxIterError: RuntimeError
            continue
        matrix = np.asarray(found.params, dtype=np.float64)
        if matrix.shape == (3, 3) and np.isfinite(matrix).all():
            return _from_matrix(matrix[0, 0], matrix[1, 0], matrix[0, 2], matrix[1, 2])
    return None


def _settle(
    reference: NDArray[np.float64], frame: NDArray[np.float64], guess: Similarity
) -> tuple[Similarity, int] | None:
    """Pair, fit and clip until the pairs stop changing; the fit and its pair count."""
    transform = guess
    pairs: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None
    for _ in range(_MAX_ROUNDS):
        ref_index, frame_index = _pairs(_apply(transform, reference), frame)
        if ref_index.size < 3:
            return None
        fitted = _clipped_fit(reference[ref_index], frame[frame_index])
        if fitted is None:
            return None
        transform, kept = fitted
        current = (ref_index[kept], frame_index[kept])
        if pairs is not None and all(
            np.array_equal(a, b) for a, b in zip(pairs, current, strict=True)
        ):
            break
        pairs = current
    return transform, int(pairs[0].size) if pairs is not None else 0


def _pairs(
    predicted: NDArray[np.float64], frame: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Indices of mutually nearest (predicted reference star, frame star) within the radius."""
    distance = np.hypot(
        predicted[:, 0, None] - frame[None, :, 0], predicted[:, 1, None] - frame[None, :, 1]
    )
    nearest_frame = np.argmin(distance, axis=1)
    nearest_ref = np.argmin(distance, axis=0)
    ref_index = np.arange(predicted.shape[0])
    mutual = (nearest_ref[nearest_frame] == ref_index) & (
        distance[ref_index, nearest_frame] < MATCH_RADIUS
    )
    return ref_index[mutual], nearest_frame[mutual]


def _clipped_fit(
    source: NDArray[np.float64], target: NDArray[np.float64]
) -> tuple[Similarity, NDArray[np.bool_]] | None:
    """Least-squares similarity on the pairs, refitted without outliers until none is left.

    The kept set can swing between two sets (a pair just inside the limit of one fit and just
    outside the next's); once a set comes back, the pairs both keep are fitted and that is the
    answer.
    """
    kept = np.ones(source.shape[0], dtype=np.bool_)
    seen: set[bytes] = set()
    while True:
        seen.add(kept.tobytes())
        if kept.sum() < 3:
            return None
        transform = _fit(source[kept], target[kept])
        if transform is None:
            return None
        residual = np.hypot(*(_apply(transform, source) - target).T)
        # For a 2-D Gaussian error of sigma per axis the median distance is 1.1774 sigma.
        sigma = float(np.median(residual[kept])) / 1.1774
        limit = max(CLIP_SIGMA * sigma, _MIN_CLIP_PX)
        now = residual <= limit
        if np.array_equal(now, kept):
            return transform, kept
        if now.tobytes() in seen:
            both = now & kept
            settled = _fit(source[both], target[both]) if both.sum() >= 3 else None
            return None if settled is None else (settled, both)
        kept = now


def _fit(source: NDArray[np.float64], target: NDArray[np.float64]) -> Similarity | None:
    """The similarity minimising the squared distances from ``T(source)`` to ``target``.

    None when the source points all coincide (no rotation or scale can be told).
    """
    centre_s = source.mean(axis=0)
    centre_t = target.mean(axis=0)
    s = source - centre_s
    t = target - centre_t
    norm = float((s**2).sum())
    if not norm > 0.0:
        return None
    # x' = a x - b y, y' = b x + a y on centred points: the closed-form normal equations.
    a = float((s[:, 0] * t[:, 0] + s[:, 1] * t[:, 1]).sum()) / norm
    b = float((s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0]).sum()) / norm
    tx = float(centre_t[0] - (a * centre_s[0] - b * centre_s[1]))
    ty = float(centre_t[1] - (b * centre_s[0] + a * centre_s[1]))
    return _from_matrix(a, b, tx, ty)


def _from_matrix(a: float, b: float, tx: float, ty: float) -> Similarity:
    """The :class:`Similarity` of ``[[a, -b, tx], [b, a, ty]]``."""
    return Similarity(scale=math.hypot(a, b), rotation=math.atan2(b, a), tx=float(tx), ty=float(ty))


def _apply(transform: Similarity, points: NDArray[np.float64]) -> NDArray[np.float64]:
    """``transform`` applied to an ``(N, 2)`` array of points."""
    (a, mb, tx), (b, _, ty) = transform.matrix()
    x, y = points[:, 0], points[:, 1]
    return np.column_stack((a * x + mb * y + tx, b * x + a * y + ty))
