"""Learning a Seestar's firmware on a fresh socket, before any other command.

Theory of operation
-------------------
``get_device_state`` carries ``device.firmware_ver_int``, ``firmware_ver_string`` and
``product_model`` (protocol reference §1.2, §1.6). Which request reaches the device at all depends
on that very firmware, so the probe asks in the order that tells the cases apart:

1. ``get_device_state`` without params, and ``get_verify_str`` beside it. Within ``short``
   seconds, an answer to the first means the firmware needs no verify marker (before 5.82, or
   7.18 and later) and names the version; a challenge from the second means firmware 7.18+,
   which may stay silent until authenticated (7.32+, §2.2): the firmware is asked again once
   the handshake ran. A 103 to ``get_verify_str`` only says "before 7.18".
2. Neither: ``get_device_state ["verify"]`` goes out, and within another ``short`` seconds
   an answer to it means firmware 5.82-7.17, which ignores every unmarked request (§1.3); an
   answer to the first, unmarked request after all means a slow device that needs no marker.

   Nothing at all: the device is busy or silent for lack of a key; the firmware stays unknown
   and the connection goes on as before (authentication, then the caller's own timeouts).

A result without a readable version falls back to the last ``Version`` event; failing that the
firmware is "unknown" (``Firmware.ver_int`` ``None``), which is never guessed into a version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from crowdsky.adapters.jsonrpc._link import Link, Pending, ReplyTimeout
from crowdsky.adapters.jsonrpc.codec import ABSENT, Event, Reply
from crowdsky.adapters.jsonrpc.marker import MARKER
from crowdsky.domain.firmware import Firmware, needs_verify_marker, version_int

__all__ = ["DEVICE_STATE", "firmware_from_fields", "parse_device_state", "probe", "reprobe"]

log = logging.getLogger("crowdsky.adapters.jsonrpc.connection")

#: The method that names the firmware.
DEVICE_STATE: Final = "get_device_state"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _from_text(text: str | None) -> int | None:
    if not text:
        return None
    major, dot, minor = text.strip().partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        return None
    return version_int(int(major), int(minor))


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def firmware_from_fields(fields: Mapping[str, Any], *, marker: bool = False) -> Firmware | None:
    """A :class:`Firmware` from ``firmware_ver_int`` / ``firmware_ver_string`` / ``product_model``.

    ``None`` when neither version field is readable. An implausible number (not 2000-9999)
    is not a version; the string is then used.
    """
    ver_string = _text(fields.get("firmware_ver_string"))
    ver_int = _as_int(fields.get("firmware_ver_int"))
    if ver_int is None or not 2000 <= ver_int <= 9999:
        ver_int = _from_text(ver_string)
    if ver_int is None:
        return None
    return Firmware(ver_int, ver_string, _text(fields.get("product_model")), marker)


def parse_device_state(result: Any, *, marker: bool = False) -> Firmware | None:
    """The firmware named by a ``get_device_state`` result (``result.device``); ``None`` if none.

    Examples
    --------
    >>> parse_device_state({"device": {"firmware_ver_int": 2706, "product_model": "Seestar S30"}})
    Firmware(ver_int=2706, ver_string=None, model='Seestar S30', marker=False)
    >>> parse_device_state(0) is None
    True
    """
    if not isinstance(result, Mapping):
        return None
    device = result.get("device")
    return firmware_from_fields(device, marker=marker) if isinstance(device, Mapping) else None


def _from_reply(link: Link, reply: Reply, marker: bool) -> Firmware:
    found = parse_device_state(reply.result, marker=marker) if reply.ok else None
    if found is None:
        event: Event | None = link.version_event
        found = firmware_from_fields(event.fields, marker=marker) if event is not None else None
    if found is None:
        log.info("link %s: the firmware did not name its version (code %s)", link.label, reply.code)
        return Firmware(marker=marker)
    if found.ver_int is not None and found.marker != needs_verify_marker(found.ver_int):
        # The wire decides: the marker goes out exactly when unmarked requests went unanswered.
        log.warning(
            "link %s: firmware %s %s the verify marker, unlike its version suggests",
            link.label, found.text, "needs" if found.marker else "does without",
        )  # fmt: skip
    return found


def probe(link: Link, short: float) -> Firmware | None:
    """Learn the firmware on a fresh ``link`` (see the module notes); ``None`` when silent.

    Parameters
    ----------
    link : Link
        A socket on which nothing was sent yet.
    short : float
        Seconds each step waits.

    Returns
    -------
    Firmware or None
        ``None`` when the device answered nothing that tells (firmware 7.32+ before
        authentication, or a busy device).

    Raises
    ------
    LinkDropped
        When the socket dies meanwhile.
    """
    plain = link.request(DEVICE_STATE)
    handshake = link.request("get_verify_str")
    sent: list[Pending] = [plain, handshake]
    try:
        first = _first_answer(link, [plain, handshake], handshake, short)
        if first is None:
            marked = link.request(DEVICE_STATE, [MARKER])
            sent.append(marked)
            first = _first_answer(link, [plain, marked, handshake], handshake, short)
        if first is None or first.reply is None:
            return None
        if first is handshake:
            log.debug("link %s: silent until authenticated", link.label)
            return None
        return _from_reply(link, first.reply, marker=first is not plain)
    finally:
        for pending in sent:
            link.forget(pending)


def _first_answer(
    link: Link, waiting: list[Pending], handshake: Pending, short: float
) -> Pending | None:
    """The first of ``waiting`` answered within ``short`` s; a refused handshake does not count."""
    deadline = time.monotonic() + short
    waiting = list(waiting)
    while waiting:
        first = link.wait_any(waiting, max(0.0, deadline - time.monotonic()))
        if first is None:
            return None
        if first is handshake and first.reply is not None and not first.reply.ok:
            waiting.remove(first)  # 103: no handshake (before 7.18); the others will tell
            continue
        return first
    return None


def reprobe(link: Link, timeout: float) -> Firmware | None:
    """Ask an authenticated ``link`` for its firmware (no marker: 7.18+); ``None`` on no answer."""
    try:
        reply = link.roundtrip(DEVICE_STATE, ABSENT, timeout)
    except ReplyTimeout:
        log.info("link %s: get_device_state not answered after authentication", link.label)
        return None
    return _from_reply(link, reply, marker=False)
