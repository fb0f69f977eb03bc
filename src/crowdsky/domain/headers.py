"""What the FITS headers of the Seestar's frames and stacks tell: pure readings of header cards."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = ["header_pointing", "parse_date_obs"]


def parse_date_obs(value: Any) -> datetime | None:
    """``DATE-OBS`` as an aware UTC datetime, or ``None`` when absent or unreadable.

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
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def header_pointing(header: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(RA, DEC)`` in degrees from the header cards, ``(None, None)`` when unusable.

    Examples
    --------
    >>> header_pointing({"RA": 85.25, "DEC": "-2.46"}), header_pointing({"RA": 85.25})
    ((85.25, -2.46), (None, None))
    """
    try:
        ra, dec = float(header["RA"]), float(header["DEC"])
    except (KeyError, TypeError, ValueError):
        return None, None
    return ra, dec
