"""Folder names under ``MyWorks`` and what the FITS headers tell: pure helpers.

Raw sub-frames live in ``<target>_sub`` (current firmware), ``<target>-sub`` (2024 firmware) or
``<target>_mosaic_sub`` (mosaics); stacks live in ``<target>`` (protocol reference §3.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "SUB_FOLDER_SUFFIXES",
    "header_pointing",
    "is_sub_folder",
    "parse_date_obs",
    "target_of_sub_folder",
]

#: Folder suffixes that mark raw sub-frame folders, longest first so ``_mosaic_sub`` wins.
SUB_FOLDER_SUFFIXES = ("_mosaic_sub", "_sub", "-sub")


def target_of_sub_folder(folder: str) -> str | None:
    """The target of a raw sub-frame folder, or ``None`` for any other folder.

    Examples
    --------
    >>> target_of_sub_folder("IC 434_sub"), target_of_sub_folder("Algol-sub")
    ('IC 434', 'Algol')
    >>> target_of_sub_folder("M 81") is None
    True
    """
    for suffix in SUB_FOLDER_SUFFIXES:
        if folder.endswith(suffix) and len(folder) > len(suffix):
            return folder[: -len(suffix)]
    return None


def is_sub_folder(folder: str) -> bool:
    """True for a folder of raw sub-frames, which nothing may ever rename or delete in.

    Case and trailing dots and spaces are ignored, because the SMB share and many mounted file
    systems treat ``M 81_SUB.`` as ``M 81_sub``.

    Examples
    --------
    >>> [is_sub_folder(f) for f in ("M 81_sub", "Algol-SUB", "M 81_mosaic_sub. ", "M 81")]
    [True, True, True, False]
    """
    return folder.rstrip(". ").lower().endswith(SUB_FOLDER_SUFFIXES)


def parse_date_obs(value: Any) -> datetime | None:
    """``DATE-OBS`` as an aware UTC datetime, or ``None`` when absent or unreadable.

    A time outside the years 2000-2199 (UTC) is unreadable: a reset or corrupt clock, and near
    the ends of the calendar not even convertible to UTC.

    Examples
    --------
    >>> parse_date_obs("2025-09-29T06:01:02.382641").isoformat()
    '2025-09-29T06:01:02.382641+00:00'
    >>> parse_date_obs("yesterday") is None
    True
    """
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip().removesuffix("Z"))
        utc = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset past year 1 or 9999
        return None
    return utc if 2000 <= utc.year < 2200 else None


def header_pointing(header: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(RA, DEC)`` in degrees from the header cards, ``(None, None)`` when unusable."""
    try:
        ra, dec = float(header["RA"]), float(header["DEC"])
    except (KeyError, TypeError, ValueError):
        return None, None
    return ra, dec
