"""What the FITS headers of the Seestar's frames and stacks tell: pure readings of header cards."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["header_pointing", "parse_date_obs"]


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
    """``(RA, DEC)`` in degrees from the header cards, ``(None, None)`` when unusable.

    Unusable: missing, not a number, not finite, or an integer too large for a float.

    Examples
    --------
    >>> header_pointing({"RA": 85.25, "DEC": "-2.46"}), header_pointing({"RA": 85.25})
    ((85.25, -2.46), (None, None))
    >>> header_pointing({"RA": float("nan"), "DEC": 1}), header_pointing({"RA": 10**400, "DEC": 0})
    ((None, None), (None, None))
    """
    try:
        ra, dec = float(header["RA"]), float(header["DEC"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None, None
    if not (math.isfinite(ra) and math.isfinite(dec)):
        return None, None
    return ra, dec
