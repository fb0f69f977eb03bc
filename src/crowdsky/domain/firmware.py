"""Seestar firmware versions and the protocol rules that depend on them (pure).

The device reports its firmware as ``firmware_ver_int = 2000 + 100 * major + minor`` (``2670`` is
``"6.70"``, protocol reference, preamble) in ``get_device_state`` and the ``Version`` event. Three
rules of the wire depend on it:

* **the verify marker**: firmware after 5.82 and before 7.18 answers a request only when its
  ``params`` carry a ``"verify"`` marker (reference §1.3; recorded traffic of 6.70 and 7.06);
* **authentication**: 7.18 replaced the marker by the RSA handshake (§2);
* **batch-stack paths**: 7.75 selects frames only by full ``MyWorks/<folder>/<file>`` paths,
  earlier firmware only by bare file names (§4.1).
"""

from __future__ import annotations

import enum
from typing import Final

import attrs

__all__ = [
    "FULL_PATHS_FROM",
    "HANDSHAKE_FROM",
    "MARKER_AFTER",
    "Firmware",
    "PathForm",
    "batch_path_form",
    "needs_verify_marker",
    "version_int",
    "version_text",
]

#: The verify-marker window starts after this firmware (5.82, exclusive; reference §1.3).
MARKER_AFTER: Final = 2582
#: First firmware with the RSA handshake instead of the marker (7.18).
HANDSHAKE_FROM: Final = 2718
#: First firmware that wants full paths in ``set_batch_stack_setting`` (7.75).
FULL_PATHS_FROM: Final = 2775


class PathForm(enum.Enum):
    """How ``set_batch_stack_setting`` names its frames."""

    #: ``MyWorks/<folder>/<file>`` (firmware 7.75 and later).
    FULL = "full"
    #: ``<file>`` alone, the folder given by ``path`` (firmware before 7.75).
    BARE = "bare"

    @property
    def other(self) -> PathForm:
        """The form to try when this one resolved to no image."""
        return PathForm.BARE if self is PathForm.FULL else PathForm.FULL


def version_int(major: int, minor: int) -> int:
    """``2000 + 100 * major + minor``.

    Examples
    --------
    >>> version_int(6, 70), version_int(7, 6)
    (2670, 2706)
    """
    return 2000 + 100 * major + minor


def version_text(ver_int: int) -> str:
    """The ``"major.minor"`` text of a version number.

    Examples
    --------
    >>> version_text(2706), version_text(2225)
    ('7.06', '2.25')
    """
    major, minor = divmod(ver_int - 2000, 100)
    return f"{major}.{minor:02d}"


def needs_verify_marker(ver_int: int) -> bool:
    """Whether this firmware answers only requests that carry the verify marker (5.82 < fw < 7.18).

    Examples
    --------
    >>> [needs_verify_marker(v) for v in (2225, 2670, 2706, 2718, 2775)]
    [False, True, True, False, False]
    """
    return MARKER_AFTER < ver_int < HANDSHAKE_FROM


def batch_path_form(ver_int: int | None) -> PathForm:
    """The frame-name form this firmware resolves; full paths when the firmware is unknown.

    Examples
    --------
    >>> batch_path_form(2732), batch_path_form(2775), batch_path_form(None)
    (<PathForm.BARE: 'bare'>, <PathForm.FULL: 'full'>, <PathForm.FULL: 'full'>)
    """
    if ver_int is None or ver_int >= FULL_PATHS_FROM:
        return PathForm.FULL
    return PathForm.BARE


@attrs.frozen
class Firmware:
    """What a Seestar told about itself, and whether its requests need the verify marker.

    Parameters
    ----------
    ver_int : int or None
        ``firmware_ver_int``; ``None`` when the device did not say.
    ver_string : str or None
        ``firmware_ver_string`` (``"6.70"``).
    model : str or None
        ``product_model`` (``"Seestar S50"``).
    marker : bool
        Whether requests carry the verify marker. Observed on the wire (an unmarked request went
        unanswered, a marked one was answered), so it holds even when ``ver_int`` is unknown.
    """

    ver_int: int | None = None
    ver_string: str | None = None
    model: str | None = None
    marker: bool = False

    @property
    def known(self) -> bool:
        """True when the version number is known."""
        return self.ver_int is not None

    @property
    def text(self) -> str | None:
        """The version as text: the device's own string, else one made from the number."""
        if self.ver_string:
            return self.ver_string
        return version_text(self.ver_int) if self.ver_int is not None else None

    @property
    def has_handshake(self) -> bool | None:
        """Whether the firmware authenticates (7.18+); ``None`` when unknown."""
        if self.marker:
            return False
        return None if self.ver_int is None else self.ver_int >= HANDSHAKE_FROM
