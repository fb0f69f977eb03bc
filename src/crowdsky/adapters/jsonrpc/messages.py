"""The values the JSON-RPC codec produces and consumes (frozen, no behaviour beyond access).

:class:`Reply` and :class:`Event` come from the device, :class:`Request` goes to it, and
:class:`Problem` stands for a frame that had to be skipped. :data:`ABSENT` marks "no ``params``
key", which the device distinguishes from ``"params": null``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

__all__ = ["ABSENT", "Event", "Problem", "Reply", "Request"]


class _Absent(enum.Enum):
    ABSENT = "ABSENT"

    def __repr__(self) -> str:
        return "ABSENT"


#: Marks "no ``params`` key at all", which differs from ``params: null`` on the device.
ABSENT: Final = _Absent.ABSENT


def _readonly(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@attrs.frozen
class Reply:
    """A reply to a request, matched to it by ``id``.

    Parameters
    ----------
    id : object
        The id echoed by the device (the client sends integers).
    method : str
        The method the device says it answered.
    code : int
        0 on success; the device's error code otherwise (reference §1.7).
    result : object
        The ``result`` value; ``None`` when the reply has none (error replies).
    error : str or None
        The device's error text, when present.
    raw : Mapping
        The whole frame as decoded, read-only.
    timestamp : str or None
        The device's ``Timestamp`` string (seconds since boot), kept as text.
    """

    id: Any
    method: str
    code: int
    result: Any
    error: str | None
    raw: Mapping[str, Any] = attrs.field(converter=_readonly, eq=False, repr=False)
    timestamp: str | None = None

    @property
    def ok(self) -> bool:
        """True when the device reported success (``code`` 0)."""
        return self.code == 0


@attrs.frozen
class Event:
    """An unsolicited event frame (``{"Event": "PiStatus", "Timestamp": ..., ...}``).

    Parameters
    ----------
    name : str
        The value of ``Event``.
    fields : Mapping
        Every other key except ``Timestamp``, read-only.
    timestamp : str or None
        The device's ``Timestamp`` string.
    """

    name: str
    fields: Mapping[str, Any] = attrs.field(converter=_readonly)
    timestamp: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the event does not carry it."""
        return self.fields.get(key, default)


@attrs.frozen
class Problem:
    """A frame that could not be used; it was skipped.

    Parameters
    ----------
    reason : str
        What was wrong, for logs.
    line_excerpt : str
        The first characters of the frame, for logs (never the whole of a huge frame).
    """

    reason: str
    line_excerpt: str


@attrs.frozen
class Request:
    """A request as a device (or simulator) receives it.

    Parameters
    ----------
    id : object
        Any JSON value; echoed verbatim in the reply. ``None`` when absent.
    method : str
        The method name.
    params : object
        The ``params`` value, ``None`` when absent (see ``has_params``).
    has_params : bool
        Whether the frame had a ``params`` key at all.
    raw : Mapping
        The whole frame, read-only (top-level extras such as ``"verify": true`` stay visible).
    """

    id: Any
    method: str
    params: Any
    has_params: bool
    raw: Mapping[str, Any] = attrs.field(converter=_readonly, eq=False, repr=False)
